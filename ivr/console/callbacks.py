"""The callback worklist: claim a booking, call the caller back, record how it went.

A booking is open until an outcome closes it (done) or sends it to people for manual follow-up.
No answer puts it back in the list after a delay, up to a number of attempts, then into the
manual follow-up list.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ivr.audit import audit
from ivr.config import SHANGHAI, Settings
from ivr.console.story import story_lines
from ivr.console.waiting import LANGUAGES
from ivr.db.models import Booking, CallbackAttempt, CallSession, Handoff, Operator, OutboxItem
from ivr.outbox.queueing import queue_call
from ivr.privacy import mask_phone
from ivr.timeutil import from_db, to_db

OUTCOMES = {"reached": "已接通", "resolved": "已解决", "no_answer": "无人接听", "wrong_number": "号码错误",
            "needs_followup": "需要人工跟进"}
CLOSING = {"reached": "done", "resolved": "done", "wrong_number": "followup", "needs_followup": "followup"}
FINAL_CALL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")


class CallbackError(RuntimeError):
    """An action on a booking the rules refuse; the message is safe to show the operator."""


@dataclass(frozen=True)
class AttemptView:
    id: int
    operator: str
    status: str
    dial_status: str | None
    error: str | None
    started_at: datetime


@dataclass(frozen=True)
class CallbackItem:
    id: int
    number: str  # masked
    slot_start: datetime  # Asia/Shanghai
    slot_end: datetime
    language: str
    status: str
    claimed_by: str | None
    attempts: int
    next_attempt_at: datetime | None
    outcome: str | None
    note: str | None
    story: list[str]
    last_attempt: AttemptView | None

    @property
    def slot_label(self) -> str:
        return f"{self.slot_start:%m-%d %H:%M}–{self.slot_end:%H:%M}"


def _local(value: datetime | None) -> datetime | None:
    return from_db(value) if value else None


def _story(db: Session, call_sid: str) -> list[str]:
    handoff = db.execute(select(Handoff.story).where(Handoff.call_sid == call_sid)
                         .order_by(Handoff.id.desc())).scalars().first()
    if handoff is None:
        call = db.get(CallSession, call_sid)
        handoff = call.state.get("story", []) if call else []
    return story_lines(handoff)


def _last_attempt(db: Session, booking_id: int) -> AttemptView | None:
    row = db.execute(select(CallbackAttempt).where(CallbackAttempt.booking_id == booking_id)
                     .order_by(CallbackAttempt.id.desc())).scalars().first()
    if row is None:
        return None
    return AttemptView(row.id, row.operator, row.status, row.dial_status, row.error, _local(row.started_at))  # type: ignore[arg-type]


def _item(db: Session, b: Booking) -> CallbackItem:
    return CallbackItem(id=b.id, number=mask_phone(b.callback_number), slot_start=_local(b.slot_start),  # type: ignore[arg-type]
                        slot_end=_local(b.slot_end), language=LANGUAGES.get(b.language, b.language),  # type: ignore[arg-type]
                        status=b.status, claimed_by=b.claimed_by, attempts=b.attempts,
                        next_attempt_at=_local(b.next_attempt_at), outcome=b.outcome, note=b.outcome_note,
                        story=_story(db, b.call_sid), last_attempt=_last_attempt(db, b.id))


def worklist(db: Session, now: datetime, days: int = 7) -> list[CallbackItem]:
    """Open bookings from today on (and any older one still open), by slot."""
    until = to_db(now.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=days))
    rows = db.execute(select(Booking).where(Booking.status == "open", Booking.slot_start < until)
                      .order_by(Booking.slot_start, Booking.id)).scalars()
    return [_item(db, b) for b in rows]


def followups(db: Session) -> list[CallbackItem]:
    rows = db.execute(select(Booking).where(Booking.status == "followup")
                      .order_by(Booking.closed_at.desc(), Booking.id.desc())).scalars()
    return [_item(db, b) for b in rows]


def get_item(db: Session, booking_id: int) -> CallbackItem:
    booking = db.get(Booking, booking_id)
    if booking is None:
        raise CallbackError("没有这条预约")
    return _item(db, booking)


def claim(db: Session, booking_id: int, operator: str, now: datetime, claim_minutes: int) -> None:
    """Take a booking for yourself; a conditional update, so only one operator ever wins."""
    stale = to_db(now - timedelta(minutes=claim_minutes))
    won = db.execute(update(Booking).where(
        Booking.id == booking_id, Booking.status == "open",
        or_(Booking.claimed_by.is_(None), Booking.claimed_by == operator, Booking.claimed_at < stale))
        .values(claimed_by=operator, claimed_at=to_db(now))).rowcount
    if not won:
        booking = db.get(Booking, booking_id)
        if booking is None or booking.status != "open":
            raise CallbackError("这条预约已经处理完了")
        raise CallbackError(f"这条预约已由 {booking.claimed_by} 认领")
    audit(db, operator, "callback_claimed", now, booking=booking_id)


def _cancel_unsent_calls(db: Session, booking_id: int) -> None:
    """A call still waiting in the outbox must not ring anyone after the operator moved on."""
    placing = set(db.execute(select(CallbackAttempt.id).where(
        CallbackAttempt.booking_id == booking_id, CallbackAttempt.status == "placing")).scalars())
    if not placing:
        return
    for item in db.execute(select(OutboxItem).where(OutboxItem.kind == "call",
                                                    OutboxItem.status == "pending")).scalars():
        if item.payload.get("attempt_id") in placing:
            item.status = "cancelled"
    db.execute(update(CallbackAttempt).where(CallbackAttempt.id.in_(placing))
               .values(status="canceled", error="not placed: the operator moved on"))


def release(db: Session, booking_id: int, operator: str, now: datetime) -> None:
    released = db.execute(update(Booking).where(Booking.id == booking_id, Booking.claimed_by == operator)
                          .values(claimed_by=None, claimed_at=None)).rowcount
    if released:
        _cancel_unsent_calls(db, booking_id)
        audit(db, operator, "callback_released", now, booking=booking_id)


def _claimed(db: Session, booking_id: int, operator: str) -> Booking:
    booking = db.get(Booking, booking_id)
    if booking is None or booking.status != "open":
        raise CallbackError("这条预约已经处理完了")
    if booking.claimed_by != operator:
        raise CallbackError("请先认领这条预约")
    return booking


def start_call(db: Session, booking_id: int, operator: Operator, settings: Settings, now: datetime
               ) -> OutboxItem:
    """Write the call for "call now" into the outbox (the console then sends it at once)."""
    booking = _claimed(db, booking_id, operator.username)
    if not operator.phone:
        raise CallbackError("请先让主管为您的账号登记电话号码")
    busy = db.execute(select(CallbackAttempt.id).where(
        CallbackAttempt.booking_id == booking_id,
        CallbackAttempt.status.in_(("placing", "queued", "initiated", "ringing", "in-progress")))).first()
    if busy:
        raise CallbackError("这条预约正在通话中")
    mode = settings.callback_mode
    attempt = CallbackAttempt(booking_id=booking_id, operator=operator.username, mode=mode, status="placing",
                              started_at=to_db(now))
    db.add(attempt)
    db.flush()
    base = settings.public_base_url
    first_leg = operator.phone if mode == "operator_first" else booking.callback_number
    item = queue_call(db, attempt, first_leg, settings.callback_from_number,
                      f"{base}/twilio/callback/answered?attempt={attempt.id}",
                      f"{base}/twilio/callback/status?attempt={attempt.id}", settings.callback_ring_seconds, now)
    audit(db, operator.username, "callback_call", now, booking=booking_id, number=mask_phone(booking.callback_number),
          mode=mode)
    return item


def record_outcome(db: Session, booking_id: int, operator: str, outcome: str, note: str, now: datetime,
                   settings: Settings) -> str:
    """Close, retry later, or hand to manual follow-up; returns the booking's new status."""
    if outcome not in OUTCOMES:
        raise CallbackError("请选择一个结果")
    booking = _claimed(db, booking_id, operator)
    note = note.strip()[:500]
    _cancel_unsent_calls(db, booking_id)
    booking.outcome, booking.outcome_note = outcome, note or None
    booking.claimed_by = booking.claimed_at = None
    if outcome == "no_answer":
        booking.attempts += 1
        if booking.attempts < settings.callback_max_attempts:
            booking.next_attempt_at = to_db(now + timedelta(minutes=settings.callback_retry_minutes))
        else:
            booking.status, booking.next_attempt_at, booking.closed_at = "followup", None, to_db(now)
    else:
        booking.status, booking.next_attempt_at, booking.closed_at = CLOSING[outcome], None, to_db(now)
    audit(db, operator, "callback_outcome", now, booking=booking_id, outcome=outcome, status=booking.status,
          attempts=booking.attempts)
    return booking.status


