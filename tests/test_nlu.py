"""Speech understanding (ivr/nlu): public API, normalisation, negation, digits, grammar
validation and the `nlu` command.  The corpora are run by tests/test_nlu_corpus.py."""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.nlu import (GrammarError, Matcher, Thresholds, Understanding, all_phrases, check_grammars,
                     load_grammars, normalize, understand)
from ivr.nlu import cli
from ivr.nlu.grammar import DEFAULT_DIR

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- public API

def test_understanding_is_a_frozen_dataclass_with_the_contract_json():
    u = understand("confirm", "对个", lang="wuu")
    assert isinstance(u, Understanding)
    assert (u.intent, u.band, u.slots) == ("yes", "accept", {})
    assert 0.0 <= u.score <= 1.0
    assert u.to_json() == {"intent": "yes", "score": u.score, "slots": {}}
    assert list(u.to_json()) == ["intent", "score", "slots"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.intent = "no"  # type: ignore[misc]


def test_nothing_understood_is_a_null_intent():
    for text in ("", "   ", "，。！", "今天天气很好"):
        u = understand("main_menu", text)
        assert u.intent is None and u.band == "reject" and u.slots == {}
        assert u.to_json()["intent"] is None


def test_unknown_context_and_language_are_errors():
    with pytest.raises(ValueError, match="unknown context 'nope'"):
        understand("nope", "对")
    with pytest.raises(ValueError, match="unknown language"):
        understand("confirm", "对", lang="yue")


@pytest.mark.parametrize("context,text,intent,slots", [
    ("main_menu", "查进度", "status_query", {}),
    ("main_menu", "打电话拨我", "book_callback", {}),
    ("main_menu", "取消预约", "manage_callback", {}),
    ("service", "退休工资", "pension", {}),
    ("service", "退休金", "pension", {}),
    ("service", "做保卡", "social_security_card", {}),
    ("service", "看毛病报销", "medical_insurance", {}),
    ("service", "住房公积金", "housing_fund", {}),
    ("service", "随申办", "application", {}),
    ("callback_slot", "明天上午", "slot", {"day": "tomorrow", "period": "morning"}),
    ("callback_slot", "明朝上半日", "slot", {"day": "tomorrow", "period": "morning"}),
    ("callback_slot", "今朝下半天", "slot", {"day": "today", "period": "afternoon"}),
    ("callback_slot", "后日夜到", "slot", {"day": "day_after_tomorrow", "period": "evening"}),
    ("callback_slot", "今晚", "slot", {"day": "today", "period": "evening"}),
    ("digits", "幺三八 一二三四 五六七八", "digits", {"digits": "13812345678"}),
])
def test_every_context_answers(context, text, intent, slots):
    u = understand(context, text)
    assert (u.intent, u.slots, u.band) == (intent, slots, "accept")


@pytest.mark.parametrize("context", ["main_menu", "service", "confirm", "callback_slot", "digits"])
@pytest.mark.parametrize("text,intent", [
    ("人工", "operator"), ("转人工", "operator"), ("我要搭人讲", "operator"),
    ("再讲一遍", "repeat"), ("啥", "repeat"), ("侬讲啥", "repeat"),
    ("讲慢一眼", "slower"), ("慢一点", "slower"), ("哪能办", "help"), ("再会", "goodbye"),
    ("讲普通话", "language_cmn"), ("讲上海闲话", "language_wuu"),
])
def test_common_intents_work_in_every_context(context, text, intent):
    u = understand(context, text, "wuu")
    assert (u.intent, u.band) == (intent, "accept"), u


def test_band_thresholds_are_configurable():
    text = "仰老金"                                     # a homophone of 养老金: score 0.9
    default = understand("service", text)
    assert (default.intent, default.band) == ("pension", "accept")
    stricter = understand("service", text, thresholds=Thresholds(accept=0.95, confirm=0.6))
    assert (stricter.intent, stricter.band) == ("pension", "confirm")
    strict = understand("service", text, thresholds=Thresholds(accept=0.99, confirm=0.95))
    assert strict.intent is None and strict.band == "reject"
    assert Matcher(thresholds=Thresholds(accept=0.5)).understand("service", "养老金伐").band == "accept"
    assert Thresholds().band(0.9) == "accept" and Thresholds().band(0.7) == "confirm"
    assert Thresholds().band(0.1) == "reject"


def test_fuzzy_pinyin_scores_below_exact():
    exact = understand("service", "养老金")
    homophone = understand("service", "仰老金")      # same pinyin, different character
    assert exact.score == 1.0 and exact.band == "accept"
    assert homophone.intent == "pension" and homophone.score < exact.score
    garbled = understand("service", "住房公积心")     # one syllable wrong: fuzzy only
    assert garbled.intent == "housing_fund" and garbled.band == "confirm"


def test_aliases_weigh_more_for_shanghainese_callers():
    cmn = understand("confirm", "我是", "cmn")
    wuu = understand("confirm", "我是", "wuu")
    assert cmn.intent == wuu.intent == "no"
    assert cmn.score < wuu.score


# ---------------------------------------------------------------- normalisation

def test_normalisation():
    assert normalize("勿是個！").text == "勿是"                 # traditional, punctuation, final 个
    assert normalize("對個，儂講啥？").full == "对个侬讲啥"
    assert normalize("１３８　１２３").full == "138123"          # full width → ASCII
    assert normalize("嗯，是的呀").text == "是"                  # fillers and particles
    assert normalize("[unk] 人工 [unk]").text == "人工"
    assert normalize("我要查一查养老金伐").text == "我要查一查养老金"
    assert normalize("个人社保卡").text == "个人社保卡"            # 个 inside is kept
    assert normalize("不是这个").text == "不是这个"               # measure word 个 is kept
    assert normalize("算了").text == "算了"                      # 了 is kept


def test_traditional_input_is_understood():
    assert understand("confirm", "勿是個", "wuu").intent == "no"
    assert understand("confirm", "對個", "wuu").intent == "yes"
    assert understand("service", "退休工資").intent == "pension"
    assert understand("callback_slot", "後日夜到", "wuu").slots == {
        "day": "day_after_tomorrow", "period": "evening"}


def test_ge_matters_only_as_a_particle():
    assert understand("confirm", "是个", "wuu").intent == "yes"
    assert understand("confirm", "勿是个", "wuu").intent == "no"
    assert understand("confirm", "四个", "wuu").intent == "yes"


# ---------------------------------------------------------------- negation first

@pytest.mark.parametrize("text", [
    "不是", "不对", "不要", "勿是", "勿是个", "勿对", "覅", "勿要", "佛是", "佛对", "否", "我是", "我对",
    "我要", "我晓得", "佛小的", "不晓得", "勿晓得", "是的，哦不对", "对个，勿对", "勿来事", "不来事",
    "五是", "我是个", "嘸沒", "勿是個",
])
def test_negation_first_means_no(text):
    u = understand("confirm", text, "wuu")
    assert u.intent == "no", (text, u)


@pytest.mark.parametrize("text", ["要", "嗯", "五", "嗯嗯", "要个", "要的", "唔", "是不是", "对勿对",
                                  "对伐", "对吗", "要不要", "可不可以"])
def test_uncertain_answers_are_never_yes(text):
    for lang in ("cmn", "wuu"):
        u = understand("confirm", text, lang)
        assert u.intent is None and u.band == "reject", (text, u)


def test_negatives_inside_other_phrases_are_not_negation():
    assert understand("confirm", "不错").intent == "yes"
    assert understand("confirm", "没问题").intent == "yes"
    assert understand("confirm", "听不清").intent == "repeat"
    assert understand("confirm", "对不起").intent is None          # neither 对 nor 不
    assert understand("confirm", "对不起，我没听清").intent == "repeat"


def test_negation_outside_confirm_is_just_words():
    # 我要 in a menu is "I want", not 勿要
    assert understand("main_menu", "我要查一查养老金伐").intent == "status_query"
    assert understand("service", "我要查一查养老金伐").intent == "pension"


def test_a_yes_needs_every_word_explained_to_be_accepted():
    # an unknown syllable before 来事 may be a garbled 勿: at most confirm
    u = understand("confirm", "鸥来事", "wuu")
    assert u.band != "accept"


# ---------------------------------------------------------------- digits

@pytest.mark.parametrize("text,digits", [
    ("一三八一二三四五六七八", "13812345678"),
    ("幺幺两", "112"),
    ("要要两", "112"),          # 幺 heard as 要 — only in digit context
    ("六是四八", "6448"),        # 四 heard as 是 — only in digit context
    ("一三嗯八", "1358"),        # 五 heard as 嗯 inside a number
    ("嗯，一三八", "138"),       # … but a leading 嗯 is hesitation
    ("兩兩", "22"),
    ("二十三", "23"), ("十五", "15"), ("三十", "30"), ("廿三", "23"), ("廿", "20"), ("念三", "23"),
    ("我的号码是一三九零零零零一一一一", "13900001111"),
    ("１３８", "138"),
    ("幺三八林林幺幺", "1380011"),
])
def test_digits(text, digits):
    u = understand("digits", text, "wuu")
    assert (u.intent, u.slots) == ("digits", {"digits": digits}), u


def test_near_homophone_digits_score_lower_than_real_digits():
    assert understand("digits", "幺幺两").score > understand("digits", "要要两").score


def test_near_homophones_are_digits_only_in_digit_context():
    assert understand("main_menu", "要").intent is None
    assert understand("confirm", "是").intent == "yes"
    assert understand("confirm", "要").intent is None
    assert understand("digits", "是").intent is None            # a lone 是 is not a number
    assert understand("digits", "要").intent is None
    assert understand("digits", "再讲一遍").intent == "repeat"   # 一 inside a phrase is no digit
    assert understand("digits", "讲慢一点").intent == "slower"


# ---------------------------------------------------------------- grammars

def test_project_grammars_are_valid():
    assert check_grammars() == []
    assert check_grammars(DEFAULT_DIR) == []
    g = load_grammars()
    assert set(g.contexts) == {"main_menu", "service", "confirm", "callback_slot", "digits"}


def test_yes_and_no_keys_stay_text_in_yaml():
    ctx = load_grammars().context("confirm")
    assert {e.intent for e in ctx.entries} >= {"yes", "no"}


def test_all_phrases_includes_common_and_context_phrases():
    phrases = all_phrases("confirm")
    assert "是个" in phrases and "勿是" in phrases and "转人工" in phrases and "再讲一遍" in phrases
    assert "勿是个" not in phrases or phrases.count("勿是个") == 1
    assert len(phrases) == len(set(phrases))
    assert all(p == p.strip() and "，" not in p for p in phrases)
    digits = all_phrases("digits")
    assert "幺" in digits and "两" in digits and "人工" in digits
    slots = all_phrases("callback_slot")
    assert "明朝" in slots and "下半日" in slots and "大后天" in slots
    with pytest.raises(ValueError):
        all_phrases("nope")


@pytest.fixture()
def grammar_copy(tmp_path: Path) -> Path:
    target = tmp_path / "grammars"
    shutil.copytree(DEFAULT_DIR, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_grammar_directory_can_be_passed(grammar_copy: Path):
    _edit(grammar_copy / "service.yaml", "cmn: [养老金,", "cmn: [养老金, 老金金,")
    assert check_grammars(grammar_copy) == []
    assert understand("service", "老金金", grammars=grammar_copy).intent == "pension"
    assert understand("service", "老金金").intent != "pension"


def test_grammar_errors_name_file_intent_and_phrase(grammar_copy: Path):
    _edit(grammar_copy / "confirm.yaml", "cmn: [是, 是的,", "cmn: [是, '', 是的, 不对,")
    _edit(grammar_copy / "service.yaml", "aliases: [央劳金,", "aliases: [央劳金, '？', 社保卡,")
    _edit(grammar_copy / "main_menu.yaml", "  manage_callback:", "  cancel_everything:")
    (grammar_copy / "weather.yaml").write_text("context: weather\nintents: {}\n", encoding="utf-8")
    _edit(grammar_copy / "digits.yaml", '"3": {cmn: [三]', '"3": {cmn: [三三]')
    problems = check_grammars(grammar_copy)
    text = "\n".join(problems)
    assert "confirm.yaml: intent 'yes': empty phrase in cmn" in text
    assert "confirm.yaml: phrase '不对' is under intent 'no' and also under intent 'yes'" in text \
        or "confirm.yaml: phrase '不对' is under intent 'yes' and also under intent 'no'" in text
    assert "service.yaml: intent 'pension': phrase '？' is only fillers or punctuation" in text
    assert "service.yaml: phrase '社保卡'" in text and "social_security_card" in text
    assert "main_menu.yaml: unknown intent 'cancel_everything'" in text
    assert "main_menu.yaml: intent 'manage_callback' is missing" in text
    assert "weather.yaml: unknown context 'weather'" in text
    assert "digits.yaml: intent 'digits': digit '3': '三三' must be exactly one character" in text
    with pytest.raises(GrammarError) as exc:
        load_grammars(grammar_copy)
    assert exc.value.problems == problems


def test_grammar_errors_for_bad_yaml_and_structure(grammar_copy: Path):
    (grammar_copy / "confirm.yaml").write_text("context: confirm\nintents:\n  yes: [\n",
                                               encoding="utf-8")
    _edit(grammar_copy / "callback_slot.yaml", "        evening:", "        midnight:")
    _edit(grammar_copy / "service.yaml", "  pension:\n", "  pension:\n    mandarin: [养老]\n")
    text = "\n".join(check_grammars(grammar_copy))
    assert "confirm.yaml: not valid YAML" in text
    assert "callback_slot.yaml: intent 'slot': slot 'period': unknown value 'midnight'" in text
    assert "callback_slot.yaml: intent 'slot': slot 'period': value 'evening' has no phrases" in text
    assert "service.yaml: intent 'pension': mandarin: unknown key" in text


def test_grammar_errors_for_repeated_keys_and_slot_clashes(grammar_copy: Path):
    _edit(grammar_copy / "common.yaml", "  help:\n", "  help:\n    cmn: [帮助]\n  help:\n")
    _edit(grammar_copy / "callback_slot.yaml", "cmn: [明天, 明日,", "cmn: [明天, 明日, 今天,")
    text = "\n".join(check_grammars(grammar_copy))
    assert "common.yaml: not valid YAML" in text and "appears twice" in text
    assert "callback_slot.yaml: phrase '今天' is under intent 'slot' (slot day=tomorrow)" in text


def test_grammar_directory_missing():
    assert check_grammars("/nonexistent/grammars") == [
        "/nonexistent/grammars: no such grammar directory"]


# ---------------------------------------------------------------- the `nlu` command

def _run(argv: list[str], stdin: str | None, monkeypatch, capsys) -> tuple[int, list[dict]]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = cli.run(args)
    out = capsys.readouterr().out
    return rc, [json.loads(line) for line in out.splitlines()]


def test_cli_one_text(monkeypatch, capsys):
    rc, out = _run(["--context", "confirm", "--lang", "wuu", "勿是个"], None, monkeypatch, capsys)
    assert rc == 0 and out == [{"intent": "no", "score": 1.0, "slots": {}}]
    rc, out = _run(["--context", "digits", "幺三八", "嗯一二三四"], None, monkeypatch, capsys)
    assert out[0]["slots"] == {"digits": "13851234"}


def test_cli_reads_stdin_one_line_per_utterance(monkeypatch, capsys):
    rc, out = _run(["--context", "callback_slot", "--lang", "wuu"],
                   "明朝上半日\n今天天气很好\n\n后日夜到\n", monkeypatch, capsys)
    assert rc == 0
    assert out == [
        {"intent": "slot", "score": 1.0, "slots": {"day": "tomorrow", "period": "morning"}},
        {"intent": None, "score": out[1]["score"], "slots": {}},
        {"intent": None, "score": 0.0, "slots": {}},
        {"intent": "slot", "score": 1.0, "slots": {"day": "day_after_tomorrow", "period": "evening"}},
    ]


def test_cli_prints_unicode_and_reports_grammar_errors(grammar_copy: Path, monkeypatch, capsys):
    (grammar_copy / "weather.yaml").write_text("context: weather\nintents: {}\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    rc = cli.run(parser.parse_args(["--context", "confirm", "--grammars", str(grammar_copy), "对"]))
    err = capsys.readouterr().err
    assert rc == 1 and "weather.yaml: unknown context 'weather'" in err


def test_cli_as_a_module():
    result = subprocess.run([sys.executable, "-m", "ivr.nlu", "--context", "service", "退休工资"],
                            capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"intent": "pension", "score": 1.0, "slots": {}}'
