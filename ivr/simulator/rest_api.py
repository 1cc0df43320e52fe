"""A local fake of Twilio's REST API (calls, messages, queues) on loopback.

The real ``twilio`` Python client is pointed at it with :func:`fake_client`,
so code that drives Twilio over REST (the operator console: dial out, redirect
or hang up a call, send an SMS, dequeue a caller) runs through the real HTTP
path — URL building, form encoding, Basic auth, JSON parsing and
``TwilioRestException`` — without reaching Twilio::

    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        client = fake_client(api, timeout=2.0)
        call = client.calls.create(to="+15550100", from_="+15550199", url="https://x/voice")
        assert api.calls[call.sid].status == "queued"
        assert api.requests[-1].form["To"] == ["+15550100"]

Served under ``/2010-04-01/Accounts/{AccountSid}/``:

* ``Calls.json`` POST (201, ``CA…``, status ``queued``) / GET list;
  ``Calls/{CallSid}.json`` GET, and POST to update (``Url``/``Method``,
  ``Twiml``, ``Status=completed|canceled``);
* ``Messages.json`` POST (201, ``SM…``, status ``queued``; a ``To`` that is not
  E.164 → 400, code 21211) / GET list; ``Messages/{Sid}.json`` GET;
* ``Queues.json`` POST (``FriendlyName``, ``MaxSize``) / GET list;
  ``Queues/{QueueSid}.json`` GET; ``Queues/{QueueSid}/Members.json`` GET list;
  ``Queues/{QueueSid}/Members/{CallSid|Front}.json`` GET, and POST (``Url``,
  ``Method``) to dequeue: the member leaves the queue and its call is
  redirected to ``Url``. Empty or unknown queue / not a member → 404, code 20404.

Callers are put into a queue with :meth:`FakeTwilioApi.enqueue` (on Twilio that
happens through ``<Enqueue>`` TwiML, which this server does not run).

Every request is checked for HTTP Basic ``AccountSid:AuthToken`` (401, code
20003 otherwise) and recorded in :attr:`FakeTwilioApi.requests`, authorised or
not. Errors use Twilio's legacy JSON shape ``{"code", "message", "more_info",
"status"}``, which the client turns into ``TwilioRestException``.

Failure injection: :meth:`FakeTwilioApi.fail_next` answers the next request(s)
with an error status; :meth:`FakeTwilioApi.delay_next` holds the next
request(s) before answering (the request is still processed after the delay,
as Twilio may act on a request whose response the client gave up on).

Without a backend nothing happens on its own: calls stay ``queued`` unless a
test moves them with :meth:`FakeTwilioApi.set_call_status`; no status callbacks
are sent.

With a :class:`TelephonyBackend` (``backend=``; :class:`ivr.simulator.cloud.SimulatedTwilio`
puts the call simulator there) the requests that act on calls reach it:
``calls.create`` answers 201 ``queued`` first and the backend then places the
call on a background thread (:meth:`FakeTwilioApi.wait_background`), as Twilio
runs it after answering; ``calls(sid).update`` and queue member ``update``
(dequeue) run on the request's thread before the answer; the queue resources
mirror the backend's queues (same sid, members, positions). Failure injection
comes first: a failed request never reaches the backend, a delayed one reaches
it after the delay. The backend reports its calls with :meth:`FakeTwilioApi.track_call`.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional, Protocol
from urllib.parse import parse_qs, urlsplit

from twilio.rest import Client

from ivr.simulator.basic_auth import basic_auth_matches
from ivr.telephony.rest_client import rest_client

__all__ = [
    "FakeCall",
    "FakeMessage",
    "FakeQueue",
    "FakeTwilioApi",
    "RecordedRequest",
    "TelephonyBackend",
    "fake_client",
]

API_VERSION = "2010-04-01"
TWILIO_API_BASE = "https://api.twilio.com"
DEFAULT_TIMEOUT = 5.0

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_ROUTE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)(?P<rest>/.*)$")
_ENDED = ("completed", "canceled", "failed", "busy", "no-answer")

_REASONS = {
    400: "Bad Request",
    401: "Authenticate",
    403: "Forbidden",
    404: "The requested resource was not found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _rfc2822(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(int(ts), timezone.utc))


def _is_phone_or_client(value: str) -> bool:
    return bool(_E164.match(value)) or value.startswith(("client:", "sip:"))


class ApiError(Exception):
    """An error answer in Twilio's JSON shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


