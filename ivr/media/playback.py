"""Which audio has played: marks sent, and whether each echo means "played" or "cleared".

A Media Streams mark comes back when the audio queued before it has played, and also when a
`clear` dropped that audio. Echoes arrive in the order the marks were sent, so a queue of the
marks still out tells them apart: Clear turns every mark still out into a cleared one.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass
class SentMark:
    name: str
    turn: int
    last: bool  # the last prompt of its turn: its echo ends the turn's audio
    cleared: bool = False
    index: int = 0  # the prompt's place in its turn's speech


class Playback:
    def __init__(self) -> None:
        self._out: deque[SentMark] = deque()

    def sent(self, name: str, turn: int, last: bool, index: int = 0) -> None:
        self._out.append(SentMark(name, turn, last, index=index))

    def unplayed_from(self, turn: int) -> int | None:
        """The first prompt of `turn` not played to its end (None: all have played)."""
        return min((m.index for m in self._out if m.turn == turn and not m.cleared), default=None)

    def clear(self) -> bool:
        """Every mark still out now echoes as cleared; True if any audio was still queued."""
        pending = [m for m in self._out if not m.cleared]
        for mark in pending:
            mark.cleared = True
        return bool(pending)

    def playing(self, turn: int) -> bool:
        """Whether audio of `turn` is still queued and not cleared."""
        return any(m.turn == turn and not m.cleared for m in self._out)

    def echo(self, name: str) -> SentMark | None:
        """The mark this echo answers (played unless `cleared`), or None for an echo of a mark
        never sent (ignored). Marks skipped over are taken as echoed: echoes keep their order."""
        if not any(m.name == name for m in self._out):
            return None
        while True:
            mark = self._out.popleft()
            if mark.name == name:
                return mark
