"""Exact expected Mandarin text for every speakable rule."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from ivr.speakable import (
    say_clock,
    say_count,
    say_date,
    say_digit_groups,
    say_full_date,
    say_number,
    say_phone,
    say_slot,
)

TODAY = date(2025, 11, 26)  # a Wednesday


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("13800000001", "幺三八，零零零零，零零零幺"),  # mobile 3-4-4
        ("13912345678", "幺三九，幺两三四，五六七八"),  # 1 → 幺, 2 → 两
        ("61234567", "六幺两三，四五六七"),  # Shanghai landline 4-4
        ("02161234567", "零两幺，六幺两三，四五六七"),  # 021 + 4-4
        ("2025", "两零两五"),  # 4 chars: one group
        ("202511260001", "两零两五，幺幺两六，零零零幺"),  # case number: fours
        ("1234567890", "幺两三四，五六七八，九零"),  # fours, short tail
        ("310101194910011234", "三幺零幺，零幺幺九，四九幺零，零幺幺两，三四"),
        ("31010119491001123X", "三幺零幺，零幺幺九，四九幺零，零幺幺两，三叉"),
        ("3101011949100112x", "三幺零幺，零幺幺九，四九幺零，零幺幺两，叉"),
        ("12*4", "幺两叉四"),
        ("138-0000 0001", "幺三八，零零零零，零零零幺"),  # separators dropped
        ("(021) 6123-4567", "零两幺，六幺两三，四五六七"),
        ("123", "幺两三"),
        ("", ""),
        ("abc", ""),
    ],
)
def test_say_digit_groups_default_grouping(digits: str, expected: str) -> None:
    assert say_digit_groups(digits) == expected


@pytest.mark.parametrize(
    ("digits", "groups", "expected"),
    [
        ("123456", [2, 2, 2], "幺两，三四，五六"),
        ("123456", [3], "幺两三，四五六"),  # uncovered rest becomes a group
        ("1234", [2, 5], "幺两，三四"),  # groups longer than the string
        ("1234", [], "幺两三四"),
    ],
)
def test_say_digit_groups_explicit_groups(digits: str, groups: list[int], expected: str) -> None:
    assert say_digit_groups(digits, groups) == expected


def test_say_digit_groups_rejects_non_positive_groups() -> None:
    with pytest.raises(ValueError):
        say_digit_groups("1234", [2, 0])


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+8613800000001", "幺三八，零零零零，零零零幺"),
        ("13800000001", "幺三八，零零零零，零零零幺"),
        ("+862161234567", "零两幺，六幺两三，四五六七"),  # E.164 landline → 021
        ("02161234567", "零两幺，六幺两三，四五六七"),
        ("61234567", "六幺两三，四五六七"),
        ("+86 138 0000 0001", "幺三八，零零零零，零零零幺"),
        ("008613800000001", "幺三八，零零零零，零零零幺"),
        ("8613800000001", "幺三八，零零零零，零零零幺"),
        ("+861012345678", "零幺零，幺两三四，五六七八"),  # Beijing 010: not a mobile
        ("+8657112345678", "零五七幺，幺两三四，五六七八"),  # 0571 + 8 digits
        ("12345", "幺两三四五"),  # city service hotline: one group
        ("110", "幺幺零"),
    ],
)
def test_say_phone(number: str, expected: str) -> None:
    assert say_phone(number) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "零"),
        (1, "一"),
        (2, "二"),
        (10, "十"),
        (11, "十一"),
        (12, "十二"),
        (20, "二十"),
        (22, "二十二"),
        (99, "九十九"),
        (100, "一百"),
        (102, "一百零二"),
        (110, "一百一十"),
        (200, "二百"),
        (999, "九百九十九"),
        (1000, "一千"),
        (1001, "一千零一"),
        (1010, "一千零一十"),
        (1100, "一千一百"),
        (2000, "二千"),
        (2025, "二千零二十五"),
        (9999, "九千九百九十九"),
    ],
)
def test_say_number(n: int, expected: str) -> None:
    assert say_number(n) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "零"),
        (2, "两"),
        (12, "十二"),  # never 十两
        (20, "二十"),  # never 两十
        (22, "二十二"),
        (200, "两百"),
        (202, "两百零二"),
        (2000, "两千"),
        (2200, "两千两百"),
        (1002, "一千零二"),
        (3, "三"),
    ],
)
def test_say_count(n: int, expected: str) -> None:
    assert say_count(n) == expected


@pytest.mark.parametrize("n", [-1, 10000])
def test_numbers_out_of_range(n: int) -> None:
    with pytest.raises(ValueError):
        say_number(n)
    with pytest.raises(ValueError):
        say_count(n)


@pytest.mark.parametrize(
    ("d", "expected"),
    [
        (date(2025, 11, 26), "今天"),
        (date(2025, 11, 27), "明天"),
        (date(2025, 11, 28), "后天"),
        (date(2025, 11, 29), "十一月二十九日，星期六"),
        (date(2025, 11, 30), "十一月三十日，星期日"),
        (date(2025, 12, 1), "十二月一日，星期一"),
        (date(2025, 11, 25), "十一月二十五日，星期二"),  # past: no 昨天
        (date(2026, 2, 2), "二月二日，星期一"),
    ],
)
def test_say_date(d: date, expected: str) -> None:
    assert say_date(d, TODAY) == expected


@pytest.mark.parametrize(
    ("d", "today", "expected"),
    [
        (date(2025, 11, 20), None, "十一月二十日"),
        (date(2025, 11, 20), TODAY, "十一月二十日"),
        (date(2024, 12, 31), TODAY, "二〇二四年十二月三十一日"),
        (date(2026, 1, 2), TODAY, "二〇二六年一月二日"),
        (date(2025, 11, 26), TODAY, "十一月二十六日"),  # no 今天 here
    ],
)
def test_say_full_date(d: date, today: date | None, expected: str) -> None:
    assert say_full_date(d, today) == expected


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (time(9, 0), "上午九点"),
        (time(9, 30), "上午九点半"),
        (time(11, 45), "上午十一点四十五分"),
        (time(10, 5), "上午十点零五分"),
        (time(12, 0), "中午十二点"),
        (time(12, 30), "中午十二点半"),
        (time(13, 30), "下午一点半"),
        (time(14, 0), "下午两点"),
        (time(16, 15), "下午四点十五分"),
        (time(17, 59), "下午五点五十九分"),
        (time(18, 0), "晚上六点"),
        (time(19, 0), "晚上七点"),
        (time(23, 20), "晚上十一点二十分"),
        (time(2, 0), "凌晨两点"),
        (time(0, 0), "凌晨零点"),
        (time(6, 0), "上午六点"),
        (time(9, 0, 59), "上午九点"),  # seconds are not read
    ],
)
def test_say_clock(t: time, expected: str) -> None:
    assert say_clock(t) == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (datetime(2025, 11, 27, 9), datetime(2025, 11, 27, 10), "明天上午，九点到十点"),
        (datetime(2025, 11, 26, 14), datetime(2025, 11, 26, 15), "今天下午，两点到三点"),
        (datetime(2025, 11, 28, 9, 30), datetime(2025, 11, 28, 10), "后天上午，九点半到十点"),
        (
            datetime(2025, 12, 1, 9),
            datetime(2025, 12, 1, 10),
            "十二月一日，星期一，上午，九点到十点",
        ),
        (
            datetime(2025, 11, 30, 13, 30),
            datetime(2025, 11, 30, 14, 15),
            "十一月三十日，星期日，下午，一点半到两点十五分",
        ),
        # End exactly on a period boundary stays in the start's period.
        (datetime(2025, 11, 27, 11), datetime(2025, 11, 27, 12), "明天上午，十一点到十二点"),
        (datetime(2025, 11, 27, 17), datetime(2025, 11, 27, 18), "明天下午，五点到六点"),
        # A slot crossing into another period names the end's period.
        (
            datetime(2025, 11, 27, 11, 30),
            datetime(2025, 11, 27, 13, 30),
            "明天上午，十一点半到下午一点半",
        ),
        (datetime(2025, 11, 27, 12), datetime(2025, 11, 27, 12, 30), "明天中午，十二点到十二点半"),
        (datetime(2025, 11, 26, 18), datetime(2025, 11, 26, 19), "今天晚上，六点到七点"),
    ],
)
def test_say_slot(start: datetime, end: datetime, expected: str) -> None:
    assert say_slot(start, end, TODAY) == expected


def test_say_slot_rejects_reversed_slot() -> None:
    with pytest.raises(ValueError):
        say_slot(datetime(2025, 11, 27, 10), datetime(2025, 11, 27, 9), TODAY)


# --- Shanghainese (wuu): the forms of ../shared/reference/shanghainese.md --------------------

@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+8613912345678", "幺三九，幺两三四，五六七八"),  # 幺 and 两 in digit strings, 3-4-4
        ("+862161234567", "零两幺，六幺两三，四五六七"),
        ("112", "幺幺两"),  # the reference's own example: bus 112
    ],
)
def test_wuu_phone_digits_use_yau_and_lian_in_groups(raw: str, expected: str) -> None:
    assert say_phone(raw, lang="wuu") == expected


@pytest.mark.parametrize(
    ("n", "number", "count"),
    [(2, "二", "两"), (12, "十二", "十二"), (20, "廿", "廿"), (22, "廿二", "廿二"), (28, "廿八", "廿八"),
     (30, "三十", "三十"), (120, "一百二十", "一百二十"), (200, "二百", "两百")],
)
def test_wuu_numbers_say_nian_for_the_twenties(n: int, number: str, count: str) -> None:
    assert say_number(n, lang="wuu") == number
    assert say_count(n, lang="wuu") == count


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 11, 26), "今朝"),
        (date(2025, 11, 27), "明朝"),
        (date(2025, 11, 28), "后日"),
        (date(2025, 11, 29), "十一月廿九号，礼拜六"),
        (date(2025, 11, 30), "十一月三十号，礼拜天"),
        (date(2025, 12, 1), "十二月一号，礼拜一"),
    ],
)
def test_wuu_dates_say_hao_and_libai(day: date, expected: str) -> None:
    assert say_date(day, TODAY, lang="wuu") == expected


def test_wuu_full_date() -> None:
    assert say_full_date(date(2025, 11, 20), TODAY, lang="wuu") == "十一月廿号"
    assert say_full_date(date(2024, 12, 31), TODAY, lang="wuu") == "二〇二四年十二月三十一号"


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (time(9, 0), "上半日九点钟"),
        (time(9, 30), "上半日九点半"),
        (time(12, 0), "中浪向十二点钟"),
        (time(14, 0), "下半日两点钟"),
        (time(16, 15), "下半日四点十五分"),
        (time(14, 25), "下半日两点廿五分"),  # 廿 for the minutes too
        (time(8, 5), "上半日八点零五分"),
        (time(19, 0), "夜到七点钟"),
    ],
)
def test_wuu_clock(t: time, expected: str) -> None:
    assert say_clock(t, lang="wuu") == expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (datetime(2025, 11, 27, 9), datetime(2025, 11, 27, 10), "明朝上半日，九点钟到十点钟"),
        (datetime(2025, 11, 28, 14), datetime(2025, 11, 28, 14, 30), "后日下半日，两点钟到两点半"),
        (datetime(2025, 11, 27, 11), datetime(2025, 11, 27, 12), "明朝上半日，十一点钟到十二点钟"),
        (datetime(2025, 11, 27, 11, 30), datetime(2025, 11, 27, 13), "明朝上半日，十一点半到下半日一点钟"),
        (datetime(2025, 12, 1, 9), datetime(2025, 12, 1, 10), "十二月一号，礼拜一，上半日，九点钟到十点钟"),
    ],
)
def test_wuu_slot(start: datetime, end: datetime, expected: str) -> None:
    assert say_slot(start, end, TODAY, lang="wuu") == expected


def test_mandarin_forms_are_unchanged_by_the_wuu_forms() -> None:
    assert say_slot(datetime(2025, 11, 27, 9), datetime(2025, 11, 27, 10), TODAY) == "明天上午，九点到十点"
    assert say_date(date(2025, 11, 29), TODAY) == "十一月二十九日，星期六"
    assert say_number(28) == "二十八"
    assert say_clock(time(14, 0)) == "下午两点"


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="yue"):
        say_number(3, lang="yue")
