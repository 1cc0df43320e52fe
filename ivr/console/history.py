"""Past calls for the history page, found by the last digits of a number or by a case number.

Operators see numbers masked, so they search the way they see them: the last 4 (or more)
digits; a full number or a case number also works.  A search also lists, for each number it
finds, the notification calls the hotline made to it and whether it still gets them.
"""
from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from ivr.console.notifications import OptOut, number_ref, opt_out_of
from ivr.console.story import is_notification_call, reason_words, story_lines
from ivr.db.models import Booking, CallSession, Handoff, Matter, MatterChange, Notification, NotificationOptOut
from ivr.privacy import mask_phone
from ivr.timeutil import from_db

STATUS_WORDS = {"waiting": "等候中", "taken": "已接听", "done": "已接听", "left": "离开排队", "hung_up": "挂断",
                "after_hours": "非工作时间", "open": "待回电", "followup": "需人工跟进", "cancelled": "已取消"}
NOTIFICATION_WORDS = {"queued": "等待拨打", "calling": "正在拨打", "reached": "接通了，没听到新进展（身份未核验）",
                      "heard": "接通了，核验后听了新进展", "not_reached": "没打通",
                      "opted_out": "接通了，本人按 3 不再接收通知", "cancelled": "没有打：号码已不再接收通知"}
MAX_NUMBERS = 10  # numbers with their notifications on one page
NOTIFICATIONS_PER_NUMBER = 10


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
    notification_call: bool = False  # the hotline called this person with news


@dataclass(frozen=True)
class PastNotification:
    id: int
    created_at: datetime  # Shanghai time
    updated_at: datetime
    status: str  # in words
    attempts: int
    matters: int  # how many matters it carries


@dataclass(frozen=True)
class NumberNotifications:
    """One number a search found: its recent notifications and whether it still gets them."""

    ref: str  # names the number in forms (ivr.console.notifications.number_ref)
    number: str  # masked
    opt_out: OptOut | None
    notifications: list[PastNotification]


def _digits(query: str) -> str:
    return re.sub(r"\D", "", query)


@dataclass(frozen=True)
class _Target:
    """The number a search names: a case number's phone, or the last digits of one."""

    phone: str | None
    digits: str

    def match(self, column: InstrumentedAttribute) -> ColumnElement[bool]:
        return column == self.phone if self.phone else column.endswith(self.digits)


def _target(db: Session, query: str) -> _Target | None:
    """None when the query names no number (a case number nobody has, or under 4 digits)."""
    phone = db.execute(select(Matter.phone).where(Matter.case_no == query)).scalar_one_or_none()
    digits = _digits(query)
    return _Target(phone, digits) if phone or len(digits) >= 4 else None


def search_calls(db: Session, query: str, limit: int = 50) -> list[PastCall]:
    """Newest first; an empty query lists the latest calls."""
    statement = select(CallSession).order_by(CallSession.started_at.desc()).limit(limit)
    query = query.strip()
    if query:
        target = _target(db, query)
        if target is None:
            return []
        statement = statement.where(target.match(CallSession.caller))
    return [_past(db, call) for call in db.execute(statement).scalars()]


def numbers_found(db: Session, query: str) -> list[str]:
    """The full numbers a search names, among those that called, were notified or opted out
    (for the console's own use: pages get them masked).  An empty query names none; one more
    than MAX_NUMBERS means there are more."""
    target = _target(db, query.strip()) if query.strip() else None
    if target is None:
        return []
    found: set[str] = set()
    for column in (CallSession.caller, Notification.phone, NotificationOptOut.phone):
        found.update(db.execute(select(column).where(target.match(column)).distinct()
                                .limit(MAX_NUMBERS + 1)).scalars())
    return sorted(found, key=lambda phone: (mask_phone(phone), phone))[:MAX_NUMBERS + 1]


def find_number(db: Session, query: str, ref: str, secret: str) -> str | None:
    """The number a form's `ref` stands for, if the same search still finds it."""
    shown = numbers_found(db, query)[:MAX_NUMBERS]
    return next((phone for phone in shown if hmac.compare_digest(number_ref(secret, phone), ref)), None)


def notifications_by_number(db: Session, query: str, secret: str) -> tuple[list[NumberNotifications], bool]:
    """For each number the search finds (up to MAX_NUMBERS): its latest notifications, newest
    first; and whether the search found more numbers than that."""
    phones = numbers_found(db, query)
    shown = [_number_notifications(db, phone, secret) for phone in phones[:MAX_NUMBERS]]
    return shown, len(phones) > MAX_NUMBERS


def _number_notifications(db: Session, phone: str, secret: str) -> NumberNotifications:
    rows = list(db.execute(select(Notification).where(Notification.phone == phone)
                           .order_by(Notification.created_at.desc(), Notification.id.desc())
                           .limit(NOTIFICATIONS_PER_NUMBER)).scalars())
    matters = dict(db.execute(select(MatterChange.notification_id, func.count(MatterChange.matter_id.distinct()))
                              .where(MatterChange.notification_id.in_([n.id for n in rows]))
                              .group_by(MatterChange.notification_id)).all()) if rows else {}
    return NumberNotifications(ref=number_ref(secret, phone), number=mask_phone(phone), opt_out=opt_out_of(db, phone),
                               notifications=[_notification(n, matters.get(n.id, 0)) for n in rows])


def notification_words(row: Notification) -> str:
    words = NOTIFICATION_WORDS.get(row.status, row.status)
    if row.status == "not_reached":
        words += "，已发短信" if row.sms_sent else "，没有发短信"
    return words


def _notification(row: Notification, matters: int) -> PastNotification:
    return PastNotification(id=row.id, created_at=from_db(row.created_at), updated_at=from_db(row.updated_at),
                            status=notification_words(row), attempts=row.attempts, matters=matters)


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
                    story=story_lines(call.state.get("story", [])),
                    notification_call=is_notification_call(call.state.get("story", [])))
