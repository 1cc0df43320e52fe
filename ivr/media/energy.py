"""The simplest SpeechDetector: loudness of the caller's μ-law frames, no words.

It exists so the session's audio path runs end to end before a real VAD and Vosk plug in
(docs/reference realtime-voice.md §4 measured webrtcvad at ≈ 0.0001 CPU s per audio second, the
likely replacement). Loudness cannot tell speech from a television, so it only suits quiet
lines and tests. It reports no words: an utterance it ends is "" (noise) to the session, so on
its own it can interrupt a prompt (policy "any") but never answer a question.

Timing follows the frameworks in the reference: voice must last `start_seconds` (0.2 s, Pipecat's
`start_secs`; jambonz 250 ms) before it counts, and `stop_seconds` (0.8 s, Pipecat's default until
2026 and longer than the inter-word pauses of older speakers) of quiet ends it. The start delay
comes on top of the session's min_voiced_seconds.
"""
from __future__ import annotations

import math
import warnings

from ivr.media.speech import SpeechEnded, SpeechSignal, SpeechStarted

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # noqa: E402 - as in ivr/hearing/audio.py (audioop-lts on Python >= 3.13)

RATE = 8000  # Media Streams: audio/x-mulaw, 8000 Hz, mono, "always"


def mulaw_dbfs(frame: bytes) -> float:
    """Loudness of a μ-law frame in dB below a full-scale 16-bit square wave."""
    if not frame:
        return -math.inf
    rms = audioop.rms(audioop.ulaw2lin(frame, 2), 2)
    return 20 * math.log10(rms / 32768) if rms else -math.inf


class EnergyDetector:
    def __init__(self, threshold_dbfs: float = -40.0, start_seconds: float = 0.2,
                 stop_seconds: float = 0.8) -> None:
        self.threshold_dbfs = threshold_dbfs
        self.start_seconds = start_seconds
        self.stop_seconds = stop_seconds
        self.begin(None)

    def begin(self, grammar: str | None) -> None:
        self._speaking = False
        self._run = 0.0  # seconds of voice (while quiet) or of quiet (while speaking) in a row

    def feed(self, frame: bytes, at: float) -> list[SpeechSignal]:
        loud = mulaw_dbfs(frame) >= self.threshold_dbfs
        seconds = len(frame) / RATE
        if loud != self._speaking:
            self._run += seconds
        else:
            self._run = 0.0
        if not self._speaking and self._run >= self.start_seconds - 1e-9:
            self._speaking, self._run = True, 0.0
            return [SpeechStarted()]
        if self._speaking and self._run >= self.stop_seconds - 1e-9:
            self._speaking, self._run = False, 0.0
            return [SpeechEnded("")]
        return []
