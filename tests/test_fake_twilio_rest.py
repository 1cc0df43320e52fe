"""The real twilio Client against the local fake Twilio REST API (ivr.simulator.rest_api)."""

from __future__ import annotations

import re
import time
from typing import Iterator

import pytest
import requests
from twilio.base.exceptions import TwilioRestException

from ivr.simulator.rest_api import FakeTwilioApi, fake_client
from ivr.telephony.rest_client import BaseUrlHttpClient

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "secret-token"
CALL_SID = re.compile(r"^CA[0-9a-f]{32}$")


@pytest.fixture()
def api() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture()
def client(api: FakeTwilioApi):
    return fake_client(api, timeout=2.0)


def test_redirect_keeps_path_and_query() -> None:
    http = BaseUrlHttpClient("http://127.0.0.1:9999/", timeout=1.0)
    assert http.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json?PageSize=5") == (
        "http://127.0.0.1:9999/2010-04-01/Accounts/AC1/Calls.json?PageSize=5")
    assert http.rewrite("https://api.dublin.ie1.twilio.com/x") == "http://127.0.0.1:9999/x"
    assert http.rewrite("https://example.org/x") == "https://example.org/x"


def test_create_fetch_list_and_update_call(api: FakeTwilioApi, client) -> None:
    call = client.calls.create(
        to="+15005550100", from_="+15005550199", url="https://app.example/voice",
        status_callback="https://app.example/status",
        status_callback_event=["initiated", "answered", "completed"], timeout=20,
    )
    assert CALL_SID.match(call.sid)
    assert call.status == "queued"
    assert call.to == "+15005550100" and call._from == "+15005550199"  # CallInstance spells it _from
    assert call.account_sid == ACCOUNT_SID
    assert call.date_created is not None and call.date_created.tzinfo is not None

    sent = api.requests_to("POST", "/Calls.json")
    assert len(sent) == 1
    assert sent[0].path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert sent[0].param("Url") == "https://app.example/voice"
    assert sent[0].param("Timeout") == "20"
    assert sent[0].form["StatusCallbackEvent"] == ["initiated", "answered", "completed"]
    fake = api.calls[call.sid]
    assert fake.status_callback_event == ["initiated", "answered", "completed"]
    assert fake.timeout == 20

    assert client.calls(call.sid).fetch().sid == call.sid
    assert [c.sid for c in client.calls.list(limit=10)] == [call.sid]

    api.set_call_status(call.sid, "in-progress")
    updated = client.calls(call.sid).update(twiml="<Response><Hangup/></Response>")
    assert updated.status == "in-progress"
    assert api.calls[call.sid].twiml == "<Response><Hangup/></Response>"

    ended = client.calls(call.sid).update(status="completed")
    assert ended.status == "completed"
    assert api.requests_to("POST", f"/Calls/{call.sid}.json")[-1].param("Status") == "completed"
    with pytest.raises(TwilioRestException) as err:
        client.calls(call.sid).update(url="https://app.example/late")
    assert err.value.status == 400 and err.value.code == 21220


def test_cancel_queued_call(api: FakeTwilioApi, client) -> None:
    call = client.calls.create(to="+15005550100", from_="+15005550199", twiml="<Response/>")
    assert client.calls(call.sid).update(status="canceled").status == "canceled"


def test_send_sms(api: FakeTwilioApi, client) -> None:
    msg = client.messages.create(to="+15005550100", from_="+15005550199", body="Your callback is booked")
    assert re.match(r"^SM[0-9a-f]{32}$", msg.sid)
    assert msg.status == "queued" and msg.body == "Your callback is booked"
    assert api.messages[msg.sid].to == "+15005550100"
    assert api.requests_to("POST", "/Messages.json")[0].param("Body") == "Your callback is booked"


def test_invalid_to_number(api: FakeTwilioApi, client) -> None:
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to="0612345678", from_="+15005550199", body="hi")
    assert err.value.status == 400
    assert err.value.code == 21211
    assert "Invalid 'To' Phone Number" in err.value.msg
    assert api.messages == {}


def test_wrong_token_is_401(api: FakeTwilioApi) -> None:
    bad = fake_client(api, timeout=2.0, auth_token="wrong")
    with pytest.raises(TwilioRestException) as err:
        bad.calls.create(to="+15005550100", from_="+15005550199", url="https://app.example/voice")
    assert err.value.status == 401 and err.value.code == 20003
    assert api.calls == {}
    assert api.requests[-1].authorized is False and api.requests[-1].status == 401


def test_queue_create_and_dequeue_front(api: FakeTwilioApi, client) -> None:
    queue = client.queues.create(friendly_name="support", max_size=10)
    assert queue.sid.startswith("QU") and queue.max_size == 10 and queue.current_size == 0
    first = api.enqueue(queue.sid)
    second = api.enqueue("support")
    assert client.queues(queue.sid).fetch().current_size == 2
    assert [q.friendly_name for q in client.queues.list()] == ["support"]

    peek = client.queues(queue.sid).members(second).fetch()
    assert peek.call_sid == second and peek.position == 2

    member = client.queues(queue.sid).members("Front").update(
        url="https://app.example/agent-bridge", method="POST")
    assert member.call_sid == first and member.queue_sid == queue.sid and member.position == 1
    assert api.calls[first].url == "https://app.example/agent-bridge"
    assert api.requests_to("POST", "/Members/Front.json")[0].param("Url") == "https://app.example/agent-bridge"
    assert [m.call_sid for m in client.queues(queue.sid).members.list()] == [second]


def test_empty_or_unknown_queue_is_404(api: FakeTwilioApi, client) -> None:
    queue = client.queues.create(friendly_name="empty")
    with pytest.raises(TwilioRestException) as err:
        client.queues(queue.sid).members("Front").update(url="https://app.example/x")
    assert err.value.status == 404 and err.value.code == 20404
    with pytest.raises(TwilioRestException) as err:
        client.queues("QU" + "f" * 32).members("Front").fetch()
    assert err.value.status == 404 and err.value.code == 20404


def test_injected_503(api: FakeTwilioApi, client) -> None:
    api.fail_next(503)
    with pytest.raises(TwilioRestException) as err:
        client.calls.create(to="+15005550100", from_="+15005550199", url="https://app.example/voice")
    assert err.value.status == 503
    assert api.calls == {}
    # only the next request failed
    call = client.calls.create(to="+15005550100", from_="+15005550199", url="https://app.example/voice")
    assert api.calls[call.sid].status == "queued"
    assert [r.status for r in api.requests] == [503, 201]


def test_injected_delay_times_out_quickly(api: FakeTwilioApi) -> None:
    client = fake_client(api, timeout=0.3)
    api.delay_next(3.0)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        client.messages.create(to="+15005550100", from_="+15005550199", body="hi")
    assert time.monotonic() - started < 1.5
    # the next request is answered normally
    assert client.messages.create(to="+15005550100", from_="+15005550199", body="again").status == "queued"
