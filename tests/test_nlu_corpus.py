"""The matcher on the recogniser-style corpora (tests/nlu_corpus/): accuracy per context and
language, and the safety properties that must hold whatever the accuracy.

The table is printed (run with ``-s`` or look at the captured output); the measured numbers are
recorded in docs/speech-understanding.md.
"""
from __future__ import annotations

import random

import pytest
from pypinyin.pinyin_dict import pinyin_dict

from ivr.nlu import load_grammars, understand
from ivr.nlu.evaluate import CORPUS_DIR, HELDOUT_DIR, evaluate, load_corpus, markdown
from ivr.nlu.phonetics import accent, syllable

# Minimum share of correct answers (right intent and slots; null when null is expected).
MIN_ACCURACY = 0.95            # the main corpus: the grammars were written against it
MIN_ACCURACY_HELDOUT = 0.90    # written after tuning, to estimate what the main corpus cannot


@pytest.fixture(scope="module")
def main_table():
    return evaluate(load_corpus(CORPUS_DIR))


@pytest.fixture(scope="module")
def heldout_table():
    return evaluate(load_corpus(HELDOUT_DIR))


def test_corpus_is_well_formed_and_covers_every_context_and_language():
    cases = load_corpus(CORPUS_DIR)
    contexts = {c.context for c in cases}
    assert contexts == {"main_menu", "service", "confirm", "callback_slot", "digits"}
    for ctx in contexts:
        for lang in ("cmn", "wuu"):
            mine = [c for c in cases if c.context == ctx and c.lang == lang]
            assert len(mine) >= 15, (ctx, lang)
            assert any("ood" in c.tags for c in mine), f"{ctx}/{lang} has no out-of-domain chatter"
    grammars = load_grammars()
    for c in cases:
        ctx = grammars.context(c.context)
        assert c.intent is None or c.intent in ctx.intents, c.where()


def test_reference_traps_are_in_the_corpus():
    """Every negation trap and digit collision named in shared/reference/shanghainese.md."""
    texts = {(c.context, c.text) for c in load_corpus(CORPUS_DIR)}
    confirm_traps = ["不是", "佛是", "我是", "不对", "佛对", "我对", "要", "飘", "表", "不要", "我要", "没",
                     "么", "不用", "不来事", "算了", "错了", "不晓得", "佛小的", "我晓得", "记不得了",
                     "勿是个", "嗯", "五", "四个"]
    for text in confirm_traps:
        assert ("confirm", text) in texts, text
    digit_collisions = ["要要两", "幺幺两", "六是四八", "一三嗯八", "是", "要", "嗯", "幺良良", "念三",
                        "廿三", "二十三"]
    for text in digit_collisions:
        assert ("digits", text) in texts, text
    code_switched = [("service", "我要查一查养老金伐"), ("main_menu", "人工，侬帮我转一转"),
                     ("confirm", "勿是个")]
    for item in code_switched:
        assert item in texts, item


def _report(table, title: str, capsys) -> None:
    with capsys.disabled():
        print(f"\n{title}\n{markdown(table)}")


def test_accuracy_per_context_and_language(main_table, capsys):
    _report(main_table, "NLU corpus (tests/nlu_corpus)", capsys)
    failures = []
    for (ctx, lang), row in main_table.items():
        if row.correct / row.n < MIN_ACCURACY:
            failures.append(f"{ctx}/{lang}: {row.correct}/{row.n} correct; wrong: " + "; ".join(
                f"{c.text!r} → {g.intent} {g.slots}" for c, g in row.failures))
    assert not failures, "\n".join(failures)


def test_heldout_accuracy(heldout_table, capsys):
    _report(heldout_table, "NLU held-out corpus (tests/nlu_corpus/heldout)", capsys)
    for (ctx, lang), row in heldout_table.items():
        assert row.correct / row.n >= MIN_ACCURACY_HELDOUT, (ctx, lang, row.failures)


@pytest.mark.parametrize("which", ["main", "heldout"])
def test_no_negation_or_uncertain_answer_ever_becomes_yes(which, main_table, heldout_table):
    table = main_table if which == "main" else heldout_table
    bad = [(c.where(), c.text, g) for row in table.values() for c, g in row.failures
           if c.tags & {"negation", "uncertain"} and g.intent == "yes"]
    assert not bad
    assert sum(r.trap_yes for r in table.values()) == 0


@pytest.mark.parametrize("which", ["main", "heldout"])
def test_out_of_domain_chatter_is_never_accepted(which, main_table, heldout_table):
    table = main_table if which == "main" else heldout_table
    assert sum(r.ood_accepts for r in table.values()) == 0
    assert sum(r.ood for r in table.values()) >= 20


def test_no_false_accepts_in_the_main_corpus(main_table):
    assert [(c.where(), c.text, g) for row in main_table.values() for c, g in row.failures
            if g.band == "accept"] == []


# ---------------------------------------------------------------- synthetic recogniser errors

def _homophone_pool() -> dict[str, list[str]]:
    pool: dict[str, list[str]] = {}
    for cp, readings in pinyin_dict.items():
        if 0x4E00 <= cp <= 0x9FA5 and "," not in readings:
            ch = chr(cp)
            pool.setdefault(accent(syllable(ch)), []).append(ch)
    return pool


def test_homophone_substitutions_keep_their_intent():
    """A recogniser often writes a different character with the same sound.  Replace one
    character of every phrase (two characters or more) by a random character with the same
    accent-folded toneless syllable: the intent (and slot) must survive, and nothing may be
    accepted as a different intent (except "no" from a negative that is still there)."""
    pool = _homophone_pool()
    rng = random.Random(20240601)
    total = right = 0
    wrong_accepts = []
    for name, ctx in load_grammars().contexts.items():
        for e in ctx.entries:
            if len(e.text) < 2:
                continue
            k = rng.randrange(len(e.text))
            choices = [c for c in pool.get(accent(syllable(e.text[k])), []) if c != e.text[k]]
            if not choices:
                continue
            text = e.text[:k] + rng.choice(choices) + e.text[k + 1:]
            got = understand(name, text, "wuu" if e.kind != "cmn" else "cmn")
            ok = got.intent == e.intent and (e.slot is None or got.slots.get(e.slot[0]) == e.slot[1])
            total += 1
            right += ok
            # a negative that survives the substitution is a "no" by design (我勿懂 → 我勿冻)
            if not ok and got.band == "accept" and got.note != "negation":
                wrong_accepts.append((name, e.text, text, got))
    assert total > 500
    assert right / total >= 0.97, right / total
    assert not wrong_accepts
