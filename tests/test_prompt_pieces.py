"""Shanghainese prompts said with recorded pieces (ivr/prompts/pieces.py).

A Wu caller hears Wu values (明朝, 礼拜一, 九点钟) inside Wu prompts, and every such prompt, filled
in by a real run of the engine, can be said from the pieces of the script: whole static prompts,
the segments of templated ones, and the words of flows/prompts/wuu_pieces.yaml.
"""
from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
import time as clock
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from ivr.config import SHANGHAI
from ivr.engine import events as ev
from ivr.engine.actions import Prompt
from ivr.engine.interpreter import Engine
from ivr.engine.policy import Policy
from ivr.engine.ports import BookingView, CallerProfile, MatterView
from ivr.engine.state import CallState
from ivr.flow.loader import FlowError, load_flow
from ivr.prompts.pieces import Composer, Piece, compose, pieces_for, segments, spoken_chars, value_samples
from ivr.scheduling.calendar import WorkCalendar
from ivr.scheduling.hours import OpeningHours
from ivr.speakable import (
    say_clock, say_count, say_date, say_digit_groups, say_full_date, say_number, say_phone, say_slot,
)

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "flows"
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI)  # a Thursday, in opening hours
FROM_NUMBER = "+862160000000"
ALL = lambda _piece_id: True  # noqa: E731 - every piece recorded


@pytest.fixture(scope="module")
def flow():
    return load_flow(FLOWS)


@pytest.fixture(scope="module")
def pieces(flow) -> list[Piece]:
    return pieces_for(flow.prompts, "wuu", flow.piece_words["wuu"])


@pytest.fixture(scope="module")
def composer(pieces) -> Composer:
    return Composer(pieces, "wuu")


def said(composer: Composer, pieces: list[Piece], text: str, recorded=ALL) -> tuple:
    """The composition's parts, checked to say exactly the spoken characters of `text`."""
    composition = composer.compose(text, recorded)
    assert composition.complete, (text, composition)
    by_id = {p.piece_id: p for p in pieces}
    words = [by_id[part].text for part in composition.parts if isinstance(part, str)]
    assert spoken_chars("".join(words)) == spoken_chars(text)
    pauses = [isinstance(part, float) for part in composition.parts]
    assert not (pauses[0] or pauses[-1]) and not any(a and b for a, b in zip(pauses, pauses[1:]))
    return composition.parts


# --- the script: what a fully recorded language takes ----------------------------------------------

def test_the_script_has_static_prompts_whole_segments_and_words(flow, pieces) -> None:
    ids = [p.piece_id for p in pieces]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[A-Za-z0-9_.@-]+", i) for i in ids)
    by_id = {p.piece_id: p for p in pieces}
    wuu = flow.prompts["wuu"]
    # static prompts whole, under their own id (variants too)
    assert by_id["main_menu"].text == wuu["main_menu"] and by_id["main_menu"].kind == "prompt"
    assert by_id["main_menu@speech"].text == wuu["main_menu@speech"]
    # templated prompts: the words between placeholders, numbered from 1, punctuation-only left out
    assert [by_id[f"confirm_booking.{k}"].text for k in (1, 2)] == ["侬预约个辰光是", "确认预约，请按1。重新拣辰光，请按2"]
    assert "confirm_booking.3" not in by_id  # "。" between {chosen_slot_spoken} and {replace_note}
    assert [by_id["status_item.1"].text, by_id["status_item.2"].text] == ["第", "桩"]
    assert by_id["slot_choice.1"].text == "请按" and "slot_choice.2" not in by_id
    assert by_id["booked.2"].kind == "segment" and "booked" in by_id["booked.2"].note
    assert not any(i.startswith(("status_text", "slot_choices")) for i in ids)  # only a placeholder
    assert not any(i.startswith("sms_") for i in ids)  # text messages are never spoken
    # the words of wuu_pieces.yaml
    assert by_id["w.digit_yao"].text == "幺" and by_id["w.digit_yao"].kind == "word"
    assert by_id["w.num_nian"].text == "廿" and by_id["w.weekday_7"].text == "礼拜天"
    assert by_id["w.today"].text == "今朝" and by_id["w.clock_oclock"].text == "点钟"
    counts = Counter(p.kind for p in pieces)
    static = [pid for pid, text in wuu.items() if "{" not in text and not pid.startswith("sms_")]
    assert counts["prompt"] == len(static) and counts["word"] == len(flow.piece_words["wuu"])
    assert all(p.language == "wuu" and p.note for p in pieces)


