"""Turn numbers, dates and times into plain Mandarin text for older listeners.

TTS engines read "13800000001" or "14:30" unpredictably (as one huge number,
in English, or digit by digit without pauses). Everything the hotline says is
therefore spelled out here first, following the conventions people hear from
a human operator: phone digits in small groups with pauses, 幺 for 1 and 两
for 2 in digit strings, 12-hour clock with 上午/下午/晚上, and 今天/明天/后天
instead of dates when they are close.

Every spoken form also comes in Shanghainese (``lang="wuu"``), as a Shanghai speaker composes it
(see ../shared/reference/shanghainese.md): 今朝/明朝/后日, 礼拜一…礼拜天, 廿八号, 上半日/下半日,
中浪向, 夜到, 两点钟, 九点半; phone digits as in Mandarin (幺 for 1, 两 for 2, grouped).  These are
the words of the Shanghainese script and of recorded number pieces; what Mandarin callers hear
does not depend on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time

__all__ = [
    "say_digit_groups",
    "say_phone",
    "say_number",
    "say_count",
    "say_date",
    "say_full_date",
    "say_clock",
    "say_slot",
]

PAUSE = "，"  # a full-width comma makes espeak-ng (and people) pause

# Digit-by-digit reading (phone, case and ID numbers): 幺 and 两 are easier to
# tell apart from 七 and 二/十 on a noisy phone line.
_DIGIT_SPOKEN = {
    "0": "零", "1": "幺", "2": "两", "3": "三", "4": "四",
    "5": "五", "6": "六", "7": "七", "8": "八", "9": "九",
}
_CROSS = "叉"  # ID-card check character X (some forms type it as *)

# Plain numerals, used inside numbers, dates and clock times.
_NUMERAL = "零一二三四五六七八九"
# Year digits are read one by one with 〇 (二〇二五年).
_YEAR_DIGIT = "〇一二三四五六七八九"

_WEEKDAY = ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"]
_RELATIVE_DAY = {0: "今天", 1: "明天", 2: "后天"}

LANGUAGES = ("cmn", "wuu")
_WUU_WEEKDAY = ["礼拜一", "礼拜二", "礼拜三", "礼拜四", "礼拜五", "礼拜六", "礼拜天"]
_WUU_RELATIVE_DAY = {0: "今朝", 1: "明朝", 2: "后日"}
# Parts of the day: Mandarin word -> Shanghainese word.
_WUU_PERIOD = {"凌晨": "早浪向", "上午": "上半日", "中午": "中浪向", "下午": "下半日", "晚上": "夜到"}


def _check_lang(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"no spoken forms for language {lang!r} (known: {', '.join(LANGUAGES)})")
    return lang


# --------------------------------------------------------------------------
# Digit strings
# --------------------------------------------------------------------------

def _default_groups(n: int) -> list[int]:
    """Group sizes people expect for a digit string of length n."""
    if n == 11:  # mainland mobile 138 0000 0001, or 021 6123 4567
        return [3, 4, 4]
    if n == 8:  # Shanghai landline without area code
        return [4, 4]
    if n <= 4:
        return [n] if n else []
    # Case numbers, ID cards, other long strings: fours from the left.
    return [4] * (n // 4) + ([n % 4] if n % 4 else [])


def say_digit_groups(digits: str, groups: Sequence[int] | None = None, *, lang: str = "cmn") -> str:
    """Read a digit string in groups separated by pauses.

    Digits use 幺/两/零; '*', 'X' and 'x' (ID-card check char) are read 叉;
    every other character (spaces, dashes, '+') is dropped. Explicit
    ``groups`` that do not cover the whole string leave the rest as one final
    group, so no digit is ever silently skipped.  Shanghainese reads digit strings the same
    way (幺 *iau*, 两 *lian*: bus 112 is 幺幺两), so ``lang`` changes nothing here.
    """
    _check_lang(lang)
    chars = [c for c in digits if c in _DIGIT_SPOKEN or c in "*Xx"]
    sizes = list(_default_groups(len(chars)) if groups is None else groups)
    if any(size <= 0 for size in sizes):
        raise ValueError(f"group sizes must be positive: {sizes!r}")

    spoken = [_DIGIT_SPOKEN.get(c, _CROSS) for c in chars]
    parts: list[str] = []
    pos = 0
    for size in sizes:
        if pos >= len(spoken):
            break
        parts.append("".join(spoken[pos:pos + size]))
        pos += size
    if pos < len(spoken):
        parts.append("".join(spoken[pos:]))
    return PAUSE.join(parts)


def _national_number(raw: str) -> str:
    """Strip +86/0086 and restore the trunk 0 of landlines ("+8621..." → "021...")."""
    s = raw.strip()
    plus = s.startswith("+")
    digits = "".join(c for c in s if c.isdigit())
    if plus and digits.startswith("86"):
        national = digits[2:]
    elif digits.startswith("0086"):
        national = digits[4:]
    elif len(digits) == 13 and digits.startswith("861"):  # 86 + mobile, no '+'
        national = digits[2:]
    else:
        return digits  # already national (or a foreign number: read as is)

    is_mobile = len(national) == 11 and national.startswith("1")
    if national and not is_mobile and not national.startswith("0"):
        national = "0" + national  # E.164 drops the trunk prefix of area codes
    return national


def say_phone(e164_or_local: str, *, lang: str = "cmn") -> str:
    """Read a phone number the way an operator would, grouped with pauses.

    Accepts E.164 ("+8613800000001", "+862161234567") or local forms
    ("13800000001", "02161234567", "61234567"). Short service numbers such
    as 12345 or 110 are read as a single group.
    """
    national = _national_number(e164_or_local)
    if len(national) <= 5:
        return say_digit_groups(national, [len(national)] if national else [], lang=lang)
    return say_digit_groups(national, lang=lang)


# --------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------

def _numeral(n: int, *, count: bool, lang: str = "cmn") -> str:
    if not 0 <= n <= 9999:
        raise ValueError(f"only 0..9999 can be spoken, got {n}")
    if n == 0:
        return "零"
    if count and n == 2:
        return "两"

    units = [(1000, "千"), (100, "百"), (10, "十"), (1, "")]
    out: list[str] = []
    pending_zero = False
    for value, unit in units:
        d = (n // value) % 10
        if d == 0:
            pending_zero = bool(out)  # 一百零二: one 零 for any run of zeros
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        if value == 10 and d == 1 and not out:
            out.append("十")  # 十二, not 一十二
            continue
        # 两百 / 两千 in counts; 二十 stays 二十 (两十 is never said).
        if _check_lang(lang) == "wuu" and value == 10 and d == 2 and not out:
            out.append("廿")  # 20..29 on their own: 廿, 廿八 (廿八号)
            continue
        word = "两" if (count and d == 2 and value >= 100) else _NUMERAL[d]
        out.append(word + unit)
    return "".join(out)


def say_number(n: int, *, lang: str = "cmn") -> str:
    """Chinese numeral for 0..9999 with 二 (十二, 二十, 一百零二, 二千).

    Shanghainese says 廿 *gnie* for the twenties (廿, 廿一, 廿八); larger numbers keep 二十
    inside them (一百二十)."""
    return _numeral(n, count=False, lang=lang)


def say_count(n: int, *, lang: str = "cmn") -> str:
    """Like say_number but as a count: 两 for 2, 两百, 两千 (两个人, 两百元); 廿 in Shanghainese."""
    return _numeral(n, count=True, lang=lang)


# --------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------

def _month_day(d: date, lang: str = "cmn") -> str:
    if _check_lang(lang) == "wuu":
        return f"{say_number(d.month, lang=lang)}月{say_number(d.day, lang=lang)}号"  # 十一月廿八号
    return f"{say_number(d.month)}月{say_number(d.day)}日"


def _relative_day(d: date, today: date, lang: str) -> str | None:
    table = _WUU_RELATIVE_DAY if _check_lang(lang) == "wuu" else _RELATIVE_DAY
    return table.get((d - today).days)


def say_date(d: date, today: date, *, lang: str = "cmn") -> str:
    """今天/明天/后天 when close, else "十一月二十八日，星期六".

    Shanghainese: 今朝/明朝/后日, else "十一月廿八号，礼拜六"."""
    relative = _relative_day(d, today, lang)
    if relative:
        return relative
    weekday = (_WUU_WEEKDAY if lang == "wuu" else _WEEKDAY)[d.weekday()]
    return f"{_month_day(d, lang)}{PAUSE}{weekday}"


def say_full_date(d: date, today: date | None = None, *, lang: str = "cmn") -> str:
    """Absolute date ("十一月二十日") for "updated on" messages.

    The year (二〇二五年) is only said when it differs from today's year,
    because older listeners find a year they already know distracting.
    """
    year = ""
    if today is not None and d.year != today.year:
        year = "".join(_YEAR_DIGIT[int(c)] for c in str(d.year)) + "年"
    return year + _month_day(d, lang)


# --------------------------------------------------------------------------
# Clock times
# --------------------------------------------------------------------------

def _period(t: time, *, as_end: bool = False, lang: str = "cmn") -> str:
    word = _period_cmn(t, as_end=as_end)
    return _WUU_PERIOD[word] if _check_lang(lang) == "wuu" else word


def _period_cmn(t: time, *, as_end: bool = False) -> str:
    """上午/中午/下午/晚上 (凌晨 before 6) for a time of day.

    An end time exactly on a boundary (12:00, 18:00) belongs to the period
    before it, so a slot reads "上午，十一点到十二点", not "…到中午十二点".
    """
    h, on_the_hour = t.hour, t.minute == 0
    if as_end and on_the_hour and h in (12, 18):
        return "上午" if h == 12 else "下午"
    if h < 6:
        return "凌晨"
    if h < 12:
        return "上午"
    if h == 12:
        return "中午"
    if h < 18:
        return "下午"
    return "晚上"


def _hour_minute(t: time, lang: str = "cmn") -> str:
    """Clock time without the period word: 两点, 九点半, 四点十五分, 八点零五分.

    Shanghainese says 点钟 on the full hour (两点钟, 十二点钟) and 廿 for minutes 20..29 (两点廿五分);
    the rest as in Mandarin."""
    h12 = t.hour % 12
    if t.hour == 12:
        h12 = 12
    hour = say_count(h12, lang=lang) + "点"  # 两点, 十二点, 零点
    m = t.minute
    if m == 0:
        return hour + ("钟" if _check_lang(lang) == "wuu" else "")
    if m == 30:
        return hour + "半"
    if m < 10:
        return f"{hour}零{say_number(m, lang=lang)}分"
    return f"{hour}{say_number(m, lang=lang)}分"  # Shanghainese: 两点廿五分


def say_clock(t: time, *, lang: str = "cmn") -> str:
    """12-hour clock with a period word: 上午九点半, 中午十二点, 下午两点.

    Shanghainese: 上半日九点半, 中浪向十二点钟, 下半日两点钟, 夜到七点钟."""
    return _period(t, lang=lang) + _hour_minute(t, lang)


def say_slot(start: datetime, end: datetime, today: date, *, lang: str = "cmn") -> str:
    """An appointment slot: day, period once, then "九点到十点".

    Examples: "明天上午，九点到十点";
    "十一月三十日，星期一，上午，九点到十点". If the slot crosses into
    another period the end time gets its own period word
    ("上午，十一点半到下午一点").

    Shanghainese: "明朝上半日，九点钟到十点钟"; "十一月三十号，礼拜一，上半日，九点钟到十点钟".
    """
    if end <= start:
        raise ValueError(f"slot ends before it starts: {start} → {end}")
    day = say_date(start.date(), today, lang=lang)
    start_t, end_t = start.time(), end.time()
    period = _period(start_t, lang=lang)
    head = f"{day}{period}" if (start.date() - today).days in _RELATIVE_DAY else f"{day}{PAUSE}{period}"

    end_period = _period(end_t, as_end=True, lang=lang)
    end_words = _hour_minute(end_t, lang)
    if end_period != period or end.date() != start.date():
        end_words = end_period + end_words
    return f"{head}{PAUSE}{_hour_minute(start_t, lang)}到{end_words}"


# --- written forms (SMS) ---------------------------------------------------------------------

WEEKDAYS = "一二三四五六日"


def written_slot(start: datetime, end: datetime) -> str:
    """A slot as written in a message (absolute: the message may be read on another day)."""
    return f"{start.month}月{start.day}日（星期{WEEKDAYS[start.weekday()]}）{start:%H:%M}至{end:%H:%M}"


def written_phone(number: str) -> str:
    digits = number.removeprefix("+86")
    if digits.startswith("21") and len(digits) == 10:
        return f"021-{digits[2:6]}-{digits[6:]}"
    return digits
