"""The stream process dies mid-call, for real: `python -m ivr serve` (gunicorn) and `python -m ivr
streams` run as separate processes on one SQLite database, as in production; Twilio's side is
played over HTTP and a real WebSocket on loopback.  When the stream process is SIGKILLed while
the ID question plays, the socket drops, Twilio requests the <Connect action> URL, and the call
goes on by webhooks from its stored state: an apology and the same question, never silence.
The web service does not notice, and a stream process started again serves new calls."""
from __future__ import annotations

import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

from ivr.streams import twilio_protocol as wire
from ivr.streams.upgrade import stream_url
from nginx_server import free_port
from serve_process import ROOT, ServeProcess

PUBLIC = "https://hotline.example.test"
STREAM_URL = stream_url(PUBLIC)  # wss://hotline.example.test/twilio/stream: what Twilio signs
TOKEN = "stream-death-test-token-0123456789"
ACCOUNT = "AC" + "5" * 32
HOTLINE_NUMBER = "+862160000000"
CALLER, ID_KEYS = "+8613800000002", "567*"  # demo matters: ID ends 567X, X keyed as *, # ends it
OTHER_CALLER = "+8613900000003"  # registered, no birth year: not offered the senior line
APOLOGY = "对不起，线路出了点问题"
ID_QUESTION = "身份证"


class StreamsProcess:
    """`python -m ivr streams` in its own process group, so that a kill reaches all of it."""

    def __init__(self, port: int, env: dict[str, str], log: Path) -> None:
        self.port, self.env, self.log_path = port, env, log
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"ws://127.0.0.1:{self.port}/twilio/stream"

    def start(self, timeout: float = 20) -> "StreamsProcess":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ivr", "streams", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=ROOT, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the stream server did not listen:\n{self.output()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL to the whole group: no close frames, no clean-up, as when the process dies."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


@pytest.fixture()
def hotline() -> Iterator[dict]:
    """Both processes on a fresh var dir (SQLite, prompt cache); all of them stopped afterwards."""
    var = Path(tempfile.mkdtemp(prefix="stream-death-"))
    env = {"HOTLINE_VAR_DIR": str(var), "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC,
           "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_NUMBER": HOTLINE_NUMBER, "ID_HASH_SECRET": "stream-death-secret",
           "CALL_AUDIO": "stream", "LOG_LEVEL": "WARNING"}
    web_port, stream_port = free_port(), free_port()
    web = ServeProcess(["-m", "ivr", "serve", "--port", str(web_port), "--workers", "1"], web_port, env)
    streams: list[StreamsProcess] = []

    def start_streams() -> StreamsProcess:
        started = StreamsProcess(stream_port, env, var / f"streams-{len(streams)}.log")
        streams.append(started)
        return started.start()

    try:
        web.start(timeout=30)  # the web service loads the demo matters into the empty database
        yield {"web": web, "start_streams": start_streams}
    finally:
        for process in streams:
            process.kill()
        web.stop()
        web.log.close()
        shutil.rmtree(var, ignore_errors=True)


def signed_post(web: ServeProcess, url: str, call_sid: str, caller: str, **params: str) -> str:
    """A webhook as Twilio sends it: to the public URL `url`, signed over it; here to loopback."""
    form = {"CallSid": call_sid, "AccountSid": ACCOUNT, "From": caller, "To": HOTLINE_NUMBER,
            "CallStatus": "in-progress", **params}
    signature = RequestValidator(TOKEN).compute_signature(url, form)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC, url
    local = web.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
    response = requests.post(local, data=form, headers={"X-Twilio-Signature": signature}, timeout=15)
    assert response.status_code == 200, response.text
    return response.text


def text_of(web: ServeProcess, path: str) -> str:
    """A prompt's text twin, from the web service (a mark name or a <Play> URL's path)."""
    response = requests.get(web.base_url + path, timeout=10)
    assert response.status_code == 200, path
    return response.text


def played_texts(web: ServeProcess, twiml: str) -> str:
    urls = re.findall(r"<Play>([^<]+)\.wav</Play>", twiml)
    return " ".join(text_of(web, urlsplit(html.unescape(url)).path + ".txt") for url in urls)


class TwilioSide:
    """Twilio's end of one stream: plays (collects) what it is sent, echoes the marks of audio
    a `clear` dropped, sends keys.  Marks of audio still "playing" are held, not echoed."""

    def __init__(self, ws: ClientConnection, call_sid: str, parameters: dict[str, str]) -> None:
        self.ws, self.sid, self.sequence = ws, "MZ" + call_sid[2:], 1
        self.media_bytes = 0
        ws.send(wire.connected_message())
        ws.send(wire.start_message(self.sid, call_sid, ACCOUNT, parameters))
        self.after_clear = False

    def _next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def receive(self, timeout: float) -> wire.Outbound:
        message = wire.parse_outbound(self.ws.recv(timeout=timeout))
        if isinstance(message, wire.ClearAudio):
            self.after_clear = True
        elif isinstance(message, wire.PlayMedia):
            self.media_bytes += len(message.audio)
            self.after_clear = False
        elif isinstance(message, wire.PlayMark) and self.after_clear:
            self.ws.send(wire.mark_echo(self.sid, self._next_sequence(), message.name))  # dropped: "played"
        return message

    def until_media(self, seconds: float) -> None:
        """Until audio plays (a prompt not in the cache yet is rendered first)."""
        deadline = time.monotonic() + seconds
        while not isinstance(self.receive(max(deadline - time.monotonic(), 0.01)), wire.PlayMedia):
            pass

    def keys(self, digits: str) -> None:
        for digit in digits:
            self.ws.send(wire.dtmf_message(self.sid, self._next_sequence(), digit))

    def press(self, digit: str, seconds: float = 10) -> None:
        """A key while the prompt plays: the service clears it (barge-in); then the next turn's audio."""
        self.keys(digit)
        deadline = time.monotonic() + seconds
        while not isinstance(self.receive(max(deadline - time.monotonic(), 0.01)), wire.ClearAudio):
            pass
        self.until_media(max(deadline - time.monotonic(), 0.01))

    def until_mark_saying(self, web: ServeProcess, words: str, seconds: float) -> str:
        """Until a prompt whose text twin says `words` has been sent in full (its mark came);
        the mark is not echoed: Twilio is still playing the audio sent ahead."""
        deadline = time.monotonic() + seconds
        while True:
            message = self.receive(max(deadline - time.monotonic(), 0.01))
            if isinstance(message, wire.PlayMark) and message.name.startswith("/prompts/"):
                text = text_of(web, message.name)
                if words in text:
                    return text


