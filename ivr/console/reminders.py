"""Reminder SMS before a callback slot (optional: SMS_REMINDER_MINUTES), queued by the worker."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import Booking
from ivr.outbox.queueing import queue_sms
from ivr.speakable import written_phone, written_slot
from ivr.timeutil import from_db, to_db


def queue_reminders(db: Session, now: datetime, minutes_before: int, template: str, from_number: str) -> int:
    """One reminder per open booking to a mainland mobile whose slot starts within the window."""
    if minutes_before <= 0:
        return 0
    rows = db.execute(select(Booking).where(Booking.status == "open", Booking.slot_start > to_db(now),
                                            Booking.slot_start <= to_db(now + timedelta(minutes=minutes_before)),
                                            Booking.callback_number.startswith("+861"))).scalars().all()
    for booking in rows:
        body = template.format(slot=written_slot(from_db(booking.slot_start), from_db(booking.slot_end)), from_number=written_phone(from_number))
        queue_sms(db, booking.callback_number, body, f"reminder:{booking.id}", now)
    return len(rows)
