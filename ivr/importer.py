"""CSV import of matters: one row each, re-import updates by case_no, bad rows are skipped.

Rows go in chunks, each its own short transaction (with SQLite, the write lock that every
call turn needs is held for one chunk, never for the whole file); the existing matters of a
chunk are fetched with one query.  A re-import that changes a matter's status to one the
notification rules tell (flows/notifications.yaml, notify_on) records a MatterChange in the
same transaction as the matter; a first import records nothing (an initial load calls no one).

Only one change per matter waits to be told: a second change before the first was taken up by
a notification updates the waiting row (its old status stays what the person last knew); a
change away from the told statuses, or back to what the person knew, withdraws it.  Rows that
a notification already carries are left to it.
"""
from __future__ import annotations

import csv
import re
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Collection, Iterator

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import SHANGHAI
from ivr.db.models import Matter, MatterChange
from ivr.privacy import hash_id_last4
from ivr.timeutil import to_db, utc_now

COLUMNS = ["case_no", "service", "status", "updated_at", "phone", "id_last4", "birth_year", "detail"]
SERVICES = {"application", "social_security_card", "pension", "medical_insurance", "housing_fund"}
STATUSES = {"received", "in_review", "need_documents", "approved", "ready_for_pickup", "paid",
            "rejected", "completed"}
CHUNK_ROWS = 500  # rows a transaction: docs/benchmarks.md, "Importing matters"
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_LAST4 = re.compile(r"\d{3}[\dXx]")
_CASE_NO = re.compile(r"\d{4,20}")
_LINE = re.compile(r": line (\d+):")


@dataclass(frozen=True)
class ChangeToTell:
    """A status change waiting to be told after this import (the phone in clear: mask to show)."""

    case_no: str
    old_status: str
    new_status: str
    phone: str


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)
    changes: int = 0  # matters with a status change recorded (or updated) to tell
    notify_numbers: int = 0  # distinct phones with untold changes after the import
    withdrawn: int = 0  # changes waiting from earlier imports that are no longer news
    changed: list[ChangeToTell] = field(default_factory=list)
    dry_run: bool = False
    interrupted: bool = False  # stopped at a chunk the database could not take (see errors)

    def summary(self) -> str:
        text = (f"{self.added} added, {self.updated} updated, {len(self.errors)} rows skipped, "
                f"{self.changes} status changes to tell {self.notify_numbers} numbers")
        if self.withdrawn:
            text += f", {self.withdrawn} earlier changes withdrawn"
        return text + (" (dry run: nothing written)" if self.dry_run else "")


def _parse_updated_at(text: str) -> datetime:
    """A date or an ISO date-time; without a zone it is Shanghai time."""
    value = text.strip()
    parsed = datetime.combine(date.fromisoformat(value), datetime.min.time()) if len(value) == 10 \
        else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=SHANGHAI)


def _check_row(row: dict[str, str]) -> list[str]:
    problems = []
    if not _CASE_NO.fullmatch(row["case_no"]):
        problems.append("case_no must be 4 to 20 digits (callers key it in)")
    if row["service"] not in SERVICES:
        problems.append(f"service {row['service']!r} is not one of {sorted(SERVICES)}")
    if row["status"] not in STATUSES:
        problems.append(f"status {row['status']!r} is not one of {sorted(STATUSES)}")
    if not _E164.fullmatch(row["phone"]):
        problems.append("phone must be in E.164 form, e.g. +8613800000001")
    if not _LAST4.fullmatch(row["id_last4"]):
        problems.append("id_last4 must be 3 digits then a digit or X")
    if row["birth_year"] and not (row["birth_year"].isdigit() and 1900 <= int(row["birth_year"]) <= 2030):
        problems.append("birth_year must be a year such as 1950, or empty")
    try:
        _parse_updated_at(row["updated_at"])
    except ValueError:
        problems.append("updated_at must be a date (2026-11-20) or an ISO date-time")
    if "\x00" in row["detail"]:
        problems.append("detail contains a NUL character")
    return problems


