"""From a caller's recording to an understood answer (recognition, then understanding).

Recognition runs in a separate process pool (Vosk can abort its process); understanding is the
grammar matcher.  Tests and the terminal phone may inject the recogniser's text: a recording
that carries a transcript (ivr.hearing.transcript_wav) skips recognition when allowed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.engine.events import SpeechHeard
from ivr.hearing.transcript_wav import read_transcript

log = logging.getLogger(__name__)


class Recogniser(Protocol):
    def transcribe(self, audio: bytes, context: str, timeout: float) -> str | None: ...


class Understander(Protocol):
    def __call__(self, context: str, text: str, lang: str = "cmn") -> Any: ...


@dataclass
class Hearing:
    recogniser: Recogniser | None
    understand: Understander | None
    transcripts_allowed: bool = False

    @property
    def enabled(self) -> bool:
        return self.understand is not None and (self.recogniser is not None or self.transcripts_allowed)

    def hear(self, audio: bytes, context: str, language: str, timeout: float) -> SpeechHeard | None:
        """None means nothing usable was heard: the caller gets the no-input reprompt."""
        if self.understand is None:
            return None
        text = read_transcript(audio) if self.transcripts_allowed else None
        if text is None and self.recogniser is not None:
            text = self.recogniser.transcribe(audio, context, timeout)
        if text is None:
            return None
        if not text.strip():
            return SpeechHeard(text="", intent=None, score=0.0, band="reject")
        understood = self.understand(context, text, language)
        return SpeechHeard(text=text, intent=understood.intent, score=understood.score,
                           band=understood.band, slots=dict(understood.slots))
