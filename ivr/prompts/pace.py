"""Does a rendered prompt last as long as its words at the requested rate should take?

The cache key assumes the configured rate, so a render at another rate (pyttsx3 once let
espeak-ng fall back to 200 wpm, see docs/reliability.md "Prompt renders at the wrong speed")
would be served to every later caller. The renderer checks each render against these bounds
before caching it.

The model was fitted to real renders of all 117 Mandarin prompts at 80-450 wpm (espeak-ng
1.51, voice sit/cmn-latn-pinyin): at 130 wpm espeak-ng spends about 0.365 s per spoken
character, 0.08 s per punctuation pause and 0.3 s of end pause; other rates scale that by
(130/rate)**1.15. Tones and syllables make single prompts deviate from it by -19 %..+31 %,
so the accepted band is wider than that and no wider.
"""

from __future__ import annotations

import unicodedata

__all__ = ["RATE_LIMIT_LINEAR", "bounds", "expected_seconds", "fits", "pauses", "spoken_units"]

SECONDS_PER_UNIT = 0.365  # at the reference rate
SECONDS_PER_PAUSE = 0.08
SECONDS_END = 0.3
REFERENCE_WPM = 130
RATE_EXPONENT = 1.15
PAUSE_MARKS = frozenset("，。：；、？！,.:;?!")

# Accepted measured/expected ratio. Up to 260 wpm real renders fall within 0.81..1.31;
# above it espeak-ng's speed stops following the rate (350 wpm: down to 0.59, 450: up to
# 1.35), so only the upper bound keeps its meaning there.
RATE_LIMIT_LINEAR = 260
LOW, LOW_FAST, HIGH = 0.78, 0.55, 1.40


def spoken_units(text: str) -> int:
    """Characters that are spoken: letters (each Han character is one) and digits."""
    return sum(1 for c in text if unicodedata.category(c)[0] in "LN")


def pauses(text: str) -> int:
    """Punctuation marks, where espeak-ng inserts a pause."""
    return sum(1 for c in text if c in PAUSE_MARKS)


def expected_seconds(text: str, rate_wpm: int) -> float:
    """Modelled length of espeak-ng's rendering of text at rate_wpm."""
    at_reference = (SECONDS_PER_UNIT * spoken_units(text) + SECONDS_PER_PAUSE * pauses(text)
                    + SECONDS_END)
    return at_reference * (REFERENCE_WPM / rate_wpm) ** RATE_EXPONENT


def bounds(text: str, rate_wpm: int) -> tuple[float, float]:
    """Shortest and longest plausible duration in seconds."""
    expected = expected_seconds(text, rate_wpm)
    low = LOW if rate_wpm <= RATE_LIMIT_LINEAR else LOW_FAST
    return expected * low, expected * HIGH


def fits(text: str, rate_wpm: int, seconds: float) -> bool:
    """Whether a render of text lasting `seconds` is plausibly at rate_wpm."""
    low, high = bounds(text, rate_wpm)
    return low <= seconds <= high
