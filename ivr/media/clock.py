"""Where the media session reads the time, so tests run on virtual time without sleeping."""
from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Seconds on a monotonic scale; only differences matter."""

    def now(self) -> float: ...


class MonotonicClock:
    """The real clock for live calls (monotonic: a wall-clock jump cannot fire a timer)."""

    def now(self) -> float:
        return time.monotonic()


class VirtualClock:
    """A clock that moves only when told, for tests and the simulator."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds
        return self._now
