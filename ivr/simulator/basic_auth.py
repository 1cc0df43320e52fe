"""HTTP Basic auth as Twilio's API checks it (account SID : auth token), for the local stand-ins."""
from __future__ import annotations

import base64
import binascii
import hmac


def basic_auth_matches(header: str | None, account_sid: str, auth_token: str) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, password = decoded.partition(":")
    return bool(sep) and hmac.compare_digest(user.encode(), account_sid.encode()) \
        and hmac.compare_digest(password.encode(), auth_token.encode())
