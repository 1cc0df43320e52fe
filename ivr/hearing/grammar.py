"""Compile phrase lists into Vosk grammars that cannot crash Vosk; re-check results.

Vosk's grammar is a JSON array of phrases. Each phrase is split on single
spaces and every token must be a word of the model: an unknown token is
dropped with only a stderr warning, so "转人工" (one token the model lacks)
would silently become an empty phrase. Chinese text must therefore be cut
into the model's own words first (small-cn was trained on pkuseg-segmented
text), e.g. "我要转人工" → "我 要 转 人工".

The phrases become a bigram model, not a strict grammar: the recogniser can
chain or repeat phrases ("是 不是"), so `match_phrase` / `accept_result`
re-check every output against the phrase list. With the model's unknown-word
symbol ("[unk]" in most Vosk models, "<UNK>" in the Korean test model) in
the grammar, unrelated speech can come back as that symbol instead of as a
confident grammar phrase.

Crashes this module prevents (all kill the process in vosk 0.3.45): invalid
JSON, a non-array, an empty array ("[]" segfaults), non-string elements.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = [
    "GrammarError",
    "Vocabulary",
    "CompiledGrammar",
    "UNK_WORDS",
    "as_vocabulary",
    "normalize_phrase",
    "segment",
    "compile_grammar",
    "check_phrases",
    "validate_grammar_json",
    "match_phrase",
    "accept_result",
]

# Unknown-word symbols, in order of preference, as spelt by Vosk models.
UNK_WORDS = ("[unk]", "<unk>", "<UNK>")
# Graph-internal symbols that must never appear in a grammar.
_SPECIAL = re.compile(r"^(?:<eps>|<s>|</s>|#\d+)$")
# Characters that Vosk's tiny JSON parser or its space tokeniser mishandle.
_UNSAFE_CHARS = re.compile(r'["\\\x00-\x1f\x7f]')
_DEFAULT_MAX_WORD = 8  # longest candidate tried when only find_word is available
_MAX_WORD_CAP = 24


class GrammarError(ValueError):
    """A grammar that would be ignored by, or crash, Vosk."""


class Vocabulary:
    """Membership test for a model's words: a word set, or a loaded model's find_word."""

    def __init__(self, lookup: Callable[[str], bool], *, max_word_len: int = _DEFAULT_MAX_WORD,
                 source: str = "") -> None:
        self._lookup = lookup
        self._cache: dict[str, bool] = {}
        self.max_word_len = max(1, min(max_word_len, _MAX_WORD_CAP))
        self.source = source
        self._unk: str | None | bool = False  # False = not computed yet

    @classmethod
    def from_words(cls, words: Iterable[str], source: str = "word list") -> "Vocabulary":
        ws = frozenset(words)
        longest = max((len(w) for w in ws if not _SPECIAL.match(w)), default=1)
        return cls(ws.__contains__, max_word_len=longest, source=source)

    @classmethod
    def from_vosk_model(cls, model: Any) -> "Vocabulary":
        return cls(lambda w: model.vosk_model_find_word(w) != -1, source="vosk model")

    @classmethod
    def from_model_dir(cls, model_dir: Path | str) -> "Vocabulary":
        """Read the word list from the model folder (no model load; ~1 s for 500k words)."""
        from ivr.hearing.models import ModelError, read_vocabulary
        words = read_vocabulary(model_dir)
        if words is None:
            raise ModelError(f"{model_dir}: no word list found (no words.txt, and no symbol "
                             "table in Gr.fst/HCLG.fst); load the model instead")
        return cls.from_words(words, source=str(model_dir))

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str) or not word or _SPECIAL.match(word):
            return False
        hit = self._cache.get(word)
        if hit is None:
            hit = bool(self._lookup(word))
            if len(self._cache) < 100_000:
                self._cache[word] = hit
        return hit

    @property
    def unk(self) -> str | None:
        """The model's unknown-word symbol, if it has one."""
        if self._unk is False:
            self._unk = next((w for w in UNK_WORDS if w in self), None)
        return self._unk  # type: ignore[return-value]


