"""Closing handoff records that are still waiting, shared by the call turn and the call's end."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from ivr.db.models import Handoff
from ivr.timeutil import to_db


def end_waiting_handoffs(db: Session, call_sid: str, status: str, now: datetime) -> None:
    db.execute(update(Handoff).where(Handoff.call_sid == call_sid, Handoff.status == "waiting")
               .values(status=status, ended_at=to_db(now)))


def close_handoffs_at_call_end(db: Session, call_sid: str, now: datetime) -> None:
    """The call is over: whoever still waited hung up; a taken call has been talked through."""
    end_waiting_handoffs(db, call_sid, "hung_up", now)
    db.execute(update(Handoff).where(Handoff.call_sid == call_sid, Handoff.status == "taken")
               .values(status="done", ended_at=to_db(now)))
