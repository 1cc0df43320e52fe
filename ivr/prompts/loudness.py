"""How loud a telephone recording is, where its speech starts and ends, and how to bring it to
a set level without clipping.

Works on 8 kHz mono 16-bit PCM (what ivr.prompts.decode produces). Levels are RMS in dB
relative to a full-scale square wave (dBFS = dBov, the reference ITU-T P.56 and G.711 use):
a full-scale sine is −3 dBFS. Speech level means *active* speech level, as in ITU-T P.56
method B, but over 20 ms frames instead of a sample envelope: the mean power of the frames
that are louder than a threshold 15.9 dB under that mean itself, so pauses between words and
silence at the ends do not count, and a recording with long gaps is not judged quieter than
the same words said without them. With P.56's 0.2 s hangover this reads within a few tenths
of a dB of the standard sample-envelope meter, at a fraction of its cost in Python.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

from .audio import TELEPHONE_RATE, audioop

__all__ = [
    "FLOOR_DB", "FRAME_SECONDS", "TRIM_MARGIN_SECONDS", "Speech", "active_level_db", "analyse",
    "frame_powers", "gain_to_ulaw", "noise_floor_db", "safe_gain_db",
]

FRAME_SECONDS = 0.02
FRAME_SAMPLES = round(TELEPHONE_RATE * FRAME_SECONDS)
FULL_SCALE = 32768.0
FLOOR_DB = -100.0  # digital silence; keeps arithmetic finite
P56_MARGIN_DB = 15.9  # P.56: the activity threshold lies this far under the active level
HANGOVER_FRAMES = 10  # P.56's 0.2 s hangover, in 20 ms frames
BISECTIONS = 30  # threshold search to well under 0.01 dB
NOISE_PERCENTILE = 0.10  # noise floor: the level the quietest 10 % of frames stay under
GATE_BELOW_SPEECH_DB = 30.0  # trimming: a frame this far under the speech level is silence…
GATE_ABOVE_NOISE_DB = 8.0  # …and so is one that is not clearly above the noise floor
GATE_MIN_BELOW_SPEECH_DB = 12.0  # but never gate what is this close to the speech level
TRIM_MARGIN_SECONDS = 0.15  # kept before the first and after the last speech frame
CEILING = 31000  # output peak limit: −0.5 dBFS, below μ-law's largest code (±32124)
KNEE = CEILING / 2  # when limiting, samples up to −6.5 dBFS stay exactly as they are
MAX_LIMIT_DB = 6.0  # peaks may be squeezed this much; beyond, the gain is lowered instead


@dataclass(frozen=True)
class Speech:
    """What one analysis of a recording found."""

    level_db: float  # active speech level
    noise_db: float  # noise floor: quietest frames, before trimming
    peak: int  # largest absolute sample
    start: int  # first sample to keep (trimming with margin)
    end: int  # one past the last sample to keep

    @property
    def snr_db(self) -> float:
        return self.level_db - self.noise_db


def _db(power: float) -> float:
    return 10 * math.log10(power) if power > 0 else FLOOR_DB


def frame_powers(pcm: bytes) -> list[float]:
    """Mean power of each whole 20 ms frame, relative to full scale."""
    step = FRAME_SAMPLES * 2
    return [(audioop.rms(pcm[i:i + step], 2) / FULL_SCALE) ** 2
            for i in range(0, len(pcm) - step + 1, step)]


def _active_mean_db(powers: list[float], levels: list[float], threshold_db: float) -> float:
    """Mean power of the frames at or above threshold_db and of the HANGOVER_FRAMES after
    each (P.56 keeps counting 0.2 s after the envelope drops, so word endings count)."""
    total, active, since = 0.0, 0, HANGOVER_FRAMES + 1
    for power, level in zip(powers, levels):
        since = 0 if level >= threshold_db else since + 1
        if since <= HANGOVER_FRAMES:
            total += power
            active += 1
    return _db(total / active) if active else FLOOR_DB


def active_level_db(powers: list[float]) -> float:
    """P.56-style active level of frame powers (in time order): the level A whose activity
    threshold is A − 15.9 dB.

    A lower threshold counts more quiet frames as active, so A falls, but more slowly than
    the threshold: A − threshold grows as the threshold falls, and bisection finds where it
    reaches the margin. When it never does (a steady tone or noise), every frame is active.
    On our TTS prompts this agrees with a sample-envelope P.56 meter within −0.1…+0.2 dB.
    """
    levels = [_db(p) for p in powers]
    top = max(levels, default=FLOOR_DB)
    if top <= FLOOR_DB:
        return FLOOR_DB
    low, high = FLOOR_DB, top  # A − low ≥ margin (or all frames active); A − high < margin
    for _ in range(BISECTIONS):
        middle = (low + high) / 2
        if _active_mean_db(powers, levels, middle) - middle >= P56_MARGIN_DB:
            low = middle
        else:
            high = middle
    return _active_mean_db(powers, levels, low)


def noise_floor_db(levels: list[float]) -> float:
    """Level under which the quietest 10 % of frames lie: the pauses and the ends."""
    if not levels:
        return FLOOR_DB
    ordered = sorted(levels)
    return ordered[min(len(ordered) - 1, int(len(ordered) * NOISE_PERCENTILE))]


def _speech_frames(levels: list[float], speech_db: float, noise_db: float) -> tuple[int, int]:
    """First and last frame above the gate, which sits relative to this recording's levels."""
    gate = max(speech_db - GATE_BELOW_SPEECH_DB, noise_db + GATE_ABOVE_NOISE_DB)
    gate = min(gate, speech_db - GATE_MIN_BELOW_SPEECH_DB)
    loud = [i for i, level in enumerate(levels) if level >= gate]
    return (loud[0], loud[-1]) if loud else (0, len(levels) - 1)


