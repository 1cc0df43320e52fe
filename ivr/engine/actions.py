"""What the engine asks the telephony side to do; rendered as TwiML by the adapter."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prompt:
    """A prompt by id with its words already filled in, in the language the caller hears."""

    prompt_id: str
    language: str
    text: str
    fallback_text: str = ""  # Mandarin words, used when the language has no recording
    static: bool = True  # no variables filled in: a recording of the id may replace it
    slow: bool = False  # the caller asked for slower speech


@dataclass(frozen=True)
class Pause:
    """A short silence, e.g. after a key press while the handset goes back to the ear."""

    seconds: float


Speech = Prompt | Pause


@dataclass(frozen=True)
class Ask:
    """Play prompts and wait for keys (and, later, speech for `grammar`)."""

    max_digits: int
    finish_on_key: str
    timeout: int
    grammar: str | None = None
    listen: bool = False  # also record a spoken answer (a recogniser is installed)
    barge_in: str = "any"  # the step's policy: "any" (voice or keys), "keys", "none" (media streams)


@dataclass(frozen=True)
class Enqueue:
    queue: str


@dataclass(frozen=True)
class Hold:
    """One round of the queue's wait loop: announce, then accept `leave_key` for `timeout` s."""

    leave_key: str
    timeout: int


@dataclass(frozen=True)
class LeaveQueue:
    pass


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Nothing:
    """The call is over; nothing to say."""


Wait = Ask | Enqueue | Hold | LeaveQueue | Hangup | Nothing


@dataclass(frozen=True)
class Turn:
    """The engine's whole answer to one event: what to play, then what to wait for."""

    speech: list[Speech] = field(default_factory=list)
    wait: Wait = field(default_factory=Nothing)
    step: str = ""
