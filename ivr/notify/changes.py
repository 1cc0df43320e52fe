"""What an import found to tell (MatterChange rows, written by ivr.importer), for the planner.

A change is untold until an identity-checked call read it (told); a notification carries it
once `notification_id` is set.  The importer keeps at most one untold, uncarried change per
matter; a matter may also have older untold ones carried by a notification that did not
reach the person: the newest stands for the matter."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ivr.db.models import MatterChange


def untold_changes(db: Session, phone: str) -> list[MatterChange]:
    """The number's untold changes, newest first, one per matter (its latest)."""
    rows = db.execute(select(MatterChange)
                      .where(MatterChange.phone == phone, MatterChange.told.is_(False))
                      .order_by(MatterChange.changed_at.desc(), MatterChange.id.desc())).scalars()
    latest: dict[int, MatterChange] = {}
    for change in rows:
        latest.setdefault(change.matter_id, change)
    return list(latest.values())


def numbers_to_tell(db: Session) -> list[str]:
    """Numbers with untold changes that no notification carries yet (notification_id NULL)."""
    query = (select(MatterChange.phone)
             .where(MatterChange.told.is_(False), MatterChange.notification_id.is_(None))
             .distinct().order_by(MatterChange.phone))
    return list(db.execute(query).scalars())


def mark_told(db: Session, change_ids: Iterable[int]) -> int:
    """The person heard these changes: mark them told, with any older untold change of the
    same matters (they are past news now).  Returns how many rows were marked."""
    ids = list(change_ids)
    if not ids:
        return 0
    newest: dict[int, int] = {}
    for matter_id, change_id in db.execute(select(MatterChange.matter_id, MatterChange.id)
                                           .where(MatterChange.id.in_(ids))):
        newest[matter_id] = max(newest.get(matter_id, 0), change_id)
    marked = 0
    for matter_id, change_id in newest.items():
        marked += db.execute(update(MatterChange)
                             .where(MatterChange.matter_id == matter_id, MatterChange.id <= change_id,
                                    MatterChange.told.is_(False))
                             .values(told=True)).rowcount
    return marked
