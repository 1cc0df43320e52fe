"""Builds the service's ears from Settings: a Vosk recogniser pool, the matcher, or nothing.

With no model installed the service still runs: speech is off, prompts use their keys-only
wording, and start-up says so.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.config import ConfigError, Settings
from ivr.hearing.batch import Hearing

if TYPE_CHECKING:
    from ivr.hearing.endpointer import EndpointSettings
    from ivr.hearing.streaming import Encoding, StreamingSession

log = logging.getLogger(__name__)

# Live calls recognised at once per core when MAX_LIVE_CALLS is 0: a call's recogniser used
# ≈ 0.06 CPU s per audio second, and 10 calls on 2 shared cores kept every target while 20
# did not (docs/benchmarks.md).
LIVE_CALLS_PER_CORE = 5


class VoskRecogniser:
    """Recognition in a pool of processes, created lazily in each web worker (after forking)."""

    def __init__(self, model_dir: Path, workers: int, grammars_dir: Path,
                 max_live_calls: int = 0) -> None:
        from ivr.hearing.models import model_sample_rate
        self.model_dir = model_dir
        self.workers = workers or None
        self.grammars_dir = grammars_dir
        self.max_live_calls = max_live_calls or LIVE_CALLS_PER_CORE * (os.cpu_count() or 1)
        self.rate = model_sample_rate(model_dir)
        self._pool = None
        self._lock = threading.Lock()

    def _get_pool(self):
        from ivr.hearing.pool import RecognizerPool
        with self._lock:
            if self._pool is None:
                self._pool = RecognizerPool(self.model_dir, workers=self.workers, wait=False,
                                            max_streams=self.max_live_calls)
            return self._pool

    @functools.lru_cache(maxsize=64)
    def phrases(self, context: str) -> tuple[str, ...]:
        from ivr.nlu import all_phrases
        return tuple(all_phrases(context, self.grammars_dir))

    def open_session(self, encoding: "Encoding" = "mulaw",
                     sample_rate: int = 8000) -> "StreamingSession | None":
        """A live call's own recogniser process (streaming.StreamingSession), or None when
        streaming recognition is unavailable (the call then answers with keys)."""
        from ivr.hearing.streaming import StreamingSession
        channel = self._get_pool().open_stream(sample_rate)
        return StreamingSession(channel, encoding) if channel is not None else None

    def transcribe(self, audio: bytes, context: str, timeout: float) -> str | None:
        """The recognised words, "" when the words are not a phrase of the context (rejected),
        None when nothing could be recognised (no input)."""
        from ivr.hearing.audio import AudioError, decode_for_model
        from ivr.hearing.grammar import GrammarError, accept_result
        try:
            pcm, rate = decode_for_model(audio, self.rate)
        except AudioError as exc:
            log.warning("recording could not be decoded: %s", exc)
            return None
        phrases = list(self.phrases(context))
        try:
            result = self._get_pool().recognize(pcm, rate, phrases, timeout=timeout)
        except GrammarError as exc:
            log.error("grammar %s cannot be recognised with this model: %s", context, exc)
            return None
        if result is None:
            return None
        return result.text if accept_result(result.text, phrases) else ""


def build_hearing(settings: Settings) -> Hearing | None:
    mode = settings.speech
    if mode == "off":
        return None
    from ivr.nlu import understand
    understander = functools.partial(_understand, grammars=settings.grammars_dir, understand=understand)
    if mode == "transcript":
        from ivr.hearing.transcript_stream import TranscriptRecogniser
        log.warning("speech: taking the words carried by recordings and streamed audio "
                    "(simulator mode, not for real calls)")
        return Hearing(recogniser=TranscriptRecogniser(), understand=understander, transcripts_allowed=True)
    from ivr.hearing.models import find_model
    model = find_model(settings.models_dir, settings.vosk_model)
    if model is None:
        if mode == "vosk":
            raise ConfigError(f"SPEECH=vosk but no model {settings.vosk_model!r} in {settings.models_dir} "
                              "(python -m ivr models install)")
        log.warning("speech is off: no recognition model in %s (python -m ivr models install); "
                    "callers answer with keys and prompts say so", settings.models_dir)
        return None
    log.info("speech is on: Vosk model %s", model.name)
    recogniser = VoskRecogniser(model, settings.recognition_workers, settings.grammars_dir,
                                settings.max_live_calls)
    return Hearing(recogniser=recogniser, understand=understander, transcripts_allowed=settings.demo)


def endpoint_settings(settings: Settings) -> "EndpointSettings":
    """The deployment's end-of-speech settings for live calls (endpointer.EndpointSettings)."""
    from ivr.hearing.endpointer import EndpointSettings
    return EndpointSettings(short_silence_ms=settings.endpoint_short_silence_ms,
                            long_silence_ms=settings.endpoint_long_silence_ms,
                            speech_start_ms=settings.speech_start_ms, vad_mode=settings.vad_mode)


def _understand(context: str, text: str, lang: str = "cmn", *, grammars: Path, understand):
    return understand(context, text, lang, grammars=grammars)