@dataclass
class RecordedRequest:
    """One request the fake received (recorded before auth is checked)."""

    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, list[str]]
    authorized: bool
    status: int = 0  # the status answered (0 while still in progress)

    def param(self, name: str) -> Optional[str]:
        """The first form value of ``name`` (``None`` when absent)."""
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class FakeCall:
    sid: str
    to: str
    from_: str
    status: str = "queued"
    direction: str = "outbound-api"
    url: Optional[str] = None
    method: str = "POST"
    twiml: Optional[str] = None
    status_callback: Optional[str] = None
    status_callback_event: list[str] = field(default_factory=list)
    timeout: Optional[int] = None
    date_created: float = field(default_factory=time.time)
    date_updated: float = field(default_factory=time.time)
    updates: list[dict[str, list[str]]] = field(default_factory=list)  # forms of POST updates


@dataclass
class FakeMessage:
    sid: str
    to: str
    from_: str
    body: str
    status: str = "queued"
    status_callback: Optional[str] = None
    date_created: float = field(default_factory=time.time)


@dataclass
class FakeQueue:
    sid: str
    friendly_name: str
    max_size: int = 100
    members: list[tuple[str, float]] = field(default_factory=list)  # (call_sid, enqueued at)
    date_created: float = field(default_factory=time.time)
    dequeued: list[dict[str, Any]] = field(default_factory=list)  # call_sid, url, method


class TelephonyBackend(Protocol):
    """Where REST requests that act on calls and queues take effect (a call simulator).

    The API never holds its own lock while calling the backend, so the backend
    may report back (:meth:`FakeTwilioApi.track_call`) from any thread.
    """

    def queues(self) -> list[tuple[str, str, int]]:
        """Every queue as ``(friendly_name, queue_sid, max_size)``."""
        ...

    def add_queue(self, friendly_name: str, sid: str, max_size: int) -> None:
        """A queue was created over REST: ``<Enqueue>`` into that name must use it."""
        ...

    def queue_members(self, queue_name: str) -> list[tuple[str, float, int]]:
        """The calls waiting in ``queue_name`` as ``(call_sid, enqueued_unix_ts, position)``."""
        ...

    def dequeue(self, queue_name: str, call_sid: str, url: str, method: str) -> Optional[str]:
        """Redirect member ``call_sid`` (or ``"Front"``) to ``url``; its sid, or None if no such member."""
        ...

    def create_call(self, call_sid: str, to: str, from_: str, url: str, method: str,
                    status_callback: Optional[str], status_callback_method: str,
                    status_callback_events: list[str], timeout: int) -> None:
        """Place call ``call_sid`` (run on a background thread after the 201 answer was sent)."""
        ...

    def update_call(self, call_sid: str, *, url: Optional[str], method: str,
                    twiml: Optional[str], status: Optional[str]) -> None:
        """Redirect (``url`` or ``twiml``) or end (``status``) call ``call_sid``."""
        ...


