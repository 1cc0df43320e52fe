"""Checking that a WebSocket upgrade comes from Twilio, and where streams connect.

Twilio signs the upgrade like a webhook: HMAC-SHA1 of the URL *as written in the TwiML* — the
`wss://` URL, not the `https://` one a proxy forwards — with no parameters (a GET without a
body), in the `X-Twilio-Signature` header (it arrives lowercase on the upgrade).  The stream
URL may carry no query string (Twilio refuses it); per-call data travels in `<Parameter>`s.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Mapping
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

STREAM_PATH = "/twilio/stream"


def stream_url(public_base_url: str, path: str = STREAM_PATH) -> str:
    """wss:// for an https:// service (ws:// only for a plain-http demo on this machine)."""
    parts = urlsplit(public_base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme)
    if scheme is None or parts.query or parts.fragment:
        raise ValueError(f"PUBLIC_BASE_URL {public_base_url!r} cannot give a stream URL")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"


def signature_of(headers: Mapping[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "x-twilio-signature":
            return value
    return ""


def upgrade_is_signed(auth_token: str, url: str, headers: Mapping[str, str]) -> bool:
    """True only for an upgrade Twilio signed for exactly this stream URL."""
    signature = signature_of(headers)
    return bool(signature) and RequestValidator(auth_token).validate(url, {}, signature)


def stream_token(secret: str, call_sid: str) -> str:
    """The per-call token the TwiML passes as a <Parameter> and `start` must bring back: the
    upgrade's signature is the same for every call, the token is not."""
    return hmac.new(secret.encode(), f"media-stream:{call_sid}".encode(), hashlib.sha256).hexdigest()[:32]
