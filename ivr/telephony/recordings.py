"""Fetching a caller's recording from Twilio: Basic auth, bounded retries, a hard deadline.

Twilio may send the <Record> action before the recording can be fetched, so a 404 is retried
until the deadline; anything else that fails is given up at once.  The caller then hears a
reprompt (no input), never dead air.
"""
from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import requests

log = logging.getLogger(__name__)
RETRY_PAUSES = (0.2, 0.3, 0.5, 0.8, 1.0)


def recording_allowed(url: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Only fetch from Twilio's API host (or configured test hosts): never wherever a request says."""
    parts = urlsplit(url)
    return parts.scheme in ("https", "http") and (parts.hostname or "") in allowed_hosts \
        and (parts.scheme == "https" or parts.hostname in ("127.0.0.1", "localhost"))


def fetch_recording(url: str, account_sid: str, auth_token: str, deadline_seconds: float,
                    allowed_hosts: tuple[str, ...], session: requests.Session | None = None) -> bytes | None:
    if not recording_allowed(url, allowed_hosts):
        log.warning("refused to fetch a recording from an unexpected host: %s", urlsplit(url).hostname)
        return None
    http = session or requests
    deadline = time.monotonic() + deadline_seconds
    attempt = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            log.warning("recording not available within %.1fs", deadline_seconds)
            return None
        try:
            response = http.get(url + ".wav", auth=(account_sid, auth_token), timeout=min(remaining, 3.0))
        except requests.RequestException as exc:
            log.warning("recording fetch failed: %s", type(exc).__name__)
            return None
        if response.status_code == 200:
            return response.content
        if response.status_code != 404:
            log.warning("recording fetch answered %d", response.status_code)
            return None
        pause = RETRY_PAUSES[min(attempt, len(RETRY_PAUSES) - 1)]
        attempt += 1
        time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
