"""The Twilio REST client the console and the worker use: always with a timeout.

TwilioHttpClient has no timeout by default, and a hanging Twilio must never hang an operator's
page or the worker.  TWILIO_API_BASE points every request at another host (the loopback fake
in tests and in the demo) while URL building, auth and parsing stay the client's own.
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.config import Settings

_LIST_ERROR = re.compile(r'HTTP (?P<status>\d{3})(?: .*?"message": "(?P<message>[^"]*)")?')
# What a failed REST call can raise: Twilio's errors, and requests' for timeouts and refused
# connections (a timed-out request may still have been carried out by Twilio).
REST_ERRORS = (TwilioException, requests.RequestException)


class BaseUrlHttpClient(TwilioHttpClient):
    """Sends every ``https://*.twilio.com`` request to ``base_url`` (path and query kept)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def rewrite(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if host == "twilio.com" or host.endswith(".twilio.com"):
            base = urlsplit(self.base_url)
            return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))
        return url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):  # type: ignore[override]
        return super().request(method, self.rewrite(url), *args, **kwargs)


def rest_client(account_sid: str, auth_token: str, timeout: float, api_base: str = "") -> Client:
    http = BaseUrlHttpClient(api_base, timeout) if api_base else TwilioHttpClient(timeout=timeout)
    # A non-empty mapping: Client falls back to os.environ when given {} (TWILIO_EDGE/REGION).
    return Client(account_sid, auth_token, http_client=http,
                  environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""})


def client_from_settings(settings: Settings) -> Client:
    return rest_client(settings.twilio_account_sid, settings.twilio_auth_token,
                       settings.twilio_rest_timeout_seconds, settings.twilio_api_base)


def _status_and_message(exc: BaseException) -> tuple[int | None, str]:
    status = getattr(exc, "status", None)
    message = getattr(exc, "msg", None) or str(exc)
    listed = _LIST_ERROR.search(message)
    if status is None and listed:  # a failed page of a list: ('Unable to fetch page', HTTP 500 {...})
        status, message = int(listed["status"]), listed["message"] or "no details"
    return status, message


def error_status(exc: BaseException) -> int | None:
    """The HTTP status Twilio answered a failed request with; None if it did not answer."""
    return _status_and_message(exc)[0]


def describe_error(exc: BaseException) -> str:
    """A short, log- and console-safe description (no URLs with credentials)."""
    status, message = _status_and_message(exc)
    if isinstance(exc, requests.Timeout):
        return "Twilio did not answer in time (it may still act on the request)"
    if isinstance(exc, requests.ConnectionError):
        return "Twilio could not be reached"
    return f"Twilio error {status}: {message}"[:300] if status else f"{type(exc).__name__}: {message}"[:300]
