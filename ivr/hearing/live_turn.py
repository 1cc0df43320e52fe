"""One spoken turn of a live call: recogniser and endpointer fed the same frames.

The endpointer's wait depends on whether the words so far are already a complete phrase of the
step's grammar; when it decides the turn is over, FinalResult() gives the words (≈ 10 ms).
A partial of several words is not trusted alone: in grammar mode the recogniser can add a
phrase's next word during the silence after the first. So when the caller falls silent on a
complete-looking partial of more than one word, the recogniser process "peeks" (FinalResult()
of the audio so far on a fresh recogniser, the live one untouched), and only a complete peek
that covers the last voiced frame earns the short wait. A peek re-decodes the utterance
(≈ as much CPU again as the live decode), so single-word answers, the common case, skip it.
Times are counted in audio frames, so tests and benches run at any pace and still measure the
decision's delay in audio time; ``final_latency`` is the wall time FinalResult() took.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Sequence

from ivr.hearing.endpointer import FRAME_MS, Endpointer, EndpointSettings, Turn
from ivr.hearing.sessions import StreamResult
from ivr.hearing.streaming import StreamingSession, to_pcm16
from ivr.hearing.understanding import Completeness

PEEK_LEAD_MS = 500  # audio before the start of speech that a peek decodes too
PREROLL_FRAMES = 25  # silence kept before the first voiced frame, for the recogniser (0.5 s)


@dataclass
class TurnResult:
    """What a turn heard. ``result`` None: no input (nothing said, or the recogniser was lost)."""

    result: StreamResult | None
    ended_by: str               # "short" | "long" silence, "max" length, or "lost"
    speech_end_ms: int | None   # audio time of the VAD's last voiced frame
    ended_ms: int               # audio time the end was decided
    final_latency: float        # wall seconds from the decision to the final words


class LiveTurn:
    """Feed frames until ``push`` returns ENDED, then ``finish()``."""

    def __init__(self, session: StreamingSession, phrases: Sequence[str] | None,
                 complete: Completeness, settings: EndpointSettings = EndpointSettings(),
                 max_ms: int = 20_000, lockstep: bool = False, max_wait_ms: int | None = None) -> None:
        """max_ms: the longest answer, from the start of speech; max_wait_ms: how long the turn
        waits for speech to start (None: forever — the media session times the question);
        lockstep: wait for each frame to be decoded before the endpointer sees it, so a feed
        faster than real time (tests, benches) decides as a live call would."""
        self.session = session
        self.lockstep = lockstep
        self.complete = complete
        self.endpointer = Endpointer(settings)
        self.max_ms = max_ms
        self.max_wait_ms = max_wait_ms
        self.started = session.start(phrases)
        self._checked: tuple[str, bool] = ("", False)
        self.peeks = 0
        # Until the VAD first hears voice, frames wait in a short pre-roll instead of being
        # decoded: a question listens from its first prompt on, and decoding seconds of
        # silence per question was most of a live call's recognition CPU.
        self.gated = getattr(session, "decodes_audio", True)
        self.preroll: deque[bytes] = deque()
        self.skipped = 0  # frames never sent to the recogniser (silence before the pre-roll)

    def push(self, frame: bytes) -> Turn:
        """One 20 ms frame (the session's encoding); the turn's state after it."""
        if self.session.lost:
            return Turn.ENDED
        if self.gated:
            return self._push_gated(frame)
        pcm = self.session.feed(frame)
        if self.lockstep:
            self.session.sync()
        return self._decide(self.endpointer.push(pcm, self._complete_so_far()))

    def _push_gated(self, frame: bytes) -> Turn:
        state = self.endpointer.push(to_pcm16(frame, self.session.encoding), False)
        if self.endpointer.voiced_run == 0 and state is Turn.WAITING:
            self.preroll.append(frame)
            if len(self.preroll) > PREROLL_FRAMES:
                self.preroll.popleft()
                self.skipped += 1
            return self._decide(state)
        self.gated = False  # voice: the recogniser hears the pre-roll, then everything
        for waiting in self.preroll:
            self.session.feed(waiting)
        self.preroll.clear()
        self.session.feed(frame)
        if self.lockstep:
            self.session.sync()
        return self._decide(state)

    def _decide(self, state: Turn) -> Turn:
        started = self.endpointer.speech_start_frame
        # The longest answer counts from the start of speech: a question listens from its
        # first prompt on, and a long prompt must not use up the caller's time to answer.
        if state is not Turn.ENDED and started is not None \
                and self.endpointer.elapsed_ms - started * FRAME_MS >= self.max_ms:
            return Turn.ENDED
        if started is None and self.max_wait_ms is not None and self.endpointer.elapsed_ms >= self.max_wait_ms:
            return Turn.ENDED
        return state

    def _complete_so_far(self) -> bool:
        """Complete when the partial is a complete phrase and, if it has more than one word
        (the last may be one the recogniser ran ahead with), a peek covering all the speech
        so far agrees."""
        ep, channel = self.endpointer, self.session.channel
        partial = self.session.partial
        if ep.last_voiced_frame is None or not self._is_complete(partial):
            return False
        if len(partial.split()) == 1:
            return True  # a single word cannot have had a word appended
        last_voiced = ep.last_voiced_frame - self.skipped  # as the recogniser counts frames
        if channel.peeked is not None and channel.peeked[0] >= last_voiced:
            return self._is_complete(channel.peeked[1])
        if ep.silence_ms > 0 and not channel.peek_pending:
            channel.peek(self._peek_from())  # the caller fell silent: what has really been said?
            self.peeks += 1
            if self.lockstep:
                channel.wait_peek()
                if channel.peeked is not None and channel.peeked[0] >= last_voiced:
                    return self._is_complete(channel.peeked[1])
        return False

    def _peek_from(self) -> int:
        """The frame (0-based, as sent to the recogniser) a peek decodes from: PEEK_LEAD_MS before
        the speech started. On a live call the utterance starts with the prompt, seconds before
        the caller speaks; re-decoding all of that made a peek slow enough, on a busy machine,
        to miss the short wait (docs/benchmarks.md, voice over Media Streams). Frames the
        channel dropped were never sent, so they are taken off (erring early, never late)."""
        start = self.endpointer.speech_start_frame
        if start is None:
            return 0
        return max(0, start - 1 - self.skipped - PEEK_LEAD_MS // FRAME_MS - self.session.channel.frames_dropped)

    def _is_complete(self, partial: str) -> bool:
        if partial != self._checked[0]:  # the matcher runs once per new partial, not per frame
            self._checked = (partial, self.complete(partial))
        return self._checked[1]

    def finish(self, timeout: float = 2.0) -> TurnResult:
        ep = self.endpointer
        speech_end = ep.last_voiced_frame * FRAME_MS if ep.last_voiced_frame else None
        t0 = time.perf_counter()
        result = self.session.finish(timeout) if ep.speech_start_frame is not None else None
        if ep.speech_start_frame is None:
            self.session.finish(timeout)  # close the utterance; nothing was said
        latency = time.perf_counter() - t0
        if self.session.lost:
            ended_by = "lost"
        elif ep.state is Turn.ENDED:
            ended_by = "short" if ep.ended_complete else "long"
        else:
            ended_by = "max"
        return TurnResult(result, ended_by, speech_end, ep.elapsed_ms, latency)
