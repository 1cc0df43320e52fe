"""Working-day calendar for mainland China (callbacks are only made on working days).

Why three layers: the ``chinese_calendar`` package knows the official holidays and
adjusted working days (调休) but only for years the State Council has already
announced and the package has shipped; a YAML override file lets staff add a new
year's notice (or a local closure) without a code release; and plain Mon-Fri is
the least-wrong guess when neither knows the date.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import chinese_calendar
import yaml

__all__ = [
    "CalendarFileError",
    "DEFAULT_CALENDAR_FILE",
    "DaySource",
    "WorkCalendar",
]

#: The calendar file shipped with the project (``flows/calendar.yaml``).
DEFAULT_CALENDAR_FILE: Path = Path(__file__).resolve().parents[2] / "flows" / "calendar.yaml"

#: Which rule decided a date: the override file, the official data, or the Mon-Fri fallback.
DaySource = Literal["override", "official", "weekday"]

_KEYS = ("holidays", "working_days")
# Accept the spellings a non-programmer is likely to type: 2027-1-1, 2027/01/01.
_DATE_RE = re.compile(r"^\s*(\d{4})\s*[-/]\s*(\d{1,2})\s*[-/]\s*(\d{1,2})\s*$")


class CalendarFileError(ValueError):
    """The override file cannot be used; the message names the file and the bad entry."""


class _NoTimestampLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as strings, so we can report bad ones by their text.

    With the stock loader ``2027-02-30`` fails inside PyYAML with a message that does
    not say which entry was wrong.
    """


_NoTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse_entry(value: Any, path: Path, key: str, index: int) -> date:
    """Turn one list entry into a date, or raise an error a non-programmer can act on."""
    where = f"{path}: '{key}' entry #{index + 1}"
    text = "" if value is None else str(value)
    match = _DATE_RE.match(text)
    if not match:
        raise CalendarFileError(f"{where} {text!r} is not a date; write it as YYYY-MM-DD, e.g. 2027-01-01")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise CalendarFileError(f"{where} {text!r} is not a real date ({exc})") from None


def _load_overrides(path: Path) -> dict[date, bool]:
    """Read and validate the override YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CalendarFileError(f"{path}: calendar file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarFileError(f"{path}: cannot read calendar file ({exc})") from None
    try:
        data = yaml.load(text, Loader=_NoTimestampLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CalendarFileError(f"{path}: not valid YAML: {exc}") from None

    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CalendarFileError(f"{path}: expected the keys 'holidays:' and 'working_days:' at the top")
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        # A typo such as 'holiday:' would otherwise silently drop every entry.
        raise CalendarFileError(f"{path}: unknown key {unknown[0]!r}; allowed keys are 'holidays' and 'working_days'")

    overrides: dict[date, bool] = {}
    origin: dict[date, str] = {}
    for key in _KEYS:
        entries = data.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise CalendarFileError(f"{path}: '{key}' must be a list of dates like [2027-01-01, 2027-01-02], got {entries!r}")
        is_working = key == "working_days"
        for index, entry in enumerate(entries):
            day = _parse_entry(entry, path, key, index)
            if day in overrides and overrides[day] != is_working:
                raise CalendarFileError(
                    f"{path}: {day.isoformat()} is listed in both '{origin[day]}' and '{key}'; keep only one"
                )
            overrides[day] = is_working
            origin[day] = key
    return overrides


class WorkCalendar:
    """Decides whether a date is a working day in mainland China.

    Order of rules: explicit override, then ``chinese_calendar`` official data, then Mon-Fri.
    """

    def __init__(self, overrides: Mapping[date, bool] | None = None) -> None:
        """``overrides`` maps a date to True (working day) or False (day off)."""
        self._overrides: dict[date, bool] = dict(overrides or {})

    @classmethod
    def from_file(cls, path: Path | None) -> WorkCalendar:
        """Build a calendar from a YAML override file; ``None`` means no overrides."""
        if path is None:
            return cls()
        return cls(_load_overrides(Path(path)))

    @property
    def overrides(self) -> Mapping[date, bool]:
        """A copy of the explicit overrides (date -> is working day)."""
        return dict(self._overrides)

    @staticmethod
    def _official(d: date) -> tuple[bool, str | None] | None:
        """(is_day_off, holiday name) from the package, or None when it has no data for that year."""
        try:
            return chinese_calendar.get_holiday_detail(d)
        except (NotImplementedError, ValueError):
            return None

    def source(self, d: date) -> DaySource:
        """Which rule decides ``d``; "weekday" means a guess, so the override file may need updating."""
        if d in self._overrides:
            return "override"
        return "weekday" if self._official(d) is None else "official"

    def is_working_day(self, d: date) -> bool:
        """True when people are at work on ``d`` (callbacks can be made)."""
        if isinstance(d, datetime):
            d = d.date()
        if d in self._overrides:
            return self._overrides[d]
        official = self._official(d)
        if official is not None:
            return not official[0]
        return d.weekday() < 5

    def holiday_name(self, d: date) -> str | None:
        """Chinese name of the official holiday making ``d`` a day off (e.g. "国庆节"), else None.

        Only the package knows names; override-file holidays and ordinary weekends give None.
        """
        if isinstance(d, datetime):
            d = d.date()
        if self.is_working_day(d):
            return None
        official = self._official(d)
        if official is None or official[1] is None:
            return None
        try:
            return chinese_calendar.Holiday(official[1]).chinese
        except ValueError:
            return official[1]
