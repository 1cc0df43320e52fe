"""Rules supervisors change in the console (hours, slot capacity, days off), layered over Settings.

Settings give the defaults at start-up; a row in ``service_rules`` overrides one of them for
every worker process from the next call turn on.  The check costs one small query per turn
and the merged Policy is rebuilt only when a rule changed.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.audit import audit
from ivr.db.models import ServiceRule
from ivr.engine.policy import Policy
from ivr.scheduling.calendar import WorkCalendar
from ivr.scheduling.hours import OpeningHours
from ivr.timeutil import to_db

MAX_SLOT_CAPACITY = 50


class RuleError(ValueError):
    """A rule value the console refuses; the message is safe to show."""


@dataclass(frozen=True)
class Rules:
    """The values a supervisor sees and edits, stored rules over the Settings defaults."""

    operator_hours: str
    service_hours: str
    slot_capacity: int
    days_off: tuple[date, ...]
    extra_working_days: tuple[date, ...]


def _dates(raw: object) -> tuple[date, ...]:
    return tuple(sorted(date.fromisoformat(str(d)) for d in (raw or [])))


def current_rules(db: Session, base: Policy) -> Rules:
    stored = {row.key: row.value for row in db.execute(select(ServiceRule)).scalars()}
    return Rules(operator_hours=str(stored.get("operator_hours") or base.operator_hours),
                 service_hours=str(stored.get("service_hours") or base.service_hours),
                 slot_capacity=int(stored.get("slot_capacity") or base.slot_capacity),
                 days_off=_dates(stored.get("days_off")),
                 extra_working_days=_dates(stored.get("extra_working_days")))


def apply_rules(base: Policy, rules: Rules) -> Policy:
    overrides = dict(base.calendar.overrides)
    overrides.update({d: False for d in rules.days_off})
    overrides.update({d: True for d in rules.extra_working_days})
    return dataclasses.replace(base, operator_hours=OpeningHours.parse(rules.operator_hours),
                               service_hours=OpeningHours.parse(rules.service_hours),
                               slot_capacity=rules.slot_capacity, calendar=WorkCalendar(overrides))


def parse_dates(text: str, what: str) -> list[str]:
    """Dates typed one per line or separated by commas, as ISO strings (errors name the entry)."""
    found = []
    for part in text.replace(",", "\n").replace("，", "\n").splitlines():
        part = part.strip()
        if not part:
            continue
        try:
            found.append(date.fromisoformat(part.replace("/", "-")).isoformat())
        except ValueError:
            raise RuleError(f"{what}: {part!r} is not a date like 2027-01-01") from None
    return sorted(set(found))


def save_rule(db: Session, key: str, value: object, actor: str, now: datetime) -> None:
    """Validate and store one rule; the change is audited with its old and new value."""
    if key in ("operator_hours", "service_hours"):
        try:
            value = str(OpeningHours.parse(str(value)))
        except ValueError as exc:
            raise RuleError(str(exc)) from None
    elif key == "slot_capacity":
        if not str(value).isdigit() or not 1 <= int(str(value)) <= MAX_SLOT_CAPACITY:
            raise RuleError(f"slot capacity must be a whole number from 1 to {MAX_SLOT_CAPACITY}")
        value = int(str(value))
    elif key not in ("days_off", "extra_working_days"):
        raise RuleError(f"unknown rule {key!r}")
    row = db.get(ServiceRule, key)
    old = row.value if row else None
    if old == value:
        return
    if row is None:
        db.add(ServiceRule(key=key, value=value, updated_by=actor, updated_at=to_db(now)))
    else:
        row.value, row.updated_by, row.updated_at = value, actor, to_db(now)
    audit(db, actor, "rule_changed", now, rule=key, old=old, new=value)


def save_rules(db: Session, values: dict[str, object], base: Policy, actor: str, now: datetime) -> list[str]:
    """Store the rules that differ from the ones in force; the rest stay on their Settings
    defaults (so a later change of the environment still reaches them). Returns what changed."""
    shown = current_rules(db, base)
    changed = []
    for key, value in values.items():
        in_force = getattr(shown, key)
        if isinstance(in_force, tuple):
            in_force = [d.isoformat() for d in in_force]
        elif key.endswith("_hours"):
            try:
                value = str(OpeningHours.parse(str(value)))
            except ValueError as exc:
                raise RuleError(str(exc)) from None
        if str(value) != str(in_force):
            save_rule(db, key, value, actor, now)
            changed.append(key)
    return changed


class PolicySource:
    """The Policy in force: Settings' rules with the supervisors' changes applied."""

    def __init__(self, base: Policy) -> None:
        self.base = base
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._policy = base

    def current(self, db: Session) -> Policy:
        version = tuple(db.execute(select(func.count(), func.max(ServiceRule.updated_at))).one())
        with self._lock:
            if version != self._version:
                self._policy = apply_rules(self.base, current_rules(db, self.base)) if version[0] else self.base
                self._version = version
            return self._policy