def test_words_are_read_from_the_pieces_file_by_default_and_other_languages_work_alike(flow, pieces) -> None:
    assert pieces_for(flow.prompts, "wuu", flows_dir=FLOWS) == pieces
    mandarin = pieces_for(flow.prompts, "cmn", flows_dir=FLOWS)  # no cmn_pieces.yaml: no words
    assert {p.kind for p in mandarin} == {"prompt", "segment"}
    assert next(p for p in mandarin if p.piece_id == "confirm_booking.1").text == "您要预约"


def test_segments_leave_out_punctuation_around_placeholders() -> None:
    assert segments("{slot}，请按{key}。") == ["请按"]
    assert segments("第{n}桩，{service}。{status}。") == ["第", "桩"]
    assert segments("“{status_text}”") == []


# --- every spoken value a Wu caller can hear ------------------------------------------------------

TODAY = date(2026, 11, 26)


def _family(name: str) -> list[str]:
    if name == "digits":
        return [say_digit_groups(d, lang="wuu") for d in "0123456789Xx*"] + [
            say_digit_groups("0123456789", lang="wuu"), say_digit_groups("31010119491001123X", lang="wuu")]
    if name == "phones":
        return [say_phone(n, lang="wuu") for n in (
            "+8613800000001", "+8613912345678", "+862161234567", "61234567", "02161234567", "12345", "110",
            "+8618654329870", FROM_NUMBER)]
    if name == "counts":
        return [f(n, lang="wuu") for n in range(1, 100) for f in (say_count, say_number)] + \
            [say_count(n, lang="wuu") for n in (0, 100, 102, 120, 200, 999, 1000, 2000, 9999)]
    if name == "dates":
        days = [TODAY + timedelta(days=k) for k in range(366)]
        return [say_date(d, TODAY, lang="wuu") for d in days] + \
            [say_full_date(d, TODAY, lang="wuu") for d in days] + \
            [say_full_date(date(y, 10, 31), TODAY, lang="wuu") for y in range(2019, 2031)]
    if name == "clock":
        return [say_clock(time(h, m), lang="wuu") for h in range(24) for m in (0, 30)] + \
            [say_clock(time(14, m), lang="wuu") for m in range(60)]
    if name == "slots":
        out = []
        for k in range(8):
            day = datetime.combine(TODAY + timedelta(days=k), time(0), tzinfo=SHANGHAI)
            for minutes in range(6 * 60, 22 * 60, 30):
                start = day + timedelta(minutes=minutes)
                out += [say_slot(start, start + timedelta(minutes=m), TODAY, lang="wuu") for m in (30, 60, 90)]
        return out
    raise AssertionError(name)


@pytest.mark.parametrize("family", ["digits", "phones", "counts", "dates", "clock", "slots"])
def test_every_wu_spoken_value_is_said_with_words_alone(family: str, composer, pieces) -> None:
    texts = _family(family)
    for text in texts:
        parts = said(composer, pieces, text)
        assert all(isinstance(p, float) or p.startswith("w.") for p in parts), (text, parts)
    joined = "".join(texts)
    expected_forms = {"digits": ["幺", "两", "叉", "零"], "phones": ["零两幺"], "counts": ["廿", "两", "九十九"],
                      "dates": ["廿八号", "三十一号", "礼拜天", "今朝", "明朝", "后日", "〇"],
                      "clock": ["点钟", "点半", "廿五分", "零五分", "早浪向", "中浪向", "夜到"],
                      "slots": ["到", "下半日", "礼拜一"]}[family]
    assert all(form in joined for form in expected_forms)


def test_the_flows_check_sample_of_spoken_values_is_said_too(composer, pieces) -> None:
    samples = value_samples("wuu")
    assert len(samples) > 1000
    for text in samples:
        said(composer, pieces, text)


