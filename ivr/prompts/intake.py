"""Take in a supervisor's recording of a prompt and turn it into telephone audio.

Supervisors record in the browser (Chromium's MediaRecorder: WebM/Opus) or upload what their
phone or recorder made. Whatever arrives is refused with a plain reason when it cannot be a
prompt (ivr.prompts.decode), else decoded to 8 kHz mono, trimmed of silence at both ends,
brought to the level of our TTS prompts, so a caller hears recordings and TTS equally loud,
and encoded as G.711 μ-law. What is wrong but usable (clipping, too quiet, noisy, a length
that does not fit the words) comes back as warnings to show before the prompt is saved.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from . import loudness, pace
from .audio import TELEPHONE_RATE, audioop, mulaw_wav_bytes
from .decode import CONTAINERS, UploadRefused, decode

__all__ = [
    "ALLOWED_EXTENSIONS", "MAX_SECONDS", "MAX_UPLOAD_BYTES", "TARGET_LEVEL_DB", "Intake",
    "IntakeWarning", "UploadRefused", "expected_seconds", "take_in",
]

ALLOWED_EXTENSIONS: frozenset[str] = frozenset(CONTAINERS)
ACCEPTED_TYPES = "WAV、MP3、M4A、AAC、OGG、Opus、WebM、FLAC"  # the same, for messages
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_SECONDS = 60.0
# Active speech level (dBFS re a full-scale square wave, i.e. dBov, ITU-T P.56) of every
# taken-in recording: the level of our own TTS prompts, so a recording sounds as loud as the
# TTS prompts around it. All 98 static Mandarin prompts of flows/prompts/cmn.yaml rendered by
# espeak-ng (voice cmn, 160 wpm, μ-law) measure −18.5 dBov on average (median −18.5, range
# −21.8 … −15.9, the same with loudness.active_level_db and a sample-envelope P.56 meter):
# 1.5 dB hotter than the −20 … −26 dBov of telephony practice. Should the TTS level change,
# this should follow it.
TARGET_LEVEL_DB = -18.5

# Warn from 0.3 % of the source samples in flattened peaks (decode._CLIPPED_RUN). Measured on
# espeak-ng speech: clean but normalised to full scale 0.005…0.11 % (short, dense words are
# highest), +6 dB into a hard clip 0.6…1.2 % whether WAV, MP3 or AAC, +20 dB 11…21 %.
CLIPPING_FRACTION = 0.003
QUIET_DB = -40.0  # a recording under this needs so much gain that its noise comes up too
NOISY_SNR_DB = 20.0  # speech less than this above the noise floor sounds noisy on a phone
SILENT_DB = -60.0  # refuse: nothing above this is speech
TOO_LONG, TOO_SHORT = 1.8, 0.55  # recording / expected duration outside these: warn
LEVEL_TOLERANCE_DB = 0.3  # after limiting, correct the gain once if it missed by more

# Pace of an unhurried speaker talking to older people.
SYLLABLES_PER_SECOND = 3.0
PAUSE_SECONDS = 0.3  # at a comma-like mark
SENTENCE_PAUSE_SECONDS = 0.5  # at the end of a sentence followed by more words
SENTENCE_MARKS = frozenset("。？！.?!")
_PLACEHOLDER = re.compile(r"\{\w*\}")
_ASCII_LETTERS = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class IntakeWarning:
    """Something a supervisor should hear back and probably re-record."""

    code: str  # "clipping" | "too_quiet" | "noisy" | "too_long" | "too_short" | "other_prompt"
    message: str  # Chinese, with the measured number
    prompt_id: str | None = None  # for "other_prompt": the prompt the recording fits


@dataclass(frozen=True)
class Intake:
    """A recording ready to be saved as a prompt."""

    wav: bytes  # complete 8 kHz mono G.711 μ-law WAV file
    seconds: float  # after trimming
    level_db: float  # active level after normalising (≈ TARGET_LEVEL_DB)
    source_level_db: float  # active level as recorded
    source_format: str  # "mp3", "webm/opus", …
    trimmed_seconds: float  # silence removed at the two ends
    warnings: tuple[IntakeWarning, ...]


def _ascii_word_units(word: str) -> int:
    """Syllables of a Latin-letter word: an abbreviation (ID, APP) is spelled letter by
    letter, other words take about one syllable per three letters."""
    if word.isupper() and len(word) <= 5:
        return len(word)
    return max(1, round(len(word) / 3))


def expected_seconds(text: str) -> float:
    """How long a person takes to say text at an unhurried pace, with the margins that
    trimming keeps: 3 syllables a second (each Han character and each digit one syllable),
    a pause at each punctuation mark followed by more words, placeholders ({n}) left out."""
    words = _PLACEHOLDER.sub("", text)
    latin = sum(_ascii_word_units(w) for w in _ASCII_LETTERS.findall(words))
    other = pace.spoken_units(_ASCII_LETTERS.sub("", words))
    units = latin + other
    if units == 0:
        return 0.0
    spoken = words.rstrip("".join(pace.PAUSE_MARKS) + " \t\r\n\"'”’」』）)")
    pause = sum(SENTENCE_PAUSE_SECONDS if c in SENTENCE_MARKS else PAUSE_SECONDS
                for c in spoken if c in pace.PAUSE_MARKS)
    return units / SYLLABLES_PER_SECOND + pause + 2 * loudness.TRIM_MARGIN_SECONDS


def _extension(filename: str) -> str:
    name = unicodedata.normalize("NFKC", filename).strip().rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return name.rsplit(".", 1)[1].lower() if "." in name else ""


def _check_upload(data: bytes, filename: str) -> str:
    """The upload's extension, once name and size are acceptable (before any decoding)."""
    ext = _extension(filename)
    if not ext:
        raise UploadRefused(f"文件名“{filename}”没有扩展名，看不出是什么文件。"
                            f"请上传录音文件（{ACCEPTED_TYPES}）。")
    if ext not in ALLOWED_EXTENSIONS:
        raise UploadRefused(f"不能上传 .{ext} 文件，这里只收录音文件（{ACCEPTED_TYPES}）。")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRefused(f"文件太大：{len(data) / 1048576:.1f} MB，最大 "
                            f"{MAX_UPLOAD_BYTES / 1048576:g} MB。一段提示的录音通常不到 1 MB，"
                            "请只录这一段提示，或导出为 MP3 再上传。")
    if not data:
        raise UploadRefused("文件是空的，里面没有录音。请重新录一遍。")
    return ext