def analyse(pcm: bytes) -> Speech:
    """Level, noise floor, peak and where to trim, for 8 kHz mono s16 PCM."""
    powers = frame_powers(pcm)
    levels = [_db(p) for p in powers]
    speech_db = active_level_db(powers)
    noise_db = min(noise_floor_db(levels), speech_db)
    n = len(pcm) // 2
    if not levels:
        return Speech(speech_db, noise_db, audioop.max(pcm, 2) if pcm else 0, 0, n)
    first, last = _speech_frames(levels, speech_db, noise_db)
    margin = round(TRIM_MARGIN_SECONDS * TELEPHONE_RATE)
    start = max(0, first * FRAME_SAMPLES - margin)
    end = min(n, (last + 1) * FRAME_SAMPLES + margin)
    return Speech(speech_db, noise_db, audioop.max(pcm, 2), start, end)


def _limit(x: float) -> float:
    """Soft limiter for a magnitude: identity up to KNEE, then a tanh curve towards CEILING
    (same slope at the knee, so there is no audible corner)."""
    if x <= KNEE:
        return x
    room = CEILING - KNEE
    return KNEE + room * math.tanh((x - KNEE) / room)


def safe_gain_db(wanted_db: float, peak: int) -> float:
    """The gain to apply: the wanted one unless its peaks would need more than MAX_LIMIT_DB
    of limiting (a click or a very peaky voice), then as much as that allows."""
    if peak <= 0:
        return wanted_db
    most = 20 * math.log10(CEILING * 10 ** (MAX_LIMIT_DB / 20) / peak)
    return min(wanted_db, most)


def gain_to_ulaw(pcm: bytes, gain_db: float) -> bytes:
    """Amplify s16 PCM by gain_db, soft-limit the peaks if they would pass CEILING, and
    encode it as G.711 μ-law.

    One lookup table from every 16-bit input value to its output code does the whole chain,
    so each sample is touched once, in C (bytes(map(...)) over an array).
    """
    gain = 10 ** (gain_db / 20)
    shape = _limit if audioop.max(pcm, 2) * gain > CEILING else (lambda x: x)
    linear = array("h", (max(-32767, min(32767, round(math.copysign(shape(abs(v) * gain), v))))
                         for v in range(-32768, 32768)))
    table = audioop.lin2ulaw(linear.tobytes(), 2)
    index = array("H", audioop.bias(pcm, 2, -32768))  # s16 → u16: the table's index
    return bytes(map(table.__getitem__, index))