def test_pauses_follow_the_punctuation_between_pieces(composer) -> None:
    assert composer.compose("明朝上半日，九点钟到十点钟，请按1。", ALL).parts == (
        "w.tomorrow", "w.period_morning", 0.3, "w.num_jiu", "w.clock_oclock", "w.to", "w.num_shi",
        "w.clock_oclock", 0.3, "slot_choice.1", "w.key_1")  # no pause after the last piece
    assert composer.compose("幺三八，零零零零", ALL).parts == (
        "w.digit_yao", "w.num_san", "w.num_ba", 0.3, "w.num_ling", "w.num_ling", "w.num_ling", "w.num_ling")
    assert composer.compose("", ALL).parts == () and composer.compose("。，", ALL).parts == ()


def test_a_whole_prompt_is_one_piece_and_free_words_cannot_be_said(flow, composer) -> None:
    assert composer.compose(flow.prompts["wuu"]["main_menu"], ALL).parts == ("main_menu",)
    free = composer.compose("第一桩，公积金。要补交房屋租赁合同。", ALL)
    assert free.parts is None and not free.complete
    assert free.missing == () and "房屋租赁合同" in "".join(free.unknown)
    assert compose("办事大厅在三楼", "wuu", list(composer.pieces), ALL).parts is None


def test_the_best_composition_prefers_recorded_pieces_and_names_what_is_missing(pieces, composer) -> None:
    text = "第一桩，养老金。还辣辣办。是十一月廿号更新个。"
    assert said(composer, pieces, text) == (
        "status_item.1", "w.num_yi", "status_item.2", 0.3, "service_pension", 0.5, "status_in_review", 0.5,
        "status_updated.1", "w.num_shi", "w.num_yi", "w.date_month", "w.num_nian", "w.date_day", "status_updated.2")
    lacking = composer.compose(text, lambda pid: pid not in ("w.num_nian", "status_item.2"))
    assert lacking.parts is None and lacking.missing == ("status_item.2", "w.num_nian")
    assert lacking.unknown == ()


def test_compose_is_fast_enough_for_every_turn(pieces, composer) -> None:
    page = ("第一桩，养老金。还辣辣办。是十一月廿号更新个。 第二桩，社保卡。办好了，可以去拿了。是十一月十八号更新个。"
            " 第三桩，医保。钞票已经发了。是十月八号更新个。") * 2
    assert len(page) <= 200
    started = clock.perf_counter()
    for _ in range(200):
        assert composer.compose(page, ALL).complete
    each = (clock.perf_counter() - started) / 200
    assert each < 0.005, f"{each * 1000:.2f} ms per compose"
    started = clock.perf_counter()
    for _ in range(200):
        assert compose(page, "wuu", pieces, ALL).complete  # the module function keeps its index
    assert (clock.perf_counter() - started) / 200 < 0.005


# --- real prompts, filled in by the engine for a Wu caller -----------------------------------------

