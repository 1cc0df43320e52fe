"""Opening hours of the callback team, in Shanghai local time.

Kept as a small value object parsed from one config string ("09:00-12:00,13:30-17:00")
so the lunch break is explicit and callbacks are never offered during it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from ivr.scheduling.calendar import WorkCalendar

__all__ = ["SHANGHAI", "OpeningHours", "is_open", "to_shanghai"]

#: All scheduling happens in this zone (no DST since 1991, so local arithmetic is safe).
SHANGHAI = ZoneInfo("Asia/Shanghai")

_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
# Accept the Chinese punctuation an operator may type with a Chinese keyboard.
_INTERVAL_SEPARATORS = re.compile(r"[,，;；]")
_RANGE_SEPARATORS = re.compile(r"\s*(?:-|–|—|~|～|至|到)\s*")


def to_shanghai(now: datetime) -> datetime:
    """Convert an aware datetime to Asia/Shanghai; naive ones are refused to avoid guessing."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"datetime {now.isoformat()} has no timezone; pass an aware datetime")
    return now.astimezone(SHANGHAI)


def _parse_time(text: str, whole: str) -> time:
    match = _TIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"opening hours {whole!r}: {text.strip()!r} is not a time like 09:00")
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        raise ValueError(f"opening hours {whole!r}: {text.strip()!r} is not a valid time of day (00:00-23:59)")
    return time(hour, minute)


@dataclass(frozen=True)
class OpeningHours:
    """Non-overlapping (start, end) intervals of a working day, sorted; end is exclusive."""

    intervals: tuple[tuple[time, time], ...]

    def __post_init__(self) -> None:
        """Validate on every construction path, not just ``parse``, so bad hours fail early."""
        ordered = tuple(sorted((tuple(iv) for iv in self.intervals), key=lambda iv: iv[0]))
        if not ordered:
            raise ValueError("opening hours need at least one interval, e.g. 09:00-17:00")
        for start, end in ordered:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("opening-hour times must be naive (they are Asia/Shanghai local times)")
            if end <= start:
                raise ValueError(
                    f"opening-hours interval {start:%H:%M}-{end:%H:%M} ends before it starts "
                    "(intervals cannot cross midnight)"
                )
        for (s1, e1), (s2, e2) in zip(ordered, ordered[1:]):
            if s2 < e1:
                raise ValueError(f"opening-hours intervals {s1:%H:%M}-{e1:%H:%M} and {s2:%H:%M}-{e2:%H:%M} overlap")
        object.__setattr__(self, "intervals", ordered)

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        """Parse "09:00-12:00,13:30-17:00" (spaces and Chinese punctuation tolerated)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("opening hours are empty; expected something like '09:00-12:00,13:30-17:00'")
        intervals: list[tuple[time, time]] = []
        for part in _INTERVAL_SEPARATORS.split(text):
            if not part.strip():
                raise ValueError(f"opening hours {text!r}: empty interval (stray comma?)")
            bounds = _RANGE_SEPARATORS.split(part.strip())
            if len(bounds) != 2:
                raise ValueError(f"opening hours {text!r}: {part.strip()!r} is not an interval like 09:00-12:00")
            intervals.append((_parse_time(bounds[0], text), _parse_time(bounds[1], text)))
        try:
            return cls(tuple(intervals))
        except ValueError as exc:
            raise ValueError(f"opening hours {text!r}: {exc}") from None

    def __str__(self) -> str:
        """Round-trips through ``parse``; handy in logs and config dumps."""
        return ",".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in self.intervals)

    def contains(self, t: time) -> bool:
        """True if local time-of-day ``t`` falls inside an interval (start inclusive, end exclusive)."""
        return any(start <= t < end for start, end in self.intervals)


def is_open(now: datetime, hours: OpeningHours, calendar: WorkCalendar) -> bool:
    """True when staff are working at ``now`` (any aware datetime; judged in Shanghai time)."""
    local = to_shanghai(now)
    return calendar.is_working_day(local.date()) and hours.contains(local.time())
