"""Request values are checked at the adapter boundary: each input below used to raise inside
the service (the guard caught it and the caller heard "system problem"); now none does."""
from __future__ import annotations

import pytest

from hotline_harness import BASE_URL
from ivr.db.models import CallSession
from ivr.telephony.request_values import STALE_TURN, bounded_int, keys_value, turn_token
from ivr.telephony.webhook_guard import GUARD_CATCHES


def post(hotline, path: str, **params: str):
    client = hotline.app.test_client()
    signature = hotline.sim.sign(BASE_URL + path, params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    return response.data.decode()


def form(call, **extra: str) -> dict[str, str]:
    return {"CallSid": call.call_sid, "AccountSid": "AC" + "5" * 32, "From": "+8613800000002",
            "To": "+862160000000", "CallStatus": "in-progress", **extra}


@pytest.fixture()
def caught():
    """The guard's catches during the test (it must have none)."""
    before = sum(GUARD_CATCHES.values())
    yield lambda: sum(GUARD_CATCHES.values()) - before


def _queued_call(hotline):
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    call.press("0")
    assert hotline.step(call) == "queue" and call.state == "queued"
    return call


def _stored_reply(hotline, call) -> str:
    with hotline.rt.sessions() as db:
        return db.get(CallSession, call.call_sid).last_response


def _turn(hotline, call) -> int:
    with hotline.rt.sessions() as db:
        return db.get(CallSession, call.call_sid).turn


@pytest.mark.parametrize("raw", ["²", "①", "١٢", "1" * 40, "-3", " 2", "2.5", ""])
def test_numbers_are_ascii_digits_and_bounded(raw: str) -> None:
    assert bounded_int(raw, 7) == 7
    assert bounded_int("123456789", 7) == 123456789


@pytest.mark.parametrize("raw, keys", [("12*#", "12*#"), ("", None), (None, None), ("abc", ""), ("１", ""),
                                       ("1\n2", ""), ("1" * 65, ""), ("hangup", "")])
def test_keys_are_keypad_characters(raw, keys) -> None:
    assert keys_value(raw) == keys


@pytest.mark.parametrize("raw", [None, "", "x", "²", "9" * 30, "-1"])
def test_a_missing_or_malformed_turn_token_is_stale(raw) -> None:
    assert turn_token(raw) == STALE_TURN


def test_unicode_digits_in_queue_values(hotline, caught) -> None:
    call = _queued_call(hotline)
    body = post(hotline, "/twilio/queue/wait", **form(call, QueuePosition="²", QueueTime="①"))
    assert "<Gather" in body
    post(hotline, "/twilio/status", **form(call, CallStatus="completed", CallDuration="²"))
    assert caught() == 0


@pytest.mark.parametrize("path", ["/twilio/console/connect?handoff=" + "9" * 30,
                                  "/twilio/console/connected?handoff=" + "9" * 30,
                                  "/twilio/callback/answered?attempt=" + "9" * 30,
                                  "/twilio/callback/dialed?attempt=" + "9" * 30,
                                  "/twilio/callback/status?attempt=" + "9" * 30])
def test_huge_ids_in_operator_urls(hotline, caught, path: str) -> None:
    call = _queued_call(hotline)
    post(hotline, path, **form(call, DialCallStatus="completed"))
    assert caught() == 0


def test_keys_posted_while_queued_get_the_queue_again(hotline, caught) -> None:
    call = _queued_call(hotline)
    token = _turn(hotline, call)
    body = post(hotline, f"/twilio/turn?t={token}", **form(call, Digits="1"))
    assert "<Enqueue" in body and body == _stored_reply(hotline, call)
    assert hotline.step(call) == "queue" and _turn(hotline, call) == token
    assert caught() == 0


def test_queue_end_for_a_call_not_in_the_queue(hotline, caught) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    token = _turn(hotline, call)
    body = post(hotline, f"/twilio/queue/done?t={token}", **form(call, QueueResult="queue-full"))
    assert body == _stored_reply(hotline, call)
    assert hotline.step(call) == "main_menu" and _turn(hotline, call) == token
    assert caught() == 0


@pytest.mark.parametrize("query", ["", "?t=", "?t=abc", "?t=²", "?t=" + "9" * 30])
def test_a_turn_without_a_valid_token_replays_and_changes_nothing(hotline, caught, query: str) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    token = _turn(hotline, call)
    before = hotline.state(call)
    body = post(hotline, "/twilio/turn" + query, **form(call, Digits="1"))
    assert _turn(hotline, call) == token and hotline.state(call) == before
    assert body == _stored_reply(hotline, call)
    assert caught() == 0