class DemoRepository:
    """The engine's Repository over the demo matters (flows/demo_matters.csv), in memory."""

    def __init__(self, languages: dict[str, str], details: bool = True) -> None:
        with (FLOWS / "demo_matters.csv").open(encoding="utf-8") as f:
            self.rows = list(csv.DictReader(f))
        self.details = details
        self.languages = dict(languages)
        self.bookings: dict[str, BookingView] = {}
        self.failures: list[str] = []
        self.sms: list[str] = []

    def preferred_language(self, phone: str) -> str | None:
        return self.languages.get(phone)

    def remember_language(self, phone: str, language: str, now: datetime) -> None:
        self.languages[phone] = language

    def caller_profile(self, phone: str) -> CallerProfile:
        rows = [r for r in self.rows if r["phone"] == phone]
        return CallerProfile(bool(rows), int(rows[0]["birth_year"]) if rows and rows[0]["birth_year"] else None)

    def phone_of_case(self, case_no: str) -> str | None:
        return next((r["phone"] for r in self.rows if r["case_no"] == case_no), None)

    def matters_verified(self, phone: str, id_last4: str) -> list[MatterView]:
        return [MatterView(r["case_no"], r["service"], r["status"],
                           datetime.fromisoformat(r["updated_at"]).replace(tzinfo=SHANGHAI),
                           (r["detail"] or None) if self.details else None)
                for r in self.rows if r["phone"] == phone and r["id_last4"] == id_last4]

    def id_failures_since(self, phone: str, since: datetime) -> int:
        return self.failures.count(phone)

    def record_id_failure(self, phone: str, call_sid: str, now: datetime) -> None:
        self.failures.append(phone)

    def open_booking(self, caller: str, now: datetime) -> BookingView | None:
        return self.bookings.get(caller)

    def booked_counts(self, start: datetime, end: datetime) -> dict[str, int]:
        return {}

    def book(self, caller, callback_number, slot_start, slot_end, capacity, language, call_sid, now):
        self.bookings[caller] = BookingView(callback_number, slot_start, slot_end)
        return self.bookings[caller]

    def cancel_booking(self, caller: str, now: datetime) -> bool:
        return self.bookings.pop(caller, None) is not None

    def record_handoff(self, *args) -> None:
        pass

    def end_handoff(self, *args) -> None:
        pass

    def queue_sms(self, to: str, body: str, dedupe_key: str, now: datetime) -> None:
        self.sms.append(body)

    def news_waiting(self, phone: str) -> bool:
        return False

    def news_cases(self, phone: str) -> set[str]:
        return set()

    def news_heard(self, phone: str, now: datetime) -> int:
        return 0

    def stop_notifications(self, phone: str, now: datetime) -> None:
        pass


def policy(speech: bool = False) -> Policy:
    return Policy(operator_hours=OpeningHours.parse("09:00-12:00,13:00-17:00"),
                  service_hours=OpeningHours.parse("09:00-12:00,13:30-17:00"),
                  calendar=WorkCalendar.from_file(FLOWS / "calendar.yaml"),
                  callback_from_number=FROM_NUMBER, speech_enabled=speech)


class Line:
    """One call through the engine; `heard` is the prompts of the last turn."""

    def __init__(self, flow, repo: DemoRepository, caller: str, speech: bool = False) -> None:
        self.engine, self.repo = Engine(flow, policy(speech)), repo
        self.state = CallState(call_sid=f"CA{caller[-4:]}", caller=caller)
        self.heard: list[Prompt] = []
        self.event(ev.CallStarted(caller, FROM_NUMBER))

    def event(self, event: ev.Event) -> list[Prompt]:
        turn = self.engine.handle(self.state, event, self.repo, NOW)
        self.heard = [s for s in turn.speech if isinstance(s, Prompt)]
        return self.heard

    def press(self, keys: str) -> list[Prompt]:
        return self.event(ev.KeysPressed(keys))

    def prompt(self, prompt_id: str) -> Prompt:
        found = [p for p in self.heard if p.prompt_id == prompt_id]
        assert found, f"{prompt_id} not in {[p.prompt_id for p in self.heard]}"
        return found[0]


def status_call(flow, repo, caller: str, id_last4: str) -> Line:
    line = Line(flow, repo, caller)
    if line.state.step == "senior_offer":
        line.press("2")
    assert line.state.step == "main_menu"
    line.press("1")
    line.press(id_last4)
    return line


def booking_call(flow, repo, caller: str) -> Line:
    line = Line(flow, repo, caller)
    if line.state.step == "senior_offer":
        line.press("2")
    line.press("2")
    assert line.state.step == "confirm_own_number"
    line.press("1")
    assert line.state.step == "choose_slot"
    return line


def _booked_next_tuesday(repo: DemoRepository, caller: str) -> None:
    repo.bookings[caller] = BookingView("+8613912345678", datetime(2026, 12, 1, 9, tzinfo=SHANGHAI),
                                        datetime(2026, 12, 1, 10, tzinfo=SHANGHAI))


