"""Chooses what the caller hears for a prompt: a recording, cached TTS audio, or <Say>.

Webhooks only look things up here; audio is rendered ahead (`prompts build`) or on the first
fetch of its URL, never while a webhook waits.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from ivr.engine.actions import Pause, Prompt, Speech
from ivr.prompts.audible import Audible
from ivr.prompts.audio import TELEPHONE_RATE, atomic_write_bytes, mulaw_wav_bytes, read_telephone_audio, silence_wav
from ivr.prompts.loudness import TRIM_MARGIN_SECONDS
from ivr.prompts.pieces import Composer, Piece
from ivr.prompts.recorded import RecordingIndex
from ivr.prompts.render import PromptRenderer

log = logging.getLogger(__name__)
SAY_LANGUAGE, SAY_VOICE = "cmn-CN", "Polly.Zhiyu"
SLOW_FACTOR = 0.8
# Every take keeps loudness.TRIM_MARGIN_SECONDS (0.15 s) of room at each end; joined into one
# sentence, pieces keep 0.05 s of it, so digits follow each other as a person says them.
JOIN_TRIM_SAMPLES = round((TRIM_MARGIN_SECONDS - 0.05) * TELEPHONE_RATE)


class PromptStore:
    def __init__(self, renderer: PromptRenderer | None, cache_dir: Path, prompts: dict[str, dict[str, str]],
                 recordings: RecordingIndex | None = None, pieces: dict[str, list[Piece]] | None = None) -> None:
        """`pieces`: per language, what its prompts with values can be said with once recorded
        (ivr.prompts.pieces.pieces_for)."""
        self.renderer = renderer if renderer and renderer.available() else None
        # For callers who ask to slow down (讲慢一眼): the same voice at 80 % of the rate.
        self.slow_renderer = PromptRenderer(renderer.cache_dir, voice=renderer.voice,
                                            rate_wpm=int(renderer.rate_wpm * SLOW_FACTOR)) \
            if self.renderer is not None else None
        if self.renderer is None:
            log.warning("no offline TTS engine (pyttsx3 + espeak-ng) available: prompts fall back "
                        "to Twilio <Say> with a Mandarin voice")
        self.cache_dir = cache_dir
        self.prompts = prompts
        self.recordings = recordings or RecordingIndex(cache_dir)
        self.composers = {lang: Composer(found, lang) for lang, found in (pieces or {}).items() if found}
        self.composed_dir = cache_dir / "composed"
        self._twins: set[str] = set()
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.silence_path = cache_dir / "silence-500ms.wav"
        if not self.silence_path.exists():
            silence_wav(self.silence_path, 0.5)

    def missing_recordings(self, language: str) -> list[str]:
        """Prompt ids that callers of `language` hear synthesised for lack of a recording."""
        recorded = self.recordings.recorded(language)
        return sorted(pid for pid in self.prompts["cmn"] if pid not in recorded and not pid.startswith("sms_"))

    def recording_path(self, recording_id: int) -> Path | None:
        return self.recordings.file(recording_id)

    def audible(self, item: Speech) -> Audible:
        if isinstance(item, Pause):
            return Audible("play", "/prompts/silence-500ms.wav", "")
        prompt: Prompt = item
        recording = self.recordings.lookup(prompt.language, prompt.prompt_id) \
            if prompt.static and not prompt.slow else None
        if recording is not None:
            return Audible("play", f"/prompts/rec/{prompt.language}/{recording}/{prompt.prompt_id}.wav", prompt.text)
        composed = self._composed(prompt) if not prompt.static and not prompt.slow else None
        if composed is not None:
            return composed
        text = prompt.text if prompt.language == "cmn" else prompt.fallback_text
        if self.renderer is None:
            return Audible("say", "", text)
        renderer = self.slow_renderer if prompt.slow and self.slow_renderer else self.renderer
        key = renderer.key_for(text)
        if key not in self._twins:
            renderer.write_text_twin(text)
            self._twins.add(key)
        return Audible("play", f"/prompts/tts/{key}.wav", text)

    def _composed(self, prompt: Prompt) -> Audible | None:
        """A prompt with values said with recorded pieces, joined into one file: only when every
        piece is recorded (never synthesised speech in mid-sentence)."""
        composer = self.composers.get(prompt.language)
        if composer is None:
            return None
        language = prompt.language
        composition = composer.compose(prompt.text, lambda pid: self.recordings.lookup(language, pid) is not None)
        if composition.parts is None:
            return None
        takes = [part if isinstance(part, float) else self.recordings.lookup(language, part)
                 for part in composition.parts]
        key = hashlib.sha256(json.dumps([language, takes]).encode()).hexdigest()[:24]
        wav = self.composed_dir / f"{key}.wav"
        if not wav.exists():
            audio = b""
            for take in takes:
                if isinstance(take, float):
                    audio += b"\xff" * round(take * 8000)  # μ-law silence
                    continue
                path = self.recordings.file(take) if take is not None else None
                if path is None:
                    return None
                audio += _inner(read_telephone_audio(path))
            atomic_write_bytes(self.composed_dir / f"{key}.txt", prompt.text.encode("utf-8"), fsync=False)
            atomic_write_bytes(wav, mulaw_wav_bytes(audio), fsync=False)
        return Audible("play", f"/prompts/composed/{key}.wav", prompt.text)

    def composed_path(self, key: str, ext: str) -> Path | None:
        path = self.composed_dir / f"{key}.{ext}"
        return path if len(key) == 24 and key.isalnum() and path.exists() else None

    def lookup(self, key: str) -> tuple[PromptRenderer, str] | None:
        """Which renderer made `key` (normal or slow pace) and its words; the key says it."""
        for renderer in (self.renderer, self.slow_renderer):
            words = renderer.text_for(key) if renderer else None
            if words is not None and renderer.key_for(words) == key:
                return renderer, words
        return None

    def texts_to_build(self) -> list[str]:
        """Every static prompt text, for `prompts build` (dynamic ones are cached on first use)."""
        from ivr.flow.checker import placeholders
        return sorted({t for t in self.prompts["cmn"].values() if t and not placeholders(t)})


def _inner(ulaw: bytes) -> bytes:
    """A take without most of the room the intake kept at its ends (all of it if that is all)."""
    return ulaw[JOIN_TRIM_SAMPLES:len(ulaw) - JOIN_TRIM_SAMPLES]