def place_call(web: ServeProcess, call_sid: str, caller: str) -> tuple[dict[str, str], str]:
    """POST /twilio/voice: the <Connect><Stream> TwiML; its <Parameter>s and the Connect action."""
    twiml = signed_post(web, PUBLIC + "/twilio/voice", call_sid, caller)
    assert f'<Stream url="{STREAM_URL}">' in twiml, twiml
    action = re.search(r'<Connect action="([^"]+)"', twiml)
    assert action is not None, twiml
    return dict(re.findall(r'<Parameter name="([a-z]+)" value="([^"]*)"', twiml)), html.unescape(action.group(1))


def open_stream(address: str) -> ClientConnection:
    signature = RequestValidator(TOKEN).compute_signature(STREAM_URL, {})
    return connect(address, additional_headers={"X-Twilio-Signature": signature}, open_timeout=10, max_size=None)


def to_the_id_question(twilio: TwilioSide) -> None:
    """A new caller: 1 for Mandarin during the greeting, 1 for the status during the menu; the
    ID question (a registered caller) starts playing."""
    twilio.until_media(20)
    twilio.press("1", 20)  # choose_language → main menu
    twilio.press("1", 20)  # main menu → status → the ID question


def test_a_killed_stream_process_leaves_the_call_to_the_webhooks_with_an_apology_and_the_same_question(
        hotline) -> None:
    began = time.monotonic()
    web: ServeProcess = hotline["web"]
    streams: StreamsProcess = hotline["start_streams"]()
    call_sid = "CA" + "d1e" * 10 + "ad"
    parameters, action = place_call(web, call_sid, CALLER)
    assert urlsplit(action).path == "/twilio/stream/ended"

    with open_stream(streams.address) as ws:
        twilio = TwilioSide(ws, call_sid, parameters)
        to_the_id_question(twilio)
        question = twilio.until_mark_saying(web, ID_QUESTION, 30)  # all of it sent; it still plays
        assert "身份证号码最后四位" in question
        assert twilio.media_bytes > 8000  # real prompt audio came, as μ-law

        streams.kill()  # mid-question: its audio is still "playing" at Twilio
        assert streams.process.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 10
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() < deadline:
                twilio.receive(max(deadline - time.monotonic(), 0.01))  # what was in flight, then the end
        assert isinstance(closed.value, ConnectionClosedError) and closed.value.rcvd is None  # dropped, no close frame

    # The web service did not notice.
    assert web.process.poll() is None
    health = requests.get(web.base_url + "/healthz", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok"

    # Twilio: the stream is over, so it requests the <Connect action> and follows its TwiML.
    resumed = signed_post(web, action, call_sid, CALLER)
    assert "<Gather" in resumed and "<Connect" not in resumed, resumed  # webhook mode from here on
    said = played_texts(web, resumed)
    assert said.startswith(APOLOGY) and ID_QUESTION in said, said  # an apology, then the same question
    gather = re.search(r"<Gather ([^>]*)>", resumed)
    assert gather is not None
    gather_action = html.unescape(re.search(r'action="([^"]+)"', gather.group(1)).group(1))
    assert 'finishOnKey="#"' in gather.group(0), gather.group(0)

    # The caller keys the ID on the Gather (567X: 5 6 7 *, then #): the status is read out.
    status = signed_post(web, gather_action, call_sid, CALLER, Digits=ID_KEYS, FinishedOnKey="#")
    assert "第一件" in played_texts(web, status), status

    # A stream process started again (same port, as a supervisor would) serves a new call.
    again = hotline["start_streams"]()
    other_sid = "CA" + "0a7" * 10 + "11"
    other_parameters, _ = place_call(web, other_sid, OTHER_CALLER)
    with open_stream(again.address) as ws:
        twilio = TwilioSide(ws, other_sid, other_parameters)
        to_the_id_question(twilio)
        twilio.keys("2")  # the ID (2468) over the question: a barge-in; its dropped mark comes back
        assert ID_QUESTION in twilio.until_mark_saying(web, ID_QUESTION, 10)
        twilio.keys("468#")
        assert "核对好了" in twilio.until_mark_saying(web, "核对好了", 20)  # checked against the database
    assert again.process.poll() is None
    assert requests.get(web.base_url + "/healthz", timeout=5).status_code == 200
    assert time.monotonic() - began < 60
