"""Whether a number gets notification calls, as operators see and change it.

A number listed in notification_opt_outs is not called when one of its matters moves on.  The
person stops the calls by pressing 3 in one of them (by="caller"), or by asking an operator
(by=the operator's username); only an operator can resume them.  Both changes go to the audit
log with the number masked.

Pages never carry a full number, so a form names the number by `number_ref`: a keyed hash that
the view matches against the numbers its search finds again.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ivr.audit import audit
from ivr.db.models import NotificationOptOut
from ivr.privacy import mask_phone
from ivr.timeutil import from_db, to_db

BY_CALLER = "caller"


@dataclass(frozen=True)
class OptOut:
    at: datetime  # Shanghai time
    by: str  # "caller" or an operator's username

    @property
    def words(self) -> str:
        how = "本人在通知电话里按 3 停止" if self.by == BY_CALLER else f"本人请坐席 {self.by} 停止"
        return f"{self.at:%Y-%m-%d %H:%M} {how}"


def opt_out_of(db: Session, phone: str) -> OptOut | None:
    row = db.get(NotificationOptOut, phone)
    return OptOut(at=from_db(row.at), by=row.by) if row else None


def number_ref(secret: str, phone: str) -> str:
    """Stands for a number in a form without showing it; not reversible without the secret."""
    return hmac.new(secret.encode(), f"notification-number:{phone}".encode(), hashlib.sha256).hexdigest()[:24]


def stop_notifications(db: Session, phone: str, actor: str, now: datetime) -> bool:
    """No more notification calls to `phone`, at the person's request through `actor`.
    False if the number had opted out already (then nothing changes, not even who did it)."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = db.execute(insert(NotificationOptOut).values(phone=phone, at=to_db(now), by=actor)
                       .on_conflict_do_nothing(index_elements=["phone"])).rowcount
    if added:
        audit(db, actor, "notifications_stopped", now, number=mask_phone(phone))
    return bool(added)


def resume_notifications(db: Session, phone: str, actor: str, now: datetime) -> bool:
    """Notification calls to `phone` again; False if it was not opted out."""
    row = db.get(NotificationOptOut, phone)
    if row is None:
        return False
    stopped_by = row.by
    removed = db.execute(delete(NotificationOptOut).where(NotificationOptOut.phone == phone)).rowcount
    if removed:
        audit(db, actor, "notifications_resumed", now, number=mask_phone(phone), stopped_by=stopped_by)
    return bool(removed)
