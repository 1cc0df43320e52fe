"""A call over Twilio Media Streams, with Twilio's side played over a real WebSocket on loopback:
the signed upgrade, `connected`/`start`, prompts arriving as μ-law media with a mark named by
each prompt's text twin, keys as `dtmf`, and the webhook going on after the stream ends."""
from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import pytest
from twilio.request_validator import RequestValidator
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from hotline_harness import BASE_URL, TOKEN
from ivr.streams import twilio_protocol as wire
from ivr.streams.server import StreamServer
from ivr.streams.upgrade import stream_url

SID = "MZ" + "1" * 32  # the stream's sid in every test here
STREAM_URL = stream_url(BASE_URL)  # wss://hotline.example.test/twilio/stream, as Twilio signs it


@contextmanager
def stream_server(hotline, lead_seconds: float) -> Iterator[str]:
    """The stream server on a free loopback port, in its own event loop; yields its address."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["server"] = loop.run_until_complete(
            StreamServer(hotline.rt, lead_seconds=lead_seconds).serve("127.0.0.1", 0))
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"ws://127.0.0.1:{holder['server'].sockets[0].getsockname()[1]}/twilio/stream"
    finally:
        async def close() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()
        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.fixture()
def streaming(make_hotline) -> Iterator:
    hotline = make_hotline(CALL_AUDIO="stream")
    hotline.remember_language("+8613800000002")
    with stream_server(hotline, lead_seconds=3600) as address:  # all audio at once: no real-time waits
        hotline.stream_address = address
        yield hotline


def post(hotline, path: str, **params: str) -> str:
    form = {"CallSid": "CA" + "7" * 32, "AccountSid": "AC" + "5" * 32, "From": "+8613800000002",
            "To": "+862160000000", "CallStatus": "in-progress", **params}
    response = hotline.app.test_client().post(
        path, data=form, headers={"X-Twilio-Signature": hotline.sim.sign(BASE_URL + path, form)})
    assert response.status_code == 200
    return response.data.decode()


class TwilioSide:
    """Twilio's end of one stream: plays (here: collects) what it is sent, echoes marks."""

    def __init__(self, ws: ClientConnection, call_sid: str, parameters: dict[str, str]) -> None:
        self.ws, self.call_sid = ws, call_sid
        self.audio = bytearray()
        self.heard: list[str] = []  # the mark names: the text twins of the prompts played
        self.closed = False
        self.sequence = 1
        ws.send(wire.connected_message())
        ws.send(wire.start_message(SID, call_sid, "AC" + "5" * 32, parameters))

    def echo(self, name: str) -> None:
        self.sequence += 1
        self.ws.send(wire.mark_echo(SID, self.sequence, name))

    def play_until_quiet(self, seconds: float = 5.0, quiet: float = 2.0) -> list[str]:
        """Receive until nothing comes for `quiet` seconds (a prompt not yet in the cache is
        rendered first, which takes a moment on a busy machine); each mark is echoed as played."""
        marks: list[str] = []
        while True:
            try:
                message = json.loads(self.ws.recv(timeout=seconds))
            except TimeoutError:
                return marks
            except Exception:  # noqa: BLE001 - the server closed the stream
                self.closed = True
                return marks
            if message["event"] == "media":
                self.audio += base64.b64decode(message["media"]["payload"])
            elif message["event"] == "mark":
                name = message["mark"]["name"]
                marks.append(name)
                self.heard.append(name)
                self.echo(name)
            seconds = quiet

    def play_until(self, hotline, words: str, seconds: float = 20.0) -> list[str]:
        """Receive (echoing marks) until the prompts heard so far include `words`."""
        marks: list[str] = []
        deadline = time.monotonic() + seconds
        while words not in texts(hotline, marks) and not self.closed and time.monotonic() < deadline:
            marks += self.play_until_quiet(seconds=0.2, quiet=0.2)
        return marks

    def press(self, digit: str) -> None:
        self.sequence += 1
        self.ws.send(wire.dtmf_message(SID, self.sequence, digit))


def open_stream(hotline, signature: str | None = None) -> ClientConnection:
    signature = RequestValidator(TOKEN).compute_signature(STREAM_URL, {}) if signature is None else signature
    return connect(hotline.stream_address, additional_headers={"X-Twilio-Signature": signature}, open_timeout=5)


def parameters_of(twiml: str) -> dict[str, str]:
    return dict(re.findall(r'<Parameter name="([a-z]+)" value="([^"]*)"', twiml))


def step_of(hotline, call_sid: str) -> str:
    from ivr.db.models import CallSession
    with hotline.rt.sessions() as db:
        return db.get(CallSession, call_sid).state["step"]


