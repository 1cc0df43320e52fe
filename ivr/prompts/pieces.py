"""The pieces of recorded speech a language needs, and how a filled-in prompt is said with them.

A prompt with filled-in parts ("侬预约个辰光是明朝上半日，九点钟到十点钟。…") cannot be recorded
whole: its values change.  It is said instead from recorded pieces, in order:

* a static prompt is one piece, recorded whole (piece id = prompt id, e.g. ``main_menu@speech``);
* a templated prompt gives one piece per static stretch between its {placeholders}, numbered
  from 1 (``confirm_booking.1`` = "侬预约个辰光是"); stretches that are only punctuation are
  pauses, not pieces;
* the words the spoken values are made of (ivr.speakable: digits, 十 廿 百 千, 月 号, 点钟,
  今朝, 礼拜一, 上半日 …) come from ``flows/prompts/<language>_pieces.yaml`` (id ``w.<id>``).

`pieces_for` lists every piece a fully recorded language needs (the prompt studio's script);
`compose` finds, for the words one caller is about to hear, the fewest recorded pieces that say
them, with pauses where the text has punctuation between pieces.  When that is impossible it
says which pieces would have to be recorded, or that the text has free words (a matter's
free-text detail) that no piece says, so the caller hears the whole prompt by TTS instead of a
voice that changes in the middle of a sentence.

Use a `Composer` (the index is built once) or the module function `compose`, which keeps a few
Composers for the piece lists it has seen.  Both are pure: no files, no telephony.
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

from ivr.flow.checker import placeholders

__all__ = [
    "Composer",
    "Composition",
    "Piece",
    "WordEntry",
    "compose",
    "pieces_for",
    "segments",
    "spoken_chars",
    "value_samples",
]

KINDS = ("prompt", "segment", "word")  # also the preference among pieces with the same words
WORD_PREFIX = "w."
PIECE_ID = re.compile(r"^[A-Za-z0-9_.@-]+$")
# Prompts that are written, never spoken (text messages): no recording is made of them.
NOT_SPOKEN_PREFIXES = ("sms_",)

# Seconds of silence for a punctuation mark between two pieces (the strongest mark of a gap
# counts).  Quotes and brackets are silent.  Punctuation inside a piece is in its recording.
PAUSE_SECONDS = {
    "，": 0.3, ",": 0.3, "、": 0.2, "：": 0.3, ":": 0.3, "；": 0.4, ";": 0.4, "—": 0.3,
    "。": 0.5, ".": 0.5, "？": 0.5, "?": 0.5, "！": 0.5, "!": 0.5, "…": 0.5,
}
SPACE_PAUSE = 0.2

# What a placeholder stands for, in the recording notes ("后头接〈电话号码〉").
_PLACEHOLDER_WORDS = {
    "caller_spoken": "电话号码", "callback_spoken": "电话号码", "booked_number_spoken": "电话号码",
    "from_spoken": "电话号码", "chosen_slot_spoken": "辰光", "booked_slot_spoken": "辰光",
    "old_slot": "辰光", "slot": "辰光", "date": "日子", "n": "数目", "matter_count": "数目",
    "checks_left": "数目", "queue_ahead": "数目", "key": "按键", "service": "办事个名字",
    "status": "进度", "replace_note": "“原来个预约会取消”一句（有辰光呒没）",
    "pending_words": "来电人讲个闲话", "status_text": "事体", "slot_choices": "辰光",
    "last4": "尾号",
}
_PLACEHOLDER_RE = re.compile(r"\{\w+\}")


@dataclass(frozen=True)
class Piece:
    """One thing to record, in one language."""

    piece_id: str  # [A-Za-z0-9_.@-]: a URL path part and a file name
    language: str
    text: str  # the words the voice talent reads
    kind: str  # "prompt" | "segment" | "word"
    note: str  # for the recording script: what it belongs to, how to read it


@dataclass(frozen=True)
class WordEntry:
    """A word of ``<language>_pieces.yaml``: its words and an optional note for the talent."""

    words: str
    note: str = ""


@dataclass(frozen=True)
class Composition:
    """How a text is said with recorded pieces.

    parts: piece ids in order, with floats for seconds of silence where the text has
    punctuation between two pieces; None when the recorded pieces cannot say the text.
    missing: when parts is None, the piece ids that would have to be recorded (from the best
    tokenisation over all pieces, fewest recordings first); empty when parts is not None.
    unknown: stretches of the text that no piece says at all (free words); parts is None then.
    """

    parts: tuple[str | float, ...] | None
    missing: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.parts is not None


# --- words --------------------------------------------------------------------------------------

def _silent(c: str) -> bool:
    """Punctuation, spaces and quotes: not spoken, a pause at most."""
    return c.isspace() or unicodedata.category(c)[0] in "PZ"


def spoken_chars(text: str) -> str:
    """The characters of `text` that are spoken: what pieces are matched on."""
    return "".join(c for c in text if not _silent(c))


def _strip_silent(text: str) -> str:
    start, end = 0, len(text)
    while start < end and _silent(text[start]):
        start += 1
    while end > start and _silent(text[end - 1]):
        end -= 1
    return text[start:end]


def segments(template: str) -> list[str]:
    """The static stretches of a templated prompt that are recorded, in order: the words between
    placeholders without the punctuation around them; stretches of punctuation only are left out."""
    return [s for s in (_strip_silent(part) for part in _PLACEHOLDER_RE.split(template)) if s]


def _pause(gap: str) -> float:
    seconds = 0.0
    for c in gap:
        seconds = max(seconds, SPACE_PAUSE if c.isspace() else PAUSE_SECONDS.get(c, 0.0))
    return seconds


# --- the script of a language ---------------------------------------------------------------------

def _prompt_note(prompt_id: str) -> str:
    if prompt_id.endswith("@speech"):
        return "整句（装了语音识别、来电人可以讲闲话回答个辰光用）"
    if prompt_id.endswith("@spoken"):
        return "整句（来电人讲个闲话听勿懂个辰光用）"
    return "整句"


def _segment_note(prompt_id: str, template: str, k: int, total: int) -> str:
    shown = _PLACEHOLDER_RE.sub(lambda m: f"〈{_PLACEHOLDER_WORDS.get(m.group()[1:-1], '……')}〉", template)
    return f"{prompt_id} 第{k}段（共{total}段），整句是：{shown}"


def default_flows_dir() -> Path:
    from ivr.config import PROJECT_ROOT
    return Path(os.environ.get("FLOWS_DIR") or PROJECT_ROOT / "flows")


def pieces_for(prompts: Mapping[str, Mapping[str, str]], language: str,
               words: Mapping[str, WordEntry] | None = None, *, flows_dir: Path | None = None) -> list[Piece]:
    """Every piece a fully recorded `language` needs, in script order: its static prompts whole,
    the static segments of its templated prompts, then the words of its pieces file.

    `prompts` is lang -> prompt id -> words (Flow.prompts); only prompts with words in `language`
    give pieces (the others are missing from its script: flows check lists them), text messages
    (sms_*) none.  `words` is the language's word list (Flow.piece_words[language]); by default
    it is read from ``<flows_dir>/prompts/<language>_pieces.yaml`` (flows_dir: FLOWS_DIR or the
    project's flows/), and a language without that file has no words.
    """
    pieces: list[Piece] = []
    for prompt_id, template in prompts.get(language, {}).items():
        if not template or prompt_id.startswith(NOT_SPOKEN_PREFIXES):
            continue
        if not placeholders(template):
            pieces.append(Piece(prompt_id, language, template, "prompt", _prompt_note(prompt_id)))
            continue
        parts = segments(template)
        for k, text in enumerate(parts, 1):
            pieces.append(Piece(f"{prompt_id}.{k}", language, text, "segment",
                                _segment_note(prompt_id, template, k, len(parts))))
    if words is None:
        from ivr.flow.loader import load_piece_words
        words = load_piece_words(flows_dir or default_flows_dir()).words.get(language, {})
    for word_id, entry in words.items():
        pieces.append(Piece(WORD_PREFIX + word_id, language, entry.words, "word",
                            entry.note or "拼句子用个词：读得平，勿拖长"))
    return pieces


# --- composing ------------------------------------------------------------------------------------

# DP costs as one integer, most important first: characters no piece says, pieces not recorded,
# pieces, then the kind (whole prompts before segments before words).  Each weight exceeds the
# largest possible sum of everything below it for texts of up to 10 000 characters.
_W_UNKNOWN = 10 ** 15
_W_UNRECORDED = 10 ** 10
_W_PIECE = 10 ** 5
_END = ""  # trie key of the pieces that end at a node (no spoken character is empty)


class Composer:
    """The pieces of one language indexed once (a trie over their spoken characters); then
    `compose` for each text costs O(len(text) × longest match) dictionary steps."""

    def __init__(self, pieces: Iterable[Piece], language: str | None = None) -> None:
        self.language = language
        self.pieces = [p for p in pieces if language is None or p.language == language]
        self._trie: dict = {}
        order = {kind: rank for rank, kind in enumerate(KINDS)}
        for index, piece in enumerate(self.pieces):
            key = spoken_chars(piece.text)
            if not key:
                continue
            node = self._trie
            for c in key:
                node = node.setdefault(c, {})
            node.setdefault(_END, []).append((order.get(piece.kind, len(KINDS)), index, piece.piece_id))
        self._sort(self._trie)

    def _sort(self, node: dict) -> None:
        stack = [node]
        while stack:
            current = stack.pop()
            for key, child in current.items():
                if key == _END:
                    child.sort()
                else:
                    stack.append(child)

    def compose(self, text: str, recorded: Callable[[str], bool]) -> Composition:
        """The fewest recorded pieces that say `text`, with pauses at punctuation between them."""
        chars: list[str] = []
        where: list[int] = []  # index in `text` of each spoken character
        gaps: list[str] = [""]  # gaps[i]: the silent characters just before spoken character i
        for i, c in enumerate(text):
            if _silent(c):
                gaps[-1] += c
            else:
                chars.append(c)
                where.append(i)
                gaps.append("")
        n = len(chars)
        known: dict[str, bool] = {}

        def is_recorded(piece_id: str) -> bool:
            if piece_id not in known:
                known[piece_id] = bool(recorded(piece_id))
            return known[piece_id]

        inf = float("inf")
        best: list[float] = [0] + [inf] * n
        back: list[tuple[int, str | None, bool]] = [(0, None, False)] * (n + 1)
        for i in range(n):
            here = best[i]
            if here == inf:
                continue
            if here + _W_UNKNOWN < best[i + 1]:
                best[i + 1], back[i + 1] = here + _W_UNKNOWN, (i, None, False)
            node = self._trie
            for j in range(i, n):
                node = node.get(chars[j])
                if node is None:
                    break
                ends = node.get(_END)
                if not ends:
                    continue
                choice = next((c for c in ends if is_recorded(c[2])), None)
                rec = choice is not None
                rank, _, piece_id = choice if rec else ends[0]
                cost = here + _W_PIECE + rank + (0 if rec else _W_UNRECORDED)
                if cost < best[j + 1]:
                    best[j + 1], back[j + 1] = cost, (i, piece_id, rec)

        steps: list[tuple[int, int, str | None, bool]] = []
        j = n
        while j > 0:
            i, piece_id, rec = back[j]
            steps.append((i, j, piece_id, rec))
            j = i
        steps.reverse()

        unknown: list[str] = []
        missing: list[str] = []
        parts: list[str | float] = []
        run_start: int | None = None
        for index, (i, j, piece_id, rec) in enumerate(steps):
            if piece_id is None:
                run_start = i if run_start is None else run_start
                if index + 1 == len(steps) or steps[index + 1][2] is not None:
                    unknown.append(text[where[run_start]:where[j - 1] + 1])
                    run_start = None
                continue
            if not rec and piece_id not in missing:
                missing.append(piece_id)
            if parts and (pause := _pause(gaps[i])):
                parts.append(pause)
            parts.append(piece_id)
        if unknown or missing:
            return Composition(None, tuple(missing), tuple(unknown))
        return Composition(tuple(parts))


@lru_cache(maxsize=16)
def _composer(pieces: tuple[Piece, ...], language: str) -> Composer:
    return Composer(pieces, language)


def compose(text: str, language: str, pieces: Sequence[Piece], recorded: Callable[[str], bool]) -> Composition:
    """Say `text` (a prompt as the caller hears it, filled in) in `language` with the recorded
    pieces among `pieces` (recorded(piece_id) tells which).  Keeps the index of the last few
    piece lists; a caller that composes every turn may hold a `Composer` instead."""
    return _composer(tuple(pieces), language).compose(text, recorded)


# --- every kind of spoken value ---------------------------------------------------------------------

def value_samples(language: str, today: date = date(2026, 1, 5)) -> list[str]:
    """Spoken values of every form ivr.speakable makes in `language`: digit strings with every
    digit and X, counts and numbers 0..99 and some larger, every day of a year (relative days,
    weekdays, every day of the month) and full dates with other years, clock times with every
    minute and every half hour, and hourly and half-hour slots over a week.  What the words of a
    pieces file must be able to say (flows check, tests)."""
    from ivr import speakable as sp
    out = [sp.say_digit_groups("0123456789X", lang=language), sp.say_phone("+8613912345678", lang=language),
           sp.say_phone("+862161234567", lang=language), sp.say_phone("12345", lang=language)]
    for n in [*range(100), 100, 102, 110, 120, 200, 999, 1000, 1001, 2000, 2222, 9999]:
        out += [sp.say_count(n, lang=language), sp.say_number(n, lang=language)]
    for offset in range(366):
        day = today + timedelta(days=offset)
        out += [sp.say_date(day, today, lang=language), sp.say_full_date(day, today, lang=language)]
    for year in range(2019, 2031):
        out.append(sp.say_full_date(date(year, 12, 31), today, lang=language))
    out += [sp.say_clock(time(h, m), lang=language) for h in range(24) for m in (0, 30)]
    out += [sp.say_clock(time(9, m), lang=language) for m in range(60)]
    for offset in range(8):
        day = datetime.combine(today + timedelta(days=offset), time(0))
        for minutes in range(6 * 60, 22 * 60, 30):
            start = day + timedelta(minutes=minutes)
            out += [sp.say_slot(start, start + timedelta(minutes=length), today, lang=language)
                    for length in (30, 60)]
    return list(dict.fromkeys(out))
