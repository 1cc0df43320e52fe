"""HTTP transports used by the Twilio simulator.

A transport carries the simulator's requests to the application under test:

* :class:`WsgiTransport` drives a WSGI app (Flask) in process, no socket involved;
* :class:`HttpTransport` talks to a running server over real HTTP (``requests``).

Both take *absolute* URLs (the public URLs Twilio would call) so that the
application sees the same scheme, host, path and query string Twilio would
send, which is what the ``X-Twilio-Signature`` is computed over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable
from urllib.parse import urlsplit

__all__ = ["HttpResponse", "Transport", "WsgiTransport", "HttpTransport"]


@dataclass
class HttpResponse:
    """A minimal HTTP response: status code, raw body and headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes are replaced)."""
        return self.body.decode("utf-8", errors="replace")

    @property
    def content_type(self) -> str:
        """The media type of the body, lower-case, without parameters ('' if absent)."""
        for name, value in self.headers.items():
            if name.lower() == "content-type":
                return value.split(";", 1)[0].strip().lower()
        return ""

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default


@runtime_checkable
class Transport(Protocol):
    """Carries simulator requests to the application."""

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> HttpResponse:
        """POST ``params`` form-encoded (application/x-www-form-urlencoded) to ``url``."""
        ...

    def get(self, url: str, headers: dict[str, str] | None = None) -> HttpResponse:
        """GET ``url`` (query string included)."""
        ...


class WsgiTransport:
    """Drives a WSGI application (e.g. a Flask app) in process.

    The absolute URL is split into scheme/host (used as the WSGI base URL, so
    ``request.url`` in the app is the public URL) and path + query string (kept
    byte for byte). Redirects are *not* followed: the simulator decides.
    """

    def __init__(self, app: Any):
        from werkzeug.test import Client

        self.app = app
        self._client = Client(app)

    @staticmethod
    def _split(url: str) -> tuple[str, str, str]:
        parts = urlsplit(url)
        if not parts.scheme or not parts.netloc:
            raise ValueError(f"WsgiTransport needs an absolute URL, got {url!r}")
        base_url = f"{parts.scheme}://{parts.netloc}/"
        return base_url, parts.path or "/", parts.query

    def _open(self, method: str, url: str, headers: Mapping[str, str] | None,
              data: dict[str, str] | None) -> HttpResponse:
        base_url, path, query = self._split(url)
        response = self._client.open(
            path=path,
            base_url=base_url,
            query_string=query,
            method=method,
            data=data,
            headers=dict(headers or {}),
            follow_redirects=False,
        )
        try:
            return HttpResponse(
                status=response.status_code,
                body=response.get_data(),
                headers={k: v for k, v in response.headers.items()},
            )
        finally:
            response.close()

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> HttpResponse:
        return self._open("POST", url, headers, dict(params))

    def get(self, url: str, headers: dict[str, str] | None = None) -> HttpResponse:
        return self._open("GET", url, headers, None)


class HttpTransport:
    """Real HTTP through ``requests`` (for a server started separately)."""

    def __init__(self, timeout: float = 10):
        import requests

        self.timeout = timeout
        self._session = requests.Session()

    def _wrap(self, response: Any) -> HttpResponse:
        return HttpResponse(
            status=response.status_code,
            body=response.content,
            headers={k: v for k, v in response.headers.items()},
        )

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> HttpResponse:
        response = self._session.post(
            url, data=params, headers=headers, timeout=self.timeout, allow_redirects=False
        )
        return self._wrap(response)

    def get(self, url: str, headers: dict[str, str] | None = None) -> HttpResponse:
        response = self._session.get(
            url, headers=headers or {}, timeout=self.timeout, allow_redirects=False
        )
        return self._wrap(response)
