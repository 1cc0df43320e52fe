"""The production server (`python -m ivr serve`: gunicorn, two workers) answers a real call."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from ivr.simulator.transport import HttpTransport
from ivr.simulator.twilio_sim import TwilioSimulator

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_a_call_over_http(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HOTLINE_VAR_DIR=str(tmp_path), TWILIO_AUTH_TOKEN="serve-test-token",
               PUBLIC_BASE_URL=base)
    server = subprocess.Popen([sys.executable, "-m", "ivr", "serve", "--port", str(port), "--workers", "2"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, server.stdout.read().decode()
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.2)
        sim = TwilioSimulator(HttpTransport(), base, "serve-test-token")
        call = sim.place_call("+8613800000002", "+862160000000")
        assert "说普通话，请按1" in " ".join(call.texts)
        call.press("1")
        call.press("1")
        call.press("567*#")
        assert "第一件，公积金。要补材料。" in " ".join(call.heard_since_last_input())
        call.hangup()
        forged = requests.post(base + "/twilio/voice", data={"CallSid": "CA1"}, timeout=5)
        assert forged.status_code == 403
    finally:
        server.terminate()
        server.wait(20)


def test_the_stream_process_keeps_one_batch_recogniser_unless_told(tmp_path: Path) -> None:
    from ivr.cli import streams_settings
    from ivr.config import load_settings
    env = {"TWILIO_AUTH_TOKEN": "t", "HOTLINE_VAR_DIR": str(tmp_path)}
    assert streams_settings(load_settings(env)).recognition_workers == 1  # not one per core
    assert streams_settings(load_settings({**env, "RECOGNITION_WORKERS": "3"})).recognition_workers == 3
