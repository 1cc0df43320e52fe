"""Parent side of streaming recognition: the forker handle and one channel per call.

A channel never raises for what happens in its process: a crash, an overrun or a closed pool
ends that channel only, sets ``lost`` (why), and ``finish()`` returns None, which the caller
treats as no input, as the batch path does (see session_process.py for the process side).
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle
from pathlib import Path
from typing import Any, Callable, Sequence

from ivr.hearing.grammar import GrammarError
from ivr.hearing.session_process import forker_main

log = logging.getLogger("ivr.hearing.sessions")

# Frames sent but not yet decoded beyond which new frames are dropped (counted as lost) rather
# than queued: 2 s of audio. A stuck child must not make the call's thread block on send().
MAX_BACKLOG_FRAMES = 100


@dataclass
class StreamResult:
    """One streamed utterance's final result (FinalResult() of its recogniser)."""

    text: str
    confidence: float
    words: list[tuple[str, float]] = field(default_factory=list)
    phrase: str | None = None
    frames: int = 0              # frames the recogniser decoded
    final_seconds: float = 0.0   # time FinalResult() took in the child
    decode_seconds: float = 0.0  # CPU seconds the child spent in AcceptWaveform for this utterance


class StreamChannel:
    """One call's recogniser process, fed one utterance at a time. Not thread-safe: one call's
    thread uses it."""

    def __init__(self, conn: Connection, pid: int, sample_rate: int,
                 on_close: Callable[[], None] | None = None) -> None:
        self.pid = pid
        self._on_close = on_close
        self.sample_rate = sample_rate
        self.lost: str | None = None
        self.frames_sent = 0
        self.frames_dropped = 0
        self.partial = ""
        self.partials: list[tuple[int, str]] = []
        self.peeked: tuple[int, str] | None = None
        self.peek_pending = False
        self._conn = conn
        self._utt = 0
        self._decoded = 0
        self._active = False
        self._send(sample_rate)  # a child already dead is lost from the start

    # -- utterances ----------------------------------------------------------

    def start(self, phrases: Sequence[str] | None, timeout: float = 5.0) -> bool:
        """Begin an utterance with a fresh recogniser for this grammar (None = whole vocabulary).

        False when the channel is lost; GrammarError when no phrase is usable with the model."""
        if self.lost:
            return False
        if phrases is not None:
            if isinstance(phrases, str) or not all(isinstance(p, str) for p in phrases):
                raise ValueError("phrases must be a list of strings")
            phrases = tuple(phrases)
        self._utt += 1
        self._decoded, self.frames_sent, self.frames_dropped, self.partial = 0, 0, 0, ""
        self.partials: list[tuple[int, str]] = []  # (frames decoded, words) at each change
        self.peeked: tuple[int, str] | None = None  # (frames covered, FinalResult text)
        self.peek_pending = False
        if not self._send(("start", self._utt, phrases)):
            return False
        msg = self._wait(("started", "grammar"), timeout)
        if msg is None:
            return False
        if msg[0] == "grammar":
            raise GrammarError(msg[2])
        if msg[2]:
            log.warning("grammar phrases left out (model lacks words): %s", "; ".join(msg[2]))
        self._active = True
        return True

    def feed(self, pcm16: bytes) -> str:
        """Hand one frame (16-bit PCM at ``sample_rate``) to the recogniser without waiting for it;
        returns the latest partial words known here (they trail the audio by the pipe's backlog)."""
        if self.lost or not self._active:
            return self.partial
        self._drain()
        if self.frames_sent - self._decoded >= MAX_BACKLOG_FRAMES:
            self.frames_dropped += 1
            return self.partial
        if self._send(("audio", self._utt, bytes(pcm16))):
            self.frames_sent += 1
        return self.partial

    def finish(self, timeout: float = 2.0) -> StreamResult | None:
        """End the utterance: FinalResult() in the child. None (no input) if the process is lost
        or overran ``timeout``; the overrunning process is killed, other calls are not touched."""
        if self.lost or not self._active:
            return None
        self._active = False
        if not self._send(("finish", self._utt)):
            return None
        msg = self._wait(("final", "fail"), timeout)
        if msg is None:
            return None
        if msg[0] == "fail":
            log.warning("streaming recognition failed in %s: %s", self.pid, msg[2])
            return None
        data = msg[2]
        self.partial = data["text"]
        return StreamResult(text=data["text"], confidence=data["confidence"],
                            words=[tuple(w) for w in data["words"]], phrase=data["phrase"],
                            frames=data["frames"], final_seconds=data["final_seconds"],
                            decode_seconds=data["decode_seconds"])

    def sync(self, timeout: float = 2.0) -> bool:
        """Wait until the child has decoded every frame sent (lockstep). Live calls never need
        it; tests and benches feeding faster than real time use it so that partials arrive at
        the audio time they would in a call. False when the process is lost."""
        if self.lost or not self._active:
            return False
        if not self._send(("sync", self._utt)):
            return False
        deadline = time.monotonic() + timeout
        while self._decoded < self.frames_sent:
            msg = self._wait(("progress",), max(0.0, deadline - time.monotonic()))
            if msg is None:
                return False
            self._handle(msg)
        return True

    def peek(self, from_frame: int = 0) -> None:
        """Ask for the FinalResult() of the utterance so far without ending it (session_process
        says why); the answer lands in ``peeked`` as (frames it covers, text). ``from_frame``:
        the first frame sent this utterance that the peek decodes (the audio before the speech
        is left out: on a live call the utterance starts with the prompt)."""
        if self.lost or not self._active or self.peek_pending:
            return
        if self._send(("peek", self._utt, max(0, from_frame))):
            self.peek_pending = True

    def wait_peek(self, timeout: float = 2.0) -> bool:
        """Wait for the answer to ``peek`` (lockstep feeding); False when the process is lost."""
        deadline = time.monotonic() + timeout
        while self.peek_pending:
            msg = self._wait(("peeked",), max(0.0, deadline - time.monotonic()))
            if msg is None:
                return False
            self._handle(msg)
        return not self.lost

    @property
    def backlog(self) -> int:
        """Frames sent to the child that it has not decoded yet (as last reported)."""
        return self.frames_sent - self._decoded

    def close(self) -> None:
        """End the call's process (it exits on its own when told) and free its place."""
        if self.lost is None:
            self._send(None)
            self.lost = "closed"
        try:
            self._conn.close()
        except OSError:
            pass
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def kill(self, why: str) -> None:
        if self.lost is None or self.lost == "closed":
            self.lost = why
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self._conn.close()
        except OSError:
            pass

    # -- the pipe ---------------------------------------------------------------

    def _send(self, msg: Any) -> bool:
        try:
            self._conn.send(msg)
            return True
        except (OSError, ValueError):
            self._lose("died")
            return False

    def _drain(self) -> None:
        try:
            while self._conn.poll(0):
                self._handle(self._conn.recv())
        except (EOFError, OSError, ValueError):
            self._lose("died")

    def _wait(self, kinds: tuple[str, ...], timeout: float) -> tuple | None:
        deadline = time.monotonic() + timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._conn.poll(remaining):
                    self.kill(f"overran {timeout:.1f} s")
                    log.warning("streaming recogniser %s overran %.1f s; killed", self.pid, timeout)
                    return None
                msg = self._conn.recv()
                if msg[0] in kinds and msg[1] == self._utt:
                    return msg
                self._handle(msg)
        except (EOFError, OSError, ValueError):
            self._lose("died")
            return None

    def _handle(self, msg: tuple) -> None:
        if msg[0] == "progress" and msg[1] == self._utt:
            if msg[3] != self.partial:
                self.partials.append((msg[2], msg[3]))
            self._decoded, self.partial = msg[2], msg[3]
        elif msg[0] == "peeked" and msg[1] == self._utt:
            self.peeked, self.peek_pending = (msg[2], msg[3]), False
        elif msg[0] == "fail" and msg[1] == self._utt:
            log.warning("streaming recognition failed in %s: %s", self.pid, msg[2])
            self._active = False

    def _lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = why
            log.warning("streaming recogniser %s %s; its call hears no input", self.pid, why)
        self._active = False


