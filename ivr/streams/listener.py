"""One streamed call's ears: the caller's frames go to the call's own recogniser process
(ivr.hearing) in a thread of their own, and speech signals come back for the media session.

The event loop only queues frames (never blocks on the recogniser); a recogniser that falls
behind loses frames, not the call; a lost recogniser makes the call keys-only for the rest of
it.  Signals are handed back through `deliver`, which the stream server points at its loop.
"""
from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any, Callable

from ivr.hearing.endpointer import EndpointSettings, Turn
from ivr.hearing.grammar import GrammarError
from ivr.hearing.live_turn import LiveTurn
from ivr.hearing.understanding import grammar_completeness
from ivr.media.speech import SpeechEnded, SpeechPaused, SpeechSignal, SpeechStarted, WordsSoFar

log = logging.getLogger(__name__)
BACKLOG_FRAMES = 250  # 5 s of 20 ms frames
PAUSE_MS = 100  # VAD silence inside an utterance reported as a pause
PAUSE_LAG_SECONDS = (PAUSE_MS + 80) / 1000  # + webrtcvad's hang-over: voice → SpeechPaused
FRAME_BYTES = 160  # what the endpointer takes: 20 ms of 8 kHz μ-law (Twilio's frames are not promised)


class CallListener:
    def __init__(self, recogniser: Any, settings: EndpointSettings, grammars_dir: Path,
                 deliver: Callable[[SpeechSignal], None]) -> None:
        self.recogniser, self.settings, self.grammars_dir, self.deliver = recogniser, settings, grammars_dir, deliver
        # Unbounded, so the event loop never waits on it; frames beyond the backlog are dropped.
        self.inbox: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self.dropped = 0  # frames lost here (the backlog)
        self.recogniser_dropped = 0  # frames the call's recogniser channel refused (its backlog)
        self.session: Any = None  # the call's recogniser process (StreamingSession), opened at the first question
        self.live: LiveTurn | None = None
        self.buffered = bytearray()
        self.speaking, self.paused, self.partial = False, False, ""
        self.turns = 0  # questions heard
        self.items_put = 0  # written by the event loop's thread only
        self.items_done = 0  # written by the listener's thread only, after the item's signals
        self.thread = threading.Thread(target=self._run, name="call-listener", daemon=True)
        self.thread.start()

    @property
    def idle(self) -> bool:
        """Every frame and question handed over has been heard and its signals delivered."""
        return self.items_done == self.items_put

    def begin(self, grammar: str | None, language: str) -> None:
        """A new question that listens: recognise its grammar from the next frame on."""
        self._put(("begin", (grammar, language)))

    def feed(self, audio: bytes) -> None:
        """Caller audio: one 20 ms frame or several (the stream server hands over 100 ms at a
        time, so 50 calls wake their threads 500 times a second, not 2 500)."""
        frames = max(len(audio) // FRAME_BYTES, 1)
        if self.inbox.qsize() * frames >= BACKLOG_FRAMES:
            self.dropped += frames  # the recogniser is behind: lose audio, never the event loop
            return
        self._put(("frame", audio))

    def _put(self, item: tuple[str, Any]) -> None:
        self.items_put += 1
        self.inbox.put_nowait(item)

    def close(self) -> None:
        self.inbox.put_nowait(None)

    def _run(self) -> None:
        try:
            self._listen()
        except Exception:  # noqa: BLE001 - the call goes on with keys
            log.exception("call listener failed: the rest of the call answers with keys")
            while self.inbox.get() is not None:  # let the server's queueing go on, unheard
                self.items_done += 1
        finally:  # even after a failure: an unclosed session held its live-call place for good
            if self.session is not None:
                if self.turns:
                    self.recogniser_dropped += self.session.channel.frames_dropped
                self.session.close()
            log.info("call listener done: %d frames dropped at the backlog, %d by the recogniser",
                     self.dropped, self.recogniser_dropped)

    def _listen(self) -> None:
        while (item := self.inbox.get()) is not None:
            try:
                self._hear(item)
            finally:
                self.items_done += 1

    def _hear(self, item: tuple[str, Any]) -> None:
        kind, value = item
        if kind == "begin":
            grammar, language = value
            if self.session is None:
                self.session = self.recogniser.open_session("mulaw", 8000)
            if self.live is not None:
                self.live.finish()  # an unfinished utterance of the question before: dropped
                self.live = None
            session = self.session
            if session is None or session.lost or grammar is None:
                return  # keys only for this question
            if self.turns:
                self.recogniser_dropped += session.channel.frames_dropped  # start() resets it
            self.turns += 1
            complete = grammar_completeness(grammar, language, grammars=self.grammars_dir)
            try:
                self.live = LiveTurn(session, self.recogniser.phrases(grammar), complete, self.settings)
            except GrammarError as exc:  # the model cannot say this grammar: keys only for it
                log.warning("grammar %s cannot be recognised (%s): keys only at this question", grammar, exc)
                return
            self.speaking, self.partial = False, ""
            self.buffered.clear()
        elif self.live is not None:
            self.buffered += value
            while self.live is not None and len(self.buffered) >= FRAME_BYTES:
                frame, self.buffered[:FRAME_BYTES] = bytes(self.buffered[:FRAME_BYTES]), b""
                self._push(frame)

    def _push(self, frame: bytes) -> None:
        live, session = self.live, self.session
        state = live.push(frame)
        if state is not Turn.WAITING and not self.speaking:
            self.speaking, self.paused = True, False
            self.deliver(SpeechStarted(voiced_seconds=self.settings.speech_start_ms / 1000))
        elif state is Turn.SPEAKING:
            silent = live.endpointer.silence_ms
            if silent >= PAUSE_MS and not self.paused:
                self.paused = True  # a pause between words: barge-in counts voiced time only
                self.deliver(SpeechPaused(silent_seconds=silent / 1000))
            elif silent == 0 and self.paused:
                self.paused = False
                self.deliver(SpeechStarted())
        if session.partial and session.partial != self.partial:
            self.partial = session.partial
            self.deliver(WordsSoFar(self.partial))
        if state is Turn.ENDED:
            heard = live.finish()
            self.live = None
            if self.speaking:
                self.deliver(SpeechEnded(heard.result.text if heard.result else ""))
