"""A faithful, virtual-time simulation of Twilio's side of a voice call.

The simulator plays the part of Twilio: it POSTs signed, form-encoded webhooks
to the application (through a :mod:`~ivr.simulator.transport`), interprets the
TwiML it gets back document by document, and waits for the caller (a test or
the terminal phone) whenever Twilio itself would wait: at a ``<Gather>`` and in
an ``<Enqueue>`` wait loop, and at a ``<Record>``. Silence, pauses, queue
waits and speech cost no real time: they advance a :class:`VirtualClock`.

Behaviour follows Twilio's documentation (TwiML <Gather>, <Record>, <Enqueue>, <Leave>,
<Play>, <Pause>, <Redirect>, <Dial>, <Reject>; "TwiML for Programmable Voice"
request parameters, status callbacks, fallback URLs). Points the documentation
leaves open are marked "unverified" where they are modelled.

Typical use::

    sim = TwilioSimulator(WsgiTransport(app), "https://ivr.example.org", auth_token)
    call = sim.place_call("+8613800000000", "+862100000000")
    call.last_texts()          # what the caller just heard
    call.press("1")            # DTMF to the pending <Gather>
    call.silence()             # let the Gather time out
    call.speak("我要查一查")    # the caller talks to a pending <Record>
    call.hangup()

Recordings: ``speak()`` stores the caller's words as a transcript WAV
(:func:`ivr.hearing.transcript_wav.write_transcript_wav`) and posts the
``<Record>`` action with ``RecordingUrl``/``RecordingSid``/``RecordingDuration``.
Give the simulator a started :class:`~ivr.simulator.recordings.RecordingServer`
(``recording_server=``) and the app can fetch ``RecordingUrl + ".wav"`` with
Basic auth. Without one, RecordingUrl points at ``https://api.twilio.com`` and
the bytes exist only in memory (:attr:`SimCall.recordings`): nothing can fetch them.

Outbound calls: :meth:`TwilioSimulator.place_outbound_call` plays a REST
``calls.create``: status callbacks for the requested events (initiated, ringing,
answered, completed) and, when the called phone answers, the ``Url`` TwiML with
``Direction=outbound-api``. :mod:`ivr.simulator.cloud` drives it from the fake
REST API. ``<Dial>`` outcomes per dialled number come from
:attr:`TwilioSimulator.dial_outcomes`; every Dial is listed in :attr:`SimCall.dials`.
Unverified details: ``CallStatus=initiated`` on the initiated callback, busy and
failed calls skipping the ringing callback, the outbound ring time before an
answer (``ring_seconds``), and how a Dial with several numbers combines their
outcomes (any completed wins, then no-answer, busy, failed, canceled).
"""

from __future__ import annotations

import email.utils
import io
import random
import wave
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

from ivr.hearing.transcript_wav import write_transcript_wav

from .connect_verb import ConnectVerb
from .media_stream import Echo, StreamLeg, StreamLink
from .recordings import RecordingServer
from .transport import HttpResponse, Transport

__all__ = [
    "APPLICATION_ERROR_TEXT",
    "DEFAULT_ACCOUNT_SID",
    "DIAL_OUTCOMES",
    "DEFAULT_HOLD_MUSIC_URL",
    "DEFAULT_RECORDINGS_BASE",
    "EMPTY_GATHER_PARAMS",
    "Heard",
    "OUTBOUND_ANSWERS",
    "PendingGather",
    "PendingRecord",
    "SimCall",
    "SimDial",
    "SimError",
    "SimQueue",
    "SimRecording",
    "SimRequest",
    "SimulatorError",
    "TwilioSimulator",
    "VirtualClock",
    "estimate_speech_seconds",
    "text_twin_url",
]

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
APPLICATION_ERROR_TEXT = "We are sorry, an application error has occurred. Goodbye."
# Enqueue without waitUrl: Twilio GETs its default classical playlist.
DEFAULT_HOLD_MUSIC_URL = "https://s3.amazonaws.com/com.twilio.sounds.music/index.xml"
# What the simulator posts when a Gather ends without input and actionOnEmptyResult="true".
# Twilio's documentation does not list the parameters of that request (unverified):
# an empty Digits and an empty FinishedOnKey are sent.
EMPTY_GATHER_PARAMS = {"Digits": "", "FinishedOnKey": ""}

# RecordingUrl base without a RecordingServer: Twilio's API host (nothing can fetch from it here).
DEFAULT_RECORDINGS_BASE = "https://api.twilio.com"
RECORD_DEFAULT_FINISH_KEYS = "1234567890*#"
RECORD_DEFAULT_MAX_LENGTH = 3600
BEEP_SECONDS = 0.5              # length of <Record>'s beep (unverified; short)
# <Record> attributes whose behaviour is not simulated: raise rather than ignore them.
RECORD_UNSUPPORTED_ATTRIBUTES = ("recordingStatusCallback", "recordingStatusCallbackEvent",
                                 "recordingStatusCallbackMethod", "transcribeCallback")
WARN_RECORDING_SILENT = 16102   # Twilio warning: recording is silent, not stored

DTMF_KEYS = "0123456789*#"
SUPPORTED_VERBS = {
    "Say", "Play", "Pause", "Gather", "Record", "Redirect", "Hangup", "Reject", "Enqueue", "Leave",
    "Dial", "Connect",
}
UNSUPPORTED_VERBS = {"Start", "Stop", "Pay", "Refer", "Echo", "Sms", "Message"}
WAIT_URL_VERBS = {"Play", "Say", "Pause", "Hangup", "Redirect", "Leave", "Gather"}
QUEUE_URL_VERBS = {"Play", "Say", "Pause", "Redirect"}   # <Dial><Queue url=..> document
GATHER_NESTABLE = {"Say", "Play", "Pause"}
DIAL_NOUNS = {"Number", "Client", "Sip", "Queue", "Conference", "Application"}
WEBHOOK_KINDS_EXCLUDED_FROM_REPLAY = {"media"}

# How the called phone responds to an outbound call (place_outbound_call answer=).
OUTBOUND_ANSWERS = ("answered", "no-answer", "busy", "failed")
# DialCallStatus a dialled number can end with, in the order a multi-number Dial reports them.
DIAL_OUTCOMES = ("completed", "no-answer", "busy", "failed", "canceled")
DIAL_DEFAULT_TIMEOUT = 30       # <Dial timeout>: seconds a number rings before no-answer

# Twilio error codes used in SimError.error_code / fallback ErrorCode.
ERR_HTTP_RETRIEVAL = 11200      # non-2xx, bad response
ERR_HTTP_CONNECTION = 11205     # could not connect / timeout
ERR_TOO_MANY_REDIRECTS = 11215
ERR_DOCUMENT_PARSE = 12100      # not well-formed XML
ERR_ROOT_NOT_RESPONSE = 12102
ERR_SCHEMA = 12200              # unknown verb / bad nesting / bad attribute (code unverified)


class SimulatorError(Exception):
    """Bad TwiML (in strict mode), an unsupported feature, or a runaway flow.

    ``call`` is the :class:`SimCall` concerned, when there is one (useful when
    :meth:`TwilioSimulator.place_call` itself raises).
    """

    def __init__(self, message: str, call: "SimCall | None" = None):
        super().__init__(message)
        self.call = call


def _hex32(rng: random.Random) -> str:
    return "%032x" % rng.getrandbits(128)


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x2E80 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF
        or 0x20000 <= code <= 0x2FA1F
    )


def estimate_speech_seconds(text: str | None) -> float:
    """Rough spoken duration: 0.25 s per CJK character, 0.07 s per other character."""
    if not text:
        return 0.5
    stripped = "".join(text.split())
    cjk = sum(1 for ch in stripped if _is_cjk(ch))
    other = len(stripped) - cjk
    return max(0.5, 0.25 * cjk + 0.07 * other)


def text_twin_url(url: str) -> str | None:
    """The URL of the text twin of a prompt: ``.wav``/``.mp3`` replaced by ``.txt``."""
    parts = urlsplit(url)
    path = parts.path
    for ext in (".wav", ".mp3"):
        if path.lower().endswith(ext):
            return urlunsplit(parts._replace(path=path[: -len(ext)] + ".txt"))
    return None


def _sorted_query_url(url: str) -> str:
    """``url`` with its query parameters sorted by name, raw bytes kept.

    Twilio does this to action/redirect URLs before requesting them while it
    signs the URL as written (twilio/twilio-php#790, twilio/twilio-node#1079).
    """
    parts = urlsplit(url)
    if not parts.query:
        return url
    pieces = parts.query.split("&")
    pieces.sort(key=lambda piece: piece.split("=", 1)[0])
    return urlunsplit(parts._replace(query="&".join(pieces)))