@dataclass
class _Row:
    line: int
    case_no: str
    values: dict


@dataclass
class _Known:
    """A matter as it stands (in the database, or after an earlier row of this import)."""

    id: int | None  # None: added by this import, not written yet
    status: str
    phone: str
    new: bool  # added by this import: its changes are not news


@dataclass
class _Waiting:
    """The matter's untold change not yet carried by a notification."""

    id: int | None  # None: recorded by this import, not written yet
    matter_id: int
    phone: str
    old_status: str
    new_status: str
    withdrawn: bool = False
    touched: bool = False


class DatabaseBusy(Exception):
    """A chunk could not get the database in time; the chunks before it are imported."""


class _Import:
    def __init__(self, target: sessionmaker[Session] | Session, notify_on: Collection[str], dry_run: bool,
                 report: ImportReport) -> None:
        self.target, self.notify_on = target, frozenset(notify_on)
        self.dry_run, self.report = dry_run, report
        self.now = to_db(utc_now())
        self.added: set[str] = set()  # case numbers this import added
        self.told: dict[str, ChangeToTell] = {}  # case_no → the change waiting after this import
        # Dry run: nothing is written, so what earlier chunks would have written is kept here.
        self.matters: dict[str, _Known] = {}
        self.waiting: dict[int, _Waiting] = {}

    def _session(self, read_only: bool) -> Session:
        assert isinstance(self.target, sessionmaker)
        engine = self.target.kw.get("bind")
        if read_only and engine is not None:
            # SQLite: a plain BEGIN, not a place in the writers' queue behind live calls
            return self.target(bind=engine.execution_options(read_only=True))
        return self.target()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One chunk: its own transaction, or a savepoint in the caller's session (the older
        calling convention); a dry run only reads, and keeps nothing."""
        if isinstance(self.target, Session):
            savepoint = self.target.begin_nested()
            try:
                yield self.target
            except BaseException:
                savepoint.rollback()
                raise
            if self.dry_run:
                savepoint.rollback()
            else:
                savepoint.commit()
        elif self.dry_run:
            with self._session(read_only=True) as db:
                yield db  # closed without a commit
        else:
            with self._session(read_only=False) as db, db.begin():
                yield db

    def chunk(self, rows: list[_Row], path: Path) -> None:
        try:
            with self.transaction() as db:
                outcome = self._chunk(db, rows)
        except (IntegrityError, DataError):
            if len(rows) == 1:
                # the database refused this row: say which line, never the values (personal data)
                self.report.errors.append(f"{path.name}: line {rows[0].line}: the database refused the row")
                return
            half = len(rows) // 2  # find the row, keep the others
            self.chunk(rows[:half], path)
            self.chunk(rows[half:], path)
            return
        except OperationalError as exc:
            if isinstance(self.target, Session):
                raise
            raise DatabaseBusy(f"{path.name}: line {rows[0].line}: stopped here, the database was busy or "
                               "unreachable (the rows before this line are imported; run the import again)") from exc
        self._settle(rows, *outcome)

    def _chunk(self, db: Session, rows: list[_Row]) -> tuple:
        known = self._fetch_matters(db, {r.case_no for r in rows})
        waiting = self._fetch_waiting(db, {k.id for k in known.values() if k.id is not None and not k.new})
        told: dict[str, ChangeToTell | None] = {}
        inserts: dict[str, dict] = {}
        updates: dict[int, dict] = {}
        for row in rows:
            values = row.values
            current = known.get(row.case_no)
            if current is None:
                inserts[row.case_no] = dict(case_no=row.case_no, **values)
                known[row.case_no] = _Known(None, values["status"], values["phone"], new=True)
                continue
            if current.id is None:
                if row.case_no in inserts:  # (else a dry run's matter added by an earlier chunk)
                    inserts[row.case_no].update(values)
            else:
                updates[current.id] = dict(id=current.id, **values)
            if not current.new:
                self._compare(row, current, waiting, told)
            current.status, current.phone = values["status"], values["phone"]
        if not self.dry_run:
            self._write(db, inserts, updates, waiting)
        return known, waiting, inserts, told

    def _write(self, db: Session, inserts: dict[str, dict], updates: dict[int, dict],
               waiting: dict[int, _Waiting]) -> None:
        if inserts:
            db.execute(insert(Matter), list(inserts.values()))
        if updates:
            db.execute(update(Matter), list(updates.values()))
        fresh = [dict(matter_id=w.matter_id, phone=w.phone, old_status=w.old_status, new_status=w.new_status,
                      changed_at=self.now, notification_id=None, told=False)
                 for w in waiting.values() if w.id is None and not w.withdrawn]
        renewed = [dict(id=w.id, phone=w.phone, old_status=w.old_status, new_status=w.new_status,
                        changed_at=self.now) for w in waiting.values()
                   if w.id is not None and w.touched and not w.withdrawn]
        dropped = [w.id for w in waiting.values() if w.id is not None and w.withdrawn]
        if fresh:
            db.execute(insert(MatterChange), fresh)
        if renewed:
            db.execute(update(MatterChange), renewed)
        if dropped:
            # (a notification that took the change up meanwhile keeps it)
            db.execute(delete(MatterChange).where(MatterChange.id.in_(dropped), MatterChange.notification_id.is_(None)))

    def _settle(self, rows: list[_Row], known: dict[str, _Known], waiting: dict[int, _Waiting],
                inserts: dict[str, dict], told: dict[str, ChangeToTell | None]) -> None:
        """The chunk is written (or, in a dry run, compared): count it."""
        self.report.added += len(inserts)
        self.report.updated += len(rows) - len(inserts)
        self.report.withdrawn += sum(1 for w in waiting.values() if w.id is not None and w.withdrawn)
        self.added.update(inserts)
        for case_no, change in told.items():
            if change is None:
                self.told.pop(case_no, None)
            else:
                self.told[case_no] = change
        if self.dry_run:
            self.matters.update(known)
            self.waiting.update(waiting)

    def _compare(self, row: _Row, current: _Known, waiting: dict[int, _Waiting],
                 told: dict[str, ChangeToTell | None]) -> None:
        new, phone = row.values["status"], row.values["phone"]
        assert current.id is not None
        earlier = waiting.get(current.id)
        pending = earlier if earlier is not None and not earlier.withdrawn else None
        if new != current.status:
            if pending is not None and (new == pending.old_status or new not in self.notify_on):
                pending.withdrawn = True  # no longer news: what the person knew, or nothing to tell
                told[row.case_no] = None
                return
            if new not in self.notify_on:
                return
            if pending is None:
                # (a row withdrawn earlier in this chunk is reused rather than deleted)
                pending = _Waiting(earlier.id if earlier else None, current.id, phone, current.status, new)
                waiting[current.id] = pending
            pending.new_status, pending.phone, pending.touched = new, phone, True
            told[row.case_no] = ChangeToTell(row.case_no, pending.old_status, new, phone)
        elif pending is not None and phone != pending.phone:
            pending.phone, pending.touched = phone, True  # the news goes to the matter's new number
            told[row.case_no] = ChangeToTell(row.case_no, pending.old_status, pending.new_status, phone)

    def _fetch_matters(self, db: Session, case_nos: set[str]) -> dict[str, _Known]:
        found = {c: _Known(k.id, k.status, k.phone, k.new) for c, k in self.matters.items() if c in case_nos}
        wanted = case_nos - found.keys()
        if wanted:
            query = select(Matter.id, Matter.case_no, Matter.status, Matter.phone).where(Matter.case_no.in_(wanted))
            for matter_id, case_no, status, phone in db.execute(query):
                found[case_no] = _Known(matter_id, status, phone, new=case_no in self.added)
        return found

    def _fetch_waiting(self, db: Session, matter_ids: set[int]) -> dict[int, _Waiting]:
        found = {m: replace(w, touched=False) for m, w in self.waiting.items()
                 if m in matter_ids and not w.withdrawn}
        wanted = matter_ids - self.waiting.keys()
        if wanted:
            query = (select(MatterChange.id, MatterChange.matter_id, MatterChange.phone, MatterChange.old_status,
                            MatterChange.new_status)
                     .where(MatterChange.matter_id.in_(wanted), MatterChange.told.is_(False),
                            MatterChange.notification_id.is_(None))
                     .order_by(MatterChange.id))
            for change_id, matter_id, phone, old_status, new_status in db.execute(query):
                # one waits per matter (should there be older ones, the newest stands for them)
                found[matter_id] = _Waiting(change_id, matter_id, phone, old_status, new_status)
        return found

    def count_numbers(self) -> int:
        """Distinct numbers with untold changes after the import (or, dry, after it would be)."""
        if isinstance(self.target, Session):
            return self._count_numbers(self.target)
        with self._session(read_only=True) as db, db.begin():
            return self._count_numbers(db)

    def _count_numbers(self, db: Session) -> int:
        if not self.dry_run:
            return db.execute(select(func.count(func.distinct(MatterChange.phone)))
                              .where(MatterChange.told.is_(False))).scalar_one()
        phones: set[str] = set()
        rows = db.execute(select(MatterChange.matter_id, MatterChange.phone, MatterChange.notification_id)
                          .where(MatterChange.told.is_(False)))
        for matter_id, phone, notification_id in rows:
            if notification_id is not None or matter_id not in self.waiting:
                phones.add(phone)
        phones.update(w.phone for w in self.waiting.values() if not w.withdrawn)
        return len(phones)


def _run(job: _Import, rows: list[_Row], path: Path) -> bool:
    try:
        job.chunk(rows, path)
    except DatabaseBusy as exc:
        job.report.errors.append(str(exc))
        job.report.interrupted = True
        return False
    return True


def _line_of(error: str) -> int:
    match = _LINE.search(error)
    return int(match.group(1)) if match else 0


def import_matters(sessions: sessionmaker[Session] | Session, path: Path, id_hash_secret: str, *,
                   notify_on: Collection[str] = (), dry_run: bool = False,
                   chunk_rows: int = CHUNK_ROWS) -> ImportReport:
    """Import `path`; `notify_on`: the statuses whose changes are recorded to tell
    (ivr.notify.rules.NotificationRules.notify_on; empty: none are).

    With a sessionmaker each chunk of `chunk_rows` rows commits on its own.  With a Session
    (the older calling convention) everything stays in the caller's transaction, a savepoint a
    chunk.  dry_run: compares and reports the same figures, writes nothing."""
    report = ImportReport(dry_run=dry_run)
    job = _Import(sessions, notify_on, dry_run, report)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            report.errors.append(f"{path.name}: line 1: missing columns {missing}")
            return report
        rows: list[_Row] = []
        for row in reader:
            line = reader.line_num
            clean = {k: (row.get(k) or "").strip() for k in COLUMNS}
            problems = _check_row(clean)
            if problems:
                # never echo id_last4 back: it is personal data
                report.errors.append(f"{path.name}: line {line}: " + "; ".join(problems))
                continue
            salt, digest = hash_id_last4(id_hash_secret, clean["id_last4"])
            rows.append(_Row(line, clean["case_no"], dict(
                service=clean["service"], status=clean["status"],
                updated_at=to_db(_parse_updated_at(clean["updated_at"])),
                phone=clean["phone"], id_salt=salt, id_hash=digest,
                birth_year=int(clean["birth_year"]) if clean["birth_year"] else None,
                detail=clean["detail"] or None, imported_at=job.now)))
            if len(rows) >= chunk_rows:
                if not _run(job, rows, path):
                    break
                rows = []
        else:
            if rows:
                _run(job, rows, path)
    report.errors.sort(key=_line_of)
    report.changed = sorted(job.told.values(), key=lambda c: c.case_no)
    report.changes = len(report.changed)
    try:
        report.notify_numbers = job.count_numbers()
    except OperationalError:
        if not report.interrupted or isinstance(sessions, Session):
            raise
    return report