def as_vocabulary(model: Any) -> Vocabulary:
    """Accept a Vocabulary, a vosk.Model, a model folder path, or a collection of words."""
    if isinstance(model, Vocabulary):
        return model
    if hasattr(model, "vosk_model_find_word"):
        return Vocabulary.from_vosk_model(model)
    if isinstance(model, (str, Path)):
        return Vocabulary.from_model_dir(model)
    if isinstance(model, (set, frozenset, list, tuple, dict)):
        return Vocabulary.from_words(model)
    raise TypeError(f"cannot get a vocabulary from {type(model).__name__}")


def normalize_phrase(text: str) -> str:
    """NFC, trimmed, inner whitespace collapsed to single spaces."""
    return " ".join(unicodedata.normalize("NFC", text).split())


@dataclass(frozen=True)
class Segmentation:
    tokens: tuple[str, ...]  # model words, in order (unknown pieces excluded)
    unknown: tuple[str, ...]  # runs of text no model word covers


def segment(text: str, vocab: Vocabulary) -> Segmentation:
    """Cut text into the model's words.

    Space-separated chunks are kept whole when the model knows them (Korean
    eojeol, or Chinese the caller segmented already). Other chunks are cut
    into vocabulary words choosing, in order: fewest characters left
    uncovered, fewest words, longest first word. That is greedy longest match,
    except that it never leaves a character uncovered where another cut
    would cover it (greedy "AB|C?" when "A|BC" exists). Pre-segment with
    spaces where the longest match is wrong for the meaning.
    """
    tokens: list[str] = []
    unknown: list[str] = []
    for chunk in normalize_phrase(text).split(" "):
        if not chunk:
            continue
        if chunk in vocab:
            tokens.append(chunk)
            continue
        n = len(chunk)
        # best[i] = (uncovered chars, words, pieces) for chunk[i:]
        best: list[tuple[int, int, list[tuple[str, bool]]]] = [(0, 0, [])] * (n + 1)
        for i in range(n - 1, -1, -1):
            choice = None
            for length in range(min(vocab.max_word_len, n - i), 0, -1):
                word = chunk[i:i + length]
                if word in vocab:
                    unk, cnt, rest = best[i + length]
                    cand = (unk, cnt + 1, [(word, True)] + rest)
                    if choice is None or cand[:2] < choice[:2]:
                        choice = cand
            unk, cnt, rest = best[i + 1]
            cand = (unk + 1, cnt + 1, [(chunk[i], False)] + rest)
            if choice is None or cand[:2] < choice[:2]:
                choice = cand
            best[i] = choice
        run = ""
        for piece, known in best[0][2]:
            if known:
                if run:
                    unknown.append(run)
                    run = ""
                tokens.append(piece)
            else:
                run += piece
        if run:
            unknown.append(run)
    return Segmentation(tuple(tokens), tuple(unknown))


@dataclass(frozen=True)
class CompiledGrammar:
    json: str  # what KaldiRecognizer(model, rate, json) gets; validated
    phrases: dict[str, str] = field(default_factory=dict)  # segmented → original phrase
    unk: str | None = None  # the unknown-word symbol added, if any
    problems: tuple[str, ...] = ()  # phrases left out, and why


def _phrase_problems(vocab: Vocabulary, phrases: Iterable[Any]) -> tuple[dict[str, str], list[str]]:
    kept: dict[str, str] = {}
    problems: list[str] = []
    for phrase in phrases:
        if not isinstance(phrase, str):
            problems.append(f"{phrase!r}: not text")
            continue
        norm = normalize_phrase(phrase)
        if not norm:
            problems.append(f"{phrase!r}: empty phrase")
            continue
        if _UNSAFE_CHARS.search(norm):
            problems.append(f"{phrase!r}: contains quotes, backslashes or control characters")
            continue
        seg = segment(norm, vocab)
        if seg.unknown:
            missing = ", ".join(repr(u) for u in seg.unknown)
            problems.append(f"{phrase!r}: the model has no word for {missing}")
            continue
        key = " ".join(seg.tokens)
        if key in kept:
            if kept[key] != phrase:
                problems.append(f"{phrase!r}: same words as {kept[key]!r} ({key})")
            continue
        kept[key] = phrase
    return kept, problems


