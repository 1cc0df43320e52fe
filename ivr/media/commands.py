"""What the media session asks of its transport and of the call service.

Transport commands (PlayAudio, PlaySilence, Mark, Clear) map one-to-one to wire messages of a
Media Streams socket (media frames, `mark`, `clear`) or to RTP/SIP equivalents. Results (Answer,
HandOff, RoundOver) end the session's current turn: the call service feeds an Answer's event to
the engine and starts the next turn; a HandOff means the wait cannot happen in the stream.
"""
from __future__ import annotations

from dataclasses import dataclass

from ivr.engine import events as ev
from ivr.engine.actions import Enqueue, Hangup, LeaveQueue, Nothing


@dataclass(frozen=True)
class PlayAudio:
    """Queue a prompt's audio: `path` as PromptStore serves it ("/prompts/…wav"); `kind` "say"
    means there is no audio, only `text` (no TTS engine installed)."""

    path: str
    kind: str = "play"
    text: str = ""


@dataclass(frozen=True)
class PlaySilence:
    """Queue `seconds` of silence (a Pause)."""

    seconds: float


@dataclass(frozen=True)
class Mark:
    """Queue a mark after the audio sent so far; its echo says that audio has ended."""

    name: str


@dataclass(frozen=True)
class Clear:
    """Drop all audio still queued (barge-in); the marks behind it come back at once."""


@dataclass(frozen=True)
class Answer:
    """The caller's answer to this turn, for the engine."""

    event: ev.KeysPressed | ev.NoInput | ev.SpeechHeard | ev.QueueKeyPressed


@dataclass(frozen=True)
class HandOff:
    """This turn's prompts have played and its wait leaves the stream: close it so the
    webhook (or SIP dialog) enqueues, leaves the queue or hangs up."""

    wait: Enqueue | LeaveQueue | Hangup | Nothing


@dataclass(frozen=True)
class RoundOver:
    """A queue hold round ended without a key: ask the queue for the next announcement."""


Command = PlayAudio | PlaySilence | Mark | Clear
Result = Answer | HandOff | RoundOver
Output = Command | Result
