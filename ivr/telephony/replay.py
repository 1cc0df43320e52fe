"""What the webhook adapter keeps with each turn so that Twilio's retries are harmless.

Every action URL carries the turn's number (`?t=N`); the reply to turn N is stored with the call
in the turn's own transaction.  A request for an older number (a retry, or a forged or garbled
token) gets that stored reply again and changes nothing, so a booking confirmed in a retried
request is made once.  Other transports (a media stream) keep none of this.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from ivr.db.models import CallSession
from ivr.engine.actions import Turn

Render = Callable[[Turn, int], str]


@dataclass(frozen=True)
class WebhookReplies:
    """A Keeper (ivr.calls) that answers with TwiML.

    replays: "always" (the first request: a second one is a retry), "stale" (a turn request:
    replayed unless its token is the current turn), "never" (the service starts a turn itself:
    after an error, back from an operator).  numbered=False: the queue's wait loop, which must
    not change the turn its Enqueue action carries.
    """

    render: Render
    replays: Literal["always", "stale", "never"] = "never"
    token: int = -1
    numbered: bool = True

    @classmethod
    def first(cls, render: Render) -> "WebhookReplies":
        return cls(render, "always")

    @classmethod
    def turn(cls, render: Render, token: int) -> "WebhookReplies":
        return cls(render, "stale", token)

    @classmethod
    def queue_loop(cls, render: Render) -> "WebhookReplies":
        return cls(render, numbered=False)

    def replay(self, row: CallSession) -> str | None:
        if self.replays == "always" or (self.replays == "stale" and self.token != row.turn):
            return row.last_response
        return None

    def answer(self, row: CallSession, turn: Turn) -> str:
        if not self.numbered:
            return self.render(turn, row.turn)
        row.turn += 1
        row.last_response = self.render(turn, row.turn)
        return row.last_response

    def unchanged(self, row: CallSession) -> str:
        return row.last_response
