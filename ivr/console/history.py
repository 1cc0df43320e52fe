"""Past calls for the history page, found by the last digits of a number or by a case number.

Operators see numbers masked, so they search the way they see them: the last 4 (or more)
digits; a full number or a case number also works.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.console.story import reason_words, story_lines
from ivr.db.models import Booking, CallSession, Handoff, Matter
from ivr.privacy import mask_phone
from ivr.timeutil import from_db

STATUS_WORDS = {"waiting": "等候中", "taken": "已接听", "done": "已接听", "left": "离开排队", "hung_up": "挂断",
                "after_hours": "非工作时间", "open": "待回电", "followup": "需人工跟进", "cancelled": "已取消"}


@dataclass(frozen=True)
class PastCall:
    call_sid: str
    number: str
    started_at: datetime
    duration_seconds: int | None
    status: str
    handoff: str | None  # reason and what became of it
    taken_by: str | None
    booking: str | None
    story: list[str]


def _digits(query: str) -> str:
    return re.sub(r"\D", "", query)


def search_calls(db: Session, query: str, limit: int = 50) -> list[PastCall]:
    """Newest first; an empty query lists the latest calls."""
    statement = select(CallSession).order_by(CallSession.started_at.desc()).limit(limit)
    query = query.strip()
    if query:
        phone = db.execute(select(Matter.phone).where(Matter.case_no == query)).scalar_one_or_none()
        digits = _digits(query)
        if phone:
            statement = statement.where(CallSession.caller == phone)
        elif len(digits) >= 4:
            statement = statement.where(CallSession.caller.endswith(digits))
        else:
            return []
    return [_past(db, call) for call in db.execute(statement).scalars()]


def _past(db: Session, call: CallSession) -> PastCall:
    handoff = db.execute(select(Handoff).where(Handoff.call_sid == call.call_sid)
                         .order_by(Handoff.id.desc())).scalars().first()
    booking = db.execute(select(Booking).where(Booking.call_sid == call.call_sid)
                         .order_by(Booking.id.desc())).scalars().first()
    handoff_words = (f"{reason_words(handoff.reason)} · {STATUS_WORDS.get(handoff.status, handoff.status)}"
                     if handoff else None)
    booking_words = None
    if booking:
        slot = from_db(booking.slot_start)
        booking_words = f"{slot:%m-%d %H:%M} · {STATUS_WORDS.get(booking.status, booking.status)}"
        if booking.outcome:
            booking_words += f" · {booking.outcome}"
    return PastCall(call_sid=call.call_sid, number=mask_phone(call.caller),
                    started_at=from_db(call.started_at),
                    duration_seconds=call.duration_seconds, status=call.status, handoff=handoff_words,
                    taken_by=handoff.taken_by if handoff else None, booking=booking_words,
                    story=story_lines(call.state.get("story", [])))
