"""Tests for <Record> in the Twilio simulator and its local recordings server.

Small, real Flask apps answer hand-written TwiML and validate every
X-Twilio-Signature. The action handlers fetch the recording the way an app
would from Twilio's REST API (``requests``, Basic auth, RecordingUrl + ".wav",
bounded retries) from a real :class:`RecordingServer` and echo the transcript.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable, Iterator

import pytest
import requests
from flask import Flask, request
from twilio.request_validator import RequestValidator

from ivr.simulator import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_RECORDINGS_BASE,
    RecordingServer,
    SimulatorError,
    TwilioSimulator,
    VirtualClock,
    WsgiTransport,
    run_terminal_call,
)
from ivr.simulator.twilio_sim import BEEP_SECONDS, estimate_speech_seconds
from test_simulator import scripted
from ivr.hearing.transcript_wav import read_transcript, write_transcript_wav

AUTH_TOKEN = "sim-record-auth-token"
ACCOUNT_SID = DEFAULT_ACCOUNT_SID
BASE = "https://ivr.example.org"
CALLER = "+8613800138000"
NUMBER = "+862161234567"
START = datetime(2025, 3, 3, 9, 0, 0, tzinfo=timezone.utc)
RECORDING_URL = re.compile(
    r"^(?P<base>.+)/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/Recordings/(?P<sid>RE[0-9a-f]{32})$")


def twiml(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


class RecordingApp:
    """A Flask app answering TwiML per path; validates signatures; fetches recordings like an app."""

    def __init__(self, routes: dict[str, "str | Callable[[], str]"], *, fetch_attempts: int = 5):
        self.routes = dict(routes)
        self.fetch_attempts = fetch_attempts
        self.log: list[dict] = []
        self.fetches: list[int] = []          # status codes of the app's recording fetches
        self.flask = Flask("record_test_app")
        validator = RequestValidator(AUTH_TOKEN)

        @self.flask.route("/<path:path>", methods=["GET", "POST"])
        def handle(path: str):
            route = "/" + path
            signature = request.headers.get("X-Twilio-Signature", "")
            # The URL as requested, query string byte for byte: Werkzeug's request.url
            # decodes %3A and %2F in the query, which breaks GET requests carrying URLs.
            raw_query = request.query_string.decode()
            raw_url = request.base_url + ("?" + raw_query if raw_query else "")
            valid = validator.validate(raw_url, request.form, signature)
            self.log.append({"path": route, "method": request.method, "form": request.form.to_dict(),
                             "args": request.args.to_dict(), "valid": valid,
                             "valid_with_request_url": validator.validate(request.url, request.form, signature)})
            if not valid:
                return "invalid signature", 403
            if route not in self.routes:
                return "not found", 404
            answer = self.routes[route]
            body = answer() if callable(answer) else answer
            return body, 200, {"Content-Type": "text/xml; charset=utf-8"}

    def fetch_recording(self, recording_url: str, auth=(ACCOUNT_SID, AUTH_TOKEN)) -> bytes | None:
        """RecordingUrl + '.wav' with Basic auth; retries 404 (not yet available) a bounded number of times."""
        for _ in range(self.fetch_attempts):
            response = requests.get(recording_url + ".wav", auth=auth, timeout=5)
            self.fetches.append(response.status_code)
            if response.status_code == 200:
                return response.content
            if response.status_code != 404:
                return None
        return None

    def echo(self) -> str:
        """Action handler: fetch the recording, say back what the caller said."""
        params = request.values
        data = self.fetch_recording(params["RecordingUrl"])
        if data is None:
            return twiml("<Say>录音暂时取不到。</Say>")
        text = read_transcript(data)
        return twiml(f"<Say>你说的是：{text if text is not None else '（听不清）'}</Say>")

    def requests_to(self, path: str) -> list[dict]:
        return [entry for entry in self.log if entry["path"] == path]

    def form(self, path: str, index: int = -1) -> dict:
        return self.requests_to(path)[index]["form"]


def record_app(record: str = '<Record action="/heard"/>', *, after: str = "<Say>没有听到您说话。</Say>",
               **kwargs) -> RecordingApp:
    app = RecordingApp({}, **kwargs)
    app.routes.update({
        "/twilio/voice": twiml("<Say>请在提示音后说出您的问题。</Say>", record, after),
        "/heard": app.echo,
        "/twilio/status": "",
    })
    return app


@pytest.fixture()
def server() -> Iterator[RecordingServer]:
    with RecordingServer(ACCOUNT_SID, AUTH_TOKEN) as srv:
        yield srv


def make_sim(app: RecordingApp, server: RecordingServer | None = None, **kwargs) -> TwilioSimulator:
    kwargs.setdefault("clock", VirtualClock(START))
    kwargs.setdefault("seed", 11)
    return TwilioSimulator(WsgiTransport(app.flask), BASE, AUTH_TOKEN, recording_server=server, **kwargs)


# -- speak -> action -> fetch ----------------------------------------------------------------


def test_speak_posts_the_action_and_the_app_fetches_the_recording_with_basic_auth(server):
    app = record_app()
    sim = make_sim(app, server)
    call = sim.place_call(CALLER, NUMBER)
    assert call.texts == ["请在提示音后说出您的问题。", "[beep]"]
    record = call.pending_record
    assert record is not None and call.pending_gather is None
    assert (record.action, record.method, record.timeout, record.max_length) == (BASE + "/heard", "POST", 5, 3600)
    assert record.finish_on_key == "1234567890*#" and record.play_beep and record.trim == "trim-silence"

    before = sim.clock.elapsed
    heard = call.speak("我要查一查")
    speech = estimate_speech_seconds("我要查一查")
    assert [h.display for h in heard] == ["你说的是：我要查一查"]
    # speech plus the 5 s of silence that ended the recording, virtually
    assert call.heard[-1].at == pytest.approx(before + speech + 5 - call.started_at)

    form = app.form("/heard")
    assert app.requests_to("/heard")[0]["valid"] and app.requests_to("/heard")[0]["method"] == "POST"
    match = RECORDING_URL.match(form["RecordingUrl"])
    assert match and match["base"] == server.base_url and match["account"] == ACCOUNT_SID
    assert form["RecordingSid"] == match["sid"]
    assert form["RecordingDuration"] == str(round(speech)) and "Digits" not in form
    assert form["CallSid"] == call.call_sid and form["CallStatus"] == "in-progress"
    assert app.fetches == [200] and server.fetch_count(form["RecordingSid"]) == 1

    recording = call.recordings[0]
    assert recording.sid == form["RecordingSid"] and recording.url == form["RecordingUrl"]
    assert recording.text == "我要查一查" and recording.ended_by == "silence" and recording.posted
    assert sim.recordings[recording.sid] is recording
    assert [r.kind for r in call.requests if r.kind != "media"] == ["voice", "record_action", "status_callback"]

    wav = form["RecordingUrl"] + ".wav"
    ok = requests.get(wav, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert ok.status_code == 200 and ok.headers["Content-Type"] == "audio/x-wav"
    assert ok.content == recording.data and read_transcript(ok.content) == "我要查一查"
    assert server.fetch_count(recording.sid) == 2

    no_auth = requests.get(wav, timeout=5)
    assert no_auth.status_code == 401 and no_auth.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(wav, auth=(ACCOUNT_SID, "wrong"), timeout=5).status_code == 401
    assert requests.get(wav, auth=("AC" + "f" * 32, AUTH_TOKEN), timeout=5).status_code == 401
    assert server.fetch_count(recording.sid) == 2               # refused requests are not fetches
    for url in (form["RecordingUrl"], form["RecordingUrl"] + ".mp3",
                form["RecordingUrl"].replace(recording.sid, "RE" + "0" * 32) + ".wav"):
        assert requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).status_code == 404
    assert [(e.status, e.authorized) for e in server.log] == [
        (200, True), (200, True), (401, False), (401, False), (401, False), (404, True), (404, True), (404, True)]
    assert call.ended_by == "end_of_document"


def test_app_without_credentials_cannot_fetch(server):
    app = record_app()
    app.routes["/heard"] = lambda: twiml(
        f"<Say>{requests.get(request.form['RecordingUrl'] + '.wav', timeout=5).status_code}</Say>")
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    call.speak("你好")
    assert call.last_texts() == ["401"]


def test_recording_server_can_serve_the_bare_url_like_twilio():
    with RecordingServer(ACCOUNT_SID, AUTH_TOKEN, serve_without_extension=True) as srv:
        sid = "RE" + "a" * 32
        srv.add(sid, b"RIFF-not-really")
        response = requests.get(srv.recording_url(sid), auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
        assert response.status_code == 200 and response.content == b"RIFF-not-really"
        assert requests.post(srv.recording_url(sid), auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5).status_code == 405
    assert not srv.running
    with pytest.raises(ValueError):
        srv.add("bogus", b"")


def test_speak_with_audio_bytes_and_get_action(server):
    audio = write_transcript_wav("三号楼停水了", 3.0)
    app = record_app('<Record action="/heard?step=1" method="GET" playBeep="false"/>')
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    assert call.texts == ["请在提示音后说出您的问题。"]           # playBeep="false": no beep
    call.speak(audio=audio)
    entry = app.requests_to("/heard")[0]
    assert entry["method"] == "GET" and entry["valid"] and entry["form"] == {}
    # Pitfall for apps: with method="GET" the RecordingUrl sits in the query string
    # percent-encoded; Flask's request.url decodes it, so validating request.url fails.
    assert not entry["valid_with_request_url"]
    assert entry["args"]["step"] == "1" and entry["args"]["RecordingDuration"] == "3"
    assert call.recordings[0].data == audio and call.last_texts() == ["你说的是：三号楼停水了"]


def test_without_a_recording_server_the_bytes_stay_in_memory():
    app = record_app('<Record action="/noted"/>')
    app.routes["/noted"] = lambda: twiml(f"<Say>{request.form['RecordingUrl']}</Say>")
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    call.speak("明天几点开门", seconds=2.2)
    url = call.last_texts()[0]
    assert url.startswith(DEFAULT_RECORDINGS_BASE + "/2010-04-01/Accounts/" + ACCOUNT_SID + "/Recordings/RE")
    assert app.form("/noted")["RecordingDuration"] == "2"
    assert read_transcript(call.recordings[0].data) == "明天几点开门"


def test_a_recording_server_of_another_account_or_not_started_is_refused():
    app = record_app()
    with pytest.raises(ValueError, match="account"):
        make_sim(app, RecordingServer("AC" + "1" * 32, AUTH_TOKEN))
    idle = RecordingServer(ACCOUNT_SID, AUTH_TOKEN)
    call = make_sim(app, idle).place_call(CALLER, NUMBER)
    with pytest.raises(SimulatorError, match="not running"):
        call.speak("你好")


# -- how a recording ends --------------------------------------------------------------------


def test_a_finish_key_ends_the_recording_and_is_posted_as_digits(server):
    app = record_app('<Record action="/heard" finishOnKey="#*" timeout="8"/>')
    sim = make_sim(app, server)
    call = sim.place_call(CALLER, NUMBER)
    before = sim.clock.elapsed - call.started_at
    call.speak("帮我叫一辆车", then="#")
    # the recording ended with the key: no silence wait
    assert call.recordings[0].at - before == pytest.approx(estimate_speech_seconds("帮我叫一辆车"))
    form = app.form("/heard")
    assert form["Digits"] == "#" and form["RecordingDuration"] == "2"
    assert call.recordings[0].ended_by == "key" and call.last_texts() == ["你说的是：帮我叫一辆车"]

    # a key that is not in finishOnKey is only a tone: silence ends the recording
    call = sim.place_call(CALLER, NUMBER)
    call.speak("你好", then="5")
    assert "Digits" not in app.form("/heard") and call.ignored_keys == ["5"]


def test_a_key_before_any_speech_is_an_empty_recording(server):
    app = record_app('<Record action="/heard" finishOnKey="#"/>')
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    call.press("1")                      # not a finish key: a tone in the recording
    assert call.pending_record is not None and call.ignored_keys == ["1"]
    call.press("#")                      # empty recording: Twilio does not request the action
    assert not app.requests_to("/heard") and call.recordings == []
    assert call.last_texts() == ["没有听到您说话。"] and any("empty recording" in w for w in call.warnings)

    # post_empty_recordings=True: posted with Digits and a 0 s recording without words
    app = record_app('<Record action="/heard" finishOnKey="#"/>')
    call = make_sim(app, server, post_empty_recordings=True).place_call(CALLER, NUMBER)
    call.press("#")
    form = app.form("/heard")
    assert form["Digits"] == "#" and form["RecordingDuration"] == "0"
    assert call.last_texts() == ["你说的是：（听不清）"]


def test_silence_goes_on_with_the_next_verb_and_requests_no_action(server):
    app = record_app('<Record action="/heard" timeout="3"/>', after="<Say>没有听到。</Say><Hangup/>")
    sim = make_sim(app, server)
    call = sim.place_call(CALLER, NUMBER)
    before = sim.clock.elapsed - call.started_at
    call.silence()
    assert call.heard[-1].at - before == pytest.approx(3)
    assert call.last_texts() == ["没有听到。"] and call.ended_by == "hangup"
    assert not app.requests_to("/heard") and call.recordings == [] and server.log == []
    assert any("16102" in w for w in call.warnings)

    # wait() lets the Record end silent too
    app = record_app('<Record action="/heard"/>', after='<Redirect>/again</Redirect>')
    app.routes["/again"] = twiml("<Say>请再说一次。</Say>", '<Record action="/heard"/>',
                                 "<Redirect>/again</Redirect>")
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    call.wait(20)
    assert call.texts.count("请再说一次。") == 3 and call.pending_record is not None
    assert not app.requests_to("/heard") and not call.ended


def test_not_ready_fetches_make_the_first_fetches_404():
    with RecordingServer(ACCOUNT_SID, AUTH_TOKEN, not_ready_fetches=2) as srv:
        app = record_app()
        call = make_sim(app, srv).place_call(CALLER, NUMBER)
        call.speak("我想问一下社区医院")
        assert app.fetches == [404, 404, 200]
        assert srv.fetch_count(call.recordings[0].sid) == 3
        assert call.last_texts() == ["你说的是：我想问一下社区医院"]

    with RecordingServer(ACCOUNT_SID, AUTH_TOKEN, not_ready_fetches=5) as srv:
        app = record_app(fetch_attempts=3)       # the app gives up after a bounded number of tries
        call = make_sim(app, srv).place_call(CALLER, NUMBER)
        call.speak("你好")
        assert app.fetches == [404, 404, 404] and call.last_texts() == ["录音暂时取不到。"]


def test_hangup_during_record(server):
    app = record_app()
    app.routes["/heard"] = lambda: (app.fetch_recording(request.form["RecordingUrl"]), twiml(
        "<Say>never heard: the caller is gone</Say>"))[1]
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    call.speak("我不说了", then="hangup")
    form = app.form("/heard")
    assert form["Digits"] == "hangup" and form["CallStatus"] == "completed"
    assert form["RecordingDuration"] == "1" and app.fetches == [200]
    assert call.ended_by == "caller_hangup" and "never heard: the caller is gone" not in call.texts
    assert [e["path"] for e in app.log] == ["/twilio/voice", "/heard", "/twilio/status"]
    assert call.recordings[0].ended_by == "hangup" and call.recordings[0].digits == "hangup"

    # hanging up before saying anything: an empty recording, no action request
    app = record_app()
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    call.hangup()
    assert not app.requests_to("/heard") and call.ended_by == "caller_hangup"
    assert app.form("/twilio/status")["CallStatus"] == "completed"
    # ... unless empty recordings are posted
    app = record_app()
    call = make_sim(app, server, post_empty_recordings=True).place_call(CALLER, NUMBER)
    call.hangup()
    form = app.form("/heard")
    assert form["Digits"] == "hangup" and form["RecordingDuration"] == "0"
    assert call.ended_by == "caller_hangup"


def test_play_beep_is_heard_and_takes_time(server):
    app = record_app('<Record action="/heard"/>')
    sim = make_sim(app, server)
    call = sim.place_call(CALLER, NUMBER)
    beep = call.heard[-1]
    assert beep.verb == "beep" and beep.display == "[beep]" and beep.text is None
    assert call.pending_record.started_at == pytest.approx(beep.at + BEEP_SECONDS)
    app = record_app('<Record action="/heard" playBeep="false"/>')
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    assert all(h.verb != "beep" for h in call.heard)


def test_max_length_caps_the_recording(server):
    app = record_app('<Record action="/heard" maxLength="4" timeout="5"/>')
    sim = make_sim(app, server)
    call = sim.place_call(CALLER, NUMBER)
    before = sim.clock.elapsed - call.started_at
    call.speak("一二三四五六七八九十", seconds=10)
    assert call.recordings[0].at - before == pytest.approx(4)      # cut at maxLength, no silence wait
    form = app.form("/heard")
    assert form["RecordingDuration"] == "4" and "Digits" not in form
    assert call.recordings[0].ended_by == "max-length" and call.recordings[0].text == "一二三四"
    assert call.last_texts() == ["你说的是：一二三四"]

    # a shorter utterance still ends by silence, which maxLength also bounds
    call = sim.place_call(CALLER, NUMBER)
    before = sim.clock.elapsed - call.started_at
    call.speak("你好", seconds=2)
    assert call.recordings[0].at - before == pytest.approx(4)       # 2 s speech + 2 s of the 5 s timeout
    assert app.form("/heard")["RecordingDuration"] == "2"


def test_do_not_trim_keeps_the_trailing_silence(server):
    app = record_app('<Record action="/heard" trim="do-not-trim" timeout="3"/>')
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    call.speak("你好", seconds=2)
    assert app.form("/heard")["RecordingDuration"] == "5"


def test_default_action_is_the_current_document(server):
    def voice():
        if "RecordingUrl" in request.form:
            return twiml(f"<Say>收到 {request.form['RecordingDuration']} 秒。</Say>")
        return twiml("<Record/>")

    app = RecordingApp({"/twilio/voice": voice, "/twilio/status": ""})
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    call.speak("测试", seconds=3)
    assert [e["path"] for e in app.log][:2] == ["/twilio/voice", "/twilio/voice"]
    assert call.last_texts() == ["收到 3 秒。"] and all(e["valid"] for e in app.log)


# -- strictness ------------------------------------------------------------------------------


def test_record_strictness(server):
    def sim_for(document: str, **kwargs) -> TwilioSimulator:
        return make_sim(RecordingApp({"/twilio/voice": document, "/twilio/status": "",
                                      "/wait": twiml("<Record/>")}), server, **kwargs)

    with pytest.raises(SimulatorError, match="<Record> cannot contain"):
        sim_for(twiml("<Record><Say>x</Say></Record>")).place_call(CALLER, NUMBER)
    with pytest.raises(SimulatorError, match="transcribe"):
        sim_for(twiml('<Record transcribe="true"/>')).place_call(CALLER, NUMBER)
    with pytest.raises(SimulatorError, match="unknown verb <record>"):
        sim_for(twiml("<record/>")).place_call(CALLER, NUMBER)
    with pytest.raises(SimulatorError, match="waitUrl"):
        sim_for(twiml('<Enqueue waitUrl="/wait">q</Enqueue>')).place_call(CALLER, NUMBER)
    with pytest.raises(SimulatorError, match="<Gather>"):
        sim_for(twiml("<Gather><Record/></Gather>")).place_call(CALLER, NUMBER)

    call = sim_for(twiml('<Record timeout="0" finishOnKey="x" playBeep="maybe" trim="no"/>')).place_call(
        CALLER, NUMBER)
    record = call.pending_record
    assert (record.timeout, record.finish_on_key, record.play_beep, record.trim) == (
        5, "1234567890*#", True, "trim-silence")
    assert len(call.warnings) == 4

    call = sim_for(twiml("<Say>hi</Say>")).place_call(CALLER, NUMBER)
    with pytest.raises(SimulatorError):
        call.speak("没人录音")            # the call has ended
    app = RecordingApp({"/twilio/voice": twiml('<Gather numDigits="1"><Say>按键</Say></Gather>'),
                        "/twilio/status": ""})
    call = make_sim(app, server).place_call(CALLER, NUMBER)
    with pytest.raises(SimulatorError, match="no <Record>"):
        call.speak("我在说话")
    with pytest.raises(ValueError):
        call.speak("x", then="hang up")


def test_keys_left_over_after_a_key_ended_recording_go_to_the_next_gather(server):
    app = record_app('<Record action="/heard" finishOnKey="#"/>')
    app.routes["/heard"] = twiml('<Gather numDigits="1" action="/menu"><Say>按1确认</Say></Gather>')
    app.routes["/menu"] = lambda: twiml(f"<Say>选了{request.form['Digits']}</Say>")
    sim = make_sim(app, server)
    call = sim.place_call(CALLER, NUMBER)
    call.speak("我要预约", then="#")
    assert call.pending_gather is not None
    call.press("1")
    assert call.last_texts() == ["选了1"]


# -- terminal phone --------------------------------------------------------------------------




def test_terminal_phone_speaks_to_a_record(server):
    app = record_app(after="<Say>没有听到您说话。</Say><Redirect>/twilio/voice</Redirect>")
    out: list[str] = []
    call = run_terminal_call(make_sim(app, server), CALLER, NUMBER, plain=True, print_fn=out.append,
                             input_fn=scripted(["?", "", "say 我要查一查"]))
    text = "\n".join(out)
    assert "> [beep]" in text and "[recording: speak:" in text and "keys 1234567890*# end it" in text
    assert "> 没有听到您说话。" in text                     # the empty line was silence
    assert "> 你说的是：我要查一查" in text
    assert "say words" in text                             # help documents speaking
    assert call.recordings[0].text == "我要查一查"

    out = []
    app = record_app('<Record action="/again"/>')
    app.routes["/again"] = lambda: twiml(
        f"<Say>{read_transcript(app.fetch_recording(request.form['RecordingUrl']))}</Say>",
        '<Gather numDigits="1"><Say>按键</Say></Gather>')
    call = run_terminal_call(make_sim(app, server), CALLER, NUMBER, plain=True, print_fn=out.append,
                             input_fn=scripted(['"帮我叫车"', '"还在吗']))
    assert "> 帮我叫车" in out
    assert "(nothing is recording: no one hears speech here; use keys)" in out
    assert call.ended_by == "caller_hangup"