def _normalise(pcm: bytes, source_db: float, peak: int) -> tuple[bytes, float]:
    """μ-law samples at TARGET_LEVEL_DB (or as close as the peak limit allows), and their
    measured level. Limiting lowers the level a little; one correction makes up for it."""
    gain = loudness.safe_gain_db(TARGET_LEVEL_DB - source_db, peak)
    ulaw = loudness.gain_to_ulaw(pcm, gain)
    level = _ulaw_level(ulaw)
    miss = TARGET_LEVEL_DB - level
    if abs(miss) > LEVEL_TOLERANCE_DB:
        better = loudness.safe_gain_db(gain + miss, peak)
        if better != gain:
            ulaw = loudness.gain_to_ulaw(pcm, better)
            level = _ulaw_level(ulaw)
    return ulaw, level


def _ulaw_level(ulaw: bytes) -> float:
    return loudness.active_level_db(loudness.frame_powers(audioop.ulaw2lin(ulaw, 2)))


def take_in(data: bytes, filename: str, *, text: str = "",
            other_texts: Mapping[str, str] | None = None) -> Intake:
    """Turn an upload into a telephone prompt, or raise UploadRefused saying why not.

    text: the prompt's words in the recording's language; other_texts: prompt id → words of
    the other prompts of that language, to say which one a recording seems to be instead.
    """
    ext = _check_upload(data, filename)
    decoded = decode(data, ext, max_seconds=MAX_SECONDS)
    speech = loudness.analyse(decoded.pcm)
    if speech.level_db < SILENT_DB:
        raise UploadRefused("录音里听不到说话声，几乎全是静音。请检查话筒有没有打开、"
                            "有没有选对话筒，再录一遍。")
    trimmed = decoded.pcm[speech.start * 2:speech.end * 2]
    ulaw, level = _normalise(trimmed, speech.level_db, audioop.max(trimmed, 2))
    seconds = len(ulaw) / TELEPHONE_RATE
    total = len(decoded.pcm) / 2 / TELEPHONE_RATE
    warnings = [*_sound_warnings(decoded.clipped_fraction, speech),
                *_length_warnings(seconds, text, other_texts or {})]
    return Intake(wav=mulaw_wav_bytes(ulaw), seconds=seconds, level_db=level,
                  source_level_db=speech.level_db, source_format=decoded.source_format,
                  trimmed_seconds=max(0.0, total - seconds), warnings=tuple(warnings))


