"""End of speech for live calls: a VAD on the caller's audio, waiting longer unless the answer
is already complete.

Why not Vosk's own endpointer: in vosk 0.3.45 its rules are fixed per loaded model
(conf/model.conf) and it fires ≈ 0.9 s after speech; shortening them split answers at the pauses
older callers make between words (docs/speech.md, "Streaming and endpointing"). Here webrtcvad
(8 kHz, 20 ms frames, ≈ 0.0001 CPU s per audio s) marks each frame voiced or not, and:

- speech starts after ``speech_start_ms`` of consecutive voiced frames (clicks do not start it;
  it does not delay the end, which is counted from the last voiced frame);
- once started, the turn ends after ``short_silence_ms`` of trailing silence when the current
  partial result is a complete phrase of the step's grammar, else after ``long_silence_ms``;
  the caller then calls the recogniser's FinalResult() (≈ 10 ms in grammar mode).

The completeness of the partial is passed in with each frame, so this module knows nothing of
grammars or recognisers, and is tested on its own with real audio.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import webrtcvad

FRAME_MS = 20
SAMPLE_RATE = 8000
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2  # 16-bit mono PCM


@dataclass(frozen=True)
class EndpointSettings:
    """Settable per deployment (ENDPOINT_* settings, docs/settings.md); defaults measured in
    docs/speech.md: a 0.7 s pause between words shows as ≤ 0.68 s of VAD silence, and the VAD's
    last voiced frame trails the real end of speech by ≈ 0.12 s."""

    short_silence_ms: int = 300   # complete phrase: 0.12 + 0.30 + FinalResult ≈ 0.45 s ≤ 0.5 s
    long_silence_ms: int = 750    # otherwise: > 0.68 s inner pauses, 0.12 + 0.75 ≈ 0.89 s ≤ 0.9 s
    speech_start_ms: int = 200    # webrtcvad flags 4 more frames after any voice: bursts
                                  # ≤ 100 ms (clicks) stay out, a 0.34 s "네" is 22 frames
    vad_mode: int = 2             # webrtcvad aggressiveness 0-3

    def __post_init__(self) -> None:
        if not 0 <= self.vad_mode <= 3:
            raise ValueError("vad_mode must be 0-3")
        if not 0 < self.short_silence_ms <= self.long_silence_ms:
            raise ValueError("need 0 < short_silence_ms <= long_silence_ms")
        if self.speech_start_ms < FRAME_MS:
            raise ValueError(f"speech_start_ms must be at least one frame ({FRAME_MS} ms)")


class Turn(enum.Enum):
    WAITING = "waiting"    # no speech yet
    SPEAKING = "speaking"  # speech started, not ended
    ENDED = "ended"        # end of speech decided: call FinalResult()


class Endpointer:
    """One utterance's end-of-speech decision, frame by frame (8 kHz 16-bit PCM, 20 ms)."""

    def __init__(self, settings: EndpointSettings = EndpointSettings()) -> None:
        self.settings = settings
        self._vad = webrtcvad.Vad(settings.vad_mode)
        self._start_frames = -(-settings.speech_start_ms // FRAME_MS)
        self.state = Turn.WAITING
        self.frames = 0             # frames seen
        self.voiced_run = 0
        self.silence_ms = 0         # trailing silence since the last voiced frame
        self.speech_start_frame: int | None = None
        self.last_voiced_frame: int | None = None
        self.ended_complete: bool | None = None  # whether the short silence ended it

    def push(self, frame: bytes, complete: bool = False) -> Turn:
        """One frame; ``complete``: the latest partial is already a whole phrase of the grammar."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"frames are {FRAME_BYTES} bytes of 8 kHz 16-bit PCM ({FRAME_MS} ms)")
        if self.state is Turn.ENDED:
            return self.state
        self.frames += 1
        voiced = self._vad.is_speech(frame, SAMPLE_RATE)
        if voiced:
            self.voiced_run += 1
            self.silence_ms = 0
            self.last_voiced_frame = self.frames
            if self.state is Turn.WAITING and self.voiced_run >= self._start_frames:
                self.state = Turn.SPEAKING
                self.speech_start_frame = self.frames - self.voiced_run + 1
            return self.state
        self.voiced_run = 0
        if self.state is Turn.SPEAKING:
            self.silence_ms += FRAME_MS
            wait = self.settings.short_silence_ms if complete else self.settings.long_silence_ms
            if self.silence_ms >= wait:
                self.state = Turn.ENDED
                self.ended_complete = complete
        return self.state

    @property
    def elapsed_ms(self) -> int:
        return self.frames * FRAME_MS