def compile_grammar(model: Any, phrases: Iterable[str], *, add_unk: bool = True) -> CompiledGrammar:
    """Turn phrases into a Vosk grammar; phrases with words the model lacks are left out.

    Raises GrammarError if no phrase is usable (a grammar of only "[unk]"
    would reject everything; the caller should fall back to keys).
    """
    vocab = as_vocabulary(model)
    kept, problems = _phrase_problems(vocab, phrases)
    if not kept:
        detail = "; ".join(problems) or "the phrase list is empty"
        raise GrammarError(f"no usable phrase: {detail}")
    unk = vocab.unk if add_unk else None
    items = list(kept) + ([unk] if unk else [])
    text = json.dumps(items, ensure_ascii=False)  # vosk's JSON parser keeps \uXXXX undecoded
    validate_grammar_json(text, vocab)
    return CompiledGrammar(json=text, phrases=kept, unk=unk, problems=tuple(problems))


def check_phrases(model: Any, phrases: Iterable[str]) -> list[str]:
    """Problems for `python -m ivr grammars check`: one message per unusable phrase.

    `model` is a loaded vosk.Model, a model folder (its word list is read
    without loading the model), a Vocabulary or a word collection.
    """
    _kept, problems = _phrase_problems(as_vocabulary(model), phrases)
    return problems


def validate_grammar_json(text: str, vocab: Vocabulary | None = None) -> list[str]:
    """Check a grammar string is safe for KaldiRecognizer; return its phrases.

    Raises GrammarError for anything that crashes Vosk (invalid JSON, not an
    array, empty, non-strings) or that it would silently mangle (empty or
    badly spaced phrases, unsafe characters, and, given `vocab`, unknown words).
    """
    if not isinstance(text, str):
        raise GrammarError("grammar must be a string")
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise GrammarError(f"grammar is not valid JSON: {exc}") from None
    if not isinstance(items, list) or not items:
        raise GrammarError("grammar must be a non-empty JSON array")
    for item in items:
        if not isinstance(item, str):
            raise GrammarError(f"grammar element {item!r} is not a string")
        if not item or item != item.strip() or "  " in item:
            raise GrammarError(f"grammar phrase {item!r} is empty or badly spaced")
        if _UNSAFE_CHARS.search(item):
            raise GrammarError(f"grammar phrase {item!r} has unsafe characters")
        if vocab is not None:
            for token in item.split(" "):
                if token not in vocab:
                    raise GrammarError(f"grammar word {token!r} is not in the model vocabulary")
    return items


def _key(text: str) -> str:
    return "".join(normalize_phrase(text).split())


def match_phrase(text: str, phrases: Iterable[str], *, allow_repeats: bool = False) -> str | None:
    """The phrase (as given) that the recogniser's output is, or None.

    Spaces are ignored ("我 要 人工" is "我要人工"). Output containing an
    unknown-word symbol, chained phrases ("是 不是" when only 是 and 不是
    are phrases) and, unless allow_repeats, a repeated phrase ("是 是")
    give None.
    """
    tokens = normalize_phrase(text or "").split()
    if not tokens or any(t in UNK_WORDS for t in tokens):
        return None
    key = "".join(tokens)
    table: dict[str, str] = {}
    for phrase in phrases:
        if isinstance(phrase, str):
            table.setdefault(_key(phrase), phrase)
    table.pop("", None)
    if key in table:
        return table[key]
    if allow_repeats:
        for pk, phrase in table.items():
            reps, rem = divmod(len(key), len(pk))
            if reps > 1 and not rem and pk * reps == key:
                return phrase
    return None


def accept_result(text: str, phrases: Iterable[str], *, allow_repeats: bool = False) -> bool:
    """True if the recogniser's output is exactly one phrase of the list."""
    return match_phrase(text, phrases, allow_repeats=allow_repeats) is not None
