"""What the prompt studio lists: every prompt by flow file and step, per language, with what a
caller of that language hears today (a recording, synthesised speech, or the Mandarin fallback).

Pure data from the flow and the recording index; the console page only shows it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ivr.flow.checker import placeholders
from ivr.flow.loader import Flow
from ivr.prompts.audio import WavError, read_telephone_wav
from ivr.prompts.pieces import Piece, pieces_for
from ivr.prompts.recorded import RecordingIndex
from ivr.prompts.render import PromptRenderer

LANGUAGE_NAMES = {"cmn": "普通话", "wuu": "上海话"}
COMPOSED = "通话中组合的话"  # group of prompts the call's actions put together (status, slots, bookings)

RECORDED, TTS, FALLBACK = "recorded", "tts", "fallback"


@dataclass(frozen=True)
class Entry:
    prompt_id: str
    flow_file: str
    steps: tuple[str, ...]
    text: str  # in the page's language ("" when it has none yet)
    mandarin: str
    hears: str  # RECORDED | TTS | FALLBACK
    recording_id: int | None
    seconds: float | None  # of what the caller hears, when known
    dynamic: bool  # has {placeholders}: said with pieces
    reviewed: bool
    kind: str = "prompt"  # or a piece's kind: "segment", "word"


@dataclass(frozen=True)
class Coverage:
    language: str
    recorded: int
    total: int

    @property
    def percent(self) -> int:
        return round(100 * self.recorded / self.total) if self.total else 0


def spoken(prompt_id: str) -> bool:
    """Text messages are prompts too, but nobody records them."""
    return not prompt_id.startswith("sms_")


def base_id(prompt_id: str) -> str:
    """`confirm_booking@speech` is a wording of `confirm_booking`: it belongs to the same step."""
    return prompt_id.split("@", 1)[0]


def prompt_places(flow: Flow) -> dict[str, tuple[str, list[str]]]:
    """prompt id → (flow file, steps that say it); prompts no step names are the composed ones."""
    places: dict[str, tuple[str, list[str]]] = {}
    for step_id, step in flow.steps.items():
        ids = step.say + step.prompt + step.reprompt + step.example
        for handler in (step.noinput or []) + (step.nomatch or []):
            ids += handler.prompt
        for prompt_id in ids:
            file, steps = places.setdefault(prompt_id, (flow.step_files.get(step_id, "?"), []))
            if step_id not in steps:
                steps.append(step_id)
    for handler in flow.defaults.noinput + flow.defaults.nomatch:
        for prompt_id in handler.prompt:
            places.setdefault(prompt_id, ("main.yaml", ["(所有问题)"]))
    return places


def _seconds(path: Path) -> float | None:
    try:
        _tag, _channels, rate, frames = read_telephone_wav(path)
    except (OSError, WavError):
        return None
    return frames / rate


def entries(flow: Flow, language: str, recordings: RecordingIndex, renderer: PromptRenderer | None) -> list[Entry]:
    cmn = flow.prompts["cmn"]
    texts = flow.prompts.get(language, {})
    reviewed = set(flow.reviewed.get(language, [])) if language != "cmn" else set(cmn)
    recorded = recordings.recorded(language)
    places = prompt_places(flow)
    out = []
    for prompt_id, mandarin in cmn.items():
        if not spoken(prompt_id):
            continue
        file, steps = places.get(prompt_id) or places.get(base_id(prompt_id)) or (COMPOSED, [])
        use = recorded.get(prompt_id)
        dynamic = bool(placeholders(mandarin))
        if use is not None:
            hears, seconds = RECORDED, use.seconds
        else:
            hears = TTS if language == "cmn" else FALLBACK
            seconds = None
            if renderer is not None and not dynamic:
                seconds = _seconds(renderer.wav_path(renderer.key_for(mandarin)))
        out.append(Entry(prompt_id, file, tuple(steps), texts.get(prompt_id, ""), mandarin, hears,
                         use.recording_id if use else None, seconds, dynamic, prompt_id in reviewed))
    out.sort(key=lambda e: (e.flow_file == COMPOSED, e.flow_file, e.steps[:1], e.prompt_id))
    return out


def coverage(flow: Flow, recordings: RecordingIndex) -> list[Coverage]:
    """Per language: how many spoken prompts callers hear recorded."""
    ids = [pid for pid in flow.prompts["cmn"] if spoken(pid)]
    return [Coverage(lang, sum(1 for pid in ids if pid in recordings.recorded(lang)), len(ids))
            for lang in flow.prompts]


def pieces(flow: Flow, language: str) -> list[Piece]:
    """The pieces dynamic prompts are said with (segments between values, number and day words)."""
    return [p for p in pieces_for(flow.prompts, language, flow.piece_words.get(language, {})) if p.kind != "prompt"]


def piece_entries(flow: Flow, language: str, recordings: RecordingIndex) -> list[Entry]:
    recorded = recordings.recorded(language)
    out = []
    for piece in pieces(flow, language):
        use = recorded.get(piece.piece_id)
        out.append(Entry(piece.piece_id, COMPOSED, (), piece.text, "", RECORDED if use else FALLBACK,
                         use.recording_id if use else None, use.seconds if use else None, False, False, piece.kind))
    return out


def piece_coverage(flow: Flow, language: str, recordings: RecordingIndex) -> Coverage:
    all_pieces = pieces(flow, language)
    recorded = recordings.recorded(language)
    return Coverage(language, sum(1 for p in all_pieces if p.piece_id in recorded), len(all_pieces))


def pieces_of(flow: Flow, language: str, entry: Entry, recordings: RecordingIndex) -> list[Entry]:
    """For a prompt with values: the pieces of its own words (segments); for a piece: nothing."""
    if not entry.dynamic:
        return []
    prefix = entry.prompt_id + "."
    return [e for e in piece_entries(flow, language, recordings) if e.prompt_id.startswith(prefix)]
