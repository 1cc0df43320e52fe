"""Sending what the outbox holds (SMS and callback calls), with retries and back-off.

The only part of the outbox that talks to the telephony, and only through the
TelephonyControl port (ivr.outbox.queueing writes the rows): `python -m ivr worker` sends them,
and the console sends a "call now" at once through the same path.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import CallbackAttempt, Notification, OutboxItem
from ivr.notify.planning import placing_failed
from ivr.privacy import mask_phone
from ivr.telephony.control import TelephonyControl, TelephonyError
from ivr.timeutil import to_db

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
# A callback call that could not be placed for this long is dropped: the operator has moved on.
CALL_MAX_ATTEMPTS = 3
CALL_STALE_SECONDS = 300
# A notification call not placed within this long waits for its next try (the hours may be over).
NOTIFY_STALE_SECONDS = 1800
CALL_KINDS = ("call", "notify_call")
SEND_LEASE = timedelta(seconds=60)  # longer than any REST timeout


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def _send(item: OutboxItem, telephony: TelephonyControl, sms_from: str) -> str:
    payload = item.payload
    if item.kind == "sms":
        return telephony.send_sms(payload["to"], sms_from, payload["body"])
    assert item.kind in CALL_KINDS, item.kind
    return telephony.place_call(payload["to"], payload["from"], payload["url"], payload["status_callback"],
                                payload["timeout"])


def _call_attempt(db: Session, item: OutboxItem) -> CallbackAttempt | None:
    return db.get(CallbackAttempt, item.payload["attempt_id"]) if item.kind == "call" else None


def send_item(sessions: sessionmaker[Session], item_id: int, telephony: TelephonyControl, sms_from: str,
              now: datetime, report: DrainReport) -> None:
    """One try for one item.  The telephony request runs between two short transactions, never inside
    one: with SQLite a transaction holds the write lock that every call turn needs.  The first
    transaction leases the item (another worker skips it until SEND_LEASE has passed), the second
    writes the outcome on the row and on the callback attempt, where the console shows it."""
    with sessions() as db, db.begin():
        # FOR UPDATE (PostgreSQL): a second worker waits here, then sees the lease and skips.
        item = db.get(OutboxItem, item_id, with_for_update=True)
        if item is None or item.status != "pending" or item.next_attempt_at > to_db(now):
            return
        if item.kind == "call" and to_db(now) - item.created_at > timedelta(seconds=CALL_STALE_SECONDS):
            _give_up(item, _call_attempt(db, item), "not placed within 5 minutes; the operator can call again",
                     report)
            return
        if item.kind == "notify_call" and to_db(now) - item.created_at > timedelta(seconds=NOTIFY_STALE_SECONDS):
            _give_up(item, None, "not placed within 30 minutes; the notification tries again later", report)
            placing_failed(db, item.payload["notification_id"], now)
            return
        item.attempts += 1
        item.next_attempt_at = to_db(now + SEND_LEASE)
        db.flush()
        db.expunge(item)
    try:
        sid, error = _send(item, telephony, sms_from), None
    except TelephonyError as exc:
        sid, error = None, exc
    with sessions() as db, db.begin():
        item = db.merge(item, load=True)
        attempt = _call_attempt(db, item)
        if error is None:
            item.status, item.provider_sid, item.sent_at, item.last_error = "sent", sid, to_db(now), None
            if item.kind == "notify_call":
                notification = db.get(Notification, item.payload["notification_id"])
                # Only while that try is on: its status callbacks may have ended it already.
                if notification is not None and notification.status == "calling" and notification.call_sid is None:
                    notification.call_sid = sid
            if attempt is not None:
                attempt.call_sid, attempt.error = attempt.call_sid or sid, None
                if attempt.status == "placing":
                    attempt.status = "queued"
            report.sent += 1
            return
        item.last_error = error.message
        max_attempts = CALL_MAX_ATTEMPTS if item.kind in CALL_KINDS else MAX_ATTEMPTS
        if not error.retryable or item.attempts >= max_attempts:
            _give_up(item, attempt, item.last_error, report)
            if item.kind == "notify_call":
                placing_failed(db, item.payload["notification_id"], now)
            return
        item.next_attempt_at = to_db(now + retry_delay(item.attempts))
        if attempt is not None:
            attempt.error = f"{item.last_error}; trying again"
        report.retried += 1
        log.warning("outbox %d (%s to %s): %s; retry %d", item.id, item.kind, mask_phone(item.payload["to"]),
                    item.last_error, item.attempts)


def _give_up(item: OutboxItem, attempt: CallbackAttempt | None, error: str, report: DrainReport) -> None:
    item.status, item.last_error = "failed", error
    if attempt is not None:
        attempt.status, attempt.error = "error", error
    report.failed += 1
    log.error("outbox %d (%s to %s) failed for good: %s", item.id, item.kind, mask_phone(item.payload["to"]),
              error)


def drain(sessions: sessionmaker[Session], telephony: TelephonyControl, sms_from: str, now: datetime,
          limit: int = 50) -> DrainReport:
    """Send every due item once; each item is its own transaction, so one failure stops nothing."""
    report = DrainReport()
    with sessions() as db:
        due = db.execute(select(OutboxItem.id).where(OutboxItem.status == "pending",
                                                     OutboxItem.next_attempt_at <= to_db(now))
                         .order_by(OutboxItem.next_attempt_at).limit(limit)).scalars().all()
    for item_id in due:
        send_item(sessions, item_id, telephony, sms_from, now, report)
    return report
