"""A call's live recogniser: 20 ms frames of the caller's audio in, partial words out, and the
final text from FinalResult() when the caller's turn ends.

Twilio Media Streams deliver 8 kHz μ-law in 20 ms frames (160 bytes); tests and other sources
may give 16-bit PCM (320 bytes). Frames go to the call's own recogniser process without waiting
for it (pool.RecognizerPool.open_stream), so a slow or crashed recogniser never stalls the
call's audio thread, and never another call: a lost process makes ``finish()`` return None,
which the caller treats as no input, as for a recording.
"""
from __future__ import annotations

import warnings
from typing import Literal, Sequence

from ivr.hearing.sessions import StreamChannel, StreamResult

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

Encoding = Literal["mulaw", "pcm16"]


def to_pcm16(frame: bytes, encoding: Encoding) -> bytes:
    """One frame as 16-bit little-endian PCM (what the VAD and the recogniser take)."""
    if encoding == "mulaw":
        return audioop.ulaw2lin(frame, 2)
    if encoding == "pcm16":
        return frame
    raise ValueError(f"unknown encoding {encoding!r} (mulaw or pcm16)")


class StreamingSession:
    """One call's recognition: utterances one after another in one recogniser process."""

    def __init__(self, channel: StreamChannel, encoding: Encoding = "mulaw") -> None:
        to_pcm16(b"", encoding)  # ValueError early for an unknown encoding
        self.channel = channel
        self.encoding: Encoding = encoding

    @property
    def lost(self) -> str | None:
        """Why the recogniser process is gone (crash, overrun, closed), else None."""
        return self.channel.lost

    @property
    def partial(self) -> str:
        """The latest partial words of the current utterance (space-separated)."""
        return self.channel.partial

    def start(self, phrases: Sequence[str] | None, timeout: float = 5.0) -> bool:
        """Begin an utterance for a step's grammar; False when the process is lost."""
        return self.channel.start(phrases, timeout)

    def feed(self, frame: bytes) -> bytes:
        """Hand one frame to the recogniser; returns it as 16-bit PCM for the endpointer."""
        pcm = to_pcm16(frame, self.encoding)
        self.channel.feed(pcm)
        return pcm

    def sync(self, timeout: float = 2.0) -> bool:
        """Wait until every frame fed is decoded (for feeding faster than real time)."""
        return self.channel.sync(timeout)

    def finish(self, timeout: float = 2.0) -> StreamResult | None:
        """The utterance's final words (FinalResult()), or None for no input."""
        return self.channel.finish(timeout)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "StreamingSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
