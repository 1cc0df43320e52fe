"""CSV import of matters: one row each, re-import updates by case_no, bad rows are skipped."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.config import SHANGHAI
from ivr.db.models import Matter
from ivr.privacy import hash_id_last4
from ivr.timeutil import to_db, utc_now

COLUMNS = ["case_no", "service", "status", "updated_at", "phone", "id_last4", "birth_year", "detail"]
SERVICES = {"application", "social_security_card", "pension", "medical_insurance", "housing_fund"}
STATUSES = {"received", "in_review", "need_documents", "approved", "ready_for_pickup", "paid",
            "rejected", "completed"}
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_LAST4 = re.compile(r"\d{3}[\dXx]")
_CASE_NO = re.compile(r"\d{4,20}")


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.added} added, {self.updated} updated, {len(self.errors)} rows skipped"


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
    return problems


def import_matters(session: Session, path: Path, id_hash_secret: str) -> ImportReport:
    report = ImportReport()
    now = to_db(utc_now())
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            report.errors.append(f"{path.name}: line 1: missing columns {missing}")
            return report
        for row in reader:
            line = reader.line_num
            clean = {k: (row.get(k) or "").strip() for k in COLUMNS}
            problems = _check_row(clean)
            if problems:
                # never echo id_last4 back: it is personal data
                report.errors.append(f"{path.name}: line {line}: " + "; ".join(problems))
                continue
            salt, digest = hash_id_last4(id_hash_secret, clean["id_last4"])
            values = dict(service=clean["service"], status=clean["status"],
                          updated_at=to_db(_parse_updated_at(clean["updated_at"])),
                          phone=clean["phone"], id_salt=salt, id_hash=digest,
                          birth_year=int(clean["birth_year"]) if clean["birth_year"] else None,
                          detail=clean["detail"] or None, imported_at=now)
            existing = session.execute(select(Matter).where(Matter.case_no == clean["case_no"])).scalar_one_or_none()
            if existing is None:
                session.add(Matter(case_no=clean["case_no"], **values))
                report.added += 1
            else:
                for key, value in values.items():
                    setattr(existing, key, value)
                report.updated += 1
            session.flush()
    return report