def _append_query(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    sep = "&" if urlsplit(url).query else ("" if url.endswith("?") else "?")
    return url + sep + urlencode(params)


class VirtualClock:
    """A clock that only moves when told to. Times are aware UTC datetimes."""

    def __init__(self, start: datetime | None = None):
        if start is None:
            start = datetime.now(timezone.utc).replace(microsecond=0)
        elif start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        self._start = start.astimezone(timezone.utc)
        self._elapsed = 0.0

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a virtual clock cannot go backwards")
        self._elapsed += float(seconds)

    @property
    def elapsed(self) -> float:
        """Seconds since the clock started."""
        return self._elapsed

    def __repr__(self) -> str:
        return f"VirtualClock({self.now().isoformat()})"


@dataclass
class Heard:
    """One thing the caller heard (or one event on the line)."""

    verb: str                       # "say", "play", "dial", "bridge", "application-error"
    text: Optional[str]
    url: Optional[str] = None
    language: Optional[str] = None
    voice: Optional[str] = None
    loop: int = 1                   # the loop attribute as given (0 = "forever")
    loop_forever: bool = False      # loop="0": Twilio repeats until hangup; heard once here
    in_gather: bool = False         # nested in a <Gather> (caller may barge in)
    at: float = 0.0                 # virtual seconds since the call started
    context: str = "main"           # "main", "wait" (queue hold document), "bridge"

    @property
    def display(self) -> str:
        if self.text is not None:
            return self.text
        if self.verb == "play":
            return f"[audio {self.url}]"
        return f"[{self.verb}]"


@dataclass
class SimRequest:
    """One HTTP request the simulator made, with its response."""

    kind: str                       # voice, gather_action, redirect, wait, enqueue_action, ...
    method: str
    url: str                        # URL as requested (after Twilio's query re-sorting)
    params: dict[str, str]
    headers: dict[str, str]
    status: int = 0
    body: bytes = b""
    signed_url: str = ""            # URL the signature was computed over
    response_headers: dict[str, str] = field(default_factory=dict)
    target_url: str = ""            # URL as written in the TwiML (resolved), before re-sorting

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class SimError:
    """A failure Twilio would log in its debugger."""

    kind: str                       # "http", "connection", "parse", "schema", "plain_text", ...
    url: str
    error_code: int
    detail: str
    status: int | None = None
    body: str = ""


@dataclass
class PendingGather:
    """The <Gather> currently waiting for the caller."""

    action: str                     # absolute URL the result goes to
    method: str
    timeout: int
    num_digits: int | None
    finish_on_key: str              # "" = disabled
    action_on_empty_result: bool
    input: str
    attributes: dict[str, str]      # raw attributes as written
    digits: str = ""                # keys collected so far
    context: str = "main"

    def hint(self) -> str:
        parts = []
        if self.num_digits:
            parts.append(f"{self.num_digits} key{'s' if self.num_digits > 1 else ''}")
        else:
            parts.append("keys")
        if self.finish_on_key:
            parts.append(f"end with {self.finish_on_key}")
        parts.append(f"timeout {self.timeout}s")
        if self.digits:
            parts.append(f"so far: {self.digits}")
        return ", ".join(parts)


@dataclass
class PendingRecord:
    """The <Record> currently waiting for the caller (to speak, press a key or stay silent)."""

    action: str                     # absolute URL the result goes to
    method: str
    timeout: int                    # seconds of silence that end the recording
    max_length: int                 # seconds
    finish_on_key: str              # keys that end the recording ("" = none)
    play_beep: bool
    trim: str                       # "trim-silence" or "do-not-trim"
    attributes: dict[str, str]      # raw attributes as written
    started_at: float = 0.0         # virtual seconds since the call started (after the beep)
    context: str = "main"

    def hint(self) -> str:
        parts = ['speak: "words or say words']
        if self.finish_on_key:
            parts.append(f"keys {self.finish_on_key} end it")
        parts.append(f"silence ends it after {self.timeout}s")
        parts.append(f"max {self.max_length}s")
        return ", ".join(parts)


@dataclass
class SimRecording:
    """A recording made at a <Record> (what Twilio would store)."""

    sid: str                        # "RE" + 32 hex digits
    url: str                        # RecordingUrl as sent to the app (no extension)
    call_sid: str
    duration: float                 # seconds of audio recorded (after trimming)
    data: bytes                     # the media (WAV)
    text: Optional[str]             # what the caller said (transcript), if given as text
    ended_by: str                   # "silence", "key", "max-length", "hangup"
    digits: Optional[str] = None    # the Digits parameter sent ("#", "hangup"), if any
    at: float = 0.0                 # virtual seconds since the call started, when it ended
    posted: bool = False            # the action URL was requested with it

    @property
    def duration_param(self) -> str:
        """RecordingDuration as posted: whole seconds (a non-empty recording counts at least 1)."""
        if self.duration <= 0:
            return "0"
        return str(max(1, int(self.duration + 0.5)))

    @property
    def wav_url(self) -> str:
        return self.url + ".wav"


@dataclass
class SimDial:
    """One <Dial> a call made: whom it rang, as whom, and how it ended."""

    targets: list[str]              # numbers; other nouns as "client:alice", "queue:helpers", ...
    caller_id: Optional[str]        # the callerId attribute as written (None: not given)
    timeout: int                    # seconds the numbers ring before no-answer
    status: str                     # DialCallStatus: completed, no-answer, busy, failed, canceled
    duration: int                   # DialCallDuration (0 unless completed)
    call_sid: str                   # DialCallSid of the dialled leg
    action: Optional[str]           # absolute action URL (None: the document goes on)
    at: float = 0.0                 # virtual seconds since the call started, when dialling began


@dataclass
class _Frame:
    url: str
    verbs: list[ET.Element]
    context: str = "main"           # "main", "wait", "bridge"
    index: int = 0

    @property
    def done(self) -> bool:
        return self.index >= len(self.verbs)


@dataclass
class _Membership:
    queue: "SimQueue"
    action_url: str | None
    method: str
    wait_url: str | None            # None: Twilio's default music; "": silence
    wait_method: str
    enqueued_at: float
    resume: _Frame                  # the document containing <Enqueue>, positioned after it
    queue_time_at_bridge: float = 0.0


class SimQueue:
    """An in-memory Twilio queue."""

    def __init__(self, name: str, sid: str, max_size: int):
        self.name = name
        self.sid = sid
        self.max_size = max_size
        self.members: list[SimCall] = []

    @property
    def size(self) -> int:
        return len(self.members)

    def position(self, call: "SimCall") -> int:
        return self.members.index(call) + 1

    def __repr__(self) -> str:
        return f"SimQueue({self.name!r}, size={self.size}/{self.max_size})"


class TwilioSimulator:
    """Twilio's side of the voice protocol, against one application.

    :param transport: carries requests to the application.
    :param public_base_url: the public base URL Twilio is configured with
        (``https://host[/prefix]``); paths are appended to it, and signatures are
        computed over the resulting absolute URLs.
    :param auth_token: the account Auth Token used to sign every request.
    :param strict: bad TwiML (malformed XML, unknown verb, verb not allowed
        where it stands, invalid Gather input) that no fallback URL recovers
        raises :class:`SimulatorError` after being recorded and the call ended.
        With ``strict=False`` the call ends like Twilio's (application error).
    :param sort_query_params: reproduce Twilio re-sorting the query string of
        URLs it requests while signing them as written.
    :param max_documents: bound on TwiML documents fetched per call.
    :param dial_duration: virtual seconds a ``<Dial>`` stays connected.
    :param dial_ends_call: after a ``<Dial>`` without ``action`` the caller hangs
        up (True) or the document continues, as when the called party hangs up.
    :param recording_server: a started :class:`RecordingServer` (same account SID)
        that stores and serves the recordings ``<Record>`` makes; RecordingUrl
        starts with its ``base_url``. Without one RecordingUrl starts with
        ``https://api.twilio.com`` and the bytes stay in memory only
        (:attr:`SimCall.recordings`, :attr:`recordings`): the app cannot fetch them.
    :param post_empty_recordings: Twilio's documentation says an *empty* recording
        (a key or a hang-up before the caller said anything) does not request the
        action URL (the call goes on with the next verb). Set True to post it
        anyway (RecordingDuration "0"), should real Twilio turn out to do that.
    :param ring_seconds: virtual seconds an outbound call rings before the
        called phone answers (a modelling choice; Twilio reports no such figure).

    :attr:`dial_outcomes` maps a dialled number (or ``client:name`` …) to how
    it answers a ``<Dial>``: "completed" (the default), "no-answer", "busy",
    "failed" or "canceled". :attr:`on_call_status` is called with a
    :class:`SimCall` whenever its REST-visible :attr:`SimCall.status` changes.
    """

    def __init__(
        self,
        transport: Transport,
        public_base_url: str,
        auth_token: str,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        clock: VirtualClock | None = None,
        queue_max_size: int = 100,
        *,
        strict: bool = True,
        sort_query_params: bool = True,
        max_documents: int = 500,
        dial_duration: float = 60.0,
        dial_ends_call: bool = True,
        default_play_seconds: float = 3.0,
        default_hold_seconds: float = 30.0,
        seed: int | None = None,
        recording_server: RecordingServer | None = None,
        post_empty_recordings: bool = False,
        ring_seconds: float = 5.0,
        stream_link: StreamLink | None = None,
        stream_echo: Echo | None = None,
        audio_durations: bool = False,
    ):
        self.transport = transport
        self.public_base_url = public_base_url.rstrip("/")
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.clock = clock or VirtualClock()
        self.queue_max_size = queue_max_size
        self.strict = strict
        self.sort_query_params = sort_query_params
        self.max_documents = max_documents
        self.dial_duration = dial_duration
        self.dial_ends_call = dial_ends_call
        self.default_play_seconds = default_play_seconds
        self.default_hold_seconds = default_hold_seconds
        self.validator = RequestValidator(auth_token)
        self.rng = random.Random(seed)
        self.queues: dict[str, SimQueue] = {}
        self.calls: list[SimCall] = []
        self._twin_cache: dict[str, Optional[str]] = {}
        if recording_server is not None and recording_server.account_sid != account_sid:
            raise ValueError(f"recording_server serves account {recording_server.account_sid}, "
                             f"the simulator is account {account_sid}")
        self.recording_server = recording_server
        self.post_empty_recordings = post_empty_recordings
        self.recordings: dict[str, SimRecording] = {}
        self.ring_seconds = ring_seconds
        self.stream_link = stream_link  # where <Connect><Stream> connects (media_stream.py)
        self.stream_echo = stream_echo  # callers on a speakerphone: the prompt echoes back
        self.stream_signature: str | None = None  # a forged X-Twilio-Signature for upgrades
        # <Play> lasts as long as its audio (fetched, as Twilio fetches it) instead of an
        # estimate from its text twin: for timing calls as callers hear them (bench/call_times.py).
        self.audio_durations = audio_durations
        self._duration_cache: dict[str, float | None] = {}
        self.dial_outcomes: dict[str, str] = {}
        self.on_call_status: Callable[[SimCall], None] | None = None

    # -- helpers -------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        """Absolute URL for a path under the public base URL (absolute URLs pass through)."""
        if urlsplit(path_or_url).scheme:
            return path_or_url
        if not path_or_url.startswith("/"):
            path_or_url = "/" + path_or_url
        return self.public_base_url + path_or_url

    def sign(self, url: str, params: dict[str, str] | None = None) -> str:
        """The X-Twilio-Signature Twilio would send for a request to ``url`` with ``params``."""
        return self.validator.compute_signature(url, params or {})

    def new_sid(self, prefix: str) -> str:
        return prefix + _hex32(self.rng)

    def recording_url(self, recording_sid: str) -> str:
        """The RecordingUrl for ``recording_sid`` (no extension, like Twilio's)."""
        if self.recording_server is not None:
            if not self.recording_server.running:
                raise SimulatorError("the recording server is not running: call its start() first")
            base = self.recording_server.base_url
        else:
            base = DEFAULT_RECORDINGS_BASE
        return f"{base}/{API_VERSION}/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    def queue(self, name: str) -> SimQueue:
        """The queue called ``name`` (created on demand, like <Enqueue> does)."""
        if name not in self.queues:
            self.queues[name] = SimQueue(name, self.new_sid("QU"), self.queue_max_size)
        return self.queues[name]

    # -- calls ---------------------------------------------------------------------------

    def place_call(
        self,
        from_: str,
        to: str,
        voice_path: str = "/twilio/voice",
        status_callback_path: str | None = "/twilio/status",
        fallback_path: str | None = None,
        *,
        voice_method: str = "POST",
        tamper_signature: bool = False,
        signature_override: str | None = None,
    ) -> "SimCall":
        """An inbound call from ``from_`` to ``to``: runs until the caller must act."""
        call = SimCall(
            self,
            from_=from_,
            to=to,
            voice_url=self.url(voice_path),
            voice_method=voice_method,
            status_callback_url=self.url(status_callback_path) if status_callback_path else None,
            fallback_url=self.url(fallback_path) if fallback_path else None,
            tamper_signature=tamper_signature,
            signature_override=signature_override,
        )
        self.calls.append(call)
        call._start()
        return call

    def place_outbound_call(
        self,
        to: str,
        from_: str,
        url: str,
        method: str = "POST",
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        status_callback_events: tuple[str, ...] | list[str] = ("completed",),
        timeout: int = 60,
        answer: str = "answered",
        call_sid: str | None = None,
    ) -> "SimCall":
        """A call Twilio places to ``to`` (REST ``calls.create``): runs until the callee must act.

        ``answer`` is how the called phone responds: "answered" (``url`` is
        requested with ``Direction=outbound-api`` and its TwiML runs), "no-answer"
        (it rings ``timeout`` virtual seconds), "busy" or "failed" (no TwiML is
        requested). Status callbacks go to ``status_callback`` for the requested
        events. ``call_sid`` lets a REST front end and the simulator share the sid.
        """
        if answer not in OUTBOUND_ANSWERS:
            raise ValueError(f"answer must be one of {OUTBOUND_ANSWERS}, got {answer!r}")
        call = SimCall(
            self,
            from_=from_,
            to=to,
            voice_url=self.url(url),
            voice_method=method,
            status_callback_url=self.url(status_callback) if status_callback else None,
            fallback_url=None,
            direction="outbound-api",
            call_sid=call_sid,
            status_callback_method=status_callback_method,
            status_callback_events=tuple(status_callback_events),
        )
        self.calls.append(call)
        call._dial_out(answer, timeout)
        return call

    def bridge_next(self, queue_name: str, url: str | None = None) -> "SimCall | None":
        """An operator takes the first caller of ``queue_name`` (like ``<Dial><Queue>``).

        ``url`` is the ``<Queue url=..>`` document played to the caller first.
        Returns the bridged call, or None if the queue is empty.
        """
        queue = self.queues.get(queue_name)
        if queue is None or not queue.members:
            return None
        call = queue.members[0]
        call.bridge(url=url)
        return call

    def active_calls(self) -> list["SimCall"]:
        return [c for c in self.calls if not c.ended]


class SimCall(ConnectVerb):
    """One simulated call: inbound (:meth:`TwilioSimulator.place_call`) or
    outbound (:meth:`TwilioSimulator.place_outbound_call`).

    :attr:`status` is the CallStatus Twilio's REST API would show (queued,
    initiated, ringing, in-progress, then completed, busy, no-answer or failed);
    :attr:`state` is the simulator's own finer state.
    """

    def __init__(
        self,
        sim: TwilioSimulator,
        *,
        from_: str,
        to: str,
        voice_url: str,
        voice_method: str = "POST",
        status_callback_url: str | None,
        fallback_url: str | None,
        tamper_signature: bool = False,
        signature_override: str | None = None,
        direction: str = "inbound",
        call_sid: str | None = None,
        status_callback_method: str = "POST",
        status_callback_events: tuple[str, ...] = ("completed",),
    ):
        self.sim = sim
        self.call_sid = call_sid or sim.new_sid("CA")
        self.direction = direction
        self.from_ = from_
        self.to = to
        self.voice_url = voice_url
        self.voice_method = voice_method.upper()
        self.status_callback_url = status_callback_url
        self.status_callback_method = status_callback_method
        self.status_callback_events = status_callback_events
        self.fallback_url = fallback_url
        self.tamper_signature = tamper_signature
        self.signature_override = signature_override

        self.heard: list[Heard] = []
        self.requests: list[SimRequest] = []
        self.errors: list[SimError] = []
        self.warnings: list[str] = []
        self.ignored_keys: list[str] = []
        self.recordings: list[SimRecording] = []
        self.dials: list[SimDial] = []
        self.state = "ringing"      # ringing, in-progress, queued, bridged, completed
        self.status = ""            # REST CallStatus, see _set_status
        self.ended_by: str | None = None
        self.final_status: str | None = None
        self.started_at = sim.clock.elapsed
        self.answered_at: float | None = None
        self.ended_at: float | None = None

        self._answered = False
        self._frame: _Frame | None = None
        self._gather: PendingGather | None = None
        self._gather_frame: _Frame | None = None
        self._record: PendingRecord | None = None
        self._record_frame: _Frame | None = None
        self._membership: _Membership | None = None
        self._bridge: _Membership | None = None
        self._documents = 0
        self._verbs_executed = 0
        self._input_mark = 0
        self._in_fallback = False
        self._stream: StreamLeg | None = None
        self._connect_action: tuple[str, str] | None = None
        self._callbacks_sent = 0    # SequenceNumber of the next status callback
        self._set_status("ringing" if direction == "inbound" else "queued")

    # -- public API ----------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.state == "completed"

    @property
    def pending_gather(self) -> PendingGather | None:
        """The <Gather> waiting for input, or None; on a Media Stream, the keys the service's
        current question takes, in <Gather>'s terms."""
        if self._stream is not None:
            progress = self.sim.stream_link.progress(self.call_sid) if self.sim.stream_link else None
            question = progress.question if progress is not None else None
            if question is None:
                return None
            return PendingGather(action="", method="", timeout=question["timeout"],
                                 num_digits=None if question["finish_on_key"] else question["num_digits"],
                                 finish_on_key=question["finish_on_key"], action_on_empty_result=True,
                                 input="dtmf speech", attributes={}, digits=question["digits"])
        return self._gather

    @property
    def stream(self) -> StreamLeg | None:
        """The Media Stream the call is on (<Connect><Stream>), or None."""
        return self._stream

    @property
    def pending_record(self) -> PendingRecord | None:
        """The <Record> waiting for the caller, or None."""
        return self._record

    @property
    def queue(self) -> SimQueue | None:
        return self._membership.queue if self._membership else None

    @property
    def queue_position(self) -> int | None:
        if self._membership is None:
            return None
        return self._membership.queue.position(self)

    @property
    def queue_time(self) -> float | None:
        """Virtual seconds spent so far in the current queue (None: not queued)."""
        if self._membership is None:
            return None
        return self.sim.clock.elapsed - self._membership.enqueued_at

    @property
    def duration(self) -> float:
        """Virtual seconds since the call started (until it ended)."""
        end = self.ended_at if self.ended_at is not None else self.sim.clock.elapsed
        return end - self.started_at

    @property
    def texts(self) -> list[str]:
        return [h.display for h in self.heard]

    def last_texts(self, n: int = 1) -> list[str]:
        """Display texts of the last ``n`` things heard."""
        return [h.display for h in self.heard[-n:]] if n > 0 else []

    def heard_since_last_input(self) -> list[str]:
        """Display texts heard since the last press/silence/wait/bridge call."""
        return [h.display for h in self.heard[self._input_mark:]]

    def press(self, keys: str) -> list[Heard]:
        """The caller presses ``keys`` (digits, * and #).

        Keys go to the pending <Gather>; keys left over after it completes go to
        the next one (type-ahead). Keys pressed while no Gather listens are
        dropped, as Twilio drops them, and noted in :attr:`ignored_keys`.
        While a <Record> waits, the first key of its finishOnKey ends the
        recording (nothing was said: an empty recording, see
        ``post_empty_recordings``); other keys are only tones in the recording
        (noted in :attr:`ignored_keys`). Returns what was heard as a result.
        """
        self._require_active()
        bad = [k for k in keys if k not in DTMF_KEYS]
        if bad:
            raise ValueError(f"not DTMF keys: {''.join(bad)!r}")
        mark = self._mark_input()
        if self._stream is not None:
            self._stream.press(keys)
            self._stream_step()
            return self.heard[mark:]
        for key in keys:
            if not self.ended and self._gather is None and self.state == "queued":
                self._advance_wait_loop()
            if not self.ended and self._record is not None:
                if key in self._record.finish_on_key:
                    self._record_finish(0.0, 0.0, None, None, "key", key)
                    self._run()
                else:
                    self.ignored_keys.append(key)
                continue
            if self.ended or self._gather is None:
                self.ignored_keys.append(key)
                continue
            self._key(key)
            self._run()
        return self.heard[mark:]

    def silence(self) -> list[Heard]:
        """The caller says and presses nothing: the pending <Gather> times out.

        At a <Record>: ``timeout`` seconds of silence pass; the recording is
        silent, Twilio does not store it (warning 16102) and does not request
        the action URL: the call goes on with the verb after <Record>.
        """
        self._require_active()
        mark = self._mark_input()
        if self._stream is not None:
            self._stream.silence()
            self._stream_step()
            return self.heard[mark:]
        if self._record is not None:
            self._record_silence()
            self._run()
            return self.heard[mark:]
        if self._gather is None and self.state == "queued":
            self._advance_wait_loop()
        if self._gather is None:
            raise self._error(f"no <Gather> or <Record> is waiting for input (call state {self.state}); "
                              "use wait(seconds) to let time pass")
        self._gather_timeout()
        self._run()
        return self.heard[mark:]

    def speak(self, text: str | None = None, *, audio: bytes | None = None,
              seconds: float | None = None, then: str | None = None) -> list[Heard]:
        """The caller speaks to the pending <Record>.

        The recording holds ``audio`` (WAV bytes) if given, else a transcript WAV
        carrying ``text`` (:func:`~ivr.hearing.transcript_wav.write_transcript_wav`),
        else plain silence-as-audio (indistinct speech). Speech lasts ``seconds``,
        else the WAV's own length (``audio`` without ``text``), else an estimate
        from ``text``; recording stops at ``maxLength`` (a transcript is then cut
        in proportion: the caller's last words are lost).

        ``then`` says how the recording ends:

        * ``None``: the caller falls silent; after ``timeout`` seconds Twilio
          ends the recording (time passes) and requests the action URL;
        * a key of ``finishOnKey``: the key ends it at once (``Digits=<key>``);
          a key not in finishOnKey is only a tone and silence ends it;
        * ``"hangup"``: the caller hangs up; the action URL is requested with
          ``Digits=hangup`` (its TwiML is not run) and the call ends.

        The action gets RecordingUrl (no extension), RecordingSid and
        RecordingDuration (whole seconds). Returns what was heard as a result.
        """
        self._require_active()
        if self._stream is not None:
            mark = self._mark_input()
            self._stream.say([text or ""], audio=audio)
            self._stream_step()
            return self.heard[mark:]
        if then is not None and then != "hangup" and (len(then) != 1 or then not in DTMF_KEYS):
            raise ValueError(f"then must be None, 'hangup' or one DTMF key, got {then!r}")
        if seconds is not None and seconds < 0:
            raise ValueError("seconds cannot be negative")
        record = self._record
        if record is None:
            raise self._error(f"no <Record> is waiting for the caller to speak (call state {self.state})")
        mark = self._mark_input()
        if seconds is not None:
            speech = float(seconds)
        elif audio is not None and text is None:
            speech = _wav_seconds(audio)
        else:
            speech = estimate_speech_seconds(text)
        max_length = float(record.max_length)
        if then is not None and then != "hangup" and then not in record.finish_on_key:
            self.ignored_keys.append(then)      # a tone in the recording; silence ends it
            then = None
        if speech >= max_length:
            if then is not None and then != "hangup":
                self.ignored_keys.append(then)  # pressed after maxLength ended the recording
            self._record_finish(max_length, max_length, text, audio, "max-length", None,
                                speech=speech)
            self._run()
            if then == "hangup" and not self.ended:
                self.hangup()
            return self.heard[mark:]
        if then == "hangup":
            self._record_finish(speech, speech, text, audio, "hangup", "hangup")
        elif then is not None:
            self._record_finish(speech, speech, text, audio, "key", then)
        else:
            elapsed = min(speech + record.timeout, max_length)
            recorded = speech if record.trim == "trim-silence" else elapsed
            self._record_finish(elapsed, recorded, text, audio, "silence", None)
        self._run()
        return self.heard[mark:]

    def wait(self, seconds: float) -> list[Heard]:
        """Let ``seconds`` of virtual time pass with the caller silent.

        In a queue the wait loop runs (waitUrl documents, one after another);
        a pending <Gather> times out (a <Record> ends silent) as often as the
        time allows; while bridged
        to an operator the conversation goes on.
        """
        self._require_active()
        mark = self._mark_input()
        clock = self.sim.clock
        deadline = clock.elapsed + float(seconds)
        if self._stream is not None:
            self._stream.wait(float(seconds))
            self._stream_step()
        guard = 0
        while not self.ended and clock.elapsed < deadline:
            guard += 1
            if guard > 100000:
                raise self._error("wait() made no progress")
            if self._gather is not None:
                self._gather_timeout()
                self._run(deadline)
                continue
            if self._record is not None:
                self._record_silence()
                self._run(deadline)
                continue
            if self.state == "bridged":
                clock.advance(deadline - clock.elapsed)
                break
            if self.state == "queued":
                before = clock.elapsed
                self._run(deadline)
                if clock.elapsed == before and self._gather is None and self.state == "queued":
                    # nothing consumed time (e.g. an empty wait document loop)
                    raise self._error("queue wait loop does not advance time")
                continue
            break
        return self.heard[mark:]

    def _advance_wait_loop(self) -> None:
        """In a queue between wait documents: let the loop go on to its next <Gather>.

        Twilio's wait loop never idles; the simulator parks a queued call at the
        end of a wait document. Input arriving there meets the next document:
        it runs (the rest of the current document, then at most one more) until
        a <Gather> listens.
        """
        for _ in range(2):      # the rest of the current document, then one whole new one
            if self._membership is None or self._gather is not None or self.ended:
                return
            if self._frame is None or self._frame.done:
                if self._membership.wait_url == "":
                    return
                self._frame = None
                self._request_wait_document()
                self._run()
                return
            self._run()

    def hangup(self) -> None:
        """The caller hangs up.

        During a <Record> the recording is empty (nothing was said): like any
        empty recording it is not posted unless ``post_empty_recordings``; then
        the action URL gets ``Digits=hangup``. Use ``speak(text, then="hangup")``
        for a caller who speaks and hangs up.
        """
        self._hang_up("caller_hangup")

    def complete(self) -> None:
        """Like REST ``calls(sid).update(status="completed")``: Twilio hangs up the call.

        Handled like a caller hang-up (a queued call's Enqueue action gets
        QueueResult=hangup: unverified for a REST hang-up); ``ended_by`` is
        "rest_completed".
        """
        self._hang_up("rest_completed")

    def _hang_up(self, reason: str) -> None:
        if self.ended:
            return
        self._mark_input()
        self._drop_stream()
        self._gather = None
        if self._record is not None:
            self._record_finish(0.0, 0.0, None, None, "hangup", "hangup", hangup_reason=reason)
            if self.ended:
                return
        if self._membership is not None:
            membership = self._leave_queue_membership()
            self._notify_dequeue("hangup", membership, call_status="completed")
        elif self._bridge is not None:
            membership, self._bridge = self._bridge, None
            self._notify_dequeue("bridged", membership, queue_time=membership.queue_time_at_bridge,
                                 call_status="completed")
        self._end(reason)

    def bridge(self, url: str | None = None) -> list[Heard]:
        """An operator dequeues this caller (``<Dial><Queue>``).

        ``url`` is the ``<Queue url=..>`` document played to the caller before
        the parties are connected (Play, Say, Pause, Redirect only).
        """
        self._require_active()
        if self._membership is None:
            raise self._error(f"call is not in a queue (state {self.state})")
        mark = self._mark_input()
        membership = self._leave_queue_membership()
        membership.queue_time_at_bridge = self.sim.clock.elapsed - membership.enqueued_at
        self._bridge = membership
        self._gather = None
        self._frame = None
        if url:
            self.state = "bridging"
            params = {
                "QueueSid": membership.queue.sid,
                "QueueTime": str(int(membership.queue_time_at_bridge)),
                "DequeingCallSid": self.sim.new_sid("CA"),
            }
            if self._goto("queue_url", self.sim.url(url), "POST", params, context="bridge"):
                self._run()
            if self.ended:
                return self.heard[mark:]
        self.state = "bridged"
        self._frame = None
        self._hear(Heard("bridge", "connected to an operator", context="bridge"))
        return self.heard[mark:]

    def end_bridge(self, talk_seconds: float = 0.0) -> list[Heard]:
        """The operator hangs up after ``talk_seconds``: the Enqueue action gets QueueResult=bridged."""
        self._require_active()
        if self.state != "bridged" or self._bridge is None:
            raise self._error(f"call is not bridged (state {self.state})")
        mark = self._mark_input()
        if talk_seconds:
            self.sim.clock.advance(talk_seconds)
        membership, self._bridge = self._bridge, None
        self.state = "in-progress"
        self._dequeued("bridged", membership, queue_time=membership.queue_time_at_bridge)
        self._run()
        return self.heard[mark:]

    def update_url(self, url: str, method: str = "POST") -> list[Heard]:
        """Like REST ``calls(sid).update(url=..)``: the call leaves whatever it does for ``url``.

        A queued call first has its Enqueue action requested with
        QueueResult=redirected (its TwiML is not used; ordering unverified).
        """
        mark = self._leave_for_update()
        if self._goto("redirect", self.sim.url(url), method, {}, context="main"):
            self._run()
        return self.heard[mark:]

    def update_twiml(self, twiml: str) -> list[Heard]:
        """Like REST ``calls(sid).update(twiml=..)``: the call leaves whatever it does for ``twiml``.

        Relative URLs in it resolve against the call's voice URL (unverified).
        """
        mark = self._leave_for_update()
        self._count_document()
        frame = self._document("inline TwiML", self.voice_url, twiml.encode("utf-8"), "text/xml",
                               None, "main")
        if frame is not None:
            self._frame = frame
            self._run()
        return self.heard[mark:]

    def _leave_for_update(self) -> int:
        """A REST update takes the call out of its queue, bridge, Gather or Record."""
        self._require_active()
        mark = self._mark_input()
        self._drop_stream()
        self._gather = None
        self._record = None             # a recording in progress is dropped (unverified)
        self._record_frame = None
        if self._membership is not None:
            membership = self._leave_queue_membership()
            self._notify_dequeue("redirected", membership)
        elif self._bridge is not None:
            membership, self._bridge = self._bridge, None
            self._notify_dequeue("redirected-from-bridged", membership,
                                 queue_time=membership.queue_time_at_bridge)
        self.state = "in-progress"
        self._frame = None
        return mark

    def replay_last_request(self) -> str:
        """Re-send the last webhook exactly (same URL, params, signature); returns the body.

        Models Twilio retrying a request: for idempotency tests. The response is
        recorded (kind "replay") but not interpreted.
        """
        for req in reversed(self.requests):
            if req.kind not in WEBHOOK_KINDS_EXCLUDED_FROM_REPLAY and req.kind != "replay":
                break
        else:
            raise self._error("no webhook request to replay")
        if req.method == "POST":
            response = self.sim.transport.post(req.url, dict(req.params), dict(req.headers))
        else:
            response = self.sim.transport.get(req.url, dict(req.headers))
        self.requests.append(SimRequest(
            kind="replay", method=req.method, url=req.url, params=dict(req.params),
            headers=dict(req.headers), status=response.status, body=response.body,
            signed_url=req.signed_url, response_headers=dict(response.headers),
        ))
        return response.text

    def transcript(self) -> str:
        """A readable log of the call (for assertion messages)."""
        lines = []
        for h in self.heard:
            lines.append(f"[{h.at:7.1f}s] {h.verb:>8}: {h.display}")
        for e in self.errors:
            lines.append(f"ERROR {e.error_code} {e.kind} {e.url}: {e.detail}")
        lines.append(f"state={self.state} ended_by={self.ended_by}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<SimCall {self.call_sid} {self.direction} {self.from_}->{self.to} state={self.state} "
                f"ended_by={self.ended_by}>")

    # -- request machinery ---------------------------------------------------------------

    def _base_params(self, call_status: str | None = None) -> dict[str, str]:
        status = call_status or ("in-progress" if self._answered else "ringing")
        return {
            "AccountSid": self.sim.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.call_sid,
            "CallStatus": status,
            "Called": self.to,
            "Caller": self.from_,
            "Direction": self.direction,
            "From": self.from_,
            "To": self.to,
        }

    def _signature(self, signed_url: str, params: dict[str, str]) -> str:
        if self.signature_override is not None:
            return self.signature_override
        signature = self.sim.sign(signed_url, params)
        if self.tamper_signature:
            signature = ("A" if signature[0] != "A" else "B") + signature[1:]
        return signature

    def _send(self, kind: str, url: str, method: str, params: dict[str, str]) -> tuple[SimRequest, HttpResponse | None]:
        """Send one signed request, following HTTP redirects like Twilio (max 10)."""
        method = (method or "POST").upper()
        if method not in ("GET", "POST"):
            method = "POST"
        current_url, current_method, current_params = url, method, dict(params)
        for hop in range(11):
            if current_method == "GET":
                signed_url = _append_query(current_url, current_params)
                wire_url = _append_query(
                    _sorted_query_url(current_url) if self.sim.sort_query_params else current_url,
                    current_params,
                )
                body_params: dict[str, str] = {}
            else:
                signed_url = current_url
                wire_url = _sorted_query_url(current_url) if self.sim.sort_query_params else current_url
                body_params = current_params
            headers = {
                "X-Twilio-Signature": self._signature(signed_url, body_params),
                "User-Agent": "TwilioProxy/1.1",
            }
            record = SimRequest(kind=kind if hop == 0 else f"{kind}+redirect", method=current_method,
                                url=wire_url, params=body_params, headers=headers,
                                signed_url=signed_url, target_url=current_url)
            self.requests.append(record)
            try:
                if current_method == "GET":
                    response = self.sim.transport.get(wire_url, headers)
                else:
                    response = self.sim.transport.post(wire_url, body_params, headers)
            except Exception as exc:  # noqa: BLE001 - only network-level failures are absorbed
                if not _is_network_error(exc):
                    raise
                record.status = 0
                record.body = repr(exc).encode()
                return record, None
            record.status = response.status
            record.body = response.body
            record.response_headers = dict(response.headers)
            location = response.header("Location")
            if response.status in (301, 302, 303, 307, 308) and location:
                current_url = urljoin(current_url, location)
                if response.status in (301, 302, 303):
                    current_method, current_params = "GET", {}
                continue
            return record, response
        record.status = -ERR_TOO_MANY_REDIRECTS
        return record, None

    def _count_document(self) -> None:
        self._documents += 1
        if self._documents > self.sim.max_documents:
            raise self._error(
                f"more than {self.sim.max_documents} TwiML documents in one call: runaway flow?"
                f"\n{self.transcript()}"
            )

    def _goto(self, kind: str, url: str, method: str, extra: dict[str, str], context: str) -> bool:
        """Request a TwiML document and make it the current frame. False if it failed."""
        self._count_document()
        frame = self._load(kind, url, method, extra, context)
        if frame is None:
            return False
        self._frame = frame
        return True

    def _load(self, kind: str, url: str, method: str, extra: dict[str, str], context: str) -> _Frame | None:
        params = self._base_params()
        params.update(extra)
        record, response = self._send(kind, url, method, params)
        requested = url
        url = record.target_url or url      # after HTTP redirects: the final document URL
        if response is None:
            if record.status == -ERR_TOO_MANY_REDIRECTS:
                return self._fail("redirects", requested, ERR_TOO_MANY_REDIRECTS, "more than 10 HTTP redirects", context)
            return self._fail("connection", requested, ERR_HTTP_CONNECTION, record.body.decode(errors="replace"), context)
        if not 200 <= response.status < 300:
            return self._fail("http", requested, ERR_HTTP_RETRIEVAL, f"HTTP {response.status}", context,
                              status=response.status, body=response.text)
        ctype = response.content_type
        if ctype.startswith("audio/"):
            # An audio response is played; on the main line Twilio then hangs up.
            verbs = [_element("Play", url)]
            if context == "main":
                verbs.append(_element("Hangup"))
            self._answer()
            return _Frame(url=url, verbs=verbs, context=context)
        return self._document(requested, url, response.body, ctype, response.status, context)

    def _document(self, requested: str, url: str, body: bytes, ctype: str, status: int | None,
                  context: str) -> _Frame | None:
        """Check a TwiML document like Twilio does before running it; a frame, or None."""
        text = body.decode("utf-8", errors="replace")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            if ctype == "text/plain" and context == "main":
                return self._plain_text(requested, text)
            return self._fail("parse", requested, ERR_DOCUMENT_PARSE, f"not well-formed XML: {exc}", context,
                              status=status, body=text, twiml=True)
        if root.tag != "Response":
            return self._fail("schema", requested, ERR_ROOT_NOT_RESPONSE,
                              f"root element is <{root.tag}>, not <Response>", context,
                              status=status, body=text, twiml=True)
        problem = _validate(root)
        if problem:
            return self._fail("schema", requested, ERR_SCHEMA, problem, context,
                              status=status, body=text, twiml=True)
        self._answer()
        return _Frame(url=url, verbs=list(root), context=context)

    def _plain_text(self, url: str, text: str) -> None:
        # Twilio reads a text/plain body that is not TwiML aloud, then hangs up.
        self.errors.append(SimError("plain_text", url, ERR_DOCUMENT_PARSE,
                                    "text/plain response read aloud", 200, text))
        self._hear(Heard("say", text.strip()))
        self._end("plain_text_response")
        if self.sim.strict:
            raise self._error(f"{url} answered text/plain that is not TwiML: {text[:200]!r}")
        return None

    def _fail(self, kind: str, url: str, code: int, detail: str, context: str, *,
              status: int | None = None, body: str = "", twiml: bool = False) -> _Frame | None:
        """Record a failure and do what Twilio does next. Returns a frame to run, or None."""
        self.errors.append(SimError(kind, url, code, detail, status, body))
        if context == "wait" and self._membership is not None:
            # Errors in the wait loop dequeue the caller with QueueResult=error.
            if twiml and self.sim.strict:
                self._end("application_error")
                raise self._error(f"bad TwiML from waitUrl {url}: {detail}\n{body[:500]}")
            membership = self._leave_queue_membership()
            self._dequeued("error", membership)
            return None
        if self.fallback_url and not self._in_fallback and self.state != "completed":
            self._in_fallback = True
            try:
                self._count_document()
                frame = self._load("fallback", self.fallback_url, "POST",
                                   {"ErrorCode": str(code), "ErrorUrl": url}, "main")
            finally:
                self._in_fallback = False
            if frame is not None:
                return frame
            return None
        if self.state == "completed":
            return None
        self._hear(Heard("application-error", APPLICATION_ERROR_TEXT))
        self._end("application_error")
        if twiml and self.sim.strict:
            raise self._error(f"bad TwiML from {url}: {detail}\n{body[:500]}")
        return None

    def _twiml_error(self, frame: _Frame, detail: str) -> None:
        """A verb that cannot run where it stands (found while executing)."""
        self._gather = None
        self._record = None
        self._record_frame = None
        self._frame = None
        result = self._fail("schema", frame.url, ERR_SCHEMA, detail, frame.context, twiml=True)
        if result is not None:
            self._frame = result

    # -- lifecycle -----------------------------------------------------------------------

    def _start(self) -> None:
        self._goto("voice", self.voice_url, self.voice_method, {}, context="main")
        if not self.ended:
            self.state = "in-progress"
            self._run()

    def _dial_out(self, answer: str, timeout: int) -> None:
        """Twilio places an outbound call; the called phone responds with ``answer``."""
        self._set_status("initiated")
        self._progress_callback("initiated")
        if answer in ("busy", "failed"):
            self._end(answer, final_status=answer)
            return
        self._set_status("ringing")
        self._progress_callback("ringing")
        if answer == "no-answer":
            self.sim.clock.advance(timeout)
            self._end(answer, final_status=answer)
            return
        self.sim.clock.advance(self.sim.ring_seconds)
        self._answer()
        self._progress_callback("answered")
        self._start()

    def _answer(self) -> None:
        """The call is answered: webhooks now carry CallStatus=in-progress."""
        if self._answered:
            return
        self._answered = True
        self.answered_at = self.sim.clock.elapsed
        self._set_status("in-progress")

    def _set_status(self, status: str) -> None:
        self.status = status
        if self.sim.on_call_status is not None:
            self.sim.on_call_status(self)

    def _progress_callback(self, event: str) -> None:
        """The status callback of a call progress ``event``, if it was requested."""
        if self.status_callback_url and event in self.status_callback_events:
            self._status_callback(self._base_params(call_status=self.status))

    def _status_callback(self, params: dict[str, str]) -> None:
        params.update({
            "Timestamp": email.utils.format_datetime(self.sim.clock.now()),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": str(self._callbacks_sent),
        })
        self._callbacks_sent += 1
        assert self.status_callback_url is not None
        record, response = self._send("status_callback", self.status_callback_url,
                                      self.status_callback_method, params)
        if response is None or not 200 <= response.status < 300:
            self.errors.append(SimError(
                "status_callback", self.status_callback_url, ERR_HTTP_RETRIEVAL,
                f"status callback answered HTTP {record.status}", record.status, record.text))

    def _error(self, message: str) -> SimulatorError:
        return SimulatorError(message, call=self)

    def _require_active(self) -> None:
        if self.ended:
            raise self._error(f"the call has ended ({self.ended_by})")

    def _mark_input(self) -> int:
        self._input_mark = len(self.heard)
        return self._input_mark

    def _hear(self, item: Heard) -> None:
        item.at = self.sim.clock.elapsed - self.started_at
        self.heard.append(item)

    def _end(self, reason: str, final_status: str = "completed") -> None:
        if self.ended:
            return
        if self._membership is not None:
            self._leave_queue_membership()
        self._gather = None
        self._record = None
        self._record_frame = None
        self._frame = None
        self.state = "completed"
        self.ended_by = reason
        self.final_status = final_status
        self.ended_at = self.sim.clock.elapsed
        self._set_status(final_status)
        if self.status_callback_url and "completed" in self.status_callback_events:
            # Every final status (busy, no-answer, ...) is reported as the "completed" event.
            params = self._base_params(call_status=final_status)
            answered_at = self.answered_at if self.answered_at is not None else self.started_at
            seconds = int(round(self.ended_at - answered_at)) if final_status == "completed" else 0
            params["CallDuration"] = str(seconds)
            self._status_callback(params)

    # -- interpreter ---------------------------------------------------------------------

    def _run(self, deadline: float | None = None) -> None:
        """Execute verbs until the caller must act, the deadline passes, or the call ends."""
        clock = self.sim.clock
        steps = 0
        while True:
            if self.ended or self._gather is not None or self._record is not None \
                    or self.state == "bridged" or self._stream is not None:
                return
            steps += 1
            if steps > 100000:
                raise self._error("interpreter loop bound exceeded")
            frame = self._frame
            if frame is None or frame.done:
                if self.state == "bridging":
                    return
                if self._membership is not None:
                    # End of a wait document: Twilio requests waitUrl again.
                    self._frame = None
                    if deadline is None or clock.elapsed >= deadline:
                        return
                    if self._membership.wait_url == "":
                        clock.advance(deadline - clock.elapsed)
                        return
                    self._request_wait_document()
                    continue
                self._end("end_of_document")
                return
            if frame.context == "wait" and deadline is not None and clock.elapsed >= deadline:
                return
            verb = frame.verbs[frame.index]
            frame.index += 1
            self._verbs_executed += 1
            self._execute(verb, frame)

    def _execute(self, verb: ET.Element, frame: _Frame) -> None:
        tag = verb.tag
        if tag in UNSUPPORTED_VERBS:
            raise self._error(f"<{tag}> is not yet supported by the simulator ({frame.url})")
        if frame.context == "wait" and tag not in WAIT_URL_VERBS:
            return self._twiml_error(frame, f"<{tag}> is not allowed in a waitUrl document")
        if frame.context == "bridge" and tag not in QUEUE_URL_VERBS:
            return self._twiml_error(frame, f"<{tag}> is not allowed in a <Queue url> document")
        handler = getattr(self, f"_verb_{tag.lower()}", None)
        if handler is None or tag not in SUPPORTED_VERBS:
            return self._twiml_error(frame, f"unknown verb <{tag}>")
        handler(verb, frame)

    # Say / Play / Pause

    def _loop_count(self, verb: ET.Element) -> tuple[int, int, bool]:
        raw = verb.get("loop", "1")
        try:
            loop = int(raw)
        except ValueError:
            self.warnings.append(f"<{verb.tag} loop={raw!r}> is not a number; playing once")
            loop = 1
        if loop <= 0:
            return loop, 1, True
        return loop, loop, False

    def _verb_say(self, verb: ET.Element, frame: _Frame, in_gather: bool = False) -> None:
        text = " ".join("".join(verb.itertext()).split())
        loop, times, forever = self._loop_count(verb)
        for _ in range(times):
            self._hear(Heard("say", text, None, verb.get("language"), verb.get("voice"),
                             loop=loop, loop_forever=forever, in_gather=in_gather,
                             context=frame.context))
            self.sim.clock.advance(estimate_speech_seconds(text))

    def _verb_play(self, verb: ET.Element, frame: _Frame, in_gather: bool = False) -> None:
        raw = (verb.text or "").strip()
        digits = verb.get("digits")
        if not raw:
            if digits:
                self._hear(Heard("play", f"[DTMF {digits}]", None, in_gather=in_gather,
                                 context=frame.context))
                self.sim.clock.advance(0.5 * len(digits))
                return
            return self._twiml_error(frame, "<Play> without a URL")
        if verb.get("x-sim-hold"):
            self._hear(Heard("play", None, raw, in_gather=in_gather, context=frame.context))
            self.sim.clock.advance(self.sim.default_hold_seconds)
            return
        url = urljoin(frame.url, raw)
        text = self._text_twin(url)
        loop, times, forever = self._loop_count(verb)
        seconds = self._audio_seconds(url) if self.sim.audio_durations else None
        if seconds is None:
            seconds = estimate_speech_seconds(text) if text is not None else self.sim.default_play_seconds
        for _ in range(times):
            self._hear(Heard("play", text, url, loop=loop, loop_forever=forever,
                             in_gather=in_gather, context=frame.context))
            self.sim.clock.advance(seconds)

    def _audio_seconds(self, url: str) -> float | None:
        """How long the audio at `url` plays (a WAV fetched once), or None if it cannot be had."""
        cache = self.sim._duration_cache
        if url not in cache:
            try:
                response = self.sim.transport.get(url, {})
            except Exception as exc:  # noqa: BLE001
                if not _is_network_error(exc):
                    raise
                response = None
            ok = response is not None and 200 <= response.status < 300 and response.body[:4] == b"RIFF"
            cache[url] = _wav_seconds(response.body) if ok else None
        return cache[url]

    def _text_twin(self, url: str) -> str | None:
        cache = self.sim._twin_cache
        if url in cache:
            return cache[url]
        twin = text_twin_url(url)
        text = None
        if twin is not None:
            record = SimRequest(kind="media", method="GET", url=twin, params={}, headers={},
                                signed_url=twin)
            self.requests.append(record)
            try:
                response = self.sim.transport.get(twin, {})
            except Exception as exc:  # noqa: BLE001
                if not _is_network_error(exc):
                    raise
                response = None
            if response is not None:
                record.status = response.status
                record.body = response.body
                if 200 <= response.status < 300:
                    text = response.text.strip()
        cache[url] = text
        return text

    def _verb_pause(self, verb: ET.Element, frame: _Frame, in_gather: bool = False) -> None:
        raw = verb.get("length", "1")
        try:
            length = int(raw)
        except ValueError:
            self.warnings.append(f"<Pause length={raw!r}> is not an integer; pausing 1 s")
            length = 1
        self.sim.clock.advance(max(length, 0))

    # Gather

    def _verb_gather(self, verb: ET.Element, frame: _Frame) -> None:
        attrs = dict(verb.attrib)
        input_value = attrs.get("input", "dtmf")
        tokens = input_value.split()
        if not tokens or any(t not in ("dtmf", "speech") for t in tokens):
            return self._twiml_error(frame, f"<Gather input={input_value!r}>: allowed values are "
                                            "'dtmf', 'speech', 'dtmf speech'")
        if "dtmf" not in tokens:
            raise self._error(f"<Gather input={input_value!r}>: speech input is not simulated")
        timeout = self._int_attr(verb, "timeout", 5, minimum=1)
        num_digits = self._int_attr(verb, "numDigits", None, minimum=1)
        finish = attrs.get("finishOnKey", "#")
        if len(finish) > 1 or (finish and finish not in DTMF_KEYS):
            self.warnings.append(f"<Gather finishOnKey={finish!r}> is invalid (Twilio warning 13310); using '#'")
            finish = "#"
        empty_raw = attrs.get("actionOnEmptyResult", "false").strip().lower()
        if empty_raw not in ("true", "false"):
            return self._twiml_error(frame, f"<Gather actionOnEmptyResult={empty_raw!r}> must be true or false")
        method = attrs.get("method", "POST").upper()
        action = urljoin(frame.url, attrs["action"]) if attrs.get("action") else frame.url
        for child in verb:
            getattr(self, f"_verb_{child.tag.lower()}")(child, frame, in_gather=True)
            if self.ended or self._frame is not frame:
                return
        self._gather = PendingGather(
            action=action, method=method, timeout=timeout, num_digits=num_digits,
            finish_on_key=finish, action_on_empty_result=empty_raw == "true",
            input=input_value, attributes=attrs, context=frame.context,
        )
        self._gather_frame = frame

    def _int_attr(self, verb: ET.Element, name: str, default: int | None, minimum: int) -> int | None:
        raw = verb.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < minimum:
            self.warnings.append(f"<{verb.tag} {name}={raw!r}> is invalid; using {default!r}")
            return default
        return value

    def _key(self, key: str) -> None:
        gather = self._gather
        assert gather is not None
        if gather.finish_on_key and key == gather.finish_on_key:
            if gather.digits:
                self._gather_submit({"Digits": gather.digits, "FinishedOnKey": key})
            else:
                # Finish key before any digit: no input (Twilio's <Gather> scenario 1).
                self._gather_empty(finished_on_key=key)
            return
        gather.digits += key
        if gather.num_digits and len(gather.digits) >= gather.num_digits:
            self._gather_submit({"Digits": gather.digits, "FinishedOnKey": ""})

    def _gather_timeout(self) -> None:
        gather = self._gather
        assert gather is not None
        self.sim.clock.advance(gather.timeout)
        if gather.digits:
            self._gather_submit({"Digits": gather.digits, "FinishedOnKey": ""})
        else:
            self._gather_empty(finished_on_key="")

    def _gather_submit(self, params: dict[str, str]) -> None:
        gather, frame = self._gather, self._gather_frame
        assert gather is not None and frame is not None
        self._gather = None
        self._gather_frame = None
        self._goto("gather_action", gather.action, gather.method, params, context=frame.context)

    def _gather_empty(self, finished_on_key: str) -> None:
        gather, frame = self._gather, self._gather_frame
        assert gather is not None and frame is not None
        if gather.action_on_empty_result:
            params = dict(EMPTY_GATHER_PARAMS)
            if finished_on_key:
                params["FinishedOnKey"] = finished_on_key
            self._gather_submit(params)
            return
        # No input: Twilio goes on with the verb after the <Gather>.
        self._gather = None
        self._gather_frame = None
        self._frame = frame

    # Record

    def _verb_record(self, verb: ET.Element, frame: _Frame) -> None:
        attrs = dict(verb.attrib)
        for name in RECORD_UNSUPPORTED_ATTRIBUTES:
            if name in attrs:
                raise self._error(f"<Record {name}> is not yet supported by the simulator ({frame.url})")
        transcribe = attrs.get("transcribe", "false").strip().lower()
        if transcribe == "true":
            raise self._error(f"<Record transcribe=\"true\"> is not yet supported by the simulator ({frame.url})")
        if transcribe != "false":
            self.warnings.append(f"<Record transcribe={attrs['transcribe']!r}> is not true/false; ignored")
        timeout = self._int_attr(verb, "timeout", 5, minimum=1)
        max_length = self._int_attr(verb, "maxLength", RECORD_DEFAULT_MAX_LENGTH, minimum=1)
        finish = attrs.get("finishOnKey", RECORD_DEFAULT_FINISH_KEYS)
        if any(ch not in DTMF_KEYS for ch in finish):
            self.warnings.append(f"<Record finishOnKey={finish!r}> is invalid; using {RECORD_DEFAULT_FINISH_KEYS!r}")
            finish = RECORD_DEFAULT_FINISH_KEYS
        beep_raw = attrs.get("playBeep", "true").strip().lower()
        if beep_raw not in ("true", "false"):
            self.warnings.append(f"<Record playBeep={attrs['playBeep']!r}> is not true/false; beeping")
            beep_raw = "true"
        trim = attrs.get("trim", "trim-silence").strip()
        if trim not in ("trim-silence", "do-not-trim"):
            self.warnings.append(f"<Record trim={trim!r}> is invalid; using 'trim-silence'")
            trim = "trim-silence"
        method = attrs.get("method", "POST").upper()
        action = urljoin(frame.url, attrs["action"]) if attrs.get("action") else frame.url
        if beep_raw == "true":
            self._hear(Heard("beep", None, context=frame.context))
            self.sim.clock.advance(BEEP_SECONDS)
        self._record = PendingRecord(
            action=action, method=method, timeout=timeout, max_length=max_length,
            finish_on_key=finish, play_beep=beep_raw == "true", trim=trim, attributes=attrs,
            started_at=self.sim.clock.elapsed - self.started_at, context=frame.context,
        )
        self._record_frame = frame

    def _record_silence(self) -> None:
        """Nothing said: the silence timeout ends an empty recording; the next verb runs."""
        record, frame = self._record, self._record_frame
        assert record is not None and frame is not None
        self._record = None
        self._record_frame = None
        self.sim.clock.advance(min(record.timeout, record.max_length))
        self.warnings.append(f"Twilio warning {WARN_RECORDING_SILENT}: the recording was silent and not "
                             "stored; the action URL was not requested, the next verb runs")
        self._frame = frame

    def _record_finish(self, elapsed: float, recorded: float, text: str | None, audio: bytes | None,
                       ended_by: str, digits: str | None, *, speech: float | None = None,
                       hangup_reason: str = "caller_hangup") -> None:
        """End the pending recording after ``elapsed`` seconds, ``recorded`` of them kept."""
        record, frame = self._record, self._record_frame
        assert record is not None and frame is not None
        self._record = None
        self._record_frame = None
        if elapsed > 0:
            self.sim.clock.advance(elapsed)
        if recorded <= 0 and text is None and audio is None and not self.sim.post_empty_recordings:
            # Twilio: "if Twilio receives an empty recording, it will not make a request
            # to the action URL. The current call flow will continue with the next verb."
            how = f"Digits={digits}" if digits else ended_by
            self.warnings.append(f"empty recording ({how}): not stored, the action URL was not requested")
            if ended_by == "hangup":
                self._end(hangup_reason)
            else:
                self._frame = frame
            return
        if text is not None and ended_by == "max-length" and speech and speech > recorded:
            text = text[: int(len(text) * recorded / speech)]        # the last words are cut off
        if audio is not None:
            data = bytes(audio)
        elif text is not None:
            data = write_transcript_wav(text, recorded)
        else:
            data = _silent_wav(recorded)
        sid = self.sim.new_sid("RE")
        recording = SimRecording(
            sid=sid, url=self.sim.recording_url(sid), call_sid=self.call_sid, duration=recorded,
            data=data, text=text, ended_by=ended_by, digits=digits,
            at=self.sim.clock.elapsed - self.started_at, posted=True,
        )
        self.recordings.append(recording)
        self.sim.recordings[sid] = recording
        if self.sim.recording_server is not None:
            self.sim.recording_server.add(sid, data)
        params = {
            "RecordingUrl": recording.url,
            "RecordingSid": sid,
            "RecordingDuration": recording.duration_param,
        }
        if digits:
            params["Digits"] = digits
        if ended_by == "hangup":
            # The caller is gone: the action is requested, its TwiML cannot run.
            request = self._base_params(call_status="completed")
            request.update(params)
            self._send("record_action", record.action, record.method, request)
            self._end(hangup_reason)
            return
        self._goto("record_action", record.action, record.method, params, context=record.context)

    # Redirect / Hangup / Reject

    def _verb_redirect(self, verb: ET.Element, frame: _Frame) -> None:
        target = (verb.text or "").strip()
        if not target:
            return self._twiml_error(frame, "<Redirect> without a URL")
        self._goto("redirect", urljoin(frame.url, target), verb.get("method", "POST"), {},
                   context=frame.context)

    def _verb_hangup(self, verb: ET.Element, frame: _Frame) -> None:
        if frame.context == "wait" and self._membership is not None:
            # Leaves the queue and ends the call; QueueResult=hangup is assumed (unverified).
            membership = self._leave_queue_membership()
            self._notify_dequeue("hangup", membership, call_status="completed")
        self._end("hangup")

    def _verb_reject(self, verb: ET.Element, frame: _Frame) -> None:
        reason = verb.get("reason", "rejected")
        first_verb = self._documents == 1 and self._verbs_executed == 1 and not self.heard
        if first_verb:
            # Not answered: the call ends busy or no-answer depending on reason.
            self._end("rejected", final_status="busy" if reason == "busy" else "no-answer")
        else:
            self.warnings.append("<Reject> is only meaningful as the first verb; the call is hung up")
            self._end("rejected")

    # Dial

    def _verb_dial(self, verb: ET.Element, frame: _Frame) -> None:
        targets = []
        if verb.text and verb.text.strip():
            targets.append(verb.text.strip())
        for child in verb:
            value = (child.text or "").strip()
            targets.append(value if child.tag == "Number" else f"{child.tag.lower()}:{value}")
        if not targets:
            return self._twiml_error(frame, "<Dial> without a number")
        timeout = self._int_attr(verb, "timeout", DIAL_DEFAULT_TIMEOUT, minimum=1)
        status = self._dial_status(targets)
        self._hear(Heard("dial", ", ".join(targets), context=frame.context))
        at = self.sim.clock.elapsed - self.started_at
        duration = 0
        if status == "completed":
            self.sim.clock.advance(self.sim.dial_duration)
            duration = int(self.sim.dial_duration)
        elif status == "no-answer":
            self.sim.clock.advance(timeout)
        action = verb.get("action")
        dial = SimDial(targets=targets, caller_id=verb.get("callerId"), timeout=timeout, status=status,
                       duration=duration, call_sid=self.sim.new_sid("CA"),
                       action=urljoin(frame.url, action) if action else None, at=at)
        self.dials.append(dial)
        if dial.action:
            self._goto("dial_action", dial.action, verb.get("method", "POST"), {
                "DialCallStatus": status,
                "DialCallSid": dial.call_sid,
                "DialCallDuration": str(duration),
                "DialBridged": "true" if status == "completed" else "false",
            }, context="main")
        elif status == "completed" and self.sim.dial_ends_call:
            self._end("dial_completed")
        # Otherwise Twilio goes on with the next verb.

    def _dial_status(self, targets: list[str]) -> str:
        """DialCallStatus of a Dial ringing ``targets`` at once, from ``sim.dial_outcomes``."""
        outcomes = {self.sim.dial_outcomes.get(target, "completed") for target in targets}
        unknown = outcomes - set(DIAL_OUTCOMES)
        if unknown:
            raise self._error(f"dial_outcomes {sorted(unknown)}: expected one of {DIAL_OUTCOMES}")
        return next(status for status in DIAL_OUTCOMES if status in outcomes)

    # Enqueue / Leave

    def _verb_enqueue(self, verb: ET.Element, frame: _Frame) -> None:
        if verb.get("workflowSid") or len(verb):
            raise self._error("<Enqueue workflowSid>/<Task> (TaskRouter) is not supported")
        name = (verb.text or "").strip()
        if not name:
            return self._twiml_error(frame, "<Enqueue> without a queue name")
        if len(name) > 64:
            return self._twiml_error(frame, "<Enqueue> queue name longer than 64 characters")
        action = verb.get("action")
        action_url = urljoin(frame.url, action) if action else None
        method = verb.get("method", "POST")
        wait_raw = verb.get("waitUrl")
        if wait_raw is None:
            wait_url, wait_method = None, verb.get("waitUrlMethod", "GET")
        elif wait_raw.strip() == "":
            wait_url, wait_method = "", "POST"
        else:
            wait_url, wait_method = urljoin(frame.url, wait_raw.strip()), verb.get("waitUrlMethod", "POST")
        queue = self.sim.queue(name)
        membership = _Membership(queue, action_url, method, wait_url, wait_method,
                                 enqueued_at=self.sim.clock.elapsed, resume=frame)
        if queue.size >= queue.max_size:
            # Rejected right away; QueueSid/QueueTime only exist for calls actually enqueued.
            self._dequeued("queue-full", membership, include_queue=False)
            return
        queue.members.append(self)
        self._membership = membership
        self.state = "queued"
        self._frame = None
        self._request_wait_document()

    def _queue_params(self) -> dict[str, str]:
        membership = self._membership
        assert membership is not None
        queue = membership.queue
        now = self.sim.clock.elapsed
        waits = [now - m._membership.enqueued_at for m in queue.members if m._membership]
        return {
            "QueuePosition": str(queue.position(self)),
            "QueueSid": queue.sid,
            "QueueTime": str(int(now - membership.enqueued_at)),
            "AvgQueueTime": str(int(sum(waits) / len(waits)) if waits else 0),
            "CurrentQueueSize": str(queue.size),
            "MaxQueueSize": str(queue.max_size),
        }

    def _request_wait_document(self) -> None:
        membership = self._membership
        assert membership is not None
        if membership.wait_url is None:
            self._count_document()
            self._frame = _Frame(
                url=DEFAULT_HOLD_MUSIC_URL,
                verbs=[_element("Play", DEFAULT_HOLD_MUSIC_URL, {"x-sim-hold": "1"})],
                context="wait",
            )
        elif membership.wait_url == "":
            self._frame = _Frame(url=membership.resume.url, verbs=[], context="wait")
        else:
            self._goto("wait", membership.wait_url, membership.wait_method, self._queue_params(),
                       context="wait")

    def _verb_leave(self, verb: ET.Element, frame: _Frame) -> None:
        if self._membership is None:
            return self._twiml_error(frame, "<Leave> outside a queue")
        membership = self._leave_queue_membership()
        self._dequeued("leave", membership)

    def _leave_queue_membership(self) -> _Membership:
        membership = self._membership
        assert membership is not None
        if self in membership.queue.members:
            membership.queue.members.remove(self)
        self._membership = None
        self._gather = None
        self._gather_frame = None
        if self.state in ("queued", "bridging"):
            self.state = "in-progress"
        return membership

    def _dequeue_params(self, result: str, membership: _Membership, queue_time: float | None,
                        include_queue: bool) -> dict[str, str]:
        params = {"QueueResult": result}
        if include_queue:
            if queue_time is None:
                queue_time = self.sim.clock.elapsed - membership.enqueued_at
            params["QueueSid"] = membership.queue.sid
            params["QueueTime"] = str(int(queue_time))
        return params

    def _dequeued(self, result: str, membership: _Membership, *, queue_time: float | None = None,
                  include_queue: bool = True) -> None:
        """The call left the queue and stays on the line: Enqueue action, or the next verb."""
        self.state = "in-progress"
        self._frame = None
        if membership.action_url:
            self._goto("enqueue_action", membership.action_url, membership.method,
                       self._dequeue_params(result, membership, queue_time, include_queue),
                       context="main")
        else:
            self._frame = membership.resume

    def _notify_dequeue(self, result: str, membership: _Membership, *,
                        queue_time: float | None = None, call_status: str | None = None) -> None:
        """Enqueue action request whose TwiML cannot run (the caller is gone or redirected)."""
        if membership.action_url:
            params = self._base_params(call_status)
            params.update(self._dequeue_params(result, membership, queue_time, True))
            self._send("enqueue_action", membership.action_url, membership.method, params)


def _element(tag: str, text: str | None = None, attrib: dict[str, str] | None = None) -> ET.Element:
    element = ET.Element(tag, attrib or {})
    element.text = text
    return element


def _validate(root: ET.Element) -> str | None:
    """Schema checks Twilio applies to the whole document before running it."""
    for verb in root:
        tag = verb.tag
        if not isinstance(tag, str):
            continue
        if tag not in SUPPORTED_VERBS and tag not in UNSUPPORTED_VERBS:
            return f"unknown verb <{tag}> (TwiML is case-sensitive)"
        if tag == "Gather":
            for child in verb:
                if child.tag not in GATHER_NESTABLE:
                    return f"<{child.tag}> cannot be nested in <Gather>"
        elif tag == "Dial":
            for child in verb:
                if child.tag not in DIAL_NOUNS:
                    return f"<{child.tag}> cannot be nested in <Dial>"
        elif tag == "Connect":
            for child in verb:
                if child.tag != "Stream" or any(grand.tag != "Parameter" for grand in child):
                    return f"<Connect> takes <Stream> with <Parameter>s, not <{child.tag}>"
        elif tag in ("Play", "Pause", "Redirect", "Hangup", "Reject", "Leave", "Record") and len(verb):
            return f"<{tag}> cannot contain <{verb[0].tag}>"
    return None


def _silent_wav(seconds: float) -> bytes:
    """8 kHz 16-bit mono silence (audio without a transcript)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * int(8000 * max(seconds, 0.0)))
    return buffer.getvalue()


def _wav_seconds(data: bytes) -> float:
    """Length of a WAV file in seconds (the speech estimate for unreadable audio); μ-law and
    other non-PCM WAVs (which the wave module refuses) from their fmt and data chunks."""
    riff = _riff_seconds(data)
    if riff is not None:
        return riff
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            rate = wav.getframerate()
            return wav.getnframes() / rate if rate else estimate_speech_seconds(None)
    except (wave.Error, EOFError, ValueError):
        return estimate_speech_seconds(None)


def _riff_seconds(data: bytes) -> float | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        if tag == b"fmt " and size >= 12:
            byte_rate = int.from_bytes(data[pos + 16:pos + 20], "little")
        elif tag == b"data" and byte_rate:
            return min(size, len(data) - pos - 8) / byte_rate
        pos += 8 + size + (size % 2)
    return None


def _is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("requests", "urllib3"))
