"""The streamed call's listener (ivr/streams/listener.py) with fake recognisers: the event
loop's calls (begin, feed, close) never wait on a stuck recogniser, frames past the backlog are
dropped and counted, and the counts are logged when the call ends (bench/stream_voice.py reads
them); a grammar the model cannot say costs its question only, and even a failed listener closes
the call's recogniser."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ivr.hearing.endpointer import EndpointSettings
from ivr.hearing.grammar import GrammarError
from ivr.media.speech import WordsSoFar
from ivr.streams.listener import BACKLOG_FRAMES, CallListener

ROOT = Path(__file__).resolve().parent.parent


class StuckChannel:
    frames_dropped = 7  # what the recogniser's own backlog refused in this utterance


class StuckSession:
    """A recogniser process that takes frames only once `go` is set."""

    decodes_audio = False  # hears every frame, silence too (no pre-roll gate in LiveTurn)

    def __init__(self, go: threading.Event) -> None:
        self.go, self.lost, self.partial, self.channel = go, None, "", StuckChannel()
        self.closed = False

    def start(self, phrases) -> bool:
        return True

    def feed(self, frame: bytes) -> bytes:
        self.go.wait(10)
        return b"\0\0" * 160

    def finish(self, timeout: float = 2.0):
        return None

    def close(self) -> None:
        self.closed = True


class StuckRecogniser:
    def __init__(self) -> None:
        self.go = threading.Event()
        self.session = StuckSession(self.go)

    def open_session(self, encoding: str, rate: int) -> StuckSession:
        return self.session

    def phrases(self, grammar: str) -> tuple[str, ...]:
        return ("네",)


def test_a_stuck_recogniser_never_blocks_the_event_loop_and_lost_frames_are_counted(caplog) -> None:
    recogniser = StuckRecogniser()
    listener = CallListener(recogniser, EndpointSettings(), ROOT / "grammars", lambda signal: None)
    t0 = time.perf_counter()
    listener.begin("confirm", "cmn")
    for _ in range(BACKLOG_FRAMES + 100):
        listener.feed(b"\xff" * 160)
    listener.begin("confirm", "cmn")  # the next question, the recogniser still stuck
    listener.close()
    assert time.perf_counter() - t0 < 0.5  # before d94c28f begin/close waited up to 1 s each
    assert listener.dropped >= 100
    with caplog.at_level(logging.INFO, logger="ivr.streams.listener"):
        recogniser.go.set()
        listener.thread.join(10)
    assert not listener.thread.is_alive() and recogniser.session.closed
    assert listener.recogniser_dropped == 14  # two questions' utterances, 7 each
    assert f"call listener done: {listener.dropped} frames dropped at the backlog, 14 by the recogniser" \
        in caplog.text


class FakeSession:
    """A recogniser process that hears "네" in any utterance: the partial is set by the first frame."""

    decodes_audio = False

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on, self.lost, self.partial, self.channel = fail_on, None, "", StuckChannel()
        self.starts: list[tuple[str, ...]] = []
        self.closed = False

    def start(self, phrases) -> bool:
        if self.fail_on in phrases:
            raise GrammarError("no phrase of this grammar is a word of the model")
        self.starts.append(tuple(phrases))
        self.partial = ""
        return True

    def feed(self, frame: bytes) -> bytes:
        if self.fail_on == "feed":
            raise RuntimeError("a bug in the listener's path")
        self.partial = "네"
        return b"\0\0" * 160

    def finish(self, timeout: float = 2.0):
        return None

    def close(self) -> None:
        self.closed = True


class FakeRecogniser:
    def __init__(self, session: FakeSession) -> None:
        self.session = session

    def open_session(self, encoding: str, rate: int) -> FakeSession:
        return self.session

    def phrases(self, grammar: str) -> tuple[str, ...]:
        return ("없는말",) if grammar == "digits" else ("네",)


def test_a_grammar_the_model_cannot_say_is_keys_only_for_that_question_alone() -> None:
    session = FakeSession(fail_on="없는말")
    heard: list = []
    listener = CallListener(FakeRecogniser(session), EndpointSettings(), ROOT / "grammars", heard.append)
    listener.begin("digits", "cmn")  # e.g. a Chinese-only grammar and another language's model
    listener.feed(b"\xff" * 160)
    listener.begin("confirm", "cmn")
    listener.feed(b"\xff" * 160)
    listener.close()
    listener.thread.join(10)
    assert session.starts == [("네",)]  # the next question was heard again
    assert WordsSoFar("네") in heard
    assert session.closed


def test_a_failing_listener_still_frees_the_calls_recogniser() -> None:
    """Before, the session stayed open: its process and its MAX_LIVE_CALLS place were never given
    back, so after that many such calls no call was heard at all."""
    session = FakeSession(fail_on="feed")
    listener = CallListener(FakeRecogniser(session), EndpointSettings(), ROOT / "grammars", lambda signal: None)
    listener.begin("confirm", "cmn")
    listener.feed(b"\xff" * 160)
    listener.feed(b"\xff" * 160)  # queued after the failure: taken and ignored
    listener.close()
    listener.thread.join(10)
    assert not listener.thread.is_alive() and session.closed
