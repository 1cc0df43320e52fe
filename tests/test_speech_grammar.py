"""Phrase lists → Vosk grammars that cannot crash Vosk; results re-checked against phrases."""

from __future__ import annotations

import json

import pytest

from ivr.hearing.grammar import (
    GrammarError,
    Vocabulary,
    accept_result,
    as_vocabulary,
    check_phrases,
    compile_grammar,
    match_phrase,
    segment,
    validate_grammar_json,
)
from speech_fixtures.helpers import KO_PHRASES, korean_model_dir

# A slice of a Chinese model vocabulary (small-cn is pkuseg-segmented).
CN_WORDS = {"<eps>", "#0", "<s>", "</s>", "[unk]", "我", "要", "转", "人工", "是", "不是", "对",
            "不", "对对", "再", "讲", "一", "遍", "研究", "研究生", "生命", "命", "的", "起源",
            "慢", "一点", "社保卡", "社保", "卡", "A", "AB", "BC", "C"}


@pytest.fixture()
def cn() -> Vocabulary:
    return Vocabulary.from_words(CN_WORDS)


def test_segments_into_model_words(cn: Vocabulary) -> None:
    assert segment("我要转人工", cn).tokens == ("我", "要", "转", "人工")
    assert segment("社保卡", cn).tokens == ("社保卡",)  # longest match
    assert segment("再讲一遍", cn).tokens == ("再", "讲", "一", "遍")
    assert segment("  我要   人工 ", cn).tokens == ("我", "要", "人工")
    # Never leaves a character uncovered when another cut covers it.
    assert segment("ABC", cn).tokens in (("A", "BC"), ("AB", "C"))
    assert segment("ABC", cn).unknown == ()
    # Unknown characters are reported as runs.
    seg = segment("我要办护照", cn)
    assert seg.tokens == ("我", "要") and seg.unknown == ("办护照",)


def test_graph_symbols_are_never_words(cn: Vocabulary) -> None:
    for sym in ("<eps>", "#0", "<s>", "</s>"):
        assert sym not in cn
    assert "[unk]" in cn and cn.unk == "[unk]"


def test_compile_grammar(cn: Vocabulary) -> None:
    g = compile_grammar(cn, ["是", "不是", "我要转人工", "再讲一遍"])
    assert json.loads(g.json) == ["是", "不是", "我 要 转 人工", "再 讲 一 遍", "[unk]"]
    assert "\\u" not in g.json  # Vosk's JSON parser does not decode \uXXXX escapes
    assert g.phrases["我 要 转 人工"] == "我要转人工"
    assert g.unk == "[unk]" and g.problems == ()
    assert json.loads(compile_grammar(cn, ["是"], add_unk=False).json) == ["是"]


def test_compile_leaves_out_and_reports_bad_phrases(cn: Vocabulary) -> None:
    g = compile_grammar(cn, ["是", "我要办护照", "", 'say "hi"', "是"])
    assert json.loads(g.json) == ["是", "[unk]"]
    assert any("办护照" in p for p in g.problems)
    assert any("empty" in p for p in g.problems)
    assert any("quotes" in p for p in g.problems)


def test_a_grammar_that_would_crash_or_do_nothing_is_refused(cn: Vocabulary) -> None:
    for phrases in ([], ["办护照"], [""], ["  "]):
        with pytest.raises(GrammarError, match="no usable phrase"):
            compile_grammar(cn, phrases)


@pytest.mark.parametrize("text", [
    "[]",  # segfaults vosk 0.3.45
    "",
    "not json",
    '{"a": 1}',
    '"是"',
    "[1]",  # non-string element: abort
    '["是", null]',
    '[""]',
    '[" 是"]',
    '["我  要"]',
    '["\\u0000"]',
])
def test_validate_refuses_grammars_that_crash_vosk(text: str) -> None:
    with pytest.raises(GrammarError):
        validate_grammar_json(text)


def test_validate_checks_the_vocabulary(cn: Vocabulary) -> None:
    assert validate_grammar_json('["我 要 人工", "[unk]"]', cn) == ["我 要 人工", "[unk]"]
    with pytest.raises(GrammarError, match="人工服务"):
        validate_grammar_json('["人工服务"]', cn)
    with pytest.raises(GrammarError, match="#0"):
        validate_grammar_json('["#0"]', cn)


def test_check_phrases_reports_missing_words(cn: Vocabulary) -> None:
    assert check_phrases(cn, ["是", "我要转人工"]) == []
    problems = check_phrases(cn, ["是", "我要办护照", "讲慢一点", "讲慢一眼"])
    assert len(problems) == 2
    assert "'我要办护照'" in problems[0] and "'办护照'" in problems[0]
    assert "'讲慢一眼'" in problems[1] and "'眼'" in problems[1]
    assert check_phrases(CN_WORDS, ["是"]) == []  # a plain word collection works too


def test_match_phrase_rechecks_recogniser_output() -> None:
    phrases = ["是", "不是", "我要转人工"]
    assert match_phrase("是", phrases) == "是"
    assert match_phrase("我 要 转 人工", phrases) == "我要转人工"
    assert accept_result("不是", phrases)
    assert not accept_result("", phrases)
    assert not accept_result("[unk]", phrases)
    assert not accept_result("是 [unk]", phrases)
    assert not accept_result("<UNK>", phrases)
    assert not accept_result("是 不是", phrases)  # chained phrases: the bigram model allows it
    assert not accept_result("是 是", phrases)  # repeated
    assert match_phrase("是 是", phrases, allow_repeats=True) == "是"
    assert not accept_result("我 要", phrases)  # part of a phrase


# --------------------------------------------------------------------------
# Against the real Korean model's vocabulary
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ko_vocab() -> Vocabulary:
    return Vocabulary.from_model_dir(korean_model_dir())  # read from Gr.fst, no model load


def test_korean_test_grammar_is_in_the_model(ko_vocab: Vocabulary) -> None:
    assert check_phrases(ko_vocab, KO_PHRASES) == []
    g = compile_grammar(ko_vocab, KO_PHRASES)
    # The Korean model spells its unknown word "<UNK>" (small-cn: "[unk]").
    assert json.loads(g.json) == KO_PHRASES + ["<UNK>"]


def test_check_phrases_reports_tokens_the_korean_model_lacks(ko_vocab: Vocabulary) -> None:
    # The model has nearly every Hangul syllable as a word, but no bare jamo or Latin.
    problems = check_phrases(ko_vocab, ["네", "상담원 연결", "상담원ㅋ", "hello"])
    assert len(problems) == 2
    assert "'ㅋ'" in problems[0]
    assert "'hello'" in problems[1]
    # A multi-word Korean phrase is segmented into known words.
    assert check_phrases(ko_vocab, ["상담원 연결해 주세요"]) == []


def test_check_phrases_accepts_a_model_folder_path() -> None:
    # What `python -m ivr grammars check` does: read the word list, no 0.5 GB model load.
    assert check_phrases(str(korean_model_dir()), ["네", "아니요", "ㅋ"]) == [
        "'ㅋ': the model has no word for 'ㅋ'"]
    with pytest.raises(TypeError):
        as_vocabulary(42)
