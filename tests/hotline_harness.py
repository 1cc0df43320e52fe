"""A whole hotline on a temporary SQLite database, called through the Twilio simulator.

The service and the simulator share one virtual clock, so silence, queue waits and office
hours cost no real time.  transport="stream" runs calls over Media Streams: the service's
stream server runs in a thread on the same virtual clock, reached over a real WebSocket.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ivr.config import SHANGHAI, load_settings
from ivr.db.models import Booking, CallerPreference, CallSession, Handoff
from ivr.engine.state import CallState
from ivr.simulator import RecordingServer
from ivr.simulator.media_stream import Echo
from ivr.simulator.stream_link import InProcessStreams
from ivr.simulator.transport import WsgiTransport
from ivr.simulator.twilio_sim import SimCall, TwilioSimulator, VirtualClock
from ivr.timeutil import to_db
from ivr.web import create_app

BASE_URL = "https://hotline.example.test"
ACCOUNT_SID = "AC" + "5" * 32
TOKEN = "test-auth-token-0123456789abcdef"
HOTLINE_NUMBER = "+862160000000"
# A Thursday morning, operators at work.
THURSDAY_10AM = datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI)


@dataclass
class Coverage:
    """Which steps and reprompt handlers the scenarios went through."""

    steps: Counter = field(default_factory=Counter)
    handlers: Counter = field(default_factory=Counter)

    def add_story(self, story: list[dict[str, Any]]) -> None:
        failures: Counter = Counter()
        for entry in story:
            step = entry.get("step", "")
            if entry["event"] == "step":
                self.steps[step] += 1
                failures[step] = 0
            elif entry["event"] in ("silence", "nomatch"):
                failures[step] += 1
                self.handlers[f"{step} {'noinput' if entry['event'] == 'silence' else 'nomatch'} "
                              f"{min(failures[step], 3)}"] += 1


COVERAGE = Coverage()


class Hotline:
    def __init__(self, tmp_path: Path, prompt_cache: Path, start: datetime = THURSDAY_10AM,
                 queue_max_size: int = 20, speech: bool = False, transport: str = "webhook",
                 echo: Echo | None = None, **env: str) -> None:
        """speech=True: callers may speak; their words travel in the recordings (transcript
        WAVs) that the service fetches from a local stand-in for Twilio's recordings API, or,
        on a stream, in the audio itself (ivr.hearing.transcript_stream)."""
        if transport not in ("webhook", "stream"):
            raise ValueError(f"transport is webhook or stream, not {transport!r}")
        self.transport = transport
        if transport == "stream":
            env = {"CALL_AUDIO": "stream", **env}
        self.clock = VirtualClock(start)
        self.recordings = RecordingServer(ACCOUNT_SID, TOKEN).start() if speech else None
        if speech:
            env = {"SPEECH": "transcript", "RECORDING_HOSTS": "127.0.0.1", **env}
        settings = load_settings({
            "HOTLINE_VAR_DIR": str(tmp_path / "var"), "PROMPT_CACHE_DIR": str(prompt_cache),
            "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": BASE_URL, "TWILIO_NUMBER": HOTLINE_NUMBER,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "ID_HASH_SECRET": "test-secret", **env})
        self.settings = settings
        self.app = create_app(settings, clock=self.clock.now)
        self.rt = self.app.extensions["hotline"]
        self.streams = InProcessStreams(self.rt, self.clock).start() if transport == "stream" else None
        self.sim = TwilioSimulator(WsgiTransport(self.app), BASE_URL, TOKEN, account_sid=ACCOUNT_SID,
                                   clock=self.clock, queue_max_size=queue_max_size, seed=7,
                                   recording_server=self.recordings, stream_link=self.streams,
                                   stream_echo=echo)

    def call(self, caller: str = "+8613800000002", **kwargs: Any) -> SimCall:
        return self.sim.place_call(caller, HOTLINE_NUMBER, **kwargs)

    def state(self, call: SimCall) -> CallState:
        with self.rt.sessions() as db:
            row = db.get(CallSession, call.call_sid)
            assert row is not None, f"no session for {call.call_sid}"
            return CallState.from_json(row.state)

    def step(self, call: SimCall) -> str:
        return self.state(call).step

    def remember_language(self, phone: str, language: str = "cmn") -> None:
        with self.rt.sessions() as db, db.begin():
            db.merge(CallerPreference(phone=phone, language=language, updated_at=to_db(self.clock.now())))

    def book(self, caller: str = "+8613800000002") -> Booking:
        """A caller books the first slot offered for their own number (keys 2, 1, 1, 1)."""
        self.remember_language(caller)
        call = self.call(caller)
        for key in "2111":
            call.press(key)
        assert self.step(call) == "booked", self.step(call)
        return self.bookings(caller)[-1]

    def a_day_of_calls(self) -> None:
        """Four finished calls: status heard by keys, a person asked for, a caller who gives up
        at the callback number question, and a booking."""
        for phone in ("+8613800000002", "+8613900000003"):
            self.remember_language(phone)
        served = self.call("+8613800000002")
        for keys in ("1", "567*#"):
            served.press(keys)
        served.hangup()
        person = self.call("+8613900000003")
        person.press("0")
        person.hangup()
        gave_up = self.call("+8613800000002")
        gave_up.press("2")
        gave_up.hangup()
        booked = self.call("+8613800000002")
        for key in "2111":
            booked.press(key)
        booked.hangup()

    def bookings(self, caller: str | None = None) -> list[Booking]:
        with self.rt.sessions() as db:
            query = select(Booking).order_by(Booking.id)
            if caller:
                query = query.where(Booking.caller == caller)
            return list(db.execute(query).scalars())

    def handoffs(self) -> list[Handoff]:
        with self.rt.sessions() as db:
            return list(db.execute(select(Handoff).order_by(Handoff.id)).scalars())

    def record_coverage(self) -> None:
        with self.rt.sessions() as db:
            for row in db.execute(select(CallSession)).scalars():
                COVERAGE.add_story(row.state.get("story", []))

    def close(self) -> None:
        self.record_coverage()
        if self.streams is not None:
            self.streams.stop()
        self.rt.db.dispose()
        if self.recordings is not None:
            self.recordings.stop()

    def turn(self, call: SimCall) -> int:
        with self.rt.sessions() as db:
            return db.get(CallSession, call.call_sid).turn

    def say(self, call: SimCall, words: str) -> None:
        """The caller answers by voice: waits out the 1 s key window after the prompt, speaks;
        on a stream, speaks right after the prompts."""
        if call.stream is not None:
            call.speak(words)
            return
        if call.pending_record is None and call.pending_gather is not None:
            call.silence()
        assert call.pending_record is not None, "the service is not listening for speech here"
        call.speak(words)

    def silence(self, call: SimCall) -> None:
        """One unanswered question, however many listening verbs it takes (on a stream: the
        caller is silent until the service speaks again)."""
        if call.stream is not None:
            call.silence()
            return
        before = self.turn(call)
        for _ in range(4):
            call.silence()
            if self.turn(call) != before or call.ended:
                return
        raise AssertionError("silence never reached the service")


def heard(call: SimCall) -> str:
    """Everything heard since the caller's last input, as one string."""
    return " ".join(call.heard_since_last_input())
