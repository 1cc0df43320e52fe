"""The audit trail supervisors read: who did what in the console, with masked details only."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from ivr.db.models import AuditEntry
from ivr.timeutil import to_db


def audit(db: Session, actor: str, action: str, now: datetime, **detail: object) -> None:
    db.add(AuditEntry(at=to_db(now), actor=actor, action=action, detail=detail))
