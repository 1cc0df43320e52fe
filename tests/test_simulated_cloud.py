"""REST requests of the real twilio Client acting on the call simulator (ivr.simulator.cloud).

A tiny hotline (Flask, hand-written TwiML, every X-Twilio-Signature checked with
twilio's RequestValidator) is called by the simulator; an operator-console-like
test drives Twilio over REST through FakeTwilioApi with a SimulatedTwilio backend.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

import pytest
import requests
from flask import Flask, request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from ivr.simulator import DEFAULT_ACCOUNT_SID, SimCall, TwilioSimulator, VirtualClock, WsgiTransport
from ivr.simulator.cloud import SimulatedTwilio
from ivr.simulator.rest_api import FakeTwilioApi, fake_client

ACCOUNT_SID = DEFAULT_ACCOUNT_SID
AUTH_TOKEN = "cloud-test-auth-token"
BASE = "https://ivr.example.org"
CALLER = "+8613800138000"
HOTLINE = "+862161234567"
OPERATOR = "+8613900000001"
CALLBACK_TO = "+8613700000002"
START = datetime(2025, 3, 3, 9, 0, 0, tzinfo=timezone.utc)
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


def twiml(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"


ROUTES = {
    "/voice": twiml("<Say>Please hold for an operator.</Say>",
                    '<Enqueue waitUrl="/wait" action="/queue-done">operators</Enqueue>'),
    "/wait": twiml("<Say>All operators are busy.</Say>", '<Pause length="20"/>'),
    "/queue-done": twiml("<Say>Goodbye.</Say>", "<Hangup/>"),
    "/connect": twiml("<Say>Connecting you to an operator.</Say>",
                      f'<Dial callerId="{HOTLINE}" timeout="20" action="/dialed"><Number>{OPERATOR}</Number></Dial>'),
    "/dialed": twiml("<Say>The operator call has ended.</Say>", "<Hangup/>"),
    "/callback": twiml("<Say>This is the hotline calling you back.</Say>", "<Redirect>/connect</Redirect>"),
    "/plain-dial": twiml(f"<Dial>{OPERATOR}</Dial>", "<Say>Nobody answered.</Say>"),
    "/status": "",
}


class HotlineApp:
    """Answers TwiML per path; logs every request; refuses any with a bad Twilio signature."""

    def __init__(self) -> None:
        self.log: list[dict] = []
        self.flask = Flask("simulated_cloud_app")
        validator = RequestValidator(AUTH_TOKEN)

        @self.flask.route("/<path:path>", methods=["GET", "POST"])
        def handle(path: str):
            route = "/" + path
            valid = validator.validate(request.url, request.form, request.headers.get("X-Twilio-Signature", ""))
            self.log.append({"path": route, "form": request.form.to_dict(), "valid": valid})
            if not valid:
                return "invalid signature", 403
            if route not in ROUTES:
                return "not found", 404
            return ROUTES[route], 200, {"Content-Type": "text/xml; charset=utf-8"}

    def forms(self, path: str) -> list[dict]:
        return [entry["form"] for entry in self.log if entry["path"] == path]

    def paths(self) -> list[str]:
        return [entry["path"] for entry in self.log]


@dataclass
class World:
    app: HotlineApp
    sim: TwilioSimulator
    api: FakeTwilioApi
    cloud: SimulatedTwilio
    client: Client

    def caller(self) -> SimCall:
        """A caller who rings the hotline and waits in the operators queue."""
        call = self.cloud.place_call(CALLER, HOTLINE, "/voice", status_callback_path="/status")
        assert call.queue_position is not None, call.transcript()
        return call

    def operators(self):
        return next(q for q in self.client.queues.list() if q.friendly_name == "operators")


@pytest.fixture()
def world() -> Iterator[World]:
    app = HotlineApp()
    sim = TwilioSimulator(WsgiTransport(app.flask), BASE, AUTH_TOKEN, account_sid=ACCOUNT_SID,
                          clock=VirtualClock(START), seed=5)
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield World(app, sim, api, SimulatedTwilio(sim, api), fake_client(api, timeout=2.0))
    assert all(entry["valid"] for entry in app.log)


def test_rest_lists_the_simulated_caller_in_the_queue(world: World) -> None:
    caller = world.caller()
    with world.cloud.lock:
        caller.wait(60)
    queue = world.operators()
    assert queue.sid == world.sim.queue("operators").sid == world.app.forms("/wait")[0]["QueueSid"]
    assert queue.current_size == 1
    members = world.client.queues(queue.sid).members.list()
    assert [(m.call_sid, m.position) for m in members] == [(caller.call_sid, 1)]
    assert abs(members[0].wait_time - caller.queue_time) < 1.5     # virtual queue time
    fetched = world.client.calls(caller.call_sid).fetch()
    assert (fetched.direction, fetched.status, fetched._from, fetched.to) == ("inbound", "in-progress", CALLER, HOTLINE)


def test_dequeue_front_redirects_the_caller_to_the_operator(world: World) -> None:
    caller = world.caller()
    queue = world.operators()
    member = world.client.queues(queue.sid).members("Front").update(url=BASE + "/connect", method="POST")
    assert (member.call_sid, member.position, member.queue_sid) == (caller.call_sid, 1, queue.sid)

    done = world.app.forms("/queue-done")
    assert [(d["QueueResult"], d["CallSid"]) for d in done] == [("redirected", caller.call_sid)]
    assert world.app.forms("/connect")[0]["CallSid"] == caller.call_sid
    assert world.app.paths().index("/queue-done") < world.app.paths().index("/connect")
    [dial] = caller.dials
    assert dial.targets == [OPERATOR] and dial.caller_id == HOTLINE and dial.status == "completed"
    dialed = world.app.forms("/dialed")[0]
    assert (dialed["DialCallStatus"], dialed["DialBridged"], dialed["DialCallSid"]) == ("completed", "true", dial.call_sid)
    assert caller.ended_by == "hangup"
    assert world.client.calls(caller.call_sid).fetch().status == "completed"
    assert world.client.queues(queue.sid).members.list() == []
    assert world.api.queues[queue.sid].dequeued == [
        {"call_sid": caller.call_sid, "url": BASE + "/connect", "method": "POST"}]


def test_dequeue_from_an_empty_queue_is_404(world: World) -> None:
    caller = world.caller()
    with world.cloud.lock:
        caller.hangup()
    assert world.app.forms("/queue-done")[0]["QueueResult"] == "hangup"
    queue = world.operators()
    assert queue.current_size == 0
    for which in ("Front", caller.call_sid):
        with pytest.raises(TwilioRestException) as err:
            world.client.queues(queue.sid).members(which).update(url=BASE + "/connect")
        assert (err.value.status, err.value.code) == (404, 20404)
    assert not world.app.forms("/connect")


def test_outbound_call_answered_runs_twiml_and_reports_progress_in_order(world: World) -> None:
    created = world.client.calls.create(
        to=CALLBACK_TO, from_=HOTLINE, url=BASE + "/callback", method="POST",
        status_callback=BASE + "/status", status_callback_event=ALL_EVENTS,
        status_callback_method="POST", timeout=25)
    assert created.status == "queued"
    world.cloud.wait_idle(2.0)
    [call] = world.cloud.outbound_calls
    assert call.call_sid == created.sid and not call.errors

    statuses = world.app.forms("/status")
    assert [s["CallStatus"] for s in statuses] == ["initiated", "ringing", "in-progress", "completed"]
    assert [s["SequenceNumber"] for s in statuses] == ["0", "1", "2", "3"]
    for s in statuses:
        assert (s["CallSid"], s["Direction"], s["From"], s["To"], s["CallbackSource"]) == (
            created.sid, "outbound-api", HOTLINE, CALLBACK_TO, "call-progress-events")
    assert "CallDuration" not in statuses[2]
    assert int(statuses[3]["CallDuration"]) == round(call.ended_at - call.answered_at) > 60
    stamps = [email.utils.parsedate_to_datetime(s["Timestamp"]) for s in statuses]
    assert stamps[0] == START and stamps == sorted(stamps)

    voice = world.app.forms("/callback")[0]
    assert (voice["CallSid"], voice["Direction"], voice["CallStatus"], voice["From"], voice["To"]) == (
        created.sid, "outbound-api", "in-progress", HOTLINE, CALLBACK_TO)
    order = world.app.paths()
    assert order.index("/callback") > 2 and order[:3] == ["/status"] * 3
    assert call.dials[0].targets == [OPERATOR] and call.dials[0].caller_id == HOTLINE
    assert world.client.calls(created.sid).fetch().status == "completed"


def test_outbound_call_not_answered_or_busy_fetches_no_twiml(world: World) -> None:
    world.cloud.answers[CALLBACK_TO] = "no-answer"
    created = world.client.calls.create(to=CALLBACK_TO, from_=HOTLINE, url=BASE + "/callback",
                                        status_callback=BASE + "/status", timeout=25)
    world.cloud.wait_idle(2.0)
    [status] = world.app.forms("/status")            # only "completed" was asked for
    assert (status["CallStatus"], status["CallDuration"], status["SequenceNumber"]) == ("no-answer", "0", "0")
    [call] = world.cloud.outbound_calls
    assert call.duration == 25 and call.final_status == "no-answer"
    assert world.client.calls(created.sid).fetch().status == "no-answer"

    busy = "+8613700000003"
    world.cloud.answers[busy] = "busy"
    world.client.calls.create(to=busy, from_=HOTLINE, url=BASE + "/callback",
                              status_callback=BASE + "/status", status_callback_event=ALL_EVENTS)
    world.cloud.wait_idle(2.0)
    assert [s["CallStatus"] for s in world.app.forms("/status")[1:]] == ["initiated", "busy"]
    assert not world.app.forms("/callback")


def test_dial_outcome_no_answer_reaches_the_dial_action(world: World) -> None:
    world.sim.dial_outcomes[OPERATOR] = "no-answer"
    caller = world.caller()
    world.client.queues(world.operators().sid).members(caller.call_sid).update(url=BASE + "/connect")
    dialed = world.app.forms("/dialed")[0]
    assert (dialed["DialCallStatus"], dialed["DialCallDuration"], dialed["DialBridged"]) == ("no-answer", "0", "false")
    [dial] = caller.dials
    assert (dial.status, dial.timeout, dial.caller_id) == ("no-answer", 20, HOTLINE)
    after = next(h for h in caller.heard if h.text == "The operator call has ended.")
    assert after.at - dial.at == 20                  # the number rang for the Dial timeout


def test_dial_without_action_goes_on_unless_completed(world: World) -> None:
    world.sim.dial_outcomes[OPERATOR] = "busy"
    call = world.cloud.place_call(CALLER, HOTLINE, "/plain-dial", status_callback_path="/status")
    assert call.texts == [OPERATOR, "Nobody answered."] and call.dials[0].status == "busy"
    del world.sim.dial_outcomes[OPERATOR]
    call = world.cloud.place_call(CALLER, HOTLINE, "/plain-dial", status_callback_path="/status")
    assert call.ended_by == "dial_completed" and call.texts == [OPERATOR]


def test_rest_update_redirects_or_hangs_up_a_simulated_call(world: World) -> None:
    first, second = world.caller(), world.caller()
    world.client.calls(first.call_sid).update(twiml="<Response><Say>Sorry, we are closing.</Say></Response>")
    assert first.texts[-1] == "Sorry, we are closing." and first.ended
    ended = world.client.calls(second.call_sid).update(status="completed")
    assert ended.status == "completed" and second.ended_by == "rest_completed"
    assert [d["QueueResult"] for d in world.app.forms("/queue-done")] == ["redirected", "hangup"]


def test_queue_created_over_rest_is_the_one_enqueue_uses(world: World) -> None:
    queue = world.client.queues.create(friendly_name="operators", max_size=5)
    world.caller()
    assert world.sim.queue("operators").sid == queue.sid
    assert world.app.forms("/wait")[0]["QueueSid"] == queue.sid
    assert world.app.forms("/wait")[0]["MaxQueueSize"] == "5"


def test_failed_request_does_not_reach_the_simulator(world: World) -> None:
    caller = world.caller()
    queue = world.operators()
    seen = len(world.app.log)
    world.api.fail_next(500)
    with pytest.raises(TwilioRestException) as err:
        world.client.queues(queue.sid).members("Front").update(url=BASE + "/connect")
    assert err.value.status == 500
    world.api.fail_next(503)
    with pytest.raises(TwilioRestException):
        world.client.calls.create(to=CALLBACK_TO, from_=HOTLINE, url=BASE + "/callback")
    world.cloud.wait_idle(2.0)
    assert caller.queue_position == 1 and world.cloud.outbound_calls == []
    assert len(world.app.log) == seen


def test_delayed_dequeue_still_reaches_the_simulator(world: World) -> None:
    caller = world.caller()
    queue = world.operators()
    impatient = fake_client(world.api, timeout=0.2)
    world.api.delay_next(0.5)
    with pytest.raises(requests.exceptions.Timeout):
        impatient.queues(queue.sid).members("Front").update(url=BASE + "/connect")
    deadline = time.monotonic() + 3.0
    while world.api.requests[-1].status == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert world.api.requests[-1].status == 200
    assert caller.ended and world.app.forms("/connect")[0]["CallSid"] == caller.call_sid
