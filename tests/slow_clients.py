"""Slow-client attack and timed probes, shared by tests/test_proxy.py and bench/stalled_clients.py.

The attack: connections that start a request and never finish it, half stopping inside the
headers, half sending fewer body bytes than their Content-Length. The probes: what Twilio and a
monitor send meanwhile (a signed POST /twilio/voice, GET /healthz), each timed.
"""
from __future__ import annotations

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from twilio.request_validator import RequestValidator

UNFINISHED_HEADERS = b"POST /twilio/voice HTTP/1.1\r\nHost: %s\r\nX-Twilio-Signature: "
SHORT_BODY = (b"POST /twilio/voice HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: 1000\r\n\r\nCallSid=CAstalled&From=%%2B86")


def open_stalled(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` connections that each sent part of a request and will send nothing more."""
    stalled = []
    try:
        for number in range(count):
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall((UNFINISHED_HEADERS if number % 2 == 0 else SHORT_BODY) % host.encode())
            stalled.append(sock)
    except OSError:
        close_all(stalled)
        raise
    return stalled


def still_waiting(sock: socket.socket) -> bool:
    """True while the server keeps the connection open without having answered it."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # b"": closed; bytes: answered (408)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


@dataclass(frozen=True)
class Probe:
    what: str
    status: int | str  # HTTP status, or the exception's name (e.g. ReadTimeout)
    seconds: float
    body: str = ""


def signed_voice(base_url: str, public_base_url: str, token: str, timeout: float,
                 signature: str | None = None) -> Probe:
    """POST /twilio/voice as Twilio would: signed over PUBLIC_BASE_URL, sent to base_url.

    The query string is signed too and holds an escaped comma: it must reach the app unchanged.
    """
    what = "signed /twilio/voice" if signature is None else "forged /twilio/voice"
    path = "/twilio/voice?probe=a%2Cb"
    params = {"CallSid": "CA" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32, "From": "+8613800000002",
              "To": "+862160000000", "CallStatus": "ringing", "Direction": "inbound"}
    if signature is None:
        signature = RequestValidator(token).compute_signature(public_base_url + path, params)
    headers = {"X-Twilio-Signature": signature, "Host": urlsplit(public_base_url).netloc}
    return _timed(what, lambda: requests.post(base_url + path, data=params, headers=headers, timeout=timeout))


def health(base_url: str, timeout: float) -> Probe:
    return _timed("/healthz", lambda: requests.get(base_url + "/healthz", timeout=timeout))


def _timed(what: str, send) -> Probe:  # noqa: ANN001
    start = time.monotonic()
    try:
        response = send()
        return Probe(what, response.status_code, time.monotonic() - start, response.text)
    except requests.RequestException as exc:
        return Probe(what, type(exc).__name__, time.monotonic() - start)


def run_probes(base_url: str, public_base_url: str, token: str, count: int, timeout: float,
               parallel: int = 4) -> list[Probe]:
    """`count` probes, signed webhooks and health checks in turn, `parallel` at a time."""
    def one(number: int) -> Probe:
        if number % 2:
            return health(base_url, timeout)
        return signed_voice(base_url, public_base_url, token, timeout)
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, range(count)))
