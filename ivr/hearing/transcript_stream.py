"""Live audio that carries the caller's words, for the simulator and the tests (SPEECH=transcript).

The streamed twin of transcript_wav: a simulated caller speaks real audio (so the VAD and the
endpointer decide start and end of speech as on a live call) and, right after each stretch of
voice, sends one 20 ms frame that carries the words of that stretch as text.  This recogniser
reports those words as its partial and final results, in place of Vosk: words are injected at
the recogniser boundary and everything around it — the socket, the listener thread, the VAD,
the endpointer's short and long waits, barge-in — runs as for a real call.
"""
from __future__ import annotations

import warnings
from typing import Sequence

from ivr.hearing.sessions import StreamResult

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

MAGIC = b"\x7f\x7fWORDS\x7f"  # μ-law 0x7f is silence: the frame is quiet if played
FRAME_BYTES = 160
SILENT_PCM = b"\0\0" * FRAME_BYTES


def words_frame(words: str) -> bytes:
    """One 20 ms μ-law frame carrying `words` (space-separated, as a recogniser outputs them)."""
    payload = MAGIC + words.encode("utf-8") + b"\0"
    if len(payload) > FRAME_BYTES:
        raise ValueError(f"too many words for one frame: {words!r} (say them in shorter stretches)")
    return payload + b"\xff" * (FRAME_BYTES - len(payload))


def words_in(frame: bytes) -> str | None:
    if not frame.startswith(MAGIC):
        return None
    return frame[len(MAGIC):].split(b"\0", 1)[0].decode("utf-8", errors="replace")


class _Channel:
    """What LiveTurn reads of a recogniser channel: a peek here is exact and immediate."""

    def __init__(self) -> None:
        self.frames = 0
        self.peeked: tuple[int, str] | None = None
        self.peek_pending = False
        self.partial = ""
        self.frames_dropped = 0

    def peek(self, from_frame: int = 0) -> None:
        self.peeked = (self.frames, self.partial)

    def wait_peek(self, timeout: float = 2.0) -> None:
        return None


class TranscriptSession:
    """One call's 'recogniser': the words its audio carries, utterance by utterance."""

    lost: str | None = None
    decodes_audio = False  # words arrive in frames of their own: nothing to gate
    encoding = "mulaw"

    def __init__(self, encoding: str = "mulaw") -> None:
        if encoding != "mulaw":
            raise ValueError("transcript audio is μ-law, as Media Streams carry it")
        self.channel = _Channel()

    @property
    def partial(self) -> str:
        return self.channel.partial

    def start(self, phrases: Sequence[str] | None, timeout: float = 5.0) -> bool:
        self.channel = _Channel()
        return True

    def feed(self, frame: bytes) -> bytes:
        self.channel.frames += 1
        words = words_in(frame)
        if words is None:
            return audioop.ulaw2lin(frame, 2)
        self.channel.partial = " ".join(w for w in (self.channel.partial, words) if w)
        return SILENT_PCM[:len(frame) * 2]

    def sync(self, timeout: float = 2.0) -> bool:
        return True

    def finish(self, timeout: float = 2.0) -> StreamResult | None:
        text, frames = self.channel.partial, self.channel.frames
        self.channel = _Channel()
        return StreamResult(text=text, confidence=1.0 if text else 0.0, frames=frames)

    def close(self) -> None:
        return None


class TranscriptRecogniser:
    """The recogniser of SPEECH=transcript: live calls take the words their audio carries;
    recordings are heard through their transcript (ivr.hearing.batch), never recognised."""

    def open_session(self, encoding: str = "mulaw", sample_rate: int = 8000) -> TranscriptSession:
        return TranscriptSession(encoding)

    def phrases(self, context: str) -> tuple[str, ...]:
        return ()

    def transcribe(self, audio: bytes, context: str, timeout: float) -> str | None:
        return None
