"""A take imported by another process is played by the running web and stream processes from
their next call on, without a restart: `python -m ivr serve`, `python -m ivr streams` and
`python -m ivr prompts import` as separate processes on one SQLite database."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from studio_audio import speech_pcm
from test_stream_process_death import (  # noqa: F401 - hotline is the fixture
    CALLER, TwilioSide, hotline, open_stream, place_call, text_of,
)
from ivr.streams import twilio_protocol as wire
from serve_process import ROOT

GREETING = "您好，这里是上海市民办事热线。"


def first_mark(twilio: TwilioSide) -> tuple[str, int]:
    """The first prompt's mark name and how much audio came before it."""
    while True:
        message = twilio.receive(20)
        if isinstance(message, wire.PlayMark) and message.name.startswith("/prompts/"):
            return message.name, twilio.media_bytes


def test_a_take_imported_while_both_processes_run_is_played_on_the_next_streamed_call(hotline, tmp_path: Path) -> None:
    web = hotline["web"]
    streams = hotline["start_streams"]()
    with open_stream(streams.address) as ws:
        parameters, _ = place_call(web, "CA" + "1" * 32, CALLER)
        name, _ = first_mark(TwilioSide(ws, "CA" + "1" * 32, parameters))
    assert name.startswith("/prompts/tts/"), name  # synthesised so far

    speech_pcm(GREETING, tmp_path / "greeting.wav")
    imported = subprocess.run([sys.executable, "-m", "ivr", "prompts", "import", str(tmp_path / "greeting.wav"),
                               "--language", "cmn", "--by", "voice talent"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, env={**os.environ, **web.env})
    assert imported.returncode == 0, imported.stderr
    assert "1 imported, 0 refused" in imported.stderr

    with open_stream(streams.address) as ws:
        parameters, _ = place_call(web, "CA" + "2" * 32, CALLER)
        name, audio_bytes = first_mark(TwilioSide(ws, "CA" + "2" * 32, parameters))
    assert name.startswith("/prompts/rec/cmn/") and name.endswith("/greeting.txt"), name
    assert text_of(web, name).startswith("您好，这里是上海市民办事热线")
    assert 2 * 8000 < audio_bytes < 6 * 8000  # the take's μ-law audio (about 4 s), not the long synthesised greeting
