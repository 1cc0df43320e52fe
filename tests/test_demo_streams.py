"""`CALL_AUDIO=stream ./hotline demo`: the demo starts its Media Streams server beside gunicorn,
and the terminal phone's simulator reaches it as Twilio would, at real pace: the signed upgrade,
a key that cuts the greeting short, the hand-off to the queue through `<Connect action>`."""
from __future__ import annotations

import socket
import time

import pytest

from nginx_server import free_port
from serve_process import ServeProcess
from ivr.config import load_settings
from ivr.simulator.stream_link import LoopbackStreams
from ivr.simulator.transport import HttpTransport
from ivr.simulator.twilio_sim import TwilioSimulator


def _two_free_ports() -> int:
    """A port p with p + 1 free too (the demo's stream server takes the next port)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as first, socket.socket() as second:
            try:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two free ports in a row")


def _listening(port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def test_the_demo_on_streams_takes_a_call_at_real_pace(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _two_free_ports()
    env = {"HOTLINE_VAR_DIR": str(tmp_path / "var"), "CALL_AUDIO": "stream", "OPERATOR_HOURS": "00:00-23:59"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with ServeProcess(["-m", "ivr", "serve", "--demo", "--port", str(port)], port, env) as demo:
        assert _listening(port + 1, 30), demo.output()
        settings = load_settings(demo=True)  # the demo's token, as the terminal phone reads it
        sim = TwilioSimulator(HttpTransport(), demo.base_url, settings.twilio_auth_token,
                              account_sid=settings.twilio_account_sid,
                              stream_link=LoopbackStreams(f"ws://127.0.0.1:{port + 1}"))
        call = sim.place_call("+8613800000002", settings.twilio_number)
        assert call.stream is not None and not call.stream.refused
        deadline = time.monotonic() + 60  # a busy machine renders the first prompts slowly
        while "上海市民办事热线" not in " ".join(call.texts) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "上海市民办事热线" in " ".join(call.texts)  # the greeting, once its audio has played
        call.press("0")  # at once, while the language question plays
        deadline = time.monotonic() + 30
        while call.stream is not None and time.monotonic() < deadline:
            time.sleep(0.2)
            call.end_stream_if_closed()  # what the terminal's watcher does
        heard = " ".join(call.texts)
        assert call.state == "queued", (call.state, heard)
        assert "正在为您转接工作人员" in heard and "下一位就是您了" in heard
        assert [r.kind for r in call.requests if r.kind in ("voice", "connect_action")] == ["voice", "connect_action"]
        call.hangup()
