"""Offline Mandarin TTS for prompts, with a content-addressed disk cache.

Prompts are rendered with pyttsx3 + espeak-ng (no network, no per-call cost)
at a slowed rate for older listeners, converted to 8 kHz μ-law, and cached as
``{key}.wav`` next to a ``{key}.txt`` twin holding the text. The webhook hot
path only writes the twin (cheap) and serves audio once it exists; rendering
happens in a short-lived subprocess so a wedged TTS engine can never block a
web worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import pace
from .audio import atomic_write_bytes, read_telephone_wav, to_telephone_wav

__all__ = ["FORMAT_VERSION", "PromptRenderer", "RenderError"]

# Bump when the audio pipeline changes (worker, filter, encoding) so old
# cache entries are no longer used.
FORMAT_VERSION = "2"

_WORKER = Path(__file__).with_name("render_worker.py")
_KEY_CHARS = 24
log = logging.getLogger(__name__)

# available() answers, shared by all renderers in the process: (python, voice) → bool.
_AVAILABLE: dict[tuple[str, str], bool] = {}
_AVAILABLE_LOCK = threading.Lock()


class RenderError(RuntimeError):
    """Rendering failed or timed out; callers fall back to Twilio <Say>."""


class PromptRenderer:
    """Render prompt text to cached telephone WAVs."""

    def __init__(
        self,
        cache_dir: Path,
        voice: str = "cmn",
        rate_wpm: int = 130,
        *,
        timeout_s: float = 30.0,
        python: str | None = None,
        tries: int = 3,
    ) -> None:
        if not 80 <= rate_wpm <= 450:  # espeak-ng's accepted range
            raise ValueError(f"rate_wpm must be 80..450, got {rate_wpm}")
        self.cache_dir = Path(cache_dir)
        self.voice = voice
        self.rate_wpm = rate_wpm
        self.timeout_s = timeout_s
        self.python = python or sys.executable
        self.tries = max(1, tries)  # renders at an implausible speed are tried again
        self._key_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # ------------------------------------------------------------------ keys

    def key_for(self, text: str) -> str:
        """Stable cache key: sha256 over format version, voice, rate and text."""
        material = "\x00".join([FORMAT_VERSION, self.voice, str(self.rate_wpm), text])
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:_KEY_CHARS]

    def wav_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.wav"

    def txt_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.txt"

    # ------------------------------------------------------------ text twins

    def write_text_twin(self, text: str) -> str:
        """Record the text for a key (no rendering) and return the key.

        Cheap enough for the webhook hot path: one small atomic write, skipped
        when the twin already exists.
        """
        key = self.key_for(text)
        if not self.txt_path(key).exists():
            # No fsync: after a crash the caller simply writes it again.
            atomic_write_bytes(self.txt_path(key), text.encode("utf-8"), fsync=False)
        return key

    def text_for(self, key: str) -> str | None:
        """The text recorded for a key, or None if unknown (or not a valid key)."""
        if len(key) != _KEY_CHARS or any(c not in "0123456789abcdef" for c in key):
            return None  # never let a URL-supplied key walk the filesystem
        try:
            return self.txt_path(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------- rendering

    def render(self, text: str) -> Path:
        """Return the cached WAV for text, rendering it first if missing.

        A cache hit starts no process. Concurrent renders of the same key are
        safe: threads in this process wait for each other, and across
        processes each writer replaces the file atomically.
        """
        key = self.write_text_twin(text)
        wav = self.wav_path(key)
        if wav.exists():
            return wav
        with self._lock_for(key):
            if not wav.exists():  # another thread may have finished meanwhile
                self._render_uncached(key, text, wav)
        return wav

    def render_many(self, texts: Iterable[str], workers: int = 2) -> dict[str, Path]:
        """Render many prompts ahead of time in parallel subprocesses.

        Returns {text: wav_path}. Raises the first RenderError after the
        remaining renders have finished, so partial work is still cached.
        """
        unique = list(dict.fromkeys(texts))
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {text: pool.submit(self.render, text) for text in unique}
        return {text: fut.result() for text, fut in futures.items()}

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._key_locks.setdefault(key, threading.Lock())

    def _render_uncached(self, key: str, text: str, wav: Path) -> None:
        """Render, check the speed, and only then write the cache entry.

        A render whose length does not fit its text at our rate (pace.bounds) is discarded
        and tried again, up to self.tries times; then RenderError, so nothing wrong is cached.
        """
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        low, high = pace.bounds(text, self.rate_wpm)
        for attempt in range(1, self.tries + 1):
            with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".render-") as tmp:
                pcm = Path(tmp) / "pcm.wav"
                report = self._run_worker(
                    [str(self.txt_path(key)), str(pcm), self.voice, str(self.rate_wpm)],
                    self.timeout_s,
                )
                if not report.get("ok"):
                    raise RenderError(f"render failed for {key}: {report.get('error')}")
                _tag, _channels, rate, frames = read_telephone_wav(pcm)
                seconds = frames / rate
                if low <= seconds <= high:
                    to_telephone_wav(pcm, wav)
                    return
            log.warning("prompt %s try %d/%d: %.2f s of audio, expected %.2f-%.2f s for %d "
                        "characters at %d wpm; discarded", key, attempt, self.tries, seconds,
                        low, high, pace.spoken_units(text), self.rate_wpm)
        log.error("prompt %s: no render at a plausible speed in %d tries; not cached",
                  key, self.tries)
        raise RenderError(f"render of {key} was never at {self.rate_wpm} wpm in {self.tries} tries")

    def _run_worker(self, args: list[str], timeout_s: float) -> dict:
        # -I: ignore PYTHONPATH/user site and don't put ivr/prompts on sys.path,
        # so the worker only sees the venv's packages.
        cmd = [self.python, "-I", str(_WORKER), *args]
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:  # run() has already killed it
            raise RenderError(f"TTS worker timed out after {timeout_s:g} s") from exc
        except OSError as exc:
            raise RenderError(f"cannot start TTS worker: {exc}") from exc
        lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
        try:
            report = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            report = {}
        if proc.returncode != 0 and "error" not in report:
            stderr = proc.stderr.decode("utf-8", "replace").strip()[-500:]
            report = {"ok": False, "error": f"exit {proc.returncode}: {stderr}"}
        return report

    # ---------------------------------------------------------- availability

    def available(self) -> bool:
        """Whether pyttsx3 + espeak-ng can render our voice here. Never raises.

        Checked once per (python, voice) per process by synthesizing a short
        phrase in the worker, which exercises libespeak-ng, the voice data
        and pyttsx3's WAV writing exactly as a real render would.
        """
        cache_key = (self.python, self.voice)
        with _AVAILABLE_LOCK:
            if cache_key in _AVAILABLE:
                return _AVAILABLE[cache_key]
            try:
                ok = bool(self._run_worker(["--check", self.voice], 15.0).get("ok"))
            except Exception:
                ok = False
            _AVAILABLE[cache_key] = ok
            return ok

    def voice_report(self) -> dict:
        """Worker's --check report (resolved voice id etc.), for health pages."""
        try:
            return self._run_worker(["--check", self.voice], 15.0)
        except RenderError as exc:
            return {"ok": False, "error": str(exc)}
