"""Booking confirmations by SMS: written with the booking, sent by the worker through the real
twilio client to a fake Twilio REST API on loopback, retried with back-off."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hotline_harness import ACCOUNT_SID, TOKEN
from ivr.db.models import OutboxItem
from ivr.outbox.sending import MAX_ATTEMPTS, drain
from ivr.simulator.rest_api import FakeTwilioApi, fake_client
from ivr.telephony.twilio_control import TwilioControl


def book(hotline, keys: str = "2111") -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    for key in keys:
        call.press(key)
    assert hotline.step(call) == "booked"
    return call


def outbox(hotline) -> list[OutboxItem]:
    with hotline.rt.sessions() as db:
        return list(db.execute(select(OutboxItem).order_by(OutboxItem.id)).scalars())


def test_a_booking_is_confirmed_by_sms_once(hotline) -> None:
    call = book(hotline)
    call.replay_last_request()  # a retried webhook adds no second message
    (item,) = outbox(hotline)
    assert item.payload["to"] == "+8613800000002"
    assert item.payload["body"] == ("【上海市民办事热线】您预约的回电：11月26日（星期四）11:00至12:00。"
                                    "工作人员会从021-6000-0000给您打电话，请留意接听。要取消，请拨打本热线，按3。")
    with FakeTwilioApi(ACCOUNT_SID, TOKEN) as api:
        report = drain(hotline.rt.sessions, TwilioControl(fake_client(api, timeout=2)), "+862160000000", hotline.clock.now())
        assert report.sent == 1
        (sent,) = api.messages.values()
        assert (sent.to, sent.from_, sent.body) == ("+8613800000002", "+862160000000", item.payload["body"])
    (item,) = outbox(hotline)
    assert item.status == "sent" and item.provider_sid == sent.sid


def test_landline_callbacks_get_no_sms(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    for key in "22":
        call.press(key)
    call.press("61234567#")
    for key in "111":
        call.press(key)
    assert hotline.step(call) == "booked"
    assert outbox(hotline) == []


def test_twilio_outage_is_retried_with_back_off_then_sent(hotline) -> None:
    book(hotline)
    now = hotline.clock.now()
    with FakeTwilioApi(ACCOUNT_SID, TOKEN) as api:
        client = TwilioControl(fake_client(api, timeout=0.5))
        api.fail_next(503)
        assert drain(hotline.rt.sessions, client, "+862160000000", now).retried == 1
        assert drain(hotline.rt.sessions, client, "+862160000000", now).sent == 0  # not due yet
        api.delay_next(2.0)  # longer than the client's timeout
        later = now + timedelta(seconds=31)
        assert drain(hotline.rt.sessions, client, "+862160000000", later).retried == 1
        (item,) = outbox(hotline)
        assert item.attempts == 2 and "did not answer in time" in item.last_error
        assert drain(hotline.rt.sessions, client, "+862160000000", later + timedelta(seconds=61)).sent == 1


def test_a_dead_api_is_given_up_after_the_last_attempt(hotline) -> None:
    book(hotline)
    now = hotline.clock.now()
    with FakeTwilioApi(ACCOUNT_SID, TOKEN) as api:
        client = TwilioControl(fake_client(api, timeout=0.5))
        api.fail_next(500, times=MAX_ATTEMPTS)
        moment = now
        for _ in range(MAX_ATTEMPTS):
            drain(hotline.rt.sessions, client, "+862160000000", moment)
            moment += timedelta(hours=2)
        (item,) = outbox(hotline)
        assert item.status == "failed" and item.attempts == MAX_ATTEMPTS


def test_a_refused_message_fails_at_once_and_a_rate_limited_one_is_retried(hotline) -> None:
    book(hotline)
    now = hotline.clock.now()
    with FakeTwilioApi(ACCOUNT_SID, TOKEN) as api:
        telephony = TwilioControl(fake_client(api, timeout=0.5))
        api.fail_next(429)
        assert drain(hotline.rt.sessions, telephony, "+862160000000", now).retried == 1
        api.fail_next(400)
        assert drain(hotline.rt.sessions, telephony, "+862160000000", now + timedelta(seconds=31)).failed == 1
    (item,) = outbox(hotline)
    assert item.status == "failed" and item.attempts == 2
    assert item.last_error == "Twilio error 400: Unable to create record: Bad Request"
