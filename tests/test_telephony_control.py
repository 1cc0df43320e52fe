"""The telephony control port and its Twilio implementation, through the real twilio client and
the loopback fake REST API: what is sent, and how failures become TelephonyError."""
from __future__ import annotations

import inspect
from typing import Iterator

import pytest

from ivr.simulator.rest_api import FakeTwilioApi, fake_client
from ivr.telephony.control import CallGone, TelephonyControl, TelephonyError
from ivr.telephony.twilio_control import CALL_EVENTS, QUEUE_NOT_FOUND, TwilioControl

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "secret-token"
HOTLINE, CALLER = "+862160000000", "+8613800000002"
BASE = "https://hotline.example"


@pytest.fixture()
def api() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture()
def control(api: FakeTwilioApi) -> TwilioControl:
    return TwilioControl(fake_client(api, timeout=0.5))


def test_twilio_control_has_the_ports_methods_with_the_ports_signatures(control: TwilioControl) -> None:
    assert isinstance(control, TelephonyControl)
    for name in ("take_queued_call", "place_call", "send_sms"):
        port = inspect.signature(getattr(TelephonyControl, name))
        implementation = inspect.signature(getattr(TwilioControl, name))
        assert list(implementation.parameters) == list(port.parameters), name
        assert implementation.return_annotation == port.return_annotation, name


def test_sms_and_call_are_created_as_before(api: FakeTwilioApi, control: TwilioControl) -> None:
    message_sid = control.send_sms(CALLER, HOTLINE, "您预约的回电")
    assert (api.messages[message_sid].to, api.messages[message_sid].body) == (CALLER, "您预约的回电")
    call_sid = control.place_call(CALLER, HOTLINE, f"{BASE}/answered", f"{BASE}/status", 25)
    (sent,) = api.requests_to("POST", "/Calls.json")
    assert (sent.param("Url"), sent.param("Method"), sent.param("StatusCallback")) == (
        f"{BASE}/answered", "POST", f"{BASE}/status")
    assert sent.param("StatusCallbackMethod") == "POST" and sent.form["StatusCallbackEvent"] == CALL_EVENTS
    assert api.calls[call_sid].timeout == 25


def test_taking_a_queued_call_redirects_that_member(api: FakeTwilioApi, control: TwilioControl) -> None:
    control.client.queues.create(friendly_name="operators")
    api.enqueue("operators")
    caller = api.enqueue("operators")
    control.take_queued_call("operators", caller, f"{BASE}/connect?handoff=7")
    assert api.calls[caller].url == f"{BASE}/connect?handoff=7"
    (update,) = api.requests_to("POST", f"/Members/{caller}.json")
    assert update.param("Method") == "POST"


def test_a_caller_no_longer_in_the_queue_is_gone(api: FakeTwilioApi, control: TwilioControl) -> None:
    control.client.queues.create(friendly_name="operators")
    with pytest.raises(CallGone) as err:
        control.take_queued_call("operators", "CA" + "0" * 32, f"{BASE}/connect?handoff=1")
    assert (err.value.code, err.value.retryable) == (404, False)


def test_a_missing_queue_is_not_retryable(control: TwilioControl) -> None:
    with pytest.raises(TelephonyError) as err:
        control.take_queued_call("operators", "CA" + "0" * 32, f"{BASE}/connect?handoff=1")
    assert (err.value.message, err.value.retryable, err.value.code) == (QUEUE_NOT_FOUND, False, None)


@pytest.mark.parametrize(("status", "reason", "retryable"), [
    (500, "Internal Server Error", True),
    (503, "Service Unavailable", True),
    (429, "Too Many Requests", True),  # Twilio's rate limit: later is fine
    (400, "Bad Request", False),
    (401, "Authenticate", False),
])
def test_twilio_statuses_become_telephony_errors(api: FakeTwilioApi, control: TwilioControl, status: int,
                                                 reason: str, retryable: bool) -> None:
    api.fail_next(status)
    with pytest.raises(TelephonyError) as err:
        control.send_sms(CALLER, HOTLINE, "hi")
    message = f"Twilio error {status}: Unable to create record: {reason}"
    assert (err.value.message, err.value.retryable, err.value.code) == (message, retryable, status)
    assert str(err.value) == message


def test_a_failed_queue_listing_keeps_its_status(api: FakeTwilioApi, control: TwilioControl) -> None:
    api.fail_next(500)
    with pytest.raises(TelephonyError) as err:
        control.take_queued_call("operators", "CA" + "0" * 32, f"{BASE}/connect?handoff=1")
    assert (err.value.message, err.value.retryable, err.value.code) == (
        "Twilio error 500: Internal Server Error", True, 500)


def test_no_answer_in_time_is_retryable(api: FakeTwilioApi, control: TwilioControl) -> None:
    api.delay_next(2.0)  # longer than the client's 0.5 s timeout
    with pytest.raises(TelephonyError) as err:
        control.place_call(CALLER, HOTLINE, f"{BASE}/answered", f"{BASE}/status", 25)
    assert err.value.retryable and err.value.code is None
    assert err.value.message == "Twilio did not answer in time (it may still act on the request)"


def test_an_unreachable_twilio_is_retryable(api: FakeTwilioApi, control: TwilioControl) -> None:
    api.stop()
    with pytest.raises(TelephonyError) as err:
        control.send_sms(CALLER, HOTLINE, "hi")
    assert (err.value.message, err.value.retryable, err.value.code) == ("Twilio could not be reached", True, None)
