"""Callback slots: which concrete times we can offer a caller, in Asia/Shanghai.

Older callers cope badly with long menus, so ``offer_slots`` gives a few choices that
are easy to say and remember — at most one per half-day ("今天下午", "明天上午") —
instead of every free slot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from ivr.scheduling.calendar import WorkCalendar
from ivr.scheduling.hours import SHANGHAI, OpeningHours, to_shanghai

__all__ = ["Period", "Slot", "candidate_slots", "offer_slots", "slot_from_key"]

Period = Literal["morning", "afternoon", "evening"]

_NOON = time(12, 0)
_EVENING = time(18, 0)


@dataclass(frozen=True)
class Slot:
    """One callback slot [start, end), stored in Asia/Shanghai so ``key`` is stable."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        """Normalise to Shanghai: the key is a DB id, so the same instant must give the same text."""
        start, end = to_shanghai(self.start), to_shanghai(self.end)
        if end <= start:
            raise ValueError(f"slot end {end.isoformat()} is not after start {start.isoformat()}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def key(self) -> str:
        """Booking id, e.g. "2026-11-26T09:00:00+08:00" (start time, ISO 8601, Shanghai offset)."""
        return self.start.isoformat()

    @property
    def day(self) -> date:
        """Local (Shanghai) calendar date of the slot."""
        return self.start.date()

    @property
    def period(self) -> Period:
        """Half-day the slot starts in, for wording like 上午/下午/晚上."""
        t = self.start.time()
        if t < _NOON:
            return "morning"
        if t < _EVENING:
            return "afternoon"
        return "evening"


def _check_positive(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _iter_slots(
    now: datetime, hours: OpeningHours, calendar: WorkCalendar, step: timedelta, lead: timedelta, horizon_days: int
) -> Iterator[Slot]:
    local_now = to_shanghai(now)
    earliest = local_now + lead
    today = local_now.date()
    for offset in range(horizon_days):
        day = today + timedelta(days=offset)
        if not calendar.is_working_day(day):
            continue
        for start_t, end_t in hours.intervals:
            start = datetime.combine(day, start_t, tzinfo=SHANGHAI)
            end = datetime.combine(day, end_t, tzinfo=SHANGHAI)
            if start < earliest:
                # Jump to the first grid slot at or after `earliest`; the grid stays anchored
                # at the interval start so keys are the same whenever they are computed.
                start += step * -((start - earliest) // step)
            while start + step <= end:
                yield Slot(start, start + step)
                start += step


def candidate_slots(
    now: datetime,
    hours: OpeningHours,
    calendar: WorkCalendar,
    slot_minutes: int,
    lead_minutes: int = 30,
    horizon_days: int = 14,
) -> Iterator[Slot]:
    """All bookable slots in time order, booked or not.

    Slots are ``slot_minutes`` long, laid out from the start of each opening interval
    and never crossing its end; they start at least ``lead_minutes`` after ``now`` and
    fall on working days among the ``horizon_days`` Shanghai dates starting with today.
    Arguments are checked immediately, not on first iteration.
    """
    _check_positive("slot_minutes", slot_minutes, 1)
    _check_positive("lead_minutes", lead_minutes, 0)
    _check_positive("horizon_days", horizon_days, 0)
    to_shanghai(now)  # refuse naive datetimes now rather than at first next()
    return _iter_slots(
        now, hours, calendar, timedelta(minutes=slot_minutes), timedelta(minutes=lead_minutes), horizon_days
    )


def offer_slots(
    now: datetime,
    hours: OpeningHours,
    calendar: WorkCalendar,
    slot_minutes: int,
    capacity: int,
    booked: Mapping[str, int],
    count: int = 3,
    lead_minutes: int = 30,
    horizon_days: int = 14,
) -> list[Slot]:
    """Up to ``count`` free slots to read out: the earliest free one of each distinct half-day.

    A slot is free when ``booked.get(slot.key, 0) < capacity``. Returns [] if nothing is
    free within the horizon (the caller should then be told to call again later).
    """
    slots = candidate_slots(now, hours, calendar, slot_minutes, lead_minutes, horizon_days)
    chosen: list[Slot] = []
    seen: set[tuple[date, Period]] = set()
    if count <= 0:
        return chosen
    for slot in slots:
        half_day = (slot.day, slot.period)
        if half_day in seen or booked.get(slot.key, 0) >= capacity:
            continue
        seen.add(half_day)
        chosen.append(slot)
        if len(chosen) >= count:
            break
    return chosen


def slot_from_key(key: str, slot_minutes: int) -> Slot:
    """Rebuild a Slot from its booking id (as stored in the DB).

    The key must carry a UTC offset; the result is normalised to Shanghai time, so a key
    written with another offset comes back with the canonical ``+08:00`` key.
    """
    _check_positive("slot_minutes", slot_minutes, 1)
    try:
        start = datetime.fromisoformat(key)
    except (TypeError, ValueError):
        raise ValueError(f"slot key {key!r} is not an ISO 8601 datetime like 2026-11-26T09:00:00+08:00") from None
    if start.tzinfo is None:
        raise ValueError(f"slot key {key!r} has no UTC offset; expected e.g. 2026-11-26T09:00:00+08:00")
    return Slot(start, start + timedelta(minutes=slot_minutes))
