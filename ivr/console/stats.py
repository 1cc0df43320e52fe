"""Figures for the operators' "at a glance" page: how calls went on a given day.

Containment is the share of finished calls that needed no person; drop-off counts the step
where callers hung up without reaching any result, which is where a flow needs work.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.config import SHANGHAI
from ivr.db.models import Booking, CallSession, Handoff
from ivr.timeutil import to_db

# Reaching one of these steps means the caller got what they came for.
RESULT_STEPS = frozenset({"status_more", "status_next", "status_last", "booked", "cancelled", "manage_menu", "goodbye",
                          "after_person"})


@dataclass
class DayFigures:
    day: date
    calls: int = 0
    finished: int = 0
    contained: int = 0
    handoffs_by_reason: Counter = field(default_factory=Counter)
    drop_off_steps: Counter = field(default_factory=Counter)
    bookings_made: int = 0
    bookings_cancelled: int = 0
    callbacks_kept: int = 0  # bookings whose slot was that day and whose caller we reached
    callbacks_missed: int = 0  # ... that ended in manual follow-up

    @property
    def containment(self) -> float:
        return self.contained / self.finished if self.finished else 0.0


def day_figures(db: Session, day: date) -> DayFigures:
    start = to_db(datetime.combine(day, time.min, tzinfo=SHANGHAI))
    end = to_db(datetime.combine(day + timedelta(days=1), time.min, tzinfo=SHANGHAI))
    figures = DayFigures(day=day)
    handed_off = set()
    for handoff in db.execute(select(Handoff).where(Handoff.created_at >= start, Handoff.created_at < end)).scalars():
        figures.handoffs_by_reason[handoff.reason.split("+")[0]] += 1
        handed_off.add(handoff.call_sid)
    sessions = db.execute(select(CallSession).where(CallSession.started_at >= start,
                                                    CallSession.started_at < end)).scalars()
    for call in sessions:
        figures.calls += 1
        if call.status != "completed":
            continue
        figures.finished += 1
        if call.call_sid in handed_off:
            continue
        figures.contained += 1
        steps = [entry.get("step") for entry in call.state.get("story", []) if entry.get("event") == "step"]
        if not RESULT_STEPS.intersection(steps):
            figures.drop_off_steps[call.state.get("step") or "start"] += 1
    bookings = db.execute(select(Booking).where(Booking.created_at >= start, Booking.created_at < end)).scalars()
    for booking in bookings:
        figures.bookings_made += 1
        figures.bookings_cancelled += booking.status == "cancelled"
    due = db.execute(select(Booking).where(Booking.slot_start >= start, Booking.slot_start < end)).scalars()
    for booking in due:
        figures.callbacks_kept += booking.outcome in ("reached", "resolved")
        figures.callbacks_missed += booking.status == "followup"
    return figures