def _sound_warnings(clipped: float, speech: loudness.Speech) -> list[IntakeWarning]:
    found = []
    if clipped >= CLIPPING_FRACTION:
        found.append(IntakeWarning("clipping", (
            f"录音有削波失真：峰值削波 {clipped * 100:.1f}% 的采样（顶到或接近最大音量）。"
            "录的时候声音太大或离话筒太近，听起来会发破。建议调小录音音量、离话筒远一点重录。")))
    if speech.level_db < QUIET_DB:
        found.append(IntakeWarning("too_quiet", (
            f"录音声音太小：语音电平 {speech.level_db:.1f} dBFS，正常约 {TARGET_LEVEL_DB:.0f} dBFS。"
            f"已放大 {TARGET_LEVEL_DB - speech.level_db:.0f} dB，底噪也一起放大了。"
            "建议离话筒近一点、调大录音音量重录。")))
    if speech.snr_db < NOISY_SNR_DB:
        found.append(IntakeWarning("noisy", (
            f"背景噪声偏大：说话声只比噪声高 {speech.snr_db:.1f} dB（信噪比），"
            f"至少要高 {NOISY_SNR_DB:.0f} dB，在电话里才听得清。建议在安静的房间、关掉风扇空调重录。")))
    return found


def _length_warnings(seconds: float, text: str,
                     other_texts: Mapping[str, str]) -> list[IntakeWarning]:
    expected = expected_seconds(text) if text else 0.0
    if expected <= 0:
        return []
    ratio = seconds / expected
    found = []
    if ratio > TOO_LONG:
        found.append(IntakeWarning("too_long", (
            f"录音比这段提示的话长很多：录音 {seconds:.1f} 秒，按字数说完约 {expected:.1f} 秒。"
            "请确认录的是这一段提示，前后没有多余的话。")))
    elif ratio < TOO_SHORT:
        found.append(IntakeWarning("too_short", (
            f"录音比这段提示的话短很多：录音 {seconds:.1f} 秒，按字数说完约 {expected:.1f} 秒。"
            "请确认整段话都录上了，没有漏掉。")))
    else:
        return found
    other = _better_fit(seconds, abs(math.log(ratio)), text, other_texts)
    if other is not None:
        pid, words, other_expected = other
        shown = words if len(words) <= 20 else words[:19] + "…"
        found.append(IntakeWarning("other_prompt", (
            f"这段录音（{seconds:.1f} 秒）的长度更像提示“{pid}”（{shown}，约 "
            f"{other_expected:.1f} 秒）。是不是选错了提示？"), prompt_id=pid))
    return found


def _better_fit(seconds: float, misfit: float, text: str,
                other_texts: Mapping[str, str]) -> tuple[str, str, float] | None:
    """The other prompt whose expected length this recording fits best, if it fits it
    within the accepted range and at least twice as closely (in log ratio) as its own."""
    best: tuple[float, str, str, float] | None = None
    for pid, words in other_texts.items():
        if not words or words == text:
            continue
        expected = expected_seconds(words)
        if expected <= 0 or not TOO_SHORT <= seconds / expected <= TOO_LONG:
            continue
        fit = abs(math.log(seconds / expected))
        if fit <= misfit / 2 and (best is None or fit < best[0]):
            best = (fit, pid, words, expected)
    return best[1:] if best else None
