"""The boundary to a voice activity detector and a streaming recogniser.

A detector turns the caller's audio into three signals; the session decides what they mean
(barge-in, an answer, nothing). Transports that run the recogniser in a thread pool (one Vosk
recogniser per call, see docs) can hand the signals to `MediaSession.heard` instead of feeding
frames through `MediaSession.audio_frame`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SpeechStarted:
    """The detector hears voice: an utterance starts, or one that paused goes on.
    `voiced_seconds`: voice the detector heard before it said so (its start delay)."""

    voiced_seconds: float = 0.0


@dataclass(frozen=True)
class SpeechPaused:
    """Silence inside an utterance that has not ended (a pause between words); it began
    `silent_seconds` ago. Barge-in counts voiced time only."""

    silent_seconds: float = 0.0


@dataclass(frozen=True)
class WordsSoFar:
    """A partial result: the recogniser's words so far (may still change)."""

    text: str


@dataclass(frozen=True)
class SpeechEnded:
    """The utterance ended; `text` is the final result ("" if nothing was recognised)."""

    text: str


SpeechSignal = SpeechStarted | SpeechPaused | WordsSoFar | SpeechEnded


class SpeechDetector(Protocol):
    """Voice activity detection plus recognition for one call."""

    def begin(self, grammar: str | None) -> None:
        """A new question: forget any utterance in progress, recognise against `grammar`."""

    def feed(self, frame: bytes, at: float) -> list[SpeechSignal]:
        """One frame of the caller's audio (8 kHz μ-law as Media Streams carries it) at media
        time `at` seconds; the signals it completes."""
        ...
