"""Text normalisation shared by grammar phrases and recognised text.

``normalize(text)`` gives two forms:

* ``full``: full-width → ASCII (NFKC), traditional → simplified, lower case, and only Chinese
  characters, ASCII letters and digits kept (punctuation, spaces and Vosk's ``[unk]`` removed).
  The digits parser works on this form, because 嗯 is a mishearing of 五 there.
* ``text``: ``full`` without interjection fillers anywhere (嗯 啊 呃 哦 …) and without
  sentence-final particles (伐 吧 呢 吗 啦 嘛 的 个 额 …, repeatedly).  Phrase matching works on
  this form, and grammar phrases are normalised the same way, so 是的 / 是个 / 是 compare equal.

Decisions (tested in tests/test_nlu.py):

* 个 is dropped only at the **end** of an utterance (Shanghainese 個/额 particle: 是个 → 是,
  勿是个 → 勿是), and not after 这 那 一 两 … where it is a measure word (这个); inside an
  utterance it is kept (个人, 一个).
* 了 is kept (算了, 错了 are answers).
* 嗯 / 恩 / 唔 are fillers when there is other content; alone they are *uncertain* (the matcher
  checks ``full`` for that), never a yes.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ivr.nlu.t2s import to_simplified

INTERJECTIONS = frozenset("嗯恩唔呣啊呃哦噢喔诶欸唉哎哈嘿咳")
FINAL_PARTICLES = frozenset("伐吧呢吗啦嘛哇哟咯个的额呀啊噢哦喽")
UNCERTAIN = frozenset("要嗯恩唔五呣")
MEASURE_BEFORE_GE = frozenset("这那哪一两几每某整半各")

_UNK = re.compile(r"\[unk\]|<unk>", re.IGNORECASE)
# Han characters, digits, Latin letters and Hangul syllables (the speech tests' Korean model).
_KEEP = re.compile(r"[^0-9a-z\u3007\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7a3]+")


@dataclass(frozen=True)
class Normalized:
    full: str
    text: str


def clean(text: str) -> str:
    """The ``full`` form: width, script, case and punctuation normalised; nothing else removed."""
    text = _UNK.sub(" ", text)
    text = unicodedata.normalize("NFKC", text)
    text = to_simplified(text).lower()
    return _KEEP.sub("", text)


def strip_fillers(full: str) -> str:
    """The ``text`` form from the ``full`` form."""
    text = "".join(c for c in full if c not in INTERJECTIONS)
    end = len(text)
    while end and text[end - 1] in FINAL_PARTICLES:
        if text[end - 1] == "个" and end > 1 and text[end - 2] in MEASURE_BEFORE_GE:
            break          # 这个 那个 一个 两个: a measure word, not the particle
        end -= 1
    return text[:end]


def normalize(text: str) -> Normalized:
    full = clean(text)
    return Normalized(full, strip_fillers(full))


def is_uncertain(norm: Normalized) -> bool:
    """要 / 嗯 / 五 (and 恩 唔 呣) alone, possibly repeated or with particles: neither yes nor no."""
    if norm.text:
        return set(norm.text) <= UNCERTAIN
    return bool(set(norm.full) & UNCERTAIN)
