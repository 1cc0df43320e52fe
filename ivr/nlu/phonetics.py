"""Toneless pinyin with Shanghai-accent folding.

Every character gets one toneless syllable (pypinyin ``Style.NORMAL``, the character's default
reading; the same function is used for grammar phrases and for what the recogniser heard, so the
two sides always agree).  Two foldings are applied on top:

* **accent** (level A, from the reference's rule 4): zh/ch/sh → z/c/s, ing → in, eng → en,
  w- → f- (f/v/w merge).  n and l stay distinct: Shanghainese speakers keep them apart.
* **coarse** (level B, the "low-cost" merges): additionally j/q/x → z/c/s (尖团), an/ang, ai/an/e,
  ao/o, uo/o, ian/ie/i, uan/an.  Coarse matches score lower than accent matches.

For exact comparisons each folded syllable is coded as one private-use character, so a phrase
is found in an utterance with ``str.find`` and the index is the character index.  For fuzzy
comparisons (rapidfuzz) the accent-folded syllables are spelled out with spaces between them.
"""
from __future__ import annotations

import threading
from functools import lru_cache

from pypinyin import Style, pinyin

_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x",
             "r", "z", "c", "s")
# y-/w- spellings rewritten to their finals, so that the coarse merges see the real final.
_GLIDE = {"yi": "i", "ya": "ia", "yo": "io", "ye": "ie", "yao": "iao", "you": "iu", "yan": "ian",
          "yin": "in", "yang": "iang", "ying": "ing", "yong": "iong", "yu": "v", "yue": "ve",
          "yuan": "van", "yun": "vn"}
_COARSE_FINALS = (("iang", "i"), ("uang", "e"), ("ang", "e"), ("ian", "i"), ("ie", "i"),
                  ("uan", "e"), ("van", "e"), ("an", "e"), ("ai", "e"), ("iao", "io"), ("ao", "o"),
                  ("uo", "o"))
_COARSE_INITIALS = {"j": "z", "q": "c", "x": "s"}


@lru_cache(maxsize=None)
def syllable(char: str) -> str:
    """The toneless syllable of one character; anything that is not Chinese stands for itself."""
    if "\u3400" <= char <= "\u9fff" or char == "\u3007":
        reading = pinyin(char, style=Style.NORMAL, heteronym=False, errors="ignore")
        if reading and reading[0] and reading[0][0]:
            return reading[0][0]
    return char


@lru_cache(maxsize=None)
def accent(syl: str) -> str:
    """Level A: the merges a Shanghai accent makes (see module docstring)."""
    if not syl.isascii() or not syl.isalpha():
        return syl
    for hard, soft in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if syl.startswith(hard):
            syl = soft + syl[2:]
            break
    if syl.startswith("w"):
        syl = "f" + syl[1:] if len(syl) > 1 else syl
    if syl.endswith("ing"):
        syl = syl[:-1]
    elif syl.endswith("eng"):
        syl = syl[:-1]
    return syl


@lru_cache(maxsize=None)
def coarse(syl: str) -> str:
    """Level B: ``accent`` plus the low-cost final merges and 尖团 initials."""
    syl = accent(syl)
    if not syl.isascii() or not syl.isalpha() or len(syl) < 2:
        return syl
    initial = ""
    for ini in _INITIALS:
        if syl.startswith(ini) and len(syl) > len(ini):
            initial, final = ini, syl[len(ini):]
            break
    else:
        final = _GLIDE.get(syl, syl[1:] if syl[0] in "yw" else syl)
        if syl.endswith("ing"):
            final = "in"
    initial = _COARSE_INITIALS.get(initial, initial)
    for long, short in _COARSE_FINALS:
        if final == long:
            final = short
            break
    return initial + final


_CODES: dict[str, str] = {}
_CODES_LOCK = threading.Lock()


def _code(syl: str) -> str:
    code = _CODES.get(syl)
    if code is None:
        with _CODES_LOCK:                       # web workers may run threads
            code = _CODES.get(syl)
            if code is None:
                code = _CODES[syl] = chr(0xF0000 + len(_CODES))   # supplementary private use
    return code


@lru_cache(maxsize=4096)
def encode(text: str) -> tuple[tuple[str, ...], str, str, str, tuple[int, ...]]:
    """(syllables, accent code, coarse code, accent spelling, spelling start offsets) of ``text``.

    The two codes have exactly one character per character of ``text``.  The spelling is the
    accent-folded syllables joined by spaces; ``starts[i]`` is where syllable ``i`` begins in it.
    """
    syls = tuple(syllable(c) for c in text)
    a = [accent(s) for s in syls]
    code_a = "".join(_code("A" + s) for s in a)
    code_b = "".join(_code("B" + coarse(s)) for s in syls)
    starts = []
    pos = 0
    for s in a:
        starts.append(pos)
        pos += len(s) + 1
    return syls, code_a, code_b, " ".join(a), tuple(starts)