def test_a_wu_caller_hears_wu_values_and_the_mandarin_fallback_has_mandarin_ones(flow) -> None:
    repo = DemoRepository({"+8613800000002": "wuu"})
    _booked_next_tuesday(repo, "+8613800000002")
    line = booking_call(flow, repo, "+8613800000002")
    choices = line.prompt("slot_choices")
    assert choices.text == ("今朝上半日，十一点钟到十二点钟，请按1。今朝下半日，一点半到两点半，请按2。"
                            "明朝上半日，九点钟到十点钟，请按3。")
    assert choices.fallback_text == ("今天上午，十一点到十二点，请按1。今天下午，一点半到两点半，请按2。"
                                     "明天上午，九点到十点，请按3。")
    line.press("3")
    confirm = line.prompt("confirm_booking")
    assert confirm.text == ("侬预约个辰光是明朝上半日，九点钟到十点钟。侬原来预约个十二月一号，礼拜二，上半日，"
                            "九点钟到十点钟会取消脱。确认预约，请按1。重新拣辰光，请按2。")
    assert confirm.fallback_text == ("您要预约明天上午，九点到十点。您原来预约的十二月一日，星期二，上午，九点到十点"
                                     "会取消。确认，请按1。重新选，请按2。")
    assert not confirm.static
    # the values are kept in both languages, so a change of language (key 9) mid-booking works
    line.press("9")
    again = line.prompt("confirm_booking")
    assert again.language == "cmn" and again.text == confirm.fallback_text
    line.press("9")
    assert line.prompt("confirm_booking").text == confirm.text
    line.press("1")
    booked = line.prompt("booked")
    assert booked.text == ("预约好了。明朝上半日，九点钟到十点钟，工作人员会用零两幺，六零零零，零零零零打电话拨侬。"
                           "请侬留心接电话。")
    assert booked.fallback_text.startswith("预约好了。明天上午，九点到十点，工作人员会从零两幺")
    assert len(repo.sms) == 1 and "11月27日" in repo.sms[0]  # the text message stays written Mandarin
    # what is kept: the Mandarin words under each name, the Wu ones beside them
    assert line.state.vars["chosen_slot_spoken"] == "明天上午，九点到十点"
    assert line.state.vars["chosen_slot_spoken@wuu"] == "明朝上半日，九点钟到十点钟"


def test_a_mandarin_caller_hears_what_it_heard_before(flow) -> None:
    repo = DemoRepository({"+8613800000002": "cmn"})
    _booked_next_tuesday(repo, "+8613800000002")
    line = booking_call(flow, repo, "+8613800000002")
    assert line.prompt("slot_choices").text == (
        "今天上午，十一点到十二点，请按1。今天下午，一点半到两点半，请按2。明天上午，九点到十点，请按3。")
    line.press("3")
    confirm = line.prompt("confirm_booking")
    assert confirm.text == confirm.fallback_text == (
        "您要预约明天上午，九点到十点。您原来预约的十二月一日，星期二，上午，九点到十点会取消。确认，请按1。重新选，请按2。")
    line.press("1")
    assert line.prompt("booked").text == (
        "预约好了。明天上午，九点到十点，工作人员会从零两幺，六零零零，零零零零给您打电话，请留意接听。")
    status = status_call(flow, DemoRepository({"+8613800000002": "cmn"}), "+8613800000002", "567*")
    page = status.prompt("status_text")
    assert page.text == page.fallback_text == "第一件，公积金。要补材料。要补交房屋租赁合同。更新日期是十一月二十二日。"


def test_wu_status_pages_of_the_demo_matters_are_said_with_pieces(flow, pieces, composer) -> None:
    line = status_call(flow, DemoRepository({"+8613800000001": "wuu"}, details=False), "+8613800000001", "1234")
    count = line.prompt("status_count")
    assert count.text == "核对好了。侬有五桩事体，先讲最新个。" and "您有五件事" in count.fallback_text
    pages = [line.prompt("status_text")]
    for _ in range(4):  # one matter at a time
        line.press("1")
        pages.append(line.prompt("status_text"))
    assert line.state.step == "status_last"
    assert pages[0].text.startswith("第一桩，养老金。还辣辣办。是十一月廿号更新个。")
    assert "更新日期是十一月二十日" in pages[0].fallback_text
    assert "第五桩，办事申请。已经办结束了。是六月廿号更新个。" in pages[4].text
    for prompt in [count, *pages, *line.heard]:
        said(composer, pieces, prompt.text)
    # one piece not recorded: the right one is named
    lacking = composer.compose(pages[0].text, lambda pid: pid != "status_updated.2")
    assert lacking.parts is None and lacking.missing == ("status_updated.2",)
    lacking = composer.compose(pages[1].text, lambda pid: pid != "w.num_ba")  # 十一月十八号
    assert lacking.missing == ("w.num_ba",)


