"""Understanding recognised text: the best intent of a context, with a score and slots.

How a score is made (docs/speech-understanding.md has the long version):

1. The text is normalised (``normalize.py``).  In the confirm context, echo questions (是不是)
   and 要 / 嗯 / 五 alone are *uncertain* → no intent.
2. Every phrase of the context and of common.yaml is looked for in the text, from strict to loose:
   the same characters (similarity 1.0); the same accent-folded pinyin (``Weights.accent``);
   the same coarse pinyin (``Weights.coarse``); for phrases of two or more syllables a rapidfuzz
   partial match of the spelled pinyin (``Weights.fuzzy`` × ratio).  Aliases are scaled by
   ``Weights.alias_cmn`` / ``alias_wuu``.  Single-syllable phrases only match as characters.
3. **Negation first** (contexts with a ``no`` intent): 不 勿 覅 佛 否 弗 呒, or a syllable
   bu / fo / fou / fu (我 五 无 …) before 是 / 对 / 要 / 晓得 / 来事, is a ``no`` and removes every
   ``yes`` hit — unless the negative sits inside another intent's phrase (不错, 听不清, 我不懂) or
   an ``ignore`` expression (对不起, 不好意思).
4. An intent's score is the mean, over the characters of the text, of the credit each character
   earns: the best similarity of that intent's phrases covering it, 1.0 for carriers and
   ignored expressions, ``Weights.uncovered`` for anything else.  So a phrase said alone scores
   its similarity, and words the grammar does not know pull the score down.
5. The best intent wins; its band comes from ``Thresholds``: accept, confirm (ask "您是说…对吗?")
   or reject (intent ``None``).  If another intent scores within ``Thresholds.margin`` the band
   is at most confirm.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz, process

from ivr.nlu.grammar import Context, Entry, Grammars, load_grammars
from ivr.nlu.normalize import INTERJECTIONS, Normalized, is_uncertain, normalize
from ivr.nlu.phonetics import accent, encode

LANGS = ("cmn", "wuu")
NEG_CHARS = frozenset("不勿覅佛否弗呒")
NEG_SYLLABLES = frozenset({"bu", "fo", "fou", "fu"})       # after accent folding (wo → fo, wu → fu)
NEG_TARGETS = ("是", "对", "要", "晓得", "来事", "来三", "小的")  # after a pinyin-only onset like 我
# echo questions: 是不是 对勿对 (but not 不对不对), and a bare 对吗 / 对伐 / 好伐
ECHO_QUESTION = re.compile(r"(?<![不勿])(是|对|要|好|行)(不|勿)\1|可不可以")
ECHO_PARTICLE = re.compile(r"^(是|对|要|好|行|可以)(吗|伐|么|哇)$")
DIGIT_EDGE_FILLERS = frozenset("嗯恩唔是了吧也")             # dropped at the edges of a number


@dataclass(frozen=True)
class Thresholds:
    """Score bands: ``score >= accept`` → accept; ``>= confirm`` → confirm; below → reject."""
    accept: float = 0.85
    confirm: float = 0.60
    margin: float = 0.05      # a rival intent this close caps the band at confirm

    def band(self, score: float) -> str:
        if score >= self.accept:
            return "accept"
        return "confirm" if score >= self.confirm else "reject"


@dataclass(frozen=True)
class Weights:
    """How much each kind of match is worth (similarity 0..1 before coverage)."""
    alias_cmn: float = 0.95   # an alias heard from a caller who chose Mandarin
    alias_wuu: float = 1.0    # an alias heard from a caller who chose Shanghainese
    accent: float = 0.90      # same pinyin after the Shanghai-accent merges (homophones)
    coarse: float = 0.80      # same pinyin after the low-cost merges
    fuzzy: float = 0.75       # rapidfuzz partial match of the pinyin, × ratio
    fuzzy_cutoff: float = 80  # rapidfuzz ratio (0-100) below which a fuzzy match is ignored
    uncovered: float = 0.20   # credit of a character no phrase or carrier explains
    weak_digit: float = 0.80  # a near-homophone digit (要 → 1, 是 → 4)


@dataclass(frozen=True)
class Understanding:
    intent: str | None
    score: float
    slots: dict[str, str] = field(default_factory=dict)
    band: str = "reject"
    note: str = ""            # why (uncertain, negation, ambiguous, fuzzy …) — for logs, not API

    def to_json(self) -> dict:
        return {"intent": self.intent, "score": self.score, "slots": dict(self.slots)}


@dataclass
class _Hit:
    key: tuple                # (intent, slot)
    start: int
    end: int
    sim: float
    level: str


def _occurrences(hay: str, needle: str) -> list[int]:
    out = []
    pos = hay.find(needle)
    while pos >= 0:
        out.append(pos)
        pos = hay.find(needle, pos + 1)
    return out


def _spans(text: str, phrases: list[str]) -> list[tuple[int, int]]:
    return [(p, p + len(ph)) for ph in phrases for p in _occurrences(text, ph)]


def _prune(hits: list[_Hit], carriers: list[tuple[int, int]]) -> list[_Hit]:
    """Drop hits that something longer explains: a carrier that strictly contains the hit (你好
    is not 好), a longer phrase of another intent (取消预约 is not 预约), and fuzzy hits that
    overlap an exact hit of another intent (for slot values: any exact hit)."""
    def inside(h: _Hit, s: int, e: int) -> bool:
        return s <= h.start and h.end <= e and e - s > h.end - h.start

    exact = [h for h in hits if h.level != "fuzzy"]
    kept = []
    for h in hits:
        if any(inside(h, s, e) for s, e in carriers):
            continue
        if any(g.key[0] != h.key[0] and inside(h, g.start, g.end) for g in exact):
            continue
        if h.level == "fuzzy" and any((g.key != h.key or h.key[1]) and g.start < h.end
                                      and h.start < g.end for g in exact):
            continue
        kept.append(h)
    return kept


class Matcher:
    def __init__(self, grammars: Grammars | str | Path | None = None,
                 thresholds: Thresholds | None = None, weights: Weights | None = None):
        self.grammars = grammars if isinstance(grammars, Grammars) else load_grammars(grammars)
        self.thresholds = thresholds or Thresholds()
        self.weights = weights or Weights()
        self._fuzzy: dict[str, tuple[list[Entry], list[str]]] = {}
        for name, ctx in self.grammars.contexts.items():
            # fuzzy matching never makes a yes: a plain yes must be heard plainly
            entries = [e for e in ctx.entries if len(e.text) >= 3 and e.intent != "yes"]
            self._fuzzy[name] = (entries, [e.spell for e in entries])

    # ------------------------------------------------------------------ public

    def understand(self, context: str, text: str, lang: str = "cmn") -> Understanding:
        if lang not in LANGS:
            raise ValueError(f"unknown language {lang!r} (expected cmn or wuu)")
        ctx = self.grammars.context(context)
        norm = normalize(text or "")
        candidates: list[tuple[float, int, str, dict[str, str], str]] = []
        if ctx.digits:
            digit = self._digits(ctx, norm)
            if digit:
                candidates.append(digit)
        if not ctx.digits and is_uncertain(norm):
            return Understanding(None, 0.0, {}, "reject", "uncertain")
        if "no" in ctx.intents and (ECHO_QUESTION.search(norm.text) or ECHO_PARTICLE.match(
                "".join(c for c in norm.full if c not in INTERJECTIONS))):
            return Understanding(None, 0.0, {}, "reject", "question")
        if norm.text:
            candidates.extend(self._intents(ctx, norm.text, lang))
        return self._decide(ctx, candidates)

    # ------------------------------------------------------------------ phrases

    def _hits(self, ctx: Context, text: str, lang: str) -> list[_Hit]:
        w = self.weights
        alias = w.alias_wuu if lang == "wuu" else w.alias_cmn
        _, code_a, code_b, spell, starts = encode(text)
        hits: list[_Hit] = []
        exact: set[int] = set()
        for i, e in enumerate(ctx.entries):
            scale = alias if e.kind == "aliases" else 1.0
            found = [(p, 1.0, "text") for p in _occurrences(text, e.text)]
            if not found and len(e.text) >= 2:
                found = [(p, w.accent, "accent") for p in _occurrences(code_a, e.code_a)]
                if not found and len(e.text) >= 3:
                    found = [(p, w.coarse, "coarse") for p in _occurrences(code_b, e.code_b)]
            if found:
                exact.add(id(e))
            hits.extend(_Hit(e.key, p, p + len(e.text), sim * scale, level) for p, sim, level in found)
        entries, spells = self._fuzzy[ctx.name]
        if entries and len(spell) >= 5:
            for _, ratio, idx in process.extract(spell, spells, scorer=fuzz.partial_ratio,
                                                 score_cutoff=w.fuzzy_cutoff, limit=25):
                e = entries[idx]
                if id(e) in exact:
                    continue
                scale = alias if e.kind == "aliases" else 1.0
                if len(e.spell) > len(spell):
                    ratio = fuzz.ratio(spell, e.spell)
                    if ratio < w.fuzzy_cutoff:
                        continue
                    start, end = 0, len(text)
                else:
                    al = fuzz.partial_ratio_alignment(e.spell, spell)
                    ratio = al.score
                    start = max(bisect_right(starts, al.dest_start) - 1, 0)
                    end = max(bisect_right(starts, max(al.dest_end - 1, al.dest_start)), start + 1)
                hits.append(_Hit(e.key, start, end, w.fuzzy * ratio / 100 * scale, "fuzzy"))
        return hits

    def _negation(self, ctx: Context, text: str, hits: list[_Hit],
                  masked: list[bool]) -> list[_Hit]:
        """Spans that say "no", unless the negative belongs to another intent's phrase."""
        protected = [False] * len(text)
        for h in hits:
            if h.level == "text" and h.key[0] != "no":
                for i in range(h.start, h.end):
                    protected[i] = True
        found: list[_Hit] = []
        for i, c in enumerate(text):
            if masked[i] or protected[i]:
                continue
            if c in NEG_CHARS:
                end = min(i + 2, len(text))
                found.append(_Hit(("no", None), i, end, 1.0, "negation"))
            elif accent(encode(c)[0][0]) in NEG_SYLLABLES:
                for target in NEG_TARGETS:
                    if text.startswith(target, i + 1):
                        found.append(_Hit(("no", None), i, i + 1 + len(target), 0.95, "negation"))
                        break
        return found

    def _intents(self, ctx: Context, text: str,
                 lang: str) -> list[tuple[float, int, str, dict[str, str], str]]:
        n = len(text)
        neutral = [False] * n          # carriers and ignored expressions: neither help nor hurt
        for s, e in _spans(text, ctx.ignore):
            for i in range(s, e):
                neutral[i] = True
        masked = list(neutral)
        carriers = _spans(text, ctx.carriers)
        for s, e in carriers:
            for i in range(s, e):
                neutral[i] = True
        hits = [h for h in self._hits(ctx, text, lang) if not any(masked[h.start:h.end])]
        for key, phrases in ctx.excepts.items():
            blocked = _spans(text, phrases)
            hits = [h for h in hits if h.key != key
                    or not any(s <= h.start and h.end <= e for s, e in blocked)]
        hits = _prune(hits, carriers)
        negated = False
        if "no" in ctx.intents:
            neg = _prune(self._negation(ctx, text, hits, masked), carriers)
            if neg:
                negated = True
                # a yes overruled by a negative is part of the answer (是的，哦不对): neutral
                for h in hits:
                    if h.key[0] == "yes":
                        for i in range(h.start, h.end):
                            neutral[i] = True
                hits = [h for h in hits if h.key[0] != "yes"] + neg
        by_intent: dict[str, list[_Hit]] = {}
        for h in hits:
            by_intent.setdefault(h.key[0], []).append(h)
        out = []
        for intent, ihits in by_intent.items():
            slots: dict[str, str] = {}
            if ctx.slot_names and any(h.key[1] for h in ihits):
                chosen = []
                for slot_name in ctx.slot_names:
                    totals: dict[str, float] = {}
                    for h in ihits:
                        if h.key[1] and h.key[1][0] == slot_name:
                            value = h.key[1][1]
                            totals[value] = totals.get(value, 0.0) + h.sim * (h.end - h.start)
                    if totals:
                        value = max(totals, key=lambda v: totals[v])
                        slots[slot_name] = value
                        chosen.append((slot_name, value))
                ihits = [h for h in ihits if h.key[1] is None or h.key[1] in chosen]
            credit = [0.0] * n
            for h in ihits:
                for i in range(h.start, h.end):
                    credit[i] = max(credit[i], h.sim)
            counted = [c if c else self.weights.uncovered
                       for i, c in enumerate(credit) if c or not neutral[i]]
            if not counted:
                continue
            levels = {h.level for h in ihits}
            note = "negation" if intent == "no" and negated else (
                "fuzzy" if levels == {"fuzzy"} else "")
            explained = sum(1 for c in credit if c)
            priority = (2 if intent == "no" and negated else 0) + explained / (n + 1)
            out.append((sum(counted) / len(counted), priority, intent, slots, note))
        return out

    # ------------------------------------------------------------------ digits

    def _digits(self, ctx: Context, norm: Normalized):
        text = norm.full
        n = len(text)
        if not n:
            return None
        w = self.weights
        credit = [0.0] * n
        claimed = [False] * n
        for s, e in _spans(text, ctx.own_carriers):
            if not any(claimed[s:e]):
                for i in range(s, e):
                    claimed[i] = True
        runs: list[list[int]] = []
        for i, c in enumerate(text):
            if not claimed[i] and (c in ctx.digits or c.isdigit()):
                if runs and runs[-1][-1] == i - 1:
                    runs[-1].append(i)
                else:
                    runs.append([i])

        def strong(i: int) -> bool:
            return text[i].isdigit() or ctx.digits[text[i]][1]

        out: list[str] = []
        for run in runs:
            while run and text[run[0]] in DIGIT_EDGE_FILLERS and not strong(run[0]):
                claimed[run.pop(0)] = True
            while run and text[run[-1]] in DIGIT_EDGE_FILLERS and not strong(run[-1]):
                claimed[run.pop()] = True
            if not run or not (any(strong(i) for i in run) or len(run) >= 3):
                continue
            tokens = [("d", text[i]) if text[i].isdigit() else ctx.digits[text[i]] for i in run]
            for i in run:
                credit[i] = 1.0 if strong(i) else w.weak_digit
            digits: list[str] = []
            k = 0
            while k < len(tokens):
                value = tokens[k][1] if tokens[k][0] == "d" else tokens[k][0]
                nxt = tokens[k + 1][0] if k + 1 < len(tokens) else None
                nxt_digit = nxt is not None and nxt not in ("ten", "twenty")
                if value in ("ten", "twenty"):
                    if value == "ten":
                        prev_digit = k > 0 and tokens[k - 1][0] not in ("ten", "twenty")
                        tens = digits.pop() if prev_digit and digits and len(digits[-1]) == 1 else "1"
                    else:
                        tens = "2"
                    units = "0"
                    if nxt_digit:
                        units = tokens[k + 1][1] if tokens[k + 1][0] == "d" else tokens[k + 1][0]
                        k += 1
                    digits.append(tens + units)
                else:
                    digits.append(value)
                k += 1
            out.append("".join(digits))
        if not out:
            return None
        for s, e in _spans(text, ctx.carriers):
            for i in range(s, e):
                claimed[i] = True
        counted = [c or w.uncovered for i, c in enumerate(credit)
                   if c or not (claimed[i] or text[i] in INTERJECTIONS)]
        return (sum(counted) / len(counted), 0, "digits", {"digits": "".join(out)}, "")

    # ------------------------------------------------------------------ decision

    def _decide(self, ctx: Context, candidates) -> Understanding:
        if not candidates:
            return Understanding(None, 0.0, {}, "reject", "")
        order = {name: i for i, name in enumerate(ctx.intents)}
        candidates.sort(key=lambda c: (-round(c[0], 6), -c[1], order.get(c[2], 99)))
        score, _, intent, slots, note = candidates[0]
        score = round(min(score, 1.0), 3)
        band = self.thresholds.band(score)
        if band == "reject":
            return Understanding(None, score, {}, "reject", note or "low score")
        rival = next((c for c in candidates[1:] if c[2] != intent), None)
        if band == "accept" and rival and rival[0] >= score - self.thresholds.margin:
            band, note = "confirm", note or f"ambiguous with {rival[2]}"
        return Understanding(intent, score, slots, band, note)


_DEFAULT: dict[str, Matcher] = {}


def matcher(grammars: str | Path | None = None) -> Matcher:
    """The shared matcher for a grammar directory (default thresholds), built once."""
    key = str(Path(grammars).resolve()) if grammars else ""
    m = _DEFAULT.get(key)
    if m is None:
        m = _DEFAULT[key] = Matcher(grammars)
    return m


def understand(context: str, text: str, lang: str = "cmn", *,
               grammars: str | Path | None = None,
               thresholds: Thresholds | None = None) -> Understanding:
    """Understand ``text`` (recognised speech) as an intent of ``context``.

    ``grammars`` is a grammar directory (default: the project's grammars/); ``thresholds``
    overrides the score bands for this call.
    """
    m = matcher(grammars)
    if thresholds is not None and thresholds != m.thresholds:
        m = Matcher(m.grammars, thresholds, m.weights)
    return m.understand(context, text, lang)
