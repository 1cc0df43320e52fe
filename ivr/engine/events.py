"""What can happen to a call, as the engine sees it (the telephony adapter creates these)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallStarted:
    caller: str
    called: str


@dataclass(frozen=True)
class KeysPressed:
    digits: str
    finished: bool = True  # False: the entry ended by a pause, not by # or its full length


@dataclass(frozen=True)
class NoInput:
    """The caller said and pressed nothing before the timeout (or the audio was unusable)."""


@dataclass(frozen=True)
class SpeechHeard:
    """Recognised and understood speech: an intent with its slots, and how sure we are.

    band is the matcher's verdict: "accept" (act on it), "confirm" (ask "您是说…对吗？") or
    "reject" (treated like a wrong key).
    """

    text: str
    intent: str | None = None
    score: float = 0.0
    band: str = "reject"
    slots: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueWaiting:
    position: int
    queue_seconds: int


@dataclass(frozen=True)
class QueueKeyPressed:
    digits: str


@dataclass(frozen=True)
class QueueEnded:
    """How a wait in the queue ended: bridged, left, hung_up, taken (by an operator), failed."""

    result: str


@dataclass(frozen=True)
class CallEnded:
    status: str
    duration_seconds: int | None = None


Event = (CallStarted | KeysPressed | NoInput | SpeechHeard | QueueWaiting | QueueKeyPressed
         | QueueEnded | CallEnded)