def test_wu_status_pages_with_a_free_text_detail_are_not_said_with_pieces(flow, composer) -> None:
    """The office's detail is free text: that page goes to TTS whole, never half recorded."""
    repo = DemoRepository({"+8613800000001": "wuu"})
    line = status_call(flow, repo, "+8613800000001", "1234")
    line.press("1")
    line.press("1")  # the third matter's detail has a date
    page = line.prompt("status_text")
    assert "到账日期" in page.text and "十月十号" in page.text  # its ISO date spoken the Wu way
    assert "十月十日" in page.fallback_text
    composition = composer.compose(page.text, ALL)
    assert composition.parts is None and composition.missing == ()
    details = "".join(r["detail"] for r in repo.rows)
    assert composition.unknown and all(u in details for u in composition.unknown)


def test_wu_booking_prompts_from_the_engine_are_said_with_pieces(flow, pieces, composer) -> None:
    repo = DemoRepository({"+8613800000002": "wuu"})
    line = booking_call(flow, repo, "+8613800000002")
    heard = list(line.heard)
    line.press("3")
    heard += line.heard
    line.press("1")
    heard += line.heard
    assert line.state.step == "booked"
    booked = line.prompt("booked")
    # a second booking replaces the first: the note about the old one is said with pieces too
    line = booking_call(flow, repo, "+8613800000002")
    line.press("1")
    confirm = line.prompt("confirm_booking")
    assert "侬原来预约个明朝上半日，九点钟到十点钟会取消脱。" in confirm.text
    assert "您原来预约的明天上午，九点到十点会取消。" in confirm.fallback_text
    heard += line.heard
    manage = Line(flow, repo, "+8613800000002")
    manage.press("3")
    heard += manage.heard
    assert manage.prompt("manage_booking").text.startswith("侬预约了明朝上半日，九点钟到十点钟个回电。")
    for prompt in heard + [booked]:
        assert prompt.language == "wuu"
        said(composer, pieces, prompt.text)
    # one digit of the phone number, one segment not recorded
    lacking = composer.compose(booked.text, lambda pid: pid != "w.num_liu")
    assert lacking.parts is None and lacking.missing == ("w.num_liu",)
    lacking = composer.compose(booked.text, lambda pid: pid != "booked.2")
    assert lacking.missing == ("booked.2",)


def test_other_wu_values_from_the_engine_are_said_with_pieces(flow, pieces, composer) -> None:
    repo = DemoRepository({"+8613800000001": "wuu"})
    line = Line(flow, repo, "+8613800000001")
    line.press("2")  # not a person first: the menu
    line.press("1")
    line.press("9999")
    wrong = line.prompt("id_wrong")
    assert wrong.text == "号码对勿上。还可以再试两趟。" and wrong.fallback_text == "号码对不上。还可以再试两次。"
    said(composer, pieces, wrong.text)
    # the queue: how many callers are ahead
    line.press("0")
    assert line.state.step == "queue"
    line.event(ev.QueueWaiting(position=3, queue_seconds=30))
    position = line.prompt("queue_position")
    assert position.text.startswith("侬前头还有两位。") and position.fallback_text.startswith("您前面还有两位。")
    said(composer, pieces, position.text)
    # a spoken phone number is read back before it is used
    speaking = Line(flow, DemoRepository({"+8613800000002": "wuu"}), "+8613800000002", speech=True)
    speaking.press("2")
    speaking.press("2")
    assert speaking.state.step == "ask_number"
    speaking.event(ev.SpeechHeard("幺三九幺两三四五六七八", "digits", 0.9, "accept", {"digits": "13912345678"}))
    confirm = speaking.prompt("speech_confirm@speech")
    assert confirm.text.startswith("侬讲个是：幺三九，幺两三四，五六七八，对伐？")
    said(composer, pieces, confirm.text)


# --- the pieces file is checked on load ---------------------------------------------------------

