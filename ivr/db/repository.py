"""SQLAlchemy implementation of the engine's Repository port, bound to one DB session.

One webhook turn = one session = one transaction, so a booking and the call state that records
it commit together or not at all.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ivr.db.models import (
    Booking, CallerPreference, Handoff, IdCheckFailure, Matter, MatterChange, Notification, NotificationOptOut,
)
from ivr.db.handoffs import end_waiting_handoffs
from ivr.outbox.queueing import queue_sms
from ivr.engine.ports import BookingView, CallerProfile, MatterView
from ivr.privacy import id_last4_matches
from ivr.timeutil import from_db, to_db


# A notification still trying to reach its number (or answered, not yet heard).
OPEN_NOTIFICATION_STATUSES = ("queued", "calling", "reached", "not_reached")


class SqlRepository:
    def __init__(self, session: Session, id_hash_secret: str) -> None:
        self.session = session
        self.secret = id_hash_secret

    def preferred_language(self, phone: str) -> str | None:
        row = self.session.get(CallerPreference, phone)
        return row.language if row else None

    def remember_language(self, phone: str, language: str, now: datetime) -> None:
        row = self.session.get(CallerPreference, phone)
        if row is None:
            self.session.add(CallerPreference(phone=phone, language=language, updated_at=to_db(now)))
        else:
            row.language, row.updated_at = language, to_db(now)

    def caller_profile(self, phone: str) -> CallerProfile:
        years = self.session.execute(
            select(Matter.birth_year).where(Matter.phone == phone)).scalars().all()
        known = [y for y in years if y]
        return CallerProfile(registered=bool(years), birth_year=min(known) if known else None)

    def phone_of_case(self, case_no: str) -> str | None:
        return self.session.execute(
            select(Matter.phone).where(Matter.case_no == case_no)).scalar_one_or_none()

    def matters_verified(self, phone: str, id_last4: str) -> list[MatterView]:
        rows = self.session.execute(select(Matter).where(Matter.phone == phone)).scalars().all()
        return [MatterView(case_no=m.case_no, service=m.service, status=m.status,
                           updated_at=from_db(m.updated_at), detail=m.detail)
                for m in rows if id_last4 and id_last4_matches(self.secret, id_last4, m.id_salt, m.id_hash)]

    def id_failures_since(self, phone: str, since: datetime) -> int:
        return self.session.execute(
            select(func.count()).select_from(IdCheckFailure)
            .where(IdCheckFailure.phone == phone, IdCheckFailure.at >= to_db(since))).scalar_one()

    def record_id_failure(self, phone: str, call_sid: str, now: datetime) -> None:
        self.session.add(IdCheckFailure(phone=phone, call_sid=call_sid, at=to_db(now)))

    def _open_row(self, caller: str, now: datetime) -> Booking | None:
        return self.session.execute(
            select(Booking).where(Booking.caller == caller, Booking.status == "open",
                                  Booking.slot_end > to_db(now))
            .order_by(Booking.slot_start.desc())).scalars().first()

    def open_booking(self, caller: str, now: datetime) -> BookingView | None:
        row = self._open_row(caller, now)
        if row is None:
            return None
        return BookingView(row.callback_number, from_db(row.slot_start), from_db(row.slot_end))

    def booked_counts(self, start: datetime, end: datetime) -> dict[str, int]:
        rows = self.session.execute(
            select(Booking.slot_start, func.count()).where(
                Booking.status == "open", Booking.slot_start >= to_db(start),
                Booking.slot_start < to_db(end)).group_by(Booking.slot_start)).all()
        return {from_db(start_at).isoformat(): count for start_at, count in rows}

    def book(self, caller: str, callback_number: str, slot_start: datetime, slot_end: datetime,
             capacity: int, language: str, call_sid: str, now: datetime) -> BookingView | None:
        """Book if the slot still has room; the caller's earlier open booking is replaced."""
        taken = self.session.execute(
            select(func.count()).select_from(Booking).where(
                Booking.status == "open", Booking.slot_start == to_db(slot_start),
                Booking.caller != caller)).scalar_one()
        if taken >= capacity:
            return None
        self.session.execute(
            update(Booking).where(Booking.caller == caller, Booking.status == "open")
            .values(status="replaced", cancelled_at=to_db(now)))
        self.session.add(Booking(caller=caller, callback_number=callback_number,
                                 slot_start=to_db(slot_start), slot_end=to_db(slot_end),
                                 language=language, status="open", call_sid=call_sid,
                                 created_at=to_db(now)))
        return BookingView(callback_number, slot_start, slot_end)

    def cancel_booking(self, caller: str, now: datetime) -> bool:
        row = self._open_row(caller, now)
        if row is None:
            return False
        row.status, row.cancelled_at = "cancelled", to_db(now)
        return True

    def queue_sms(self, to: str, body: str, dedupe_key: str, now: datetime) -> None:
        queue_sms(self.session, to, body, dedupe_key, now)

    def record_handoff(self, call_sid: str, caller: str, language: str, verified: bool,
                       reason: str, story: list[dict], waiting: bool, now: datetime) -> None:
        self.session.add(Handoff(call_sid=call_sid, caller=caller, language=language,
                                 verified=verified, reason=reason, story=story,
                                 status="waiting" if waiting else "after_hours", created_at=to_db(now)))

    def end_handoff(self, call_sid: str, status: str, now: datetime) -> None:
        """The caller left the queue without a person (gave up, timed out, queue full)."""
        end_waiting_handoffs(self.session, call_sid, status, now)

    # --- status-change notifications -------------------------------------------------------

    def news_waiting(self, phone: str) -> bool:
        """A change the person has not heard yet (told by a call, or offered when they call)."""
        return self.session.execute(select(MatterChange.id).where(
            MatterChange.phone == phone, MatterChange.told.is_(False)).limit(1)).first() is not None

    def news_cases(self, phone: str) -> set[str]:
        return set(self.session.execute(select(Matter.case_no).join(MatterChange, MatterChange.matter_id == Matter.id)
                                        .where(MatterChange.phone == phone, MatterChange.told.is_(False))).scalars())

    def news_heard(self, phone: str, now: datetime) -> int:
        """After the identity check and the read-out: the changes are told, the number's open
        notifications done (no more calls about them)."""
        told = self.session.execute(update(MatterChange).where(
            MatterChange.phone == phone, MatterChange.told.is_(False)).values(told=True)).rowcount
        self.session.execute(update(Notification).where(
            Notification.phone == phone, Notification.status.in_(OPEN_NOTIFICATION_STATUSES))
            .values(status="heard", updated_at=to_db(now)))
        return told

    def stop_notifications(self, phone: str, now: datetime) -> None:
        if self.session.get(NotificationOptOut, phone) is None:
            self.session.add(NotificationOptOut(phone=phone, at=to_db(now), by="caller"))
        self.session.execute(update(Notification).where(
            Notification.phone == phone, Notification.status.in_(OPEN_NOTIFICATION_STATUSES))
            .values(status="opted_out", updated_at=to_db(now)))
