"""A local stand-in for Twilio's REST API, serving the recordings the simulator made.

When a simulated caller speaks at a ``<Record>``, the simulator stores the
recording here and sends the app ``RecordingUrl`` (no extension), as Twilio
does. The app fetches the media like it would from ``api.twilio.com``::

    GET {base_url}/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.wav
    Authorization: Basic base64(AccountSid:AuthToken)

It is a real HTTP server on 127.0.0.1 (an ephemeral port, one daemon thread),
so the app's fetch code (``requests`` + Basic auth, retries) runs unchanged.

Behaviour:

* missing or wrong Basic credentials: ``401`` with ``WWW-Authenticate``
  (checked before anything else, like Twilio's API);
* ``.wav``: the bytes, ``Content-Type: audio/x-wav``;
* unknown recording, another account, ``.mp3`` or no extension: ``404``.
  Twilio itself serves WAV without an extension and MP3 with ``.mp3``; this
  server refuses both so the app is held to the documented ``RecordingUrl +
  ".wav"`` (set ``serve_without_extension=True`` to allow the bare URL);
* ``not_ready_fetches=N``: the first N authorised fetches of each recording
  answer ``404`` (Twilio: "the recording file may not yet be accessible when
  the action callback is sent"), so an app's bounded retries can be tested.

:meth:`fetch_count` counts authorised fetches of a recording's media
(404 "not ready" answers included); :attr:`log` keeps every request.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

from ivr.simulator.basic_auth import basic_auth_matches

__all__ = ["RecordingServer", "ServedRequest"]

API_VERSION = "2010-04-01"
_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Recordings/(?P<sid>RE[0-9a-fA-F]{32})(?P<ext>\.[A-Za-z0-9]+)?$"
)


@dataclass
class ServedRequest:
    """One request the recording server answered."""

    method: str
    path: str
    status: int
    authorized: bool
    recording_sid: Optional[str] = None


class RecordingServer:
    """Twilio's recording media endpoint on 127.0.0.1, with HTTP Basic auth.

    :param account_sid: the account the recordings belong to (the Basic auth user name).
    :param auth_token: the Basic auth password.
    :param not_ready_fetches: answer 404 this many times per recording before serving it.
    :param serve_without_extension: also serve WAV at the bare ``RecordingUrl``
        (Twilio does; off by default so apps append ``.wav``).

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, account_sid: str, auth_token: str, *, not_ready_fetches: int = 0,
                 serve_without_extension: bool = False, host: str = "127.0.0.1"):
        if not_ready_fetches < 0:
            raise ValueError("not_ready_fetches cannot be negative")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.not_ready_fetches = not_ready_fetches
        self.serve_without_extension = serve_without_extension
        self.host = host
        self.log: list[ServedRequest] = []
        self._recordings: dict[str, tuple[bytes, str]] = {}
        self._fetches: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> "RecordingServer":
        """Start serving (idempotent). Returns self."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self.host, 0), _make_handler(self))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="sim-recording-server", daemon=True)
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving (idempotent). Stored recordings are kept."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(5)

    def __enter__(self) -> "RecordingServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the recording server is not running; call start() first")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (plays the part of ``https://api.twilio.com``)."""
        return f"http://{self.host}:{self.port}"

    # -- recordings ----------------------------------------------------------------------

    def recording_url(self, recording_sid: str) -> str:
        """The RecordingUrl Twilio would send: no extension."""
        return f"{self.base_url}/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    def add(self, recording_sid: str, data: bytes, content_type: str = "audio/x-wav") -> None:
        """Store a recording under ``recording_sid`` ("RE" + 32 hex digits)."""
        if not re.fullmatch(r"RE[0-9a-fA-F]{32}", recording_sid):
            raise ValueError(f"not a recording SID: {recording_sid!r}")
        with self._lock:
            self._recordings[recording_sid] = (bytes(data), content_type)
            self._fetches.setdefault(recording_sid, 0)

    def has(self, recording_sid: str) -> bool:
        with self._lock:
            return recording_sid in self._recordings

    def data(self, recording_sid: str) -> bytes:
        with self._lock:
            return self._recordings[recording_sid][0]

    def fetch_count(self, recording_sid: str) -> int:
        """Authorised fetches of this recording's media so far (404 'not ready' answers included)."""
        with self._lock:
            return self._fetches.get(recording_sid, 0)

    # -- request handling (called from the server thread) --------------------------------

    def _authorized(self, header: str | None) -> bool:
        return basic_auth_matches(header, self.account_sid, self.auth_token)

    def _answer(self, method: str, path: str, auth: str | None) -> tuple[int, dict[str, str], bytes, ServedRequest]:
        path = path.split("?", 1)[0]
        if not self._authorized(auth):
            body = _json_error(20003, "Authenticate", 401)
            headers = {"WWW-Authenticate": 'Basic realm="Twilio API"', "Content-Type": "application/json"}
            return 401, headers, body, ServedRequest(method, path, 401, False)
        match = _PATH.match(path)
        sid = match.group("sid") if match else None
        record = ServedRequest(method, path, 404, True, sid)
        not_found = (404, {"Content-Type": "application/json"},
                     _json_error(20404, f"The requested resource {path} was not found", 404), record)
        if match is None or match.group("account") != self.account_sid:
            return not_found
        ext = (match.group("ext") or "").lower()
        if not (ext == ".wav" or (ext == "" and self.serve_without_extension)):
            return not_found
        with self._lock:
            stored = self._recordings.get(sid)
            if stored is None:
                return not_found
            self._fetches[sid] = self._fetches.get(sid, 0) + 1
            if self._fetches[sid] <= self.not_ready_fetches:
                return not_found
        data, content_type = stored
        record.status = 200
        return 200, {"Content-Type": content_type}, data, record


def _json_error(code: int, message: str, status: int) -> bytes:
    return json.dumps({"code": code, "message": message,
                       "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}).encode()


def _make_handler(owner: RecordingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "SimTwilioAPI/1.0"

        def _serve(self, send_body: bool) -> None:
            status, headers, body, record = owner._answer(
                self.command, self.path, self.headers.get("Authorization"))
            with owner._lock:
                owner.log.append(record)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            self._serve(send_body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(send_body=False)

        def _not_allowed(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = _json_error(20004, "Method not allowed", 405)
            with owner._lock:
                owner.log.append(ServedRequest(self.command, self.path, 405, False))
            self.send_response(405)
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - silence stderr
            pass

    return Handler