def texts(hotline, marks: list[str]) -> str:
    client = hotline.app.test_client()
    return " ".join(client.get(name).data.decode() for name in marks if name.startswith("/prompts/"))


def test_a_call_runs_on_the_stream_and_the_webhook_takes_the_hand_off(streaming) -> None:
    hotline = streaming
    twiml = post(hotline, "/twilio/voice")
    assert f'<Stream url="{STREAM_URL}">' in twiml and "/twilio/stream/ended" in twiml
    with open_stream(hotline) as ws:
        twilio = TwilioSide(ws, "CA" + "7" * 32, parameters_of(twiml))
        menu = twilio.play_until(hotline, "查办理进度，请按1")
        assert "查办理进度，请按1" in texts(hotline, menu)
        assert len(twilio.audio) > 8000 * 3  # seconds of real prompt audio, as μ-law
        twilio.press("0")
        after = twilio.play_until(hotline, "正在为您转接工作人员")
        assert "正在为您转接工作人员" in texts(hotline, after)
        deadline = time.monotonic() + 20
        while not twilio.closed and time.monotonic() < deadline:
            twilio.play_until_quiet(0.5, 0.5)
        assert twilio.closed  # the queue is not in the stream: the socket is closed for the webhook
    assert step_of(hotline, "CA" + "7" * 32) == "queue"
    ended = post(hotline, "/twilio/stream/ended")
    assert "<Enqueue" in ended and "<Play>" not in ended  # "connecting" was heard in the stream
    assert hotline.handoffs()[-1].reason == "pressed_0"


def test_a_lost_stream_goes_on_by_webhook_with_an_apology_and_the_same_question(streaming) -> None:
    hotline = streaming
    twiml = post(hotline, "/twilio/voice")
    with open_stream(hotline) as ws:
        twilio = TwilioSide(ws, "CA" + "7" * 32, parameters_of(twiml))
        twilio.play_until(hotline, "查办理进度，请按1")
        twilio.press("1")
        twilio.play_until(hotline, "身份证")  # the ID question
    # the socket is gone mid-question (the stream process died): Twilio asks the Connect action
    ended = post(hotline, "/twilio/stream/ended")
    assert "<Gather" in ended
    said = texts(hotline, [path + ".txt" for path in re.findall(r"<Play>[^<]*?(/prompts/[^<]+)\.wav</Play>", ended)])
    assert said.startswith("对不起，线路出了点问题") and "身份证" in said


def test_the_stream_server_being_down_leaves_the_call_to_the_webhooks(streaming) -> None:
    hotline = streaming
    post(hotline, "/twilio/voice")
    ended = post(hotline, "/twilio/stream/ended")  # the stream never started
    assert "<Gather" in ended and "/twilio/turn?t=1" in ended


def test_an_unsigned_or_wrongly_signed_upgrade_is_refused(streaming) -> None:
    hotline = streaming
    https_signed = RequestValidator(TOKEN).compute_signature(BASE_URL + "/twilio/stream", {})
    for signature in ("", "bm90IGEgc2lnbmF0dXJl", https_signed):
        with pytest.raises(InvalidStatus) as refused:
            open_stream(hotline, signature)
        assert refused.value.response.status_code == 403


def test_a_wrong_token_or_a_second_stream_for_one_call_is_closed_at_once(streaming) -> None:
    hotline = streaming
    twiml = post(hotline, "/twilio/voice")
    with open_stream(hotline) as ws:
        twilio = TwilioSide(ws, "CA" + "7" * 32, dict(parameters_of(twiml), token="0" * 32))
        assert twilio.play_until_quiet() == [] and twilio.closed
    with open_stream(hotline) as ws:
        assert TwilioSide(ws, "CA" + "7" * 32, parameters_of(twiml)).play_until_quiet()  # the real one
    with open_stream(hotline) as ws:  # replayed: the call has its stream already
        twilio = TwilioSide(ws, "CA" + "7" * 32, parameters_of(twiml))
        assert twilio.play_until_quiet() == [] and twilio.closed


def test_a_key_while_the_prompt_plays_clears_it_at_once_and_counts(streaming) -> None:
    hotline = streaming
    twiml = post(hotline, "/twilio/voice")
    with open_stream(hotline) as ws:
        twilio = TwilioSide(ws, "CA" + "7" * 32, parameters_of(twiml))
        pending: list[str] = []
        while not pending:  # the menu is being sent; Twilio would still be playing it: no echo
            message = json.loads(ws.recv(timeout=5))
            if message["event"] == "mark":
                pending.append(message["mark"]["name"])
        twilio.press("1")
        events = []
        while "clear" not in events:
            events.append(json.loads(ws.recv(timeout=5))["event"])
        assert events[-1] == "clear"
        for name in pending:  # after a clear Twilio echoes the marks of the dropped audio
            twilio.echo(name)
        twilio.play_until(hotline, "身份证")
    assert step_of(hotline, "CA" + "7" * 32) == "ask_id"  # the key was the answer: status, then ID


