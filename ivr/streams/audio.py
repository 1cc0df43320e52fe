"""The audio behind a prompt path ("/prompts/…wav", as the media session names it), as raw
μ-law for a media stream: the same files the webhook routes serve to Twilio."""
from __future__ import annotations

import re
from pathlib import Path

from ivr.prompts.audio import read_telephone_audio
from ivr.prompts.store import PromptStore

_COMPOSED = re.compile(r"/prompts/composed/([0-9a-f]{24})\.wav")
_TTS = re.compile(r"/prompts/tts/([0-9a-f]+)\.wav")
_REC = re.compile(r"/prompts/rec/([a-z]+)/([0-9]+)/[A-Za-z0-9_.@-]+\.wav")


def prompt_file(store: PromptStore, path: str) -> Path | None:
    """The WAV file for `path`; a synthesised prompt not yet in the cache is rendered now
    (a dynamic one, the first time its words occur: fixed ones come from `prompts build`)."""
    if path == "/prompts/silence-500ms.wav":
        return store.silence_path
    if match := _REC.fullmatch(path):
        return store.recording_path(int(match.group(2)))
    if match := _COMPOSED.fullmatch(path):
        return store.composed_path(match.group(1), "wav")
    if match := _TTS.fullmatch(path):
        found = store.lookup(match.group(1))
        if found is None:
            return None
        renderer, words = found
        return Path(renderer.render(words))
    return None


def prompt_audio(store: PromptStore, path: str) -> bytes:
    """Raw μ-law of the prompt, or b"" when there is none (the mark still follows)."""
    file = prompt_file(store, path)
    return read_telephone_audio(file) if file is not None else b""
