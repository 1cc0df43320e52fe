"""Short-lived subprocess that renders one prompt with pyttsx3 + espeak-ng.

pyttsx3 keeps a process-global espeak handle, polls in a busy loop and can
hang forever if synthesis never signals completion; none of that may live in
a web worker. The parent (ivr.prompts.render) runs this file with a timeout
and kills it if needed. Self-contained on purpose (imports nothing from
`ivr`) so it starts fast and can run with `python -I`.

Usage:
    render_worker.py TEXT_FILE OUT_WAV VOICE RATE   → 16-bit PCM WAV at OUT_WAV
    render_worker.py --check VOICE                  → JSON report, exit 0 if usable
Both print one JSON line on stdout; exit status 0 means success.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import sys
import tempfile
import threading
import wave
from pathlib import Path
from typing import Any

# Language code → preferred espeak-ng voice ids, best first.
# espeak-ng 1.51 (Debian 12) has a bug in the plain "cmn" voice ("latin as
# English"): its dictionary yields pinyin, which that voice then reads as
# English ("您好" → "nin two hao three"; espeak-ng issues #1028, #1236).
# "cmn-latn-pinyin" uses the same dictionary and phonemes but reads pinyin as
# Mandarin, so it is correct on every version. Our prompts contain no Latin
# text (speakable.py spells everything out), so nothing is lost.
PREFERRED_VOICES = {
    "cmn": ["sit/cmn-latn-pinyin", "sit/cmn"],
    "zh": ["sit/cmn-latn-pinyin", "sit/cmn"],
    "yue": ["sit/yue"],
}

CHECK_TEXT = "您好"


def pick_voice(voices: list[Any], wanted: str) -> str:
    """Resolve a language code ("cmn") or an explicit id ("sit/cmn") to a voice id."""
    wanted = wanted.lower()
    ids = [v.id.lower() for v in voices]
    if wanted in ids:
        return wanted
    for vid in PREFERRED_VOICES.get(wanted, []):
        if vid in ids:
            return vid
    for v in voices:
        langs = [str(lang).lower() for lang in (v.languages or [])]
        if any(lang == wanted or lang.startswith(wanted + "-") for lang in langs):
            return v.id.lower()
    raise LookupError(f"no espeak-ng voice for {wanted!r}")


def apply_settings(voice_id: str, rate: int) -> int:
    """Apply voice, rate and volume to espeak-ng and return the rate it now uses.

    Why not engine.setProperty(): in pyttsx3 2.99 those calls only queue; runAndWait() then
    hands them to espeak-ng's own command thread (asynchronous in RETRIEVAL mode) and at once
    runs endLoop(), which calls espeak_Cancel() whenever that thread is still busy.
    Cancel drops every queued command, so when the thread had applied the driver's own
    initial rate (200 wpm) but not ours yet, the prompt came out at 200 wpm. Here the
    settings are queued directly and espeak_Synchronize() waits until the thread has
    applied them, so nothing is pending when pyttsx3 cancels.
    """
    from pyttsx3.drivers import _espeak

    _espeak.Synchronize()  # the driver's own initial settings, queued by pyttsx3.init()
    if _espeak.SetVoiceByName(voice_id.encode("utf-8")) != 0:
        raise RuntimeError(f"espeak-ng refused voice {voice_id!r}")
    for parameter, value in ((_espeak.RATE, rate), (_espeak.VOLUME, 100)):
        if _espeak.SetParameter(parameter, value, 0) != 0:
            raise RuntimeError(f"espeak-ng refused parameter {parameter}={value}")
    _espeak.Synchronize()
    # pyttsx3 binds espeak_GetParameter without its `current` argument; bind it fully.
    get_parameter = _espeak.dll.espeak_GetParameter
    get_parameter.argtypes, get_parameter.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = int(get_parameter(_espeak.RATE, 1))
    if applied != rate:
        raise RuntimeError(f"espeak-ng is at {applied} wpm after setting {rate} wpm")
    return applied


def synthesize(text: str, out_wav: Path, voice: str, rate: int) -> dict[str, Any]:
    """Render text to a PCM WAV through pyttsx3's espeak driver."""
    # pyttsx3 prints "Audio saved to ..." on stdout; keep stdout for our JSON.
    with contextlib.redirect_stdout(sys.stderr):
        import pyttsx3

        engine = pyttsx3.init("espeak")
        voice_id = pick_voice(engine.getProperty("voices"), voice)
        # Note: the driver's getProperty("voice") keeps reporting the default
        # voice after this (espeak_GetCurrentVoice quirk); synthesis does use it.
        wpm = apply_settings(voice_id, int(rate))
        # pyttsx3 2.99's espeak driver can leave runAndWait() before espeak's own thread has
        # finished a long sentence; the file is written when the utterance finishes, so wait
        # for that notification rather than for the loop.
        finished = threading.Event()
        engine.connect("finished-utterance", lambda **_: finished.set())
        engine.save_to_file(text, str(out_wav))
        engine.runAndWait()
        if not finished.wait(timeout=25):
            raise RuntimeError("espeak-ng did not finish the utterance in time")

    with wave.open(str(out_wav), "rb") as w:
        frames, framerate = w.getnframes(), w.getframerate()
    if frames == 0:
        raise RuntimeError("espeak-ng produced no audio")
    return {"voice_id": voice_id, "frames": frames, "rate": framerate, "wpm": wpm}


def main(argv: list[str]) -> int:
    try:
        if len(argv) == 2 and argv[0] == "--check":
            with tempfile.TemporaryDirectory() as tmp:
                result = synthesize(CHECK_TEXT, Path(tmp) / "check.wav", argv[1], 175)
        elif len(argv) == 4:
            text_file, out_wav, voice, rate = argv
            text = Path(text_file).read_text(encoding="utf-8")
            result = synthesize(text, Path(out_wav), voice, int(rate))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as exc:  # report, never hang: the parent decides what to do
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps({"ok": True, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
