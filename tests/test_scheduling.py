"""Tests for the working-day calendar, opening hours and callback slots (Asia/Shanghai)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from ivr.scheduling.calendar import DEFAULT_CALENDAR_FILE, CalendarFileError, WorkCalendar
from ivr.scheduling.hours import OpeningHours, is_open
from ivr.scheduling.slots import Slot, candidate_slots, offer_slots, slot_from_key

SH = ZoneInfo("Asia/Shanghai")
HOURS = OpeningHours.parse("09:00-12:00,13:30-17:00")
CAL = WorkCalendar()  # package data + weekday fallback, independent of the shipped YAML


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def keys(slots: list[Slot]) -> list[str]:
    return [s.key for s in slots]


def offer(now: datetime, booked: dict[str, int] | None = None, **kw) -> list[Slot]:
    params = {"slot_minutes": 30, "capacity": 2, "booked": booked or {}}
    params.update(kw)
    return offer_slots(now, HOURS, CAL, **params)


# --------------------------------------------------------------------------- hours


def test_parse_hours_good() -> None:
    assert HOURS.intervals == ((time(9), time(12)), (time(13, 30), time(17)))
    assert str(HOURS) == "09:00-12:00,13:30-17:00"
    assert OpeningHours.parse(str(HOURS)) == HOURS


def test_parse_hours_tolerates_spaces_chinese_punctuation_and_order() -> None:
    assert OpeningHours.parse(" 13:30 ～ 17:00，9:00 - 12:00 ") == HOURS


def test_parse_hours_touching_intervals_are_not_overlapping() -> None:
    hours = OpeningHours.parse("09:00-12:00,12:00-13:00")
    assert len(hours.intervals) == 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("9-12", "'9'"),
        ("09:00", "not an interval"),
        ("09:00-12:00-13:00", "not an interval"),
        ("09:00-12:00,", "empty interval"),
        ("12:00-09:00", "ends before it starts"),
        ("09:00-09:00", "ends before it starts"),
        ("22:00-02:00", "cross midnight"),
        ("09:00-12:00,11:00-13:00", "overlap"),
        ("25:00-26:00", "'25:00'"),
        ("09:60-10:00", "'09:60'"),
        ("nine to five", "not"),
    ],
)
def test_parse_hours_bad(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        OpeningHours.parse(text)


def test_opening_hours_validated_when_constructed_directly() -> None:
    with pytest.raises(ValueError, match="ends before"):
        OpeningHours(((time(12), time(9)),))
    with pytest.raises(ValueError, match="at least one"):
        OpeningHours(())


def test_is_open_boundaries_lunch_and_weekend() -> None:
    thu = (2026, 11, 26)
    assert is_open(at(*thu, 9, 0), HOURS, CAL)
    assert is_open(at(*thu, 11, 59), HOURS, CAL)
    assert not is_open(at(*thu, 12, 0), HOURS, CAL)  # end is exclusive
    assert not is_open(at(*thu, 12, 45), HOURS, CAL)  # lunch
    assert is_open(at(*thu, 13, 30), HOURS, CAL)
    assert not is_open(at(*thu, 17, 0), HOURS, CAL)
    assert not is_open(at(*thu, 8, 59), HOURS, CAL)
    assert not is_open(at(2026, 11, 28, 10), HOURS, CAL)  # Saturday


def test_is_open_on_holiday_and_adjusted_working_saturday() -> None:
    assert not is_open(at(2026, 10, 5, 10), HOURS, CAL)  # Monday inside National Day
    assert is_open(at(2026, 10, 10, 10), HOURS, CAL)  # Saturday, 调休 working day


def test_is_open_converts_utc_to_shanghai() -> None:
    assert is_open(datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc), HOURS, CAL)  # 09:00 Shanghai
    assert not is_open(datetime(2026, 11, 26, 0, 59, tzinfo=timezone.utc), HOURS, CAL)  # 08:59
    # 10:00 on Friday in New York is 23:00 Friday in Shanghai: closed.
    assert not is_open(datetime(2026, 11, 27, 10, 0, tzinfo=ZoneInfo("America/New_York")), HOURS, CAL)


def test_is_open_refuses_naive_datetime() -> None:
    with pytest.raises(ValueError, match="timezone"):
        is_open(datetime(2026, 11, 26, 10, 0), HOURS, CAL)


# --------------------------------------------------------------------------- calendar


def test_weekends_and_weekdays() -> None:
    assert CAL.is_working_day(date(2026, 11, 27))  # Friday
    assert not CAL.is_working_day(date(2026, 11, 28))  # Saturday
    assert not CAL.is_working_day(date(2026, 11, 29))  # Sunday
    assert CAL.is_working_day(date(2026, 11, 30))  # Monday
    assert CAL.holiday_name(date(2026, 11, 28)) is None  # an ordinary weekend has no name


def test_national_day_2026_is_off_including_weekdays() -> None:
    for offset in range(7):
        d = date(2026, 10, 1) + timedelta(days=offset)
        assert not CAL.is_working_day(d), d
        assert CAL.holiday_name(d) == "国庆节"
        assert CAL.source(d) == "official"
    assert CAL.is_working_day(date(2026, 10, 8))  # Thursday after the holiday
    assert not CAL.is_working_day(date(2026, 9, 25))  # Friday, Mid-Autumn
    assert CAL.holiday_name(date(2026, 9, 25)) == "中秋"
    assert CAL.holiday_name(date(2026, 10, 8)) is None


@pytest.mark.parametrize("d", [date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 10, 10), date(2026, 9, 20)])
def test_adjusted_working_weekend_days_2026(d: date) -> None:
    # These are the 2026 调休 working days shipped in chinesecalendar 1.11.0 (State Council notice of 2025-11-04).
    assert d in chinese_calendar.workdays and d.weekday() >= 5
    assert CAL.is_working_day(d)
    assert CAL.holiday_name(d) is None


def test_override_wins_both_ways() -> None:
    cal = WorkCalendar({date(2026, 10, 5): True, date(2026, 11, 26): False, date(2026, 11, 28): True})
    assert cal.is_working_day(date(2026, 10, 5))  # official holiday forced to working
    assert not cal.is_working_day(date(2026, 11, 26))  # ordinary Thursday forced off
    assert cal.is_working_day(date(2026, 11, 28))  # Saturday forced to working
    assert cal.source(date(2026, 10, 5)) == "override"
    assert cal.holiday_name(date(2026, 10, 5)) is None
    assert CAL.is_working_day(date(2026, 11, 26))  # other calendars unaffected


def test_override_file_wins_both_ways(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text(
        "# comment\n"
        "holidays:\n"
        "  - 2026-11-26   # ordinary Thursday closed\n"
        "  - '2027-01-04' # quoted is fine\n"
        "  - 2027-1-5     # so is a short month/day\n"
        "  - 2027/01/06\n"
        "working_days: [2026-10-03, 2027-01-09]\n",
        encoding="utf-8",
    )
    cal = WorkCalendar.from_file(path)
    assert not cal.is_working_day(date(2026, 11, 26))
    assert cal.is_working_day(date(2026, 10, 3))  # official National Day holiday, overridden
    for d in (date(2027, 1, 4), date(2027, 1, 5), date(2027, 1, 6)):
        assert not cal.is_working_day(d)
    assert cal.is_working_day(date(2027, 1, 9))  # a Saturday
    assert cal.is_working_day(date(2027, 1, 7))  # not listed: weekday fallback


def test_override_file_empty_or_none(tmp_path: Path) -> None:
    path = tmp_path / "calendar.yaml"
    path.write_text("# nothing yet\nholidays: []\nworking_days:\n", encoding="utf-8")
    assert WorkCalendar.from_file(path).overrides == {}
    path.write_text("", encoding="utf-8")
    assert WorkCalendar.from_file(path).overrides == {}
    assert WorkCalendar.from_file(None).overrides == {}


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("holidays: [2027-01-01, 2027-02-30]\n", ["'holidays' entry #2", "2027-02-30", "not a real date"]),
        ("holidays:\n  - 2027-01-01\n  - tomorrow\n", ["'holidays' entry #2", "tomorrow", "YYYY-MM-DD"]),
        ("working_days: [2027-02-14 09:00]\n", ["'working_days' entry #1", "2027-02-14 09:00"]),
        ("working_days: [20270214]\n", ["'working_days' entry #1", "20270214"]),
        ("holiday: [2027-01-01]\n", ["unknown key 'holiday'"]),
        ("holidays: 2027-01-01\n", ["'holidays' must be a list"]),
        ("holidays: [2027-02-14]\nworking_days: [2027-02-14]\n", ["2027-02-14", "both"]),
        ("holidays: [2027-01-01\n", ["not valid YAML"]),
        ("- 2027-01-01\n", ["expected the keys"]),
    ],
)
def test_bad_override_file_names_file_and_entry(tmp_path: Path, content: str, fragments: list[str]) -> None:
    path = tmp_path / "my-calendar.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CalendarFileError) as info:
        WorkCalendar.from_file(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_override_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(CalendarFileError, match="not found") as info:
        WorkCalendar.from_file(path)
    assert str(path) in str(info.value)


def test_year_without_package_data_falls_back_to_weekdays() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2030, 1, 1))
    assert CAL.is_working_day(date(2030, 1, 1))  # New Year's Day, but the package does not know 2030
    assert not CAL.is_working_day(date(2030, 1, 5))  # Saturday
    assert CAL.source(date(2030, 1, 1)) == "weekday"
    assert CAL.holiday_name(date(2030, 1, 5)) is None
    assert CAL.is_working_day(date(2003, 1, 6))  # before the data starts (2004): Monday


def test_shipped_calendar_file_loads() -> None:
    cal = WorkCalendar.from_file(DEFAULT_CALENDAR_FILE)
    assert not cal.is_working_day(date(2027, 1, 1))  # 元旦, fixed by law
    assert cal.source(date(2027, 1, 1)) == "override"
    # Overrides should only fill years the package does not know yet.
    assert all(d.year >= 2027 for d in cal.overrides)


# --------------------------------------------------------------------------- slots


def test_slot_key_period_and_normalisation() -> None:
    slot = Slot(at(2026, 11, 26, 9), at(2026, 11, 26, 9, 30))
    assert slot.key == "2026-11-26T09:00:00+08:00"
    assert slot.day == date(2026, 11, 26)
    utc = Slot(datetime(2026, 11, 26, 1, tzinfo=timezone.utc), datetime(2026, 11, 26, 1, 30, tzinfo=timezone.utc))
    assert utc.key == slot.key and utc == slot
    for (h, mi), period in {(11, 30): "morning", (12, 0): "afternoon", (17, 59): "afternoon", (18, 0): "evening"}.items():
        assert Slot(at(2026, 11, 26, h, mi), at(2026, 11, 26, h, mi) + timedelta(minutes=1)).period == period
    with pytest.raises(ValueError):
        Slot(at(2026, 11, 26, 10), at(2026, 11, 26, 9))
    with pytest.raises(ValueError):
        Slot(datetime(2026, 11, 26, 9), datetime(2026, 11, 26, 10))


def test_slot_from_key_round_trip_and_errors() -> None:
    slot = slot_from_key("2026-11-26T13:30:00+08:00", 30)
    assert slot.start == at(2026, 11, 26, 13, 30) and slot.end == at(2026, 11, 26, 14)
    assert slot_from_key(slot.key, 30) == slot
    assert slot_from_key("2026-11-26T05:30:00Z", 30).key == slot.key  # other offsets are normalised
    for bad in ("2026-11-26T13:30:00", "tomorrow", ""):
        with pytest.raises(ValueError):
            slot_from_key(bad, 30)


def test_candidate_slots_respect_interval_ends_and_lunch_gap() -> None:
    day = list(candidate_slots(at(2026, 11, 26, 0), HOURS, CAL, slot_minutes=60, horizon_days=1))
    assert [s.start.strftime("%H:%M") for s in day] == ["09:00", "10:00", "11:00", "13:30", "14:30", "15:30"]
    for s in day:  # no slot touches the lunch gap or runs past closing
        assert s.end.time() <= time(12) or s.start.time() >= time(13, 30)
        assert s.end.time() <= time(17)
    odd = list(candidate_slots(at(2026, 11, 26, 0), OpeningHours.parse("09:00-10:00"), CAL, 45, horizon_days=1))
    assert keys(odd) == ["2026-11-26T09:00:00+08:00"]  # 09:45-10:30 would cross 10:00


def test_candidate_slots_are_in_time_order_on_working_days_only() -> None:
    slots = list(candidate_slots(at(2026, 9, 28, 8), HOURS, CAL, 30, horizon_days=14))
    starts = [s.start for s in slots]
    assert starts == sorted(starts)
    assert all(CAL.is_working_day(s.day) for s in slots)
    assert {s.day for s in slots}.isdisjoint(date(2026, 10, 1) + timedelta(days=i) for i in range(7))
    assert date(2026, 10, 10) in {s.day for s in slots}  # working Saturday included


def test_candidate_slots_validates_arguments_eagerly() -> None:
    with pytest.raises(ValueError, match="slot_minutes"):
        candidate_slots(at(2026, 11, 26, 8), HOURS, CAL, 0)
    with pytest.raises(ValueError, match="lead_minutes"):
        candidate_slots(at(2026, 11, 26, 8), HOURS, CAL, 30, lead_minutes=-1)
    with pytest.raises(ValueError, match="timezone"):
        candidate_slots(datetime(2026, 11, 26, 8), HOURS, CAL, 30)


def test_weekday_morning_offers_today_morning_today_afternoon_tomorrow_morning() -> None:
    now = at(2026, 11, 26, 9, 0)  # Thursday
    offered = offer(now)
    assert keys(offered) == [
        "2026-11-26T09:30:00+08:00",  # 今天上午 (09:00 is inside the 30-minute lead)
        "2026-11-26T13:30:00+08:00",  # 今天下午
        "2026-11-27T09:00:00+08:00",  # 明天上午
    ]
    assert [s.period for s in offered] == ["morning", "afternoon", "morning"]


def test_now_in_utc_is_converted_to_shanghai() -> None:
    utc_now = datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai
    assert keys(offer(utc_now)) == keys(offer(at(2026, 11, 26, 9, 0)))
    # 16:30 UTC on Wednesday is already 00:30 Thursday in Shanghai: "today" is Thursday.
    late_utc = datetime(2026, 11, 25, 16, 30, tzinfo=timezone.utc)
    assert offer(late_utc)[0].key == "2026-11-26T09:00:00+08:00"
    assert all(s.start.utcoffset() == timedelta(hours=8) for s in offer(late_utc))


def test_late_evening_offers_tomorrow() -> None:
    assert keys(offer(at(2026, 11, 26, 21, 0))) == [
        "2026-11-27T09:00:00+08:00",
        "2026-11-27T13:30:00+08:00",
        "2026-11-30T09:00:00+08:00",  # Friday is followed by the weekend
    ]


def test_friday_afternoon_goes_to_monday() -> None:
    assert keys(offer(at(2026, 11, 27, 16, 45))) == [  # 16:45 + 30 min lead is past the last slot
        "2026-11-30T09:00:00+08:00",
        "2026-11-30T13:30:00+08:00",
        "2026-12-01T09:00:00+08:00",
    ]
    assert keys(offer(at(2026, 11, 27, 16, 0))) == [
        "2026-11-27T16:30:00+08:00",  # last slot of the day is still offered
        "2026-11-30T09:00:00+08:00",
        "2026-11-30T13:30:00+08:00",
    ]


def test_lead_time_respected() -> None:
    now = at(2026, 11, 26, 9, 5)
    assert offer(now)[0].key == "2026-11-26T10:00:00+08:00"  # 09:30 < 09:35
    assert offer(now, lead_minutes=0)[0].key == "2026-11-26T09:30:00+08:00"
    # A long lead jumps the rest of the morning: 10:10 + 90 min = 11:40 > 11:30.
    first = offer(at(2026, 11, 26, 10, 10), lead_minutes=90)[0]
    assert first.key == "2026-11-26T13:30:00+08:00" and first.period == "afternoon"
    for s in candidate_slots(now, HOURS, CAL, 30, lead_minutes=45):
        assert s.start >= now + timedelta(minutes=45)


def test_slots_around_lunch_gap() -> None:
    # 11:15 + 30 min lead: 11:30 is too soon and nothing runs 12:00-13:30.
    offered = offer(at(2026, 11, 26, 11, 15))
    assert keys(offered)[0] == "2026-11-26T13:30:00+08:00"
    assert keys(offered)[1] == "2026-11-27T09:00:00+08:00"


def test_full_slots_are_skipped() -> None:
    now = at(2026, 11, 26, 8, 0)
    booked = {"2026-11-26T09:00:00+08:00": 2, "2026-11-26T09:30:00+08:00": 1}
    assert offer(now, booked)[0].key == "2026-11-26T09:30:00+08:00"  # 1 of 2 taken: still free
    booked["2026-11-26T09:30:00+08:00"] = 2
    assert offer(now, booked)[0].key == "2026-11-26T10:00:00+08:00"
    assert offer(now, booked, capacity=3)[0].key == "2026-11-26T09:00:00+08:00"


def test_full_half_day_is_skipped_entirely() -> None:
    now = at(2026, 11, 26, 8, 0)
    morning = [s for s in candidate_slots(now, HOURS, CAL, 30, horizon_days=1) if s.period == "morning"]
    booked = {s.key: 2 for s in morning}
    assert keys(offer(now, booked)) == [
        "2026-11-26T13:30:00+08:00",
        "2026-11-27T09:00:00+08:00",
        "2026-11-27T13:30:00+08:00",
    ]


def test_one_offer_per_half_day() -> None:
    offered = offer(at(2026, 11, 30, 8, 0), count=6)  # Monday
    assert keys(offered) == [
        "2026-11-30T09:00:00+08:00",
        "2026-11-30T13:30:00+08:00",
        "2026-12-01T09:00:00+08:00",
        "2026-12-01T13:30:00+08:00",
        "2026-12-02T09:00:00+08:00",
        "2026-12-02T13:30:00+08:00",
    ]
    assert len({(s.day, s.period) for s in offered}) == len(offered)


def test_evening_hours_form_their_own_half_day() -> None:
    hours = OpeningHours.parse("09:00-12:00,18:00-20:00")
    offered = offer_slots(at(2026, 11, 26, 8), hours, CAL, 30, capacity=1, booked={}, count=2)
    assert [(s.key, s.period) for s in offered] == [
        ("2026-11-26T09:00:00+08:00", "morning"),
        ("2026-11-26T18:00:00+08:00", "evening"),
    ]


def test_slots_before_national_day() -> None:
    assert keys(offer(at(2026, 9, 30, 15, 0))) == [
        "2026-09-30T15:30:00+08:00",  # last working afternoon before the holiday
        "2026-10-08T09:00:00+08:00",  # first working day after 1-7 October
        "2026-10-08T13:30:00+08:00",
    ]


def test_spring_festival_adjusted_saturday_and_horizon() -> None:
    now = at(2026, 2, 13, 18, 0)  # Friday evening; Sat 14 Feb is a 调休 working day, 15-23 Feb off
    assert keys(offer(now)) == [
        "2026-02-14T09:00:00+08:00",
        "2026-02-14T13:30:00+08:00",
        "2026-02-24T09:00:00+08:00",
    ]
    assert keys(offer(now, horizon_days=5)) == ["2026-02-14T09:00:00+08:00", "2026-02-14T13:30:00+08:00"]


def test_empty_when_everything_is_full() -> None:
    now = at(2026, 11, 26, 8, 0)
    booked = {s.key: 2 for s in candidate_slots(now, HOURS, CAL, 30)}
    assert booked  # sanity: there were slots to fill
    assert offer(now, booked) == []
    assert offer(now, capacity=0) == []
    assert offer(now, horizon_days=0) == []
    assert offer(now, count=0) == []


def test_slot_keys_do_not_depend_on_now() -> None:
    # Keys are DB ids: the grid must be anchored to the opening time, not to `now`.
    a = {s.key for s in candidate_slots(at(2026, 11, 26, 8, 0), HOURS, CAL, 30, horizon_days=2)}
    b = {s.key for s in candidate_slots(at(2026, 11, 26, 9, 7), HOURS, CAL, 30, horizon_days=2)}
    assert b <= a and "2026-11-26T10:00:00+08:00" in b
