"""Sending what the outbox holds (SMS today), with retries and back-off.

Rows are written in the same transaction as the call turn that causes them, so a Twilio outage
never loses a message and never slows a caller's turn; `python -m ivr worker` sends them.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioException

from ivr.db.models import OutboxItem
from ivr.privacy import mask_phone
from ivr.timeutil import to_db

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600


def queue_sms(db: Session, to: str, body: str, dedupe_key: str, now: datetime) -> None:
    """Add an SMS to the outbox unless one with the same key is there (a retried turn)."""
    if db.execute(select(OutboxItem.id).where(OutboxItem.dedupe_key == dedupe_key)).first():
        return
    db.add(OutboxItem(kind="sms", dedupe_key=dedupe_key, payload={"to": to, "body": body}, status="pending",
                      attempts=0, next_attempt_at=to_db(now), created_at=to_db(now)))


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


@dataclass
class DrainReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def drain(sessions: sessionmaker[Session], client: Any, from_number: str, now: datetime,
          limit: int = 50) -> DrainReport:
    """Send every due item once; each item is its own transaction, so one failure stops nothing."""
    report = DrainReport()
    with sessions() as db:
        due = db.execute(select(OutboxItem.id).where(OutboxItem.status == "pending",
                                                     OutboxItem.next_attempt_at <= to_db(now))
                         .order_by(OutboxItem.next_attempt_at).limit(limit)).scalars().all()
    for item_id in due:
        with sessions() as db, db.begin():
            item = db.get(OutboxItem, item_id)
            if item is None or item.status != "pending":
                continue
            item.attempts += 1
            try:
                message = client.messages.create(to=item.payload["to"], from_=from_number,
                                                 body=item.payload["body"])
            except (TwilioException, requests.RequestException) as exc:
                item.last_error = f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}"[:500]
                permanent = getattr(exc, "status", 0) == 400
                if permanent or item.attempts >= MAX_ATTEMPTS:
                    item.status = "failed"
                    report.failed += 1
                    log.error("outbox %d to %s failed for good: %s", item.id, mask_phone(item.payload["to"]),
                              item.last_error)
                else:
                    item.next_attempt_at = to_db(now + retry_delay(item.attempts))
                    report.retried += 1
                    log.warning("outbox %d to %s: %s; retry %d", item.id, mask_phone(item.payload["to"]),
                                item.last_error, item.attempts)
                continue
            item.status, item.provider_sid, item.sent_at = "sent", message.sid, to_db(now)
            report.sent += 1
    return report
