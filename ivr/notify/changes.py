"""What an import found to tell (MatterChange rows, written by ivr.importer), for the planner.

A change is untold until an identity-checked call read it (told: ivr.db.repository's
news_heard); a notification carries it once `notification_id` is set.  The importer keeps at
most one untold, uncarried change per matter."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import MatterChange


def numbers_to_tell(db: Session) -> list[str]:
    """Numbers with untold changes that no notification carries yet (notification_id NULL)."""
    query = (select(MatterChange.phone)
             .where(MatterChange.told.is_(False), MatterChange.notification_id.is_(None))
             .distinct().order_by(MatterChange.phone))
    return list(db.execute(query).scalars())
