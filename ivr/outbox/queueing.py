"""Writing SMS, callback calls and notification calls into the outbox, with no Twilio in sight.

Rows are written in the same transaction as the turn or console action that causes them, so a
Twilio outage never loses a message and never slows a caller's turn; ivr.outbox.sending sends
them later.  Kept apart so the database layer can queue without importing the REST client.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import CallbackAttempt, OutboxItem
from ivr.timeutil import to_db


def _queue(db: Session, kind: str, dedupe_key: str, payload: dict, now: datetime) -> OutboxItem | None:
    if db.execute(select(OutboxItem.id).where(OutboxItem.dedupe_key == dedupe_key)).first():
        return None
    item = OutboxItem(kind=kind, dedupe_key=dedupe_key, payload=payload, status="pending", attempts=0,
                      next_attempt_at=to_db(now), created_at=to_db(now))
    db.add(item)
    return item


def queue_sms(db: Session, to: str, body: str, dedupe_key: str, now: datetime) -> None:
    """Add an SMS to the outbox unless one with the same key is there (a retried turn)."""
    _queue(db, "sms", dedupe_key, {"to": to, "body": body}, now)


def queue_call(db: Session, attempt: CallbackAttempt, to: str, from_: str, url: str, status_callback: str,
               ring_seconds: int, now: datetime) -> OutboxItem:
    """Add an outbound call for a callback attempt (flushed, so the caller may send it at once)."""
    item = _queue(db, "call", f"call:{attempt.id}", {
        "attempt_id": attempt.id, "to": to, "from": from_, "url": url,
        "status_callback": status_callback, "timeout": ring_seconds}, now)
    assert item is not None, "one call per attempt"
    db.flush()
    return item


def queue_notification_call(db: Session, notification_id: int, attempt: int, to: str, from_: str, url: str,
                            status_callback: str, ring_seconds: int, now: datetime) -> OutboxItem | None:
    """A status-change notification's call, one per notification and try (None: already queued)."""
    return _queue(db, "notify_call", f"notify:{notification_id}:{attempt}", {
        "notification_id": notification_id, "to": to, "from": from_, "url": url,
        "status_callback": status_callback, "timeout": ring_seconds}, now)
