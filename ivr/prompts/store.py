"""Chooses what the caller hears for a prompt: a recording, cached TTS audio, or <Say>.

Webhooks only look things up here; audio is rendered ahead (`prompts build`) or on the first
fetch of its URL, never while a webhook waits.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ivr.engine.actions import Pause, Prompt, Speech
from ivr.prompts.audio import silence_wav
from ivr.prompts.recorded import RecordingIndex
from ivr.prompts.render import PromptRenderer

log = logging.getLogger(__name__)
SAY_LANGUAGE, SAY_VOICE = "cmn-CN", "Polly.Zhiyu"
SLOW_FACTOR = 0.8


@dataclass(frozen=True)
class Audible:
    """One thing to play: a URL path under the service (kind "play") or words for <Say>."""

    kind: str  # "play" | "say"
    path: str
    text: str


class PromptStore:
    def __init__(self, renderer: PromptRenderer | None, cache_dir: Path, prompts: dict[str, dict[str, str]],
                 recordings: RecordingIndex | None = None) -> None:
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
        text = prompt.text if prompt.language == "cmn" else prompt.fallback_text
        if self.renderer is None:
            return Audible("say", "", text)
        renderer = self.slow_renderer if prompt.slow and self.slow_renderer else self.renderer
        key = renderer.key_for(text)
        if key not in self._twins:
            renderer.write_text_twin(text)
            self._twins.add(key)
        return Audible("play", f"/prompts/tts/{key}.wav", text)

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
