"""Callbacks promised while the database was down, kept in files until the database is back.

When a caller asks for a person and the database cannot record it, the service may only
promise a callback if something durable holds the caller's number.  That is a small JSON file
per call in `var/spool/callbacks/` (written atomically, fsynced, readable by the service user
only), named by the CallSid so a retried webhook writes the same entry again rather than a
second one.  `python -m ivr worker` turns each entry into an open booking in the callback
worklist and then deletes the file: a claim by rename means two workers never take one entry,
and a booking already made for that call means a worker that died after committing does not
book it twice.  The web service and the worker must share `var/` (one machine).
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import Booking
from ivr.privacy import mask_phone
from ivr.timeutil import to_db

log = logging.getLogger(__name__)
_SID = re.compile(r"CA[0-9a-f]{32}")
_NUMBER = re.compile(r"\+?\d{6,15}")
STALE_CLAIM_SECONDS = 300  # a worker that died holding an entry gives it back after this long
NOTE = "数据库故障时来电，系统已答应回电"


@dataclass(frozen=True)
class SpooledCallback:
    call_sid: str
    caller: str
    language: str
    reason: str
    at: datetime


class CallbackSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.claimed = directory / "claimed"

    def add(self, entry: SpooledCallback) -> bool:
        """Durably note a promised callback; False if it cannot be kept (do not promise then)."""
        if not _SID.fullmatch(entry.call_sid) or not _NUMBER.fullmatch(entry.caller):
            return False
        try:
            self.claimed.mkdir(parents=True, exist_ok=True, mode=0o700)
            target = self.directory / f"{entry.call_sid}.json"
            if target.exists() or (self.claimed / target.name).exists():
                return True  # Twilio retried the webhook: the promise is already kept
            body = json.dumps({"call_sid": entry.call_sid, "caller": entry.caller, "language": entry.language,
                               "reason": entry.reason, "at": entry.at.isoformat()}).encode()
            temp = self.directory / f".{entry.call_sid}.{os.getpid()}.tmp"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
            _fsync_dir(self.directory)
            return True
        except OSError as exc:
            log.error("callback spool not writable (%s): no callback can be promised", type(exc).__name__)
            return False

    def pending(self) -> int:
        return len(list(self.directory.glob("CA*.json"))) if self.directory.exists() else 0

    def drain(self, sessions: sessionmaker[Session], slot_minutes: int = 60) -> int:
        """Book every spooled callback (exactly once); returns how many bookings were made."""
        if not self.directory.exists():
            return 0
        self._free_stale_claims()
        booked = 0
        for path in sorted(self.directory.glob("CA*.json")):
            claim = self.claimed / path.name
            try:
                os.rename(path, claim)  # atomic: only one worker gets each entry
            except FileNotFoundError:
                continue
            entry = _read(claim)
            if entry is None:
                log.error("callback spool: unreadable entry %s kept aside", claim.name)
                os.replace(claim, claim.with_suffix(".bad"))
                continue
            try:
                with sessions() as db, db.begin():
                    booked += _book(db, entry, slot_minutes)
            except Exception:
                os.replace(claim, path)  # the database is still down: try again next pass
                raise
            claim.unlink()
        _fsync_dir(self.directory)
        return booked

    def _free_stale_claims(self) -> None:
        self.claimed.mkdir(parents=True, exist_ok=True, mode=0o700)
        for claim in self.claimed.glob("CA*.json"):
            if time.time() - claim.stat().st_mtime > STALE_CLAIM_SECONDS:
                os.replace(claim, self.directory / claim.name)


def _book(db: Session, entry: SpooledCallback, slot_minutes: int) -> int:
    """An open booking due at once; none if this call or this number already has one."""
    same = select(Booking.id).where((Booking.call_sid == entry.call_sid)
                                    | ((Booking.caller == entry.caller) & (Booking.status == "open")))
    if db.execute(same.limit(1)).first() is not None:
        log.info("callback spool: %s already has a callback; entry %s dropped", mask_phone(entry.caller),
                 entry.call_sid)
        return 0
    start = entry.at.replace(second=0, microsecond=0)
    db.add(Booking(caller=entry.caller, callback_number=entry.caller, slot_start=to_db(start),
                   slot_end=to_db(start + timedelta(minutes=slot_minutes)), language=entry.language,
                   status="open", call_sid=entry.call_sid, created_at=to_db(entry.at), outcome_note=NOTE))
    log.info("callback spool: callback for %s booked (call %s, %s)", mask_phone(entry.caller), entry.call_sid,
             entry.reason)
    return 1


def _read(path: Path) -> SpooledCallback | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return SpooledCallback(call_sid=raw["call_sid"], caller=raw["caller"], language=raw["language"],
                               reason=raw["reason"], at=datetime.fromisoformat(raw["at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