class SessionForker:
    """The forker process (model loaded once) and the lock that serialises fork requests.

    If the forker itself dies, the next open() starts a new one (a model load, ≈ 1-2 s);
    sessions already running are separate processes and go on."""

    def __init__(self, ctx: Any, model_path: Path, log_level: int, start_timeout: float,
                 max_streams: int | None = None) -> None:
        self.max_streams = max_streams
        self.open_streams = 0
        self._ctx = ctx
        self._model_path = str(model_path)
        self._log_level = log_level
        self._start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None
        self.pid: int | None = None
        self.broken: str | None = None
        self.forks = 0

    def start(self) -> None:
        with self._lock:
            self._ensure(self._start_timeout)

    def _ensure(self, timeout: float) -> bool:
        if self._conn is not None and self._process.is_alive():
            return True
        self._stop()
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=forker_main, name="vosk-stream-forker", daemon=True,
                                 args=(child, self._model_path, self._log_level))
        proc.start()
        child.close()
        self._process, self._conn = proc, parent
        try:
            if not parent.poll(timeout):
                self._stop()
                return False
            msg = parent.recv()
        except (EOFError, OSError):
            self._stop()
            return False
        if msg[0] != "ready":
            self.broken = f"stream forker could not load the model: {msg[1]}"
            log.error("streaming recognition disabled: %s", self.broken)
            self._stop()
            return False
        self.pid = msg[1]
        return True

    def open(self, sample_rate: int, timeout: float) -> StreamChannel | None:
        """A new session process, or None if none could be made in ``timeout``."""
        with self._lock:
            if self.max_streams is not None and self.open_streams >= self.max_streams:
                return None  # full: more calls would slow every call down (docs/benchmarks.md)
            if self.broken or not self._ensure(max(timeout, self._start_timeout)):
                return None
            assert self._conn is not None
            try:
                self._conn.send(("fork",))
                if not self._conn.poll(timeout):
                    self._stop()
                    return None
                kind, pid = self._conn.recv()
                fd = recv_handle(self._conn)
            except (EOFError, OSError):
                self._stop()
                return None
            self.forks += 1
            self.open_streams += 1
        return StreamChannel(Connection(fd), pid, sample_rate, self._closed_one)

    def _closed_one(self) -> None:
        with self._lock:
            self.open_streams -= 1

    def _stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            try:
                self._conn.close()
            except OSError:
                pass
        if self._process is not None:
            self._process.join(2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(2)
        self._process, self._conn, self.pid = None, None, None

    def close(self) -> None:
        with self._lock:
            self._stop()
