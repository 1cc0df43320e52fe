"""The database keeps naive UTC datetimes; the dialog works in Asia/Shanghai."""
from __future__ import annotations

from datetime import datetime, timezone

from ivr.config import SHANGHAI


def to_db(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where an aware one is needed")
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def from_db(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc).astimezone(SHANGHAI)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
