"""A time budget for one request, shared by every layer that can wait (database, recordings,
recognition) without passing it through each call.

Twilio gives a webhook 15 s before it plays its own error; a turn that waits on a locked
database or a slow recording must give up in time for the caller to hear our apology and a way
on.  The webhook adapter opens a budget; the waiting layers ask how long they may still wait.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Everything inside shares one deadline `seconds` from now (a shorter outer one wins)."""
    outer = _deadline.get()
    mine = time.monotonic() + seconds
    token = _deadline.set(mine if outer is None else min(outer, mine))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining(cap: float, keep: float = 0.0) -> float:
    """How long a wait may last: `cap`, or less if the request's budget ends sooner, keeping
    `keep` seconds of it for what must still happen afterwards (≥ 0)."""
    deadline = _deadline.get()
    if deadline is None:
        return cap
    return max(min(cap, deadline - time.monotonic() - keep), 0.0)


def active() -> bool:
    return _deadline.get() is not None
