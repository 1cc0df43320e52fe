"""Tests for the Twilio simulator (ivr.simulator).

Each test builds a small, real Flask app that answers hand-written TwiML and
rejects any request whose X-Twilio-Signature does not validate with the real
``twilio.request_validator.RequestValidator``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable

import pytest
from flask import Flask, request
from twilio.request_validator import RequestValidator

from ivr.simulator import (
    APPLICATION_ERROR_TEXT,
    SimulatorError,
    TwilioSimulator,
    VirtualClock,
    WsgiTransport,
    run_terminal_call,
)
from ivr.simulator.transport import HttpResponse

AUTH_TOKEN = "sim-test-auth-token"
BASE = "https://ivr.example.org"
CALLER = "+8613800138000"
NUMBER = "+862161234567"
START = datetime(2025, 3, 3, 9, 0, 0, tzinfo=timezone.utc)


def twiml(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


Handler = Callable[[], "str | tuple"]


class FakeTwilioApp:
    """A Flask app answering TwiML per path, validating every Twilio signature."""

    def __init__(self, routes: dict[str, "str | Handler"] | None = None):
        self.routes: dict[str, str | Handler] = dict(routes or {})
        self.texts: dict[str, str] = {}        # text twins, served without signature check
        self.log: list[dict] = []
        self.flask = Flask("fake_twilio_app")
        validator = RequestValidator(AUTH_TOKEN)

        @self.flask.route("/", defaults={"path": ""}, methods=["GET", "POST"])
        @self.flask.route("/<path:path>", methods=["GET", "POST"])
        def handle(path: str):
            route = "/" + path
            if route in self.texts:
                return self.texts[route], 200, {"Content-Type": "text/plain; charset=utf-8"}
            signature = request.headers.get("X-Twilio-Signature", "")
            valid = validator.validate(request.url, request.form, signature)
            self.log.append({
                "path": route, "method": request.method, "url": request.url,
                "form": request.form.to_dict(), "args": request.args.to_dict(),
                "query": request.query_string.decode(), "valid": valid,
                "signature": signature,
            })
            if not valid:
                return "invalid signature", 403
            if route not in self.routes:
                return "not found", 404
            answer = self.routes[route]
            result = answer() if callable(answer) else answer
            if isinstance(result, tuple):
                return result
            return result, 200, {"Content-Type": "text/xml; charset=utf-8"}

    def requests_to(self, path: str) -> list[dict]:
        return [entry for entry in self.log if entry["path"] == path]

    def form(self, path: str, index: int = -1) -> dict:
        return self.requests_to(path)[index]["form"]


def make_sim(app: FakeTwilioApp, **kwargs) -> TwilioSimulator:
    kwargs.setdefault("clock", VirtualClock(START))
    kwargs.setdefault("seed", 7)
    return TwilioSimulator(WsgiTransport(app.flask), BASE, AUTH_TOKEN, **kwargs)


# -- signatures ------------------------------------------------------------------------------


def test_published_signature_test_vector():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    sim = TwilioSimulator(WsgiTransport(Flask("x")), "https://mycompany.com", "12345")
    assert sim.sign(url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert RequestValidator("12345").validate(url, params, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")


def test_tampered_or_overridden_signature_is_rejected_by_the_app():
    app = FakeTwilioApp({"/twilio/voice": twiml("<Say>hello</Say>"), "/twilio/status": ""})
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER, tamper_signature=True)
    assert call.errors[0].status == 403 and call.errors[0].error_code == 11200
    assert call.ended_by == "application_error"
    assert call.last_texts() == [APPLICATION_ERROR_TEXT]
    assert not app.log[0]["valid"]

    call = sim.place_call(CALLER, NUMBER, signature_override="bogus=")
    assert app.log[-2]["signature"] == "bogus="
    assert call.errors and call.errors[0].status == 403


# -- a whole call ----------------------------------------------------------------------------


def test_signed_call_through_say_play_gather_redirect_hangup():
    app = FakeTwilioApp({
        "/twilio/voice": twiml(
            '<Say language="cmn-CN" voice="Polly.Zhiyu">欢迎致电</Say>',
            '<Gather numDigits="1" action="/twilio/menu"><Play>/prompts/menu.wav</Play></Gather>',
            "<Say>No key pressed.</Say>",
        ),
        "/twilio/menu": lambda: twiml(
            f"<Say>You chose {request.form['Digits']}.</Say>", "<Redirect>/twilio/bye</Redirect>",
            "<Say>never heard</Say>",
        ),
        "/twilio/bye": twiml("<Say>Goodbye.</Say>", "<Hangup/>", "<Say>never heard</Say>"),
        "/twilio/status": "",
    })
    app.texts["/prompts/menu.txt"] = "Press 1 for the weather, 2 for news."
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)

    assert call.texts == ["欢迎致电", "Press 1 for the weather, 2 for news."]
    first = call.heard[0]
    assert (first.verb, first.language, first.voice) == ("say", "cmn-CN", "Polly.Zhiyu")
    play = call.heard[1]
    assert play.verb == "play" and play.url == BASE + "/prompts/menu.wav" and play.in_gather
    gather = call.pending_gather
    assert gather is not None and gather.num_digits == 1 and gather.timeout == 5
    assert gather.finish_on_key == "#" and gather.action == BASE + "/twilio/menu"
    assert call.state == "in-progress"

    heard = call.press("1")
    assert [h.display for h in heard] == ["You chose 1.", "Goodbye."]
    assert call.heard_since_last_input() == ["You chose 1.", "Goodbye."]
    assert call.ended and call.ended_by == "hangup" and call.state == "completed"

    # every request was signed and validated by the app
    assert app.log and all(entry["valid"] for entry in app.log)
    voice = app.form("/twilio/voice")
    assert re.fullmatch(r"CA[0-9a-f]{32}", voice["CallSid"])
    assert re.fullmatch(r"AC[0-9a-f]{32}", voice["AccountSid"])
    assert voice["CallStatus"] == "ringing"
    assert (voice["From"], voice["To"], voice["Caller"], voice["Called"]) == (CALLER, NUMBER, CALLER, NUMBER)
    assert voice["Direction"] == "inbound" and voice["ApiVersion"] == "2010-04-01"
    menu = app.form("/twilio/menu")
    assert menu["CallStatus"] == "in-progress"
    assert menu["Digits"] == "1" and menu["FinishedOnKey"] == ""
    assert menu["CallSid"] == voice["CallSid"]
    assert app.requests_to("/twilio/bye")[0]["method"] == "POST"

    # status callback: completed, signed, with the virtual duration
    status = app.form("/twilio/status")
    assert status["CallStatus"] == "completed"
    assert status["CallbackSource"] == "call-progress-events"
    assert int(status["CallDuration"]) == round(call.duration) > 0
    assert status["Timestamp"].endswith("+0000")
    assert [r.kind for r in call.requests if r.kind != "media"] == [
        "voice", "gather_action", "redirect", "status_callback"]


def test_end_of_document_is_recorded_and_silence_does_not_drop_a_caller():
    app = FakeTwilioApp({
        "/twilio/voice": twiml(
            '<Gather numDigits="1" action="/twilio/menu"><Say>Press 1.</Say></Gather>',
            "<Say>We did not hear you.</Say>",
            "<Redirect>/twilio/voice</Redirect>",
        ),
        "/twilio/menu": twiml("<Say>Thanks.</Say>"),
        "/twilio/status": "",
    })
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    for _ in range(3):
        call.silence()
        assert not call.ended and call.pending_gather is not None
    assert call.texts.count("We did not hear you.") == 3
    assert call.duration >= 15          # three 5 s timeouts, virtual
    call.press("1")
    assert call.ended_by == "end_of_document"
    assert app.form("/twilio/status")["CallStatus"] == "completed"


# -- Gather semantics ------------------------------------------------------------------------


def test_gather_multi_digit_with_finish_on_key_and_num_digits():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather action="/pin"><Say>PIN then hash.</Say></Gather>'),
        "/pin": twiml('<Gather numDigits="4" finishOnKey="" action="/code"><Say>Code.</Say></Gather>'),
        "/code": twiml("<Hangup/>"),
        "/twilio/status": "",
    })
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    call.press("123#")
    assert app.form("/pin")["Digits"] == "123"
    assert app.form("/pin")["FinishedOnKey"] == "#"
    assert call.pending_gather.num_digits == 4 and call.pending_gather.finish_on_key == ""
    call.press("1#")                     # '#' is an ordinary key when finishOnKey=""
    assert call.pending_gather.digits == "1#"
    call.press("2*")
    assert app.form("/code")["Digits"] == "1#2*"
    assert call.ended_by == "hangup"


def test_finish_key_alone_is_no_input():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather action="/x"><Say>Number then hash.</Say></Gather>',
                               "<Say>Nothing entered.</Say>"),
        "/twilio/status": "",
    })
    call = make_sim(app).place_call(CALLER, NUMBER)
    call.press("#")
    assert call.last_texts() == ["Nothing entered."]
    assert not app.requests_to("/x")


def test_gather_timeout_with_action_on_empty_result():
    app = FakeTwilioApp({
        "/twilio/voice": twiml(
            '<Gather timeout="7" actionOnEmptyResult="true" action="/empty"><Say>Hi.</Say></Gather>',
            "<Say>not reached</Say>"),
        "/empty": twiml("<Say>You said nothing.</Say>"),
        "/twilio/status": "",
    })
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    prompt_end = sim.clock.elapsed
    call.silence()
    assert call.heard[-1].at == pytest.approx(prompt_end + 7)   # the timeout passed, virtually
    form = app.form("/empty")
    assert form["Digits"] == "" and form["FinishedOnKey"] == ""
    assert call.texts == ["Hi.", "You said nothing."]


def test_gather_timeout_without_action_on_empty_result_goes_to_next_verb():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather timeout="3" action="/x"><Say>Hi.</Say></Gather>',
                               "<Say>Next verb.</Say>", "<Hangup/>"),
        "/twilio/status": "",
    })
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    call.silence()
    assert call.texts == ["Hi.", "Next verb."]
    assert not app.requests_to("/x")
    assert call.ended_by == "hangup"


def test_digits_then_silence_submits_the_digits():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather numDigits="6" action="/x"><Say>Six digits.</Say></Gather>'),
        "/x": twiml("<Hangup/>"),
        "/twilio/status": "",
    })
    call = make_sim(app).place_call(CALLER, NUMBER)
    call.press("12")
    assert call.pending_gather.digits == "12"
    call.silence()
    assert app.form("/x")["Digits"] == "12" and app.form("/x")["FinishedOnKey"] == ""


def test_relative_action_urls_resolve_against_the_document_url():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather numDigits="1" action="menu/choice?lang=zh"><Say>a</Say></Gather>'),
        "/twilio/menu/choice": twiml('<Gather numDigits="1" action="../again"><Say>b</Say></Gather>'),
        "/twilio/again": twiml('<Gather numDigits="1"><Say>c</Say></Gather>'),  # default: same URL
        "/twilio/status": "",
    })
    call = make_sim(app).place_call(CALLER, NUMBER)
    call.press("1")
    assert app.requests_to("/twilio/menu/choice")[0]["args"] == {"lang": "zh"}
    call.press("2")
    assert app.form("/twilio/again")["Digits"] == "2"
    call.press("3")
    assert [e["form"].get("Digits") for e in app.requests_to("/twilio/again")] == ["2", "3"]
    assert all(entry["valid"] for entry in app.log)


def test_gather_and_redirect_with_get_method_sign_the_query_string():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather numDigits="1" method="GET" action="/pick"><Say>a</Say></Gather>'),
        "/pick": twiml('<Redirect method="GET">/done?step=2</Redirect>'),
        "/done": twiml("<Say>done</Say>"),
        "/twilio/status": "",
    })
    call = make_sim(app).place_call(CALLER, NUMBER)
    call.press("5")
    pick = app.requests_to("/pick")[0]
    assert pick["method"] == "GET" and pick["args"]["Digits"] == "5" and pick["valid"]
    done = app.requests_to("/done")[0]
    assert done["args"]["step"] == "2" and done["args"]["CallSid"] == call.call_sid and done["valid"]
    assert call.ended_by == "end_of_document"


def test_twilio_resorts_action_query_strings_which_breaks_unsorted_urls():
    routes = {
        "/twilio/voice": twiml('<Gather numDigits="1" action="/menu?step=2&amp;lang=zh"><Say>a</Say></Gather>'),
        "/menu": twiml("<Say>ok</Say>"),
        "/twilio/status": "",
    }
    app = FakeTwilioApp(routes)
    call = make_sim(app, strict=False).place_call(CALLER, NUMBER)
    call.press("1")
    menu = app.requests_to("/menu")[0]
    assert menu["query"] == "lang=zh&step=2"      # requested sorted, signed as written
    assert not menu["valid"]
    assert call.errors[0].status == 403 and call.ended_by == "application_error"

    app = FakeTwilioApp(routes)
    call = make_sim(app, sort_query_params=False).place_call(CALLER, NUMBER)
    call.press("1")
    assert app.requests_to("/menu")[0]["valid"] and call.ended_by == "end_of_document"


def test_keys_pressed_while_no_gather_listens_are_ignored():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather numDigits="1" action="/a"><Say>x</Say></Gather>'),
        "/a": twiml('<Say>Noted.</Say><Gather numDigits="2" action="/b"><Say>y</Say></Gather>'),
        "/b": twiml("<Say>bye</Say>"),
        "/twilio/status": "",
    })
    call = make_sim(app).place_call(CALLER, NUMBER)
    call.press("1234")                    # type-ahead: 1 -> /a, 23 -> /b, 4 dropped
    assert app.form("/a")["Digits"] == "1" and app.form("/b")["Digits"] == "23"
    assert call.ignored_keys == ["4"]
    with pytest.raises(SimulatorError):
        call.press("1")                   # the call has ended


# -- Say / Play details ----------------------------------------------------------------------


def test_play_loop_text_twin_missing_and_loop_zero():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Play loop="2">/prompts/chime.wav</Play>',
                               '<Play loop="0">https://cdn.example.org/music.mp3</Play>',
                               '<Say loop="0">Hold on.</Say>'),
        "/twilio/status": "",
    })
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    assert [h.text for h in call.heard] == [None, None, None, "Hold on."]
    assert call.heard[0].display == f"[audio {BASE}/prompts/chime.wav]"
    assert call.heard[2].loop_forever and call.heard[3].loop_forever
    media = [r for r in call.requests if r.kind == "media"]
    assert [r.url for r in media] == [BASE + "/prompts/chime.txt", "https://cdn.example.org/music.txt"]
    assert call.ended_by == "end_of_document"


def test_pause_advances_the_virtual_clock_only():
    app = FakeTwilioApp({"/twilio/voice": twiml('<Pause length="600"/>', "<Say>x</Say>"),
                         "/twilio/status": ""})
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    assert call.heard[0].at >= 600
    assert sim.clock.now() > START.replace(minute=10)


# -- bad TwiML, HTTP errors, fallback --------------------------------------------------------


def test_malformed_xml_raises_in_strict_mode_and_is_recorded():
    app = FakeTwilioApp({"/twilio/voice": "<Response><Say>oops</Response>", "/twilio/status": ""})
    sim = make_sim(app)
    with pytest.raises(SimulatorError) as info:
        sim.place_call(CALLER, NUMBER)
    call = info.value.call
    assert call is sim.calls[-1]
    assert call.errors[0].error_code == 12100 and call.errors[0].kind == "parse"
    assert call.ended_by == "application_error" and call.last_texts() == [APPLICATION_ERROR_TEXT]
    assert app.form("/twilio/status")["CallStatus"] == "completed"


def test_unknown_verb_raises_in_strict_mode_and_ends_call_otherwise():
    app = FakeTwilioApp({"/twilio/voice": twiml("<Say>hi</Say><say>lower case</say>"),
                         "/twilio/status": ""})
    with pytest.raises(SimulatorError, match="unknown verb <say>"):
        make_sim(app).place_call(CALLER, NUMBER)
    call = make_sim(app, strict=False).place_call(CALLER, NUMBER)
    assert call.errors[0].error_code == 12200
    assert call.texts == [APPLICATION_ERROR_TEXT] and call.ended_by == "application_error"


def test_gather_input_written_as_a_python_list_is_bad_twiml():
    app = FakeTwilioApp({"/twilio/voice": twiml(
        "<Gather input=\"['dtmf', 'speech']\"><Say>x</Say></Gather>"), "/twilio/status": ""})
    with pytest.raises(SimulatorError, match="input"):
        make_sim(app).place_call(CALLER, NUMBER)


def test_unsimulated_verbs_and_record_attributes_raise():
    # <Record> itself is simulated (tests/test_simulator_record.py); these are not.
    app = FakeTwilioApp({"/twilio/voice": twiml('<Say>Hi.</Say><Start><Stream url="wss://x"/></Start>'),
                         "/twilio/status": ""})
    with pytest.raises(SimulatorError, match="<Start> is not yet supported"):
        make_sim(app).place_call(CALLER, NUMBER)
    app = FakeTwilioApp({"/twilio/voice": twiml('<Say>Hi.</Say><Connect><Stream url="wss://x"/></Connect>'),
                         "/twilio/status": ""})
    with pytest.raises(SimulatorError, match="no stream_link"):  # streams: tests/scenarios, 06_*
        make_sim(app).place_call(CALLER, NUMBER)
    app = FakeTwilioApp({"/twilio/voice": twiml('<Record recordingStatusCallback="/rs"/>'),
                         "/twilio/status": ""})
    with pytest.raises(SimulatorError, match="recordingStatusCallback> is not yet supported"):
        make_sim(app).place_call(CALLER, NUMBER)


def test_bad_xml_uses_the_fallback_url():
    app = FakeTwilioApp({
        "/twilio/voice": "this is not xml",
        "/twilio/fallback": twiml("<Say>Sorry, please call again later.</Say>", "<Hangup/>"),
        "/twilio/status": "",
    })
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER, fallback_path="/twilio/fallback")
    assert call.errors[0].error_code == 12100
    fallback = app.form("/twilio/fallback")
    assert fallback["ErrorCode"] == "12100" and fallback["ErrorUrl"] == BASE + "/twilio/voice"
    assert app.requests_to("/twilio/fallback")[0]["valid"]
    assert call.texts == ["Sorry, please call again later."] and call.ended_by == "hangup"


def test_http_500_records_error_and_uses_fallback_or_plays_application_error():
    routes = {
        "/twilio/voice": twiml('<Gather numDigits="1" action="/broken"><Say>Menu.</Say></Gather>'),
        "/broken": ("boom", 500),
        "/twilio/fallback": twiml("<Say>Technical problem.</Say>"),
        "/twilio/status": "",
    }
    app = FakeTwilioApp(routes)
    call = make_sim(app).place_call(CALLER, NUMBER)
    call.press("1")                       # no fallback: HTTP failures do not raise
    assert call.errors[0].status == 500 and call.errors[0].error_code == 11200
    assert call.last_texts() == [APPLICATION_ERROR_TEXT] and call.ended_by == "application_error"

    app = FakeTwilioApp(routes)
    call = make_sim(app).place_call(CALLER, NUMBER, fallback_path="/twilio/fallback")
    call.press("1")
    fallback = app.form("/twilio/fallback")
    assert fallback["ErrorCode"] == "11200" and fallback["ErrorUrl"] == BASE + "/broken"
    assert fallback["CallStatus"] == "in-progress"
    assert call.last_texts() == ["Technical problem."] and call.ended_by == "end_of_document"


def test_runaway_redirect_loop_is_bounded():
    app = FakeTwilioApp({"/twilio/voice": twiml("<Redirect>/twilio/voice</Redirect>"),
                         "/twilio/status": ""})
    with pytest.raises(SimulatorError, match="runaway"):
        make_sim(app, max_documents=20).place_call(CALLER, NUMBER)


# -- other verbs -----------------------------------------------------------------------------


def test_reject_as_first_verb_ends_unanswered():
    app = FakeTwilioApp({"/twilio/voice": twiml('<Reject reason="busy"/>'), "/twilio/status": ""})
    call = make_sim(app).place_call(CALLER, NUMBER)
    assert call.ended_by == "rejected" and call.final_status == "busy"
    status = app.form("/twilio/status")
    assert status["CallStatus"] == "busy" and status["CallDuration"] == "0"


def test_dial_with_and_without_action():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Dial action="/dialed"><Number>+8613900000000</Number></Dial>'),
        "/dialed": twiml("<Say>The call with your family has ended.</Say>"),
        "/plain": twiml("<Dial>+8613900000001</Dial><Say>not reached</Say>"),
        "/twilio/status": "",
    })
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    assert call.heard[0].verb == "dial" and call.heard[0].text == "+8613900000000"
    dialed = app.form("/dialed")
    assert dialed["DialCallStatus"] == "completed" and dialed["DialBridged"] == "true"
    assert re.fullmatch(r"CA[0-9a-f]{32}", dialed["DialCallSid"])
    call = sim.place_call(CALLER, NUMBER, voice_path="/plain")
    assert call.ended_by == "dial_completed" and call.texts == ["+8613900000001"]


# -- replay ----------------------------------------------------------------------------------


def test_replay_last_request_sends_the_same_signed_request_and_gets_the_same_body():
    seen: list[str] = []

    def menu():
        seen.append(request.form["CallSid"])
        return twiml(f"<Say>Appointment booked for {request.form['Digits']}.</Say>",
                     '<Gather numDigits="1" action="/again"><Say>Anything else?</Say></Gather>')

    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather numDigits="1" action="/menu"><Say>a</Say></Gather>'),
        "/menu": menu,
        "/twilio/status": "",
    })
    call = make_sim(app).place_call(CALLER, NUMBER)
    call.press("3")
    original = [r for r in call.requests if r.kind == "gather_action"][-1]
    body = call.replay_last_request()
    assert body == original.text
    first, second = app.requests_to("/menu")
    assert first["form"] == second["form"] and first["signature"] == second["signature"]
    assert second["valid"] and seen == [call.call_sid, call.call_sid]
    assert call.requests[-1].kind == "replay"
    assert call.pending_gather is not None          # the replay did not move the call


# -- queues ----------------------------------------------------------------------------------


def queue_app(**extra) -> FakeTwilioApp:
    def wait():
        form = request.form
        return twiml(f"<Say>You are number {form['QueuePosition']} of {form['CurrentQueueSize']}.</Say>",
                     '<Play>/prompts/hold.wav</Play>', '<Pause length="20"/>')

    routes = {
        "/twilio/voice": twiml('<Say>Connecting you.</Say>',
                               '<Enqueue waitUrl="/wait" action="/queue-done">helpers</Enqueue>',
                               "<Say>After the queue.</Say>"),
        "/wait": wait,
        "/queue-done": lambda: twiml(f"<Say>Queue result {request.form['QueueResult']}.</Say>"),
        "/twilio/status": "",
    }
    routes.update(extra)
    app = FakeTwilioApp(routes)
    app.texts["/prompts/hold.txt"] = "Please hold."
    return app


def test_enqueue_wait_loop_positions_and_queue_time_on_the_virtual_clock():
    app = queue_app()
    sim = make_sim(app)
    a = sim.place_call("+8613800000001", NUMBER)
    assert a.state == "queued" and a.queue.name == "helpers" and a.queue_position == 1
    assert a.last_texts(2) == ["You are number 1 of 1.", "Please hold."]
    first = app.form("/wait")
    assert first["QueuePosition"] == "1" and first["QueueTime"] == "0"
    assert first["CurrentQueueSize"] == "1" and first["MaxQueueSize"] == "100"
    assert re.fullmatch(r"QU[0-9a-f]{32}", first["QueueSid"])

    b = sim.place_call("+8613800000002", NUMBER)
    assert b.queue_position == 2 and b.texts[-2] == "You are number 2 of 2."
    assert app.form("/wait")["QueueSid"] == first["QueueSid"]

    a.wait(60)
    a_waits = [e["form"] for e in app.requests_to("/wait") if e["form"]["CallSid"] == a.call_sid]
    times = [int(f["QueueTime"]) for f in a_waits]
    assert len(times) >= 3 and times == sorted(times) and times[-1] >= 40
    assert int(a_waits[-1]["AvgQueueTime"]) > 0
    assert all(entry["valid"] for entry in app.log)

    assert sim.bridge_next("helpers") is a
    assert a.state == "bridged" and a.last_texts() == ["connected to an operator"]
    b.wait(30)
    assert b.queue_position == 1
    assert app.form("/wait")["QueuePosition"] == "1" and app.form("/wait")["CallSid"] == b.call_sid


def test_bridged_call_posts_action_with_bridged_after_the_operator_hangs_up():
    app = queue_app()
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    call.wait(25)
    queued_for = sim.clock.elapsed - call.started_at
    call.bridge()
    call.wait(300)                        # talking: no requests
    requests_before = len(app.log)
    call.end_bridge(talk_seconds=60)
    assert [e["path"] for e in app.log[requests_before:]] == ["/queue-done", "/twilio/status"]
    done = app.form("/queue-done")
    assert done["QueueResult"] == "bridged"
    assert int(done["QueueTime"]) <= queued_for < int(done["QueueTime"]) + 60
    assert call.last_texts() == ["Queue result bridged."]
    assert call.ended_by == "end_of_document"


def test_leave_via_gather_in_the_wait_document():
    app = queue_app(**{
        "/wait": twiml('<Gather numDigits="1" action="/wait-choice">'
                       "<Say>Press 1 to leave a message instead.</Say></Gather>",
                       '<Pause length="10"/>'),
        "/wait-choice": lambda: twiml("<Leave/>") if request.form["Digits"] == "1"
        else twiml("<Say>Staying in the queue.</Say>"),
    })
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    assert call.state == "queued" and call.pending_gather is not None
    assert call.pending_gather.context == "wait"
    call.press("2")
    assert call.last_texts() == ["Staying in the queue."] and call.state == "queued"
    call.wait(40)                         # Gather timeouts consume time; the loop goes on
    assert call.state == "queued" and len(app.requests_to("/wait")) >= 3
    call.press("1")
    done = app.form("/queue-done")
    assert done["QueueResult"] == "leave" and "QueueSid" in done and int(done["QueueTime"]) >= 40
    assert call.last_texts() == ["Queue result leave."]
    assert sim.queue("helpers").size == 0 and call.queue is None


def test_leave_without_action_continues_after_enqueue():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Enqueue waitUrl="/wait">helpers</Enqueue>', "<Say>Back in the menu.</Say>"),
        "/wait": twiml("<Say>Sorry, everyone is busy.</Say>", "<Leave/>"),
        "/twilio/status": "",
    })
    call = make_sim(app).place_call(CALLER, NUMBER)
    assert call.texts == ["Sorry, everyone is busy.", "Back in the menu."]
    assert call.ended_by == "end_of_document"


def test_queue_full_posts_action_immediately_without_queue_sid():
    app = queue_app()
    sim = make_sim(app, queue_max_size=1)
    a = sim.place_call("+8613800000001", NUMBER)
    b = sim.place_call("+8613800000002", NUMBER)
    assert a.state == "queued"
    done = app.form("/queue-done")
    assert done == {**done, "QueueResult": "queue-full"} and "QueueSid" not in done
    assert b.last_texts() == ["Queue result queue-full."] and b.ended_by == "end_of_document"


def test_caller_hanging_up_in_the_queue_posts_hangup_result():
    app = queue_app()
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    call.wait(30)
    call.hangup()
    assert app.form("/queue-done")["QueueResult"] == "hangup"
    assert call.ended_by == "caller_hangup" and sim.queue("helpers").size == 0
    assert app.form("/twilio/status")["CallStatus"] == "completed"


def test_bad_twiml_in_wait_document():
    app = queue_app(**{"/wait": twiml('<Dial>+8613900000000</Dial>')})
    with pytest.raises(SimulatorError, match="waitUrl"):
        make_sim(app).place_call(CALLER, NUMBER)
    app = queue_app(**{"/wait": twiml('<Dial>+8613900000000</Dial>')})
    call = make_sim(app, strict=False).place_call(CALLER, NUMBER)
    assert app.form("/queue-done")["QueueResult"] == "error"
    assert call.last_texts() == ["Queue result error."]


# -- clock and transport ---------------------------------------------------------------------


def test_virtual_clock():
    clock = VirtualClock(datetime(2025, 1, 1, 8, 0))
    assert clock.now().tzinfo is not None and clock.now().utcoffset().total_seconds() == 0
    clock.advance(90.5)
    assert clock.now() == datetime(2025, 1, 1, 8, 1, 30, 500000, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_http_response_text_and_headers():
    response = HttpResponse(200, "你好".encode(), {"Content-Type": "text/xml; charset=utf-8"})
    assert response.text == "你好" and response.content_type == "text/xml"
    assert response.header("content-type").startswith("text/xml")


# -- terminal phone --------------------------------------------------------------------------


def scripted(lines: list[str]):
    feed = iter(lines)

    def input_fn(prompt: str = "") -> str:
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    return input_fn


def test_terminal_phone_with_scripted_input():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather numDigits="1" action="/menu"><Say>Press 1 for news.</Say></Gather>',
                               "<Say>Still there?</Say>", "<Redirect>/twilio/voice</Redirect>"),
        "/menu": twiml("<Say>Here is the news.</Say>",
                       '<Gather action="/done"><Say>Enter a number and hash.</Say></Gather>'),
        "/done": lambda: twiml(f"<Say>You entered {request.form['Digits']}.</Say>", "<Hangup/>"),
        "/twilio/status": "",
    })
    out: list[str] = []
    call = run_terminal_call(make_sim(app), CALLER, NUMBER,
                             input_fn=scripted(["?", "", "1", "42#"]), print_fn=out.append, plain=True)
    text = "\n".join(out)
    assert "> Press 1 for news." in text and "> Still there?" in text
    assert "[keys? 1 key, end with #, timeout 5s]" in text
    assert "> You entered 42." in text
    assert "digits * #" in text                      # help
    assert call.ended_by == "hangup"
    assert out[-1].startswith("Call ended (hangup)")


def test_terminal_phone_in_a_queue_and_eof_hangs_up():
    app = queue_app()
    out: list[str] = []
    call = run_terminal_call(make_sim(app), CALLER, NUMBER,
                             input_fn=scripted(["w 30", "op", "end 60", "x?"]), print_fn=out.append)
    text = "\n".join(out)
    assert "on hold in queue helpers" in text
    assert "connected to an operator" in text
    assert "Queue result bridged." in text
    assert call.ended_by == "end_of_document"

    out = []
    call = run_terminal_call(make_sim(queue_app()), CALLER, NUMBER,
                             input_fn=scripted(["bogus"]), print_fn=out.append)
    assert any("unknown command" in line for line in out)
    assert call.ended_by == "caller_hangup" and "(end of input: hanging up)" in out


# -- more protocol corners -------------------------------------------------------------------


def test_operator_queue_url_document_is_played_before_bridging():
    app = queue_app(**{"/whisper": lambda: twiml(
        f"<Say>An operator is taking your call after {request.form['QueueTime']} seconds.</Say>")})
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    call.wait(30)
    assert sim.bridge_next("helpers", url="/whisper") is call
    whisper = app.form("/whisper")
    assert whisper["QueueSid"] == sim.queue("helpers").sid and int(whisper["QueueTime"]) >= 30
    assert re.fullmatch(r"CA[0-9a-f]{32}", whisper["DequeingCallSid"])
    assert call.heard_since_last_input() == [
        f"An operator is taking your call after {whisper['QueueTime']} seconds.", "connected to an operator"]
    assert call.state == "bridged" and sim.bridge_next("helpers") is None


def test_update_url_takes_a_queued_caller_out_of_the_queue():
    app = queue_app(**{"/callback-offer": twiml("<Say>We will call you back.</Say>", "<Hangup/>")})
    sim = make_sim(app)
    call = sim.place_call(CALLER, NUMBER)
    call.update_url("/callback-offer")
    assert app.form("/queue-done")["QueueResult"] == "redirected"
    assert call.last_texts() == ["We will call you back."] and call.ended_by == "hangup"
    assert sim.queue("helpers").size == 0


def test_silent_and_default_hold_music_queues():
    app = FakeTwilioApp({
        "/silent": twiml('<Enqueue waitUrl="">helpers</Enqueue>'),
        "/music": twiml("<Enqueue>helpers</Enqueue>"),
        "/twilio/status": "",
    })
    sim = make_sim(app)
    silent = sim.place_call(CALLER, NUMBER, voice_path="/silent")
    silent.wait(120)
    assert silent.state == "queued" and silent.heard == [] and silent.duration >= 120
    music = sim.place_call(CALLER, NUMBER, voice_path="/music")
    music.wait(100)
    assert music.texts and set(music.texts) == {
        "[audio https://s3.amazonaws.com/com.twilio.sounds.music/index.xml]"}
    assert music.queue_position == 2
    assert [e["path"] for e in app.log] == ["/silent", "/music"]   # hold music is not our app


def test_audio_and_plain_text_responses():
    app = FakeTwilioApp({
        "/audio": ("RIFF....", 200, {"Content-Type": "audio/wav"}),
        "/plain": ("Service unavailable", 200, {"Content-Type": "text/plain"}),
        "/twilio/status": "",
    })
    sim = make_sim(app, strict=False)
    call = sim.place_call(CALLER, NUMBER, voice_path="/audio")
    assert call.heard[0].verb == "play" and call.heard[0].url == BASE + "/audio"
    assert call.ended_by == "hangup"
    call = sim.place_call(CALLER, NUMBER, voice_path="/plain")
    assert call.texts == ["Service unavailable"] and call.errors[0].kind == "plain_text"
    with pytest.raises(SimulatorError, match="text/plain"):
        make_sim(app).place_call(CALLER, NUMBER, voice_path="/plain")


def test_http_redirects_are_followed_like_a_browser():
    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather numDigits="1" action="/old"><Say>a</Say></Gather>'),
        "/old": ("", 302, {"Location": "/new"}),
        "/new": twiml("<Say>moved</Say>"),
        "/twilio/status": "",
    })
    call = make_sim(app).place_call(CALLER, NUMBER)
    call.press("1")
    new = app.requests_to("/new")[0]
    assert new["method"] == "GET" and new["valid"] and "Digits" not in new["args"]
    assert call.last_texts() == ["moved"]
    assert [r.kind for r in call.requests][1:3] == ["gather_action", "gather_action+redirect"]


def test_http_transport_against_a_real_server():
    import threading

    from werkzeug.serving import make_server

    from ivr.simulator import HttpTransport

    app = FakeTwilioApp({
        "/twilio/voice": twiml('<Gather numDigits="1" action="/menu"><Say>Over HTTP.</Say></Gather>'),
        "/menu": lambda: twiml(f"<Say>Got {request.form['Digits']}.</Say>"),
        "/twilio/status": "",
    })
    server = make_server("127.0.0.1", 0, app.flask, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sim = TwilioSimulator(HttpTransport(timeout=5), f"http://127.0.0.1:{server.server_port}",
                              AUTH_TOKEN, clock=VirtualClock(START))
        call = sim.place_call(CALLER, NUMBER)
        call.press("9")
        assert call.texts == ["Over HTTP.", "Got 9."]
        assert all(entry["valid"] for entry in app.log) and len(app.log) == 3
    finally:
        server.shutdown()
        thread.join(5)


def test_unreachable_server_is_a_connection_error():
    from ivr.simulator import HttpTransport

    sim = TwilioSimulator(HttpTransport(timeout=2), "http://127.0.0.1:9", AUTH_TOKEN,
                          clock=VirtualClock(START))
    call = sim.place_call(CALLER, NUMBER, status_callback_path=None)
    assert call.errors[0].kind == "connection" and call.errors[0].error_code == 11205
    assert call.ended_by == "application_error"
