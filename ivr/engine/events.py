"""What can happen to a call, as the engine sees it (the telephony adapter creates these)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallStarted:
    caller: str
    called: str


@dataclass(frozen=True)
class KeysPressed:
    digits: str


@dataclass(frozen=True)
class NoInput:
    """The caller said and pressed nothing before the timeout (or the audio was unusable)."""


@dataclass(frozen=True)
class SpeechHeard:
    """Recognised speech; understood by the matcher (speech issue) into an intent or digits."""

    text: str
    intent: str | None = None
    digits: str | None = None
    confidence: float = 0.0


@dataclass(frozen=True)
class QueueWaiting:
    position: int
    queue_seconds: int


@dataclass(frozen=True)
class QueueKeyPressed:
    digits: str


@dataclass(frozen=True)
class QueueEnded:
    """Twilio's QueueResult: bridged, queue-full, leave, hangup, error, system-error, redirected."""

    result: str


@dataclass(frozen=True)
class CallEnded:
    status: str
    duration_seconds: int | None = None


Event = (CallStarted | KeysPressed | NoInput | SpeechHeard | QueueWaiting | QueueKeyPressed
         | QueueEnded | CallEnded)