class FakeTwilioApi:
    """Fake Twilio REST API on ``127.0.0.1`` (ephemeral port unless given, daemon thread).

    ``backend`` (also settable later as :attr:`backend`) makes call and queue
    requests act on a :class:`TelephonyBackend`; see the module docstring.
    """

    def __init__(self, account_sid: str, auth_token: str,
                 backend: Optional[TelephonyBackend] = None, port: int = 0) -> None:
        self.port = port  # 0: any free port (tests); the demo's terminal phone uses a fixed one
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.backend = backend
        self.calls: dict[str, FakeCall] = {}
        self.messages: dict[str, FakeMessage] = {}
        self.queues: dict[str, FakeQueue] = {}
        self.requests: list[RecordedRequest] = []
        self.backend_errors: list[Exception] = []  # what the backend raised, oldest first
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._background = 0  # backend work answered for but still running
        self._failures: list[int] = []  # statuses, one per upcoming request
        self._delays: list[float] = []
        self._stopping = threading.Event()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "FakeTwilioApi":
        if self._server is not None:
            return self
        api = self

        class Handler(_Handler):
            fake = api

        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-twilio-rest", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # cut injected delays short
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "FakeTwilioApi":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` — stands for ``https://api.twilio.com``."""
        if self._server is None:
            raise RuntimeError("FakeTwilioApi is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- test controls ---------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` and Twilio's error JSON
        (code ``20000 + status``, e.g. 20503), without processing them."""
        with self._lock:
            self._failures.extend([int(status)] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` requests ``seconds`` before processing them."""
        with self._lock:
            self._delays.extend([float(seconds)] * times)

    def enqueue(self, queue: str, call_sid: Optional[str] = None, from_: str = "+15005550006") -> str:
        """Put a call into ``queue`` (a sid or friendly name), like ``<Enqueue>`` does (no backend).

        Without ``call_sid`` an inbound ``in-progress`` call is made up. Returns the call sid.
        """
        with self._lock:
            q = self._find_queue(queue)
            if q is None:
                raise KeyError(f"no queue {queue!r}")
            if len(q.members) >= q.max_size:
                raise ValueError(f"queue {q.friendly_name!r} is full")
            if call_sid is None:
                call = FakeCall(sid=_sid("CA"), to="+15005550001", from_=from_,
                                status="in-progress", direction="inbound")
                self.calls[call.sid] = call
                call_sid = call.sid
            elif call_sid not in self.calls:
                raise KeyError(f"no call {call_sid!r}")
            q.members.append((call_sid, time.time()))
            return call_sid

    def set_call_status(self, call_sid: str, status: str) -> None:
        """Move a call along (``ringing``, ``in-progress``, ``completed`` …)."""
        with self._lock:
            call = self.calls[call_sid]
            call.status = status
            call.date_updated = time.time()

    def track_call(self, sid: str, to: str, from_: str, status: str, direction: str) -> None:
        """The backend reports call ``sid`` (created here if it is new, e.g. an inbound call)."""
        with self._lock:
            call = self.calls.get(sid)
            if call is None:
                self.calls[sid] = FakeCall(sid=sid, to=to, from_=from_, status=status, direction=direction)
            else:
                call.status = status
                call.date_updated = time.time()

    def wait_background(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until backend work that runs after its answer (placed calls) has finished.

        Raises ``TimeoutError`` after ``timeout`` seconds, and ``RuntimeError``
        (from the first of :attr:`backend_errors`) if the backend failed.
        """
        with self._idle:
            if not self._idle.wait_for(lambda: self._background == 0, timeout):
                raise TimeoutError(f"backend work still running after {timeout} s")
            if self.backend_errors:
                raise RuntimeError(f"the telephony backend failed {len(self.backend_errors)} time(s)") \
                    from self.backend_errors[0]

    def requests_to(self, method: str, path_suffix: str) -> list[RecordedRequest]:
        """Recorded requests with this method whose path ends with ``path_suffix``."""
        with self._lock:
            return [r for r in self.requests
                    if r.method == method.upper() and r.path.endswith(path_suffix)]

    # -- request handling (called from the handler thread) ---------------------------------

    def _handle(self, method: str, raw_path: str, headers: Any,
                body: bytes) -> tuple[int, dict, Optional[Callable[[], None]]]:
        """Answer one request: status, JSON payload, and backend work to run after answering."""
        parts = urlsplit(raw_path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        form: dict[str, list[str]] = {}
        if body and ctype in ("", "application/x-www-form-urlencoded"):
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        authorized = self._authorized(headers.get("Authorization"))
        record = RecordedRequest(method, path, query, form, authorized)
        with self._lock:
            self.requests.append(record)
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay > 0:
            self._stopping.wait(delay)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        try:
            if failure is not None:
                raise ApiError(failure, 20000 + failure, _REASONS.get(failure, "Injected failure"))
            if not authorized:
                raise ApiError(401, 20003, "Authenticate")
            status, payload, after = self._route(method, path, query, form)
        except ApiError as err:
            status, payload, after = err.status, err.body(), None
        record.status = status
        if after is not None:
            with self._lock:
                self._background += 1  # before the client can see the answer and wait
        return status, payload, after

    def _run_background(self, work: Callable[[], None]) -> None:
        """Run backend work already answered for on its own thread (see :meth:`wait_background`)."""
        def run() -> None:
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - surfaced by wait_background
                with self._lock:
                    self.backend_errors.append(exc)
            finally:
                with self._idle:
                    self._background -= 1
                    self._idle.notify_all()

        threading.Thread(target=run, name="fake-twilio-backend", daemon=True).start()

    def _ask_backend(self, operation: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call the backend (never under the API lock); its failure answers 500 and is kept."""
        try:
            return operation(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported as Twilio's 500
            with self._lock:
                self.backend_errors.append(exc)
            raise ApiError(500, 20500, f"Internal Server Error (telephony backend: {exc})") from exc

    def _locked(self, handler: Callable[..., tuple]) -> Callable[..., tuple]:
        def run(*args: str) -> tuple:
            with self._lock:
                return handler(*args)
        return run

    def _synced(self, handler: Callable[..., tuple]) -> Callable[..., tuple]:
        """``handler`` under the lock, after the queues were refreshed from the backend."""
        locked = self._locked(handler)

        def run(*args: str) -> tuple:
            self._sync_queues()
            return locked(*args)
        return run

    def _authorized(self, header: Optional[str]) -> bool:
        return basic_auth_matches(header, self.account_sid, self.auth_token)

    def _route(self, method: str, path: str, query: dict,
               form: dict) -> tuple[int, dict, Optional[Callable[[], None]]]:
        m = _ROUTE.match(path)
        if m is None or m.group("account") != self.account_sid:
            raise self._not_found(path)
        rest = m.group("rest")
        one = {k: v[0] for k, v in form.items() if v}
        locked, synced = self._locked, self._synced
        # Handlers that call the backend do their own locking (never around a backend call).
        routes: list[tuple[str, str, Any]] = [
            ("POST", r"/Calls\.json", locked(lambda: self._post_call(form, one))),
            ("GET", r"/Calls\.json", locked(lambda: (200, self._list_calls(query, path)))),
            ("GET", r"/Calls/(CA[0-9a-fA-F]{32})\.json", locked(lambda s: (200, self._call_json(self._call(s, path))))),
            ("POST", r"/Calls/(CA[0-9a-fA-F]{32})\.json", lambda s: (200, self._post_call_update(s, path, form, one))),
            ("POST", r"/Messages\.json", locked(lambda: (201, self._message_json(self._create_message(one))))),
            ("GET", r"/Messages\.json", locked(lambda: (200, self._page("messages", [self._message_json(x) for x in self.messages.values()], path)))),
            ("GET", r"/Messages/(SM[0-9a-fA-F]{32})\.json", locked(lambda s: (200, self._message_json(self._message(s, path))))),
            ("POST", r"/Queues\.json", lambda: (201, self._post_queue(one))),
            ("GET", r"/Queues\.json", synced(lambda: (200, self._page("queues", [self._queue_json(q) for q in self.queues.values()], path)))),
            ("GET", r"/Queues/(QU[0-9a-fA-F]{32})\.json", synced(lambda s: (200, self._queue_json(self._queue(s, path))))),
            ("GET", r"/Queues/(QU[0-9a-fA-F]{32})/Members\.json", synced(lambda s: (200, self._list_members(self._queue(s, path), path)))),
            ("GET", r"/Queues/(QU[0-9a-fA-F]{32})/Members/(Front|CA[0-9a-fA-F]{32})\.json", synced(lambda q, c: (200, self._member(q, c, path, None)))),
            ("POST", r"/Queues/(QU[0-9a-fA-F]{32})/Members/(Front|CA[0-9a-fA-F]{32})\.json", lambda q, c: (200, self._dequeue(q, c, path, one))),
        ]
        path_matched = False
        for verb, pattern, handler in routes:
            rm = re.fullmatch(pattern, rest)
            if rm is None:
                continue
            path_matched = True
            if verb == method:
                result = handler(*rm.groups())
                return result if len(result) == 3 else (*result, None)
        if path_matched:
            raise ApiError(405, 20004, "Method not allowed")
        raise self._not_found(path)

    @staticmethod
    def _not_found(path: str) -> ApiError:
        return ApiError(404, 20404, f"The requested resource {path} was not found")

    def _prefix(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}"

    def _page(self, key: str, items: list[dict], path: str) -> dict:
        return {
            key: items,
            "end": max(len(items) - 1, 0),
            "first_page_uri": f"{path}?PageSize=50&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": None,
            "start": 0,
            "uri": f"{path}?PageSize=50&Page=0",
        }

    # calls

    def _call(self, sid: str, path: str) -> FakeCall:
        call = self.calls.get(sid)
        if call is None:
            raise self._not_found(path)
        return call

    def _create_call(self, form: dict, one: dict) -> FakeCall:
        to, from_ = one.get("To"), one.get("From")
        if not to:
            raise ApiError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise ApiError(400, 21213, "No 'From' number is specified")
        if not _is_phone_or_client(to):
            raise ApiError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not _is_phone_or_client(from_):
            raise ApiError(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        if not one.get("Url") and not one.get("Twiml") and not one.get("ApplicationSid"):
            raise ApiError(400, 21205, "Url parameter is required.")
        if self.backend is not None and not one.get("Url"):
            raise ApiError(400, 21205, "Url parameter is required (the telephony backend runs "
                                       "no Twiml or ApplicationSid calls).")
        timeout = one.get("Timeout")
        call = FakeCall(
            sid=_sid("CA"), to=to, from_=from_, url=one.get("Url"),
            method=one.get("Method") or "POST", twiml=one.get("Twiml"),
            status_callback=one.get("StatusCallback"),
            status_callback_event=list(form.get("StatusCallbackEvent", [])),
            timeout=int(timeout) if timeout and timeout.isdigit() else None,
        )
        self.calls[call.sid] = call
        return call

    def _post_call(self, form: dict, one: dict) -> tuple[int, dict, Optional[Callable[[], None]]]:
        """Create a call; with a backend, placing it is the work done after answering."""
        call = self._create_call(form, one)
        payload = self._call_json(call)
        backend = self.backend
        if backend is None:
            return 201, payload, None
        url = call.url
        assert url is not None  # _create_call requires Url when there is a backend
        return 201, payload, lambda: backend.create_call(
            call.sid, call.to, call.from_, url, call.method, call.status_callback,
            one.get("StatusCallbackMethod") or "POST", call.status_callback_event or ["completed"],
            call.timeout or 60)

    def _post_call_update(self, sid: str, path: str, form: dict, one: dict) -> dict:
        with self._lock:
            call = self._update_call(self._call(sid, path), form, one)
            if self.backend is None:
                return self._call_json(call)
        self._ask_backend(self.backend.update_call, sid, url=one.get("Url"),
                          method=one.get("Method") or "POST", twiml=one.get("Twiml"),
                          status=one.get("Status"))
        with self._lock:
            return self._call_json(call)

    def _update_call(self, call: FakeCall, form: dict, one: dict) -> FakeCall:
        status = one.get("Status")
        if status is not None and status not in ("completed", "canceled"):
            raise ApiError(400, 20001, f"Invalid Status: {status}")
        redirect = one.get("Url") or one.get("Twiml")
        if redirect and call.status in _ENDED:
            raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
        call.updates.append(form)
        if one.get("Url"):
            call.url, call.twiml = one["Url"], None
            call.method = one.get("Method") or "POST"
        elif one.get("Twiml"):
            call.twiml, call.url = one["Twiml"], None
        if one.get("StatusCallback"):
            call.status_callback = one["StatusCallback"]
        if self.backend is None:  # a backend reports the status the call ends up with (track_call)
            if status == "completed" and call.status not in _ENDED:
                call.status = "completed"
            elif status == "canceled" and call.status in ("queued", "ringing"):
                call.status = "canceled"
        call.date_updated = time.time()
        return call

    def _list_calls(self, query: dict, path: str) -> dict:
        calls = list(self.calls.values())
        for param, attr in (("To", "to"), ("From", "from_"), ("Status", "status")):
            if query.get(param):
                calls = [c for c in calls if getattr(c, attr) == query[param][0]]
        return self._page("calls", [self._call_json(c) for c in calls], path)

    def _call_json(self, call: FakeCall) -> dict:
        uri = f"{self._prefix()}/Calls/{call.sid}.json"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(call.date_created),
            "date_updated": _rfc2822(call.date_updated),
            "direction": call.direction,
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": call.from_,
            "from_formatted": call.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": call.sid,
            "start_time": None,
            "status": call.status,
            "subresource_uris": {
                "notifications": uri.replace(".json", "/Notifications.json"),
                "recordings": uri.replace(".json", "/Recordings.json"),
            },
            "to": call.to,
            "to_formatted": call.to,
            "trunk_sid": None,
            "uri": uri,
        }

    # messages

    def _message(self, sid: str, path: str) -> FakeMessage:
        msg = self.messages.get(sid)
        if msg is None:
            raise self._not_found(path)
        return msg

    def _create_message(self, one: dict) -> FakeMessage:
        to, from_ = one.get("To"), one.get("From") or one.get("MessagingServiceSid")
        if not to:
            raise ApiError(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            raise ApiError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not from_:
            raise ApiError(400, 21603, "A 'From' phone number is required.")
        if not one.get("Body") and not one.get("MediaUrl"):
            raise ApiError(400, 21602, "Message body is required.")
        msg = FakeMessage(sid=_sid("SM"), to=to, from_=from_, body=one.get("Body", ""),
                          status_callback=one.get("StatusCallback"))
        self.messages[msg.sid] = msg
        return msg

    def _message_json(self, msg: FakeMessage) -> dict:
        uri = f"{self._prefix()}/Messages/{msg.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": msg.body,
            "date_created": _rfc2822(msg.date_created),
            "date_sent": None,
            "date_updated": _rfc2822(msg.date_created),
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": msg.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": msg.sid,
            "status": msg.status,
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": msg.to,
            "uri": uri,
        }

    # queues

    def _find_queue(self, key: str) -> Optional[FakeQueue]:
        if key in self.queues:
            return self.queues[key]
        return next((q for q in self.queues.values() if q.friendly_name == key), None)

    def _queue(self, sid: str, path: str) -> FakeQueue:
        q = self.queues.get(sid)
        if q is None:
            raise self._not_found(path)
        return q

    def _create_queue(self, one: dict) -> FakeQueue:
        name = one.get("FriendlyName")
        if not name:
            raise ApiError(400, 20001, "Missing required parameter FriendlyName in the post body")
        if self._find_queue(name) is not None:
            raise ApiError(400, 22003, f"A queue with the friendly name {name} already exists")
        max_size = one.get("MaxSize", "100")
        if not max_size.isdigit() or not 1 <= int(max_size) <= 5000:
            raise ApiError(400, 20001, f"Invalid MaxSize: {max_size}")
        q = FakeQueue(sid=_sid("QU"), friendly_name=name, max_size=int(max_size))
        self.queues[q.sid] = q
        return q

    def _post_queue(self, one: dict) -> dict:
        self._sync_queues()  # a name the backend already uses is taken
        with self._lock:
            q = self._create_queue(one)
            payload = self._queue_json(q)
        if self.backend is not None:
            self._ask_backend(self.backend.add_queue, q.friendly_name, q.sid, q.max_size)
        return payload

    def _sync_queues(self) -> None:
        """Mirror the backend's queues in :attr:`queues`: same sids, members in position order."""
        backend = self.backend
        if backend is None:
            return
        snapshot = [(name, sid, max_size, self._ask_backend(backend.queue_members, name))
                    for name, sid, max_size in self._ask_backend(backend.queues)]
        with self._lock:
            for name, sid, max_size, members in snapshot:
                q = self._find_queue(name)
                if q is None:
                    q = self.queues[sid] = FakeQueue(sid=sid, friendly_name=name, max_size=max_size)
                q.members = [(call_sid, enqueued)
                             for call_sid, enqueued, _ in sorted(members, key=lambda m: m[2])]

    def _queue_json(self, q: FakeQueue) -> dict:
        now = time.time()
        waits = [now - t for _, t in q.members]
        uri = f"{self._prefix()}/Queues/{q.sid}.json"
        return {
            "account_sid": self.account_sid,
            "average_wait_time": int(sum(waits) / len(waits)) if waits else 0,
            "current_size": len(q.members),
            "date_created": _rfc2822(q.date_created),
            "date_updated": _rfc2822(q.date_created),
            "friendly_name": q.friendly_name,
            "max_size": q.max_size,
            "sid": q.sid,
            "subresource_uris": {"members": uri.replace(".json", "/Members.json")},
            "uri": uri,
        }

    def _member_json(self, q: FakeQueue, call_sid: str, enqueued: float, position: int) -> dict:
        return {
            "call_sid": call_sid,
            "date_enqueued": _rfc2822(enqueued),
            "position": position,
            "queue_sid": q.sid,
            "uri": f"{self._prefix()}/Queues/{q.sid}/Members/{call_sid}.json",
            "wait_time": int(time.time() - enqueued),
        }

    def _list_members(self, q: FakeQueue, path: str) -> dict:
        return self._page("queue_members", [
            self._member_json(q, sid, t, i + 1) for i, (sid, t) in enumerate(q.members)], path)

    def _member(self, queue_sid: str, which: str, path: str, dequeue: Optional[dict]) -> dict:
        q = self._queue(queue_sid, path)
        index = 0 if which == "Front" else next(
            (i for i, (sid, _) in enumerate(q.members) if sid == which), None)
        if index is None or index >= len(q.members):
            raise self._not_found(path)
        call_sid, enqueued = q.members[index]
        payload = self._member_json(q, call_sid, enqueued, index + 1)
        if dequeue is not None:
            url = dequeue.get("Url")
            if not url:
                raise ApiError(400, 20001, "Missing required parameter Url in the post body")
            del q.members[index]
            self._redirected(q, call_sid, url, dequeue.get("Method") or "POST")
        return payload

    def _dequeue(self, queue_sid: str, which: str, path: str, one: dict) -> dict:
        """Members POST: the member leaves the queue, its call is redirected to ``Url``."""
        backend = self.backend
        if backend is None:
            with self._lock:
                return self._member(queue_sid, which, path, one)
        self._sync_queues()
        with self._lock:
            q = self._queue(queue_sid, path)
            url, method = one.get("Url"), one.get("Method") or "POST"
            if not url:
                raise ApiError(400, 20001, "Missing required parameter Url in the post body")
            before = {sid: (enqueued, i + 1) for i, (sid, enqueued) in enumerate(q.members)}
        call_sid = self._ask_backend(backend.dequeue, q.friendly_name, which, url, method)
        if call_sid is None:
            raise self._not_found(path)
        # A member that joined after the snapshot (a race): reported as first, enqueued now.
        enqueued, position = before.get(call_sid, (time.time(), 1))
        self._sync_queues()
        with self._lock:
            self._redirected(q, call_sid, url, method)
            return self._member_json(q, call_sid, enqueued, position)

    def _redirected(self, q: FakeQueue, call_sid: str, url: str, method: str) -> None:
        q.dequeued.append({"call_sid": call_sid, "url": url, "method": method})
        call = self.calls.get(call_sid)
        if call is not None:
            call.url, call.method, call.twiml = url, method, None
            call.date_updated = time.time()


class _Handler(BaseHTTPRequestHandler):
    fake: FakeTwilioApi
    protocol_version = "HTTP/1.1"
    server_version = "FakeTwilio/1.0"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, after = self.fake._handle(self.command, self.path, self.headers, body)
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True
        finally:
            if after is not None:  # answered (or given up on): Twilio still places the call
                self.fake._run_background(after)

    do_GET = do_POST = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


# -- pointing the real client at the fake ----------------------------------------------------

def fake_client(server: FakeTwilioApi, timeout: float = DEFAULT_TIMEOUT,
                auth_token: Optional[str] = None) -> Client:
    """A real ``twilio.rest.Client`` whose requests go to ``server`` (``timeout`` seconds each).

    ``auth_token`` overrides the server's token (to test a wrong one). Edge/region
    settings are pinned off so ``TWILIO_EDGE``/``TWILIO_REGION`` in the environment
    cannot change the host.
    """
    return rest_client(server.account_sid, server.auth_token if auth_token is None else auth_token,
                       timeout, api_base=server.base_url)