def test_audio_is_sent_only_a_little_ahead_of_playback(make_hotline) -> None:
    """Paced at LEAD seconds ahead: a barge-in has little to drop, and 50 calls send no bursts."""
    hotline = make_hotline(CALL_AUDIO="stream")
    hotline.remember_language("+8613800000002")
    twiml = post(hotline, "/twilio/voice")
    with stream_server(hotline, lead_seconds=0.5) as address:
        hotline.stream_address = address
        with open_stream(hotline) as ws:
            twilio = TwilioSide(ws, "CA" + "7" * 32, parameters_of(twiml))
            twilio.play_until_quiet(seconds=10, quiet=0.05)  # the first audio (rendered first), the lead
            first = time.monotonic()
            while time.monotonic() - first < 1.5:
                twilio.play_until_quiet(seconds=0.1, quiet=0.1)
            elapsed = time.monotonic() - first
            sent = len(twilio.audio) / 8000
            assert sent <= elapsed + 0.5 + 0.5  # what has played since the start, the lead, a frame or two
            assert sent >= elapsed  # and playback never starves


def test_a_stream_through_the_shipped_nginx(streaming) -> None:
    """The documented production path: nginx forwards the signed upgrade and the socket."""
    from nginx_server import NginxServer, free_port
    hotline = streaming
    twiml = post(hotline, "/twilio/voice")
    stream_port = int(hotline.stream_address.rsplit(":", 1)[1].split("/")[0])
    nginx = NginxServer(free_port(), stream_port=stream_port).start()
    try:
        hotline.stream_address = f"ws://127.0.0.1:{nginx.port}/twilio/stream"
        with open_stream(hotline) as ws:
            twilio = TwilioSide(ws, "CA" + "7" * 32, parameters_of(twiml))
            assert "查办理进度，请按1" in texts(hotline, twilio.play_until(hotline, "查办理进度，请按1"))
        with pytest.raises(InvalidStatus) as refused:
            open_stream(hotline, "")
        assert refused.value.response.status_code == 403
    finally:
        nginx.stop()


def test_a_spoken_answer_over_the_stream_is_heard_through_the_real_model(make_hotline, tmp_path) -> None:
    """Korean speech (espeak-ng) as μ-law media frames → VAD and the call's own Vosk process →
    the grammar → the engine: "네" (yes) at the own-number question moves the call on."""
    from speech_fixtures.helpers import korean_model_dir, speak_telephone
    from test_speech_call import korean_grammars
    from ivr.prompts.audio import read_telephone_audio
    model = korean_model_dir()
    hotline = make_hotline(CALL_AUDIO="stream", SPEECH="vosk", MODELS_DIR=str(model.parent), VOSK_MODEL=model.name,
                           GRAMMARS_DIR=str(korean_grammars(tmp_path / "grammars")), RECOGNITION_WORKERS="1")
    hotline.remember_language("+8613800000002")
    wav = tmp_path / "yes.wav"
    wav.write_bytes(speak_telephone("네", tmp_path / "audio"))
    yes = read_telephone_audio(wav)
    twiml = post(hotline, "/twilio/voice")
    with stream_server(hotline, lead_seconds=3600) as address:
        hotline.stream_address = address
        with open_stream(hotline) as ws:
            twilio = TwilioSide(ws, "CA" + "7" * 32, parameters_of(twiml))
            twilio.play_until(hotline, "预约回电，请按2")
            twilio.press("2")
            twilio.play_until(hotline, "您的号码")
            assert step_of(hotline, "CA" + "7" * 32) == "confirm_own_number"
            time.sleep(3.2)  # past the echo guard at the start of the question's audio
            silence = b"\xff" * 160
            for chunk, frame in enumerate([silence] * 10 + wire_frames(yes) + [silence] * 75, 1):  # 0.2 s, word, 1.5 s
                twilio.sequence += 1
                ws.send(wire.inbound_media(SID, twilio.sequence, chunk, (chunk - 1) * 20, frame))
            deadline = time.monotonic() + 30
            while step_of(hotline, "CA" + "7" * 32) == "confirm_own_number" and time.monotonic() < deadline:
                twilio.play_until_quiet(seconds=0.5, quiet=0.5)
    assert step_of(hotline, "CA" + "7" * 32) == "choose_slot"


def wire_frames(audio: bytes) -> list[bytes]:
    from ivr.streams.twilio_protocol import frames
    return frames(audio)
