"""flows/notifications.yaml: which status changes are told, and the limits of telling them.

Validated at start-up with errors that name the file and the field, like the flows."""
from __future__ import annotations

from dataclasses import dataclass
import datetime as dt
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ivr.importer import STATUSES
from ivr.scheduling.hours import OpeningHours

FILE = "notifications.yaml"
# Telling these would be noise: the person did nothing and nothing is asked of them.
NEVER_TOLD = {"received", "in_review"}


class RulesError(ValueError):
    pass


class Reviewed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1)
    date: dt.date


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notify_on: list[str] = Field(min_length=1)
    call_hours: str
    tries: int = Field(ge=1, le=6)
    retry_minutes: int = Field(ge=15, le=24 * 60)
    per_week: int = Field(ge=1, le=7)
    sms_when_not_reached: bool = True
    reviewed: Reviewed

    @field_validator("notify_on")
    @classmethod
    def _known_statuses(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in STATUSES]
        if unknown:
            raise ValueError(f"unknown status {unknown} (known: {sorted(STATUSES)})")
        noise = [s for s in value if s in NEVER_TOLD]
        if noise:
            raise ValueError(f"{noise}: nothing is asked of the person, do not call them about it")
        return value

    @field_validator("call_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        hours = OpeningHours.parse(value)  # ValueError names the bad interval
        for start, end in hours.intervals:
            if start.hour < 8 or (end.hour, end.minute) > (20, 0):
                raise ValueError(f"{start:%H:%M}-{end:%H:%M}: never call before 08:00 or after 20:00")
        return value


@dataclass(frozen=True)
class NotificationRules:
    notify_on: frozenset[str]
    call_hours: OpeningHours
    tries: int
    retry_minutes: int
    per_week: int
    sms_when_not_reached: bool


def load_rules(flows_dir: Path) -> NotificationRules:
    path = flows_dir / FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesError(f"{FILE}: missing (status-change notifications need it)") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{FILE}: not valid YAML: {exc}") from None
    try:
        parsed = _RulesFile.model_validate(raw or {})
    except ValidationError as exc:
        problems = [f"{FILE}: {'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()]
        raise RulesError("\n".join(problems)) from None
    return NotificationRules(frozenset(parsed.notify_on), OpeningHours.parse(parsed.call_hours), parsed.tries,
                             parsed.retry_minutes, parsed.per_week, parsed.sms_when_not_reached)
