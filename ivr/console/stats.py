"""Figures for the operators' "at a glance" page: how calls went on a given day.

Containment is the share of finished calls that needed no person; drop-off counts the step
where callers hung up without reaching any result, which is where a flow needs work.
Notification figures follow each notification by its last change (updated_at): a notification
answered today counts today, even if it was queued yesterday.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.config import SHANGHAI
from ivr.db.models import Booking, CallSession, Handoff, Notification
from ivr.timeutil import to_db

# Reaching one of these steps means the caller got what they came for.
RESULT_STEPS = frozenset({"status_more", "status_next", "status_last", "booked", "cancelled", "manage_menu", "goodbye",
                          "after_person"})
# A notification in one of these was answered: the person picked up (and perhaps heard it or said stop).
ANSWERED = ("reached", "heard", "opted_out")


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
    notifications_queued: int = 0  # notifications created that day
    notifications_reached: int = 0  # answered that day (reached, heard or opted out)
    notifications_heard: int = 0  # ... identity checked and the news read
    notifications_not_reached: int = 0  # tries used up that day
    notifications_sms: int = 0  # ... and an SMS went instead
    notifications_opted_out: int = 0  # answered and pressed 3: no more notification calls

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
    _notification_figures(db, figures, start, end)
    return figures


def _notification_figures(db: Session, figures: DayFigures, start: datetime, end: datetime) -> None:
    figures.notifications_queued = db.execute(select(func.count()).select_from(Notification).where(
        Notification.created_at >= start, Notification.created_at < end)).scalar_one()
    changed = db.execute(select(Notification.status, Notification.sms_sent, func.count())
                         .where(Notification.updated_at >= start, Notification.updated_at < end)
                         .group_by(Notification.status, Notification.sms_sent))
    for status, sms_sent, count in changed:
        figures.notifications_reached += count if status in ANSWERED else 0
        figures.notifications_heard += count if status == "heard" else 0
        figures.notifications_opted_out += count if status == "opted_out" else 0
        if status == "not_reached":
            figures.notifications_not_reached += count
            figures.notifications_sms += count if sms_sent else 0