def close_followup(db: Session, booking_id: int, operator: str, note: str, now: datetime) -> None:
    """A person dealt with it outside the hotline (a visit, a letter): it leaves the list."""
    booking = db.get(Booking, booking_id)
    if booking is None or booking.status != "followup":
        raise CallbackError("这条记录不在跟进列表里")
    booking.status, booking.closed_at = "done", to_db(now)
    booking.outcome_note = "\n".join(filter(None, [booking.outcome_note, note.strip()[:500]])) or None
    audit(db, operator, "followup_closed", now, booking=booking_id)


def release_stale_claims(db: Session, now: datetime, claim_minutes: int) -> int:
    """An operator who claimed and went away must not keep a caller from being called."""
    stale = to_db(now - timedelta(minutes=claim_minutes))
    return db.execute(update(Booking).where(Booking.status == "open", Booking.claimed_at < stale)
                      .values(claimed_by=None, claimed_at=None)).rowcount


def attempt_status(db: Session, attempt_id: int, call_status: str, now: datetime) -> CallbackAttempt | None:
    """Twilio's status callback for a callback call: the console shows it next to the booking."""
    attempt = db.get(CallbackAttempt, attempt_id)
    if attempt is None:
        return None
    attempt.status = call_status
    if call_status in FINAL_CALL_STATUSES:
        attempt.ended_at = to_db(now)
    return attempt