@pytest.fixture()
def flows_copy(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(FLOWS, target, ignore=shutil.ignore_patterns("recordings"))
    return target


def _problems(flows: Path, change) -> str:
    path = flows / "prompts" / "wuu_pieces.yaml"
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_flow(flows)
    return str(caught.value)


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t + "\nsan_again: 三\n",
     "prompts/wuu_pieces.yaml: word 'san_again': the same words as 'num_san' (三): keep one of them"),
    (lambda t: t + "\nnum_san: 叁\n", "'num_san' is written twice (line"),
    (lambda t: t + "\nw.yao: 幺幺\n", "prompts/wuu_pieces.yaml: word 'w.yao': the id may only use letters"),
    (lambda t: t + "\n幺: 幺幺\n", "prompts/wuu_pieces.yaml: word '幺': the id may only use letters"),
    (lambda t: t.replace("num_san: 三", 'num_san: ""'), "prompts/wuu_pieces.yaml: word 'num_san': has no words"),
    (lambda t: t + "\nhour:\n  note: 钟头\n", "prompts/wuu_pieces.yaml: word 'hour': has no words"),
    (lambda t: t + "\nhour:\n  word: 钟头\n", "prompts/wuu_pieces.yaml: word 'hour': unknown field word"),
    (lambda t: t + '\ncomma: "，"\n', "prompts/wuu_pieces.yaml: word 'comma': only punctuation"),
    (lambda t: t + "\nslot: \"{slot}\"\n", "prompts/wuu_pieces.yaml: word 'slot': words cannot hold a {placeholder}"),
    (lambda t: t.replace("reviewed: []", "reviewed: [num_san, num_ten]"),
     "prompts/wuu_pieces.yaml: reviewed: 'num_ten' is not a word of this file"),
    (lambda t: t.replace("reviewed: []", "reviewed: num_san"), "prompts/wuu_pieces.yaml: 'reviewed' must be a list"),
])
def test_a_mistake_in_the_pieces_file_names_the_file_and_the_word(flows_copy: Path, change, message: str) -> None:
    assert message in _problems(flows_copy, change)


def test_reviewed_words_and_notes_are_read(flows_copy: Path) -> None:
    path = flows_copy / "prompts" / "wuu_pieces.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("reviewed: []", "reviewed:\n  - num_san\n  - today\n"),
                    encoding="utf-8")
    flow = load_flow(flows_copy)
    assert flow.pieces_reviewed["wuu"] == ["num_san", "today"]
    assert flow.piece_words["wuu"]["num_nian"].note.startswith("二十几")
    assert flow.piece_words["wuu"]["key_1"].words == "1"
    assert "reviewed" not in flow.piece_words["wuu"]


def _flows_check(flows: Path) -> subprocess.CompletedProcess:
    import os
    env = dict(os.environ, FLOWS_DIR=str(flows), HOTLINE_VAR_DIR=str(flows.parent / "var"))
    env.pop("TWILIO_AUTH_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "ivr", "flows", "check"], cwd=ROOT, capture_output=True,
                          text=True, env=env)


def test_flows_check_reports_what_a_full_recording_takes(flows_copy: Path, flow, pieces) -> None:
    counts = Counter(p.kind for p in pieces)
    words = len(flow.piece_words["wuu"])
    check = _flows_check(flows_copy)
    assert check.returncode == 0, check.stderr
    assert (f"prompts/wuu_pieces.yaml: {words} words ({words} drafts, 0 reviewed); a full recording is "
            f"{len(pieces)} pieces: {counts['prompt']} whole prompts, {counts['segment']} segments, "
            f"{counts['word']} words") in check.stdout
    assert "no word says" not in check.stdout
    # a word taken out: the spoken forms it was needed for are reported (not an error)
    path = flows_copy / "prompts" / "wuu_pieces.yaml"
    text = re.sub(r"num_nian:\n  words: 廿\n  note: .*\n", "", path.read_text(encoding="utf-8"))
    path.write_text(text, encoding="utf-8")
    check = _flows_check(flows_copy)
    assert check.returncode == 0, check.stderr
    assert f"{words - 1} words" in check.stdout
    assert re.search(r"\d+ spoken numbers, dates or times no word says, e\.g\. 廿", check.stdout), check.stdout
