"""The console's Twilio side end to end: the real twilio client → the loopback fake REST API →
the call simulator → the hotline's signed webhooks.  Taking a queued caller, calling back."""
from __future__ import annotations

from datetime import timedelta
import pytest
from sqlalchemy import select

from cloud_harness import CALLER, OPERATOR_PHONE, Cloud
from hotline_harness import HOTLINE_NUMBER
from ivr.console.waiting import TakeError
from ivr.db.models import AuditEntry, Handoff, Operator, OutboxItem
from ivr.outbox.sending import drain




def test_taking_a_caller_rings_the_operator_and_brings_the_caller_back_afterwards(cloud: Cloud) -> None:
    caller = cloud.waiting_caller()
    taken = cloud.take()
    assert taken.number == "*********0002"
    (dial,) = caller.dials
    assert dial.targets == [OPERATOR_PHONE] and dial.caller_id == HOTLINE_NUMBER and dial.status == "completed"
    handoff = cloud.handoff()
    assert (handoff.status, handoff.taken_by) == ("done", "zhang")
    assert cloud.hotline.step(caller) == "after_person"  # "anything else?" after the talk
    (member_update,) = cloud.api.requests_to("POST", f"/Members/{caller.call_sid}.json")
    assert member_update.form["Url"] == [f"{cloud.rt.settings.public_base_url}/twilio/console/connect?handoff=1"]
    with cloud.rt.sessions() as db:
        actions = db.execute(select(AuditEntry.action).where(AuditEntry.actor == "zhang")).scalars().all()
    assert "take_call" in actions


def test_an_operator_who_does_not_answer_puts_the_caller_back_in_the_queue(cloud: Cloud) -> None:
    caller = cloud.waiting_caller()
    cloud.hotline.sim.dial_outcomes[OPERATOR_PHONE] = "no-answer"
    cloud.take()
    assert caller.dials[-1].status == "no-answer"
    assert caller.state == "queued" and cloud.hotline.step(caller) == "queue"
    handoff = cloud.handoff()
    assert (handoff.status, handoff.taken_by) == ("waiting", None)


def test_a_twilio_failure_leaves_the_caller_waiting_and_says_why(cloud: Cloud) -> None:
    caller = cloud.waiting_caller()
    cloud.api.fail_next(500)
    with pytest.raises(TakeError, match="Twilio error 500: Internal Server Error"):
        cloud.take()
    assert caller.state == "queued" and cloud.handoff().status == "waiting"
    cloud.api.delay_next(2.0)  # longer than the 1 s REST timeout
    with pytest.raises(TakeError, match="did not answer in time"):
        cloud.take()
    assert cloud.handoff().status == "waiting"


def test_a_caller_who_hung_up_just_before_is_not_taken(cloud: Cloud) -> None:
    caller = cloud.waiting_caller()
    with cloud.sim.lock:
        caller.hangup()
    with pytest.raises(TakeError, match="现在没有人在等候"):
        cloud.take()


def test_no_operator_phone_no_take(cloud: Cloud) -> None:
    cloud.waiting_caller()
    with cloud.rt.sessions() as db, db.begin():
        db.execute(select(Operator)).scalar_one().phone = None
    with pytest.raises(TakeError, match="登记电话号码"):
        cloud.take()
    assert cloud.handoff().status == "waiting"


def test_call_now_rings_the_operator_then_dials_the_caller_with_the_hotline_number(cloud: Cloud) -> None:
    booking = cloud.booking()
    attempt = cloud.call_now(booking.id)
    (call,) = cloud.sim.outbound_calls
    assert call.to == OPERATOR_PHONE and call.from_ == HOTLINE_NUMBER
    (dial,) = call.dials
    assert dial.targets == [CALLER] and dial.caller_id == HOTLINE_NUMBER
    assert "预约回电，尾号0002" in " ".join(call.texts)
    assert (attempt.call_sid, attempt.status, attempt.dial_status) == (call.call_sid, "completed", "completed")


def test_a_caller_who_does_not_answer_is_shown_to_the_operator(cloud: Cloud) -> None:
    booking = cloud.booking()
    cloud.hotline.sim.dial_outcomes[CALLER] = "no-answer"
    attempt = cloud.call_now(booking.id)
    assert attempt.dial_status == "no-answer"
    (call,) = cloud.sim.outbound_calls
    assert "对方没有接听" in " ".join(call.texts)


def test_caller_first_greets_the_caller_then_dials_the_operator(make_hotline, api) -> None:
    cloud = Cloud(make_hotline, api, CALLBACK_MODE="caller_first")
    booking = cloud.booking()
    attempt = cloud.call_now(booking.id)
    (call,) = cloud.sim.outbound_calls
    assert call.to == CALLER and call.dials[0].targets == [OPERATOR_PHONE]
    assert "按您的预约给您回电话" in " ".join(call.texts)
    assert attempt.status == "completed"


def test_a_callback_nobody_picks_up_reports_no_answer(make_hotline, api) -> None:
    cloud = Cloud(make_hotline, api, CALLBACK_MODE="caller_first")
    cloud.sim.answers[CALLER] = "no-answer"
    attempt = cloud.call_now(cloud.booking().id)
    assert attempt.status == "no-answer" and attempt.dial_status is None


def test_a_call_twilio_refuses_is_retried_by_the_worker_then_placed(cloud: Cloud) -> None:
    booking = cloud.booking()
    cloud.api.fail_next(503)
    attempt = cloud.call_now(booking.id)
    assert attempt.status == "placing" and "503" in attempt.error and cloud.sim.outbound_calls == []
    report = drain(cloud.rt.sessions, cloud.telephony, HOTLINE_NUMBER, cloud.now() + timedelta(seconds=31))
    cloud.sim.wait_idle()
    assert report.sent >= 1
    attempt = cloud.attempt(attempt.id)
    assert attempt.status == "completed" and attempt.error is None
    with cloud.rt.sessions() as db:
        item = db.execute(select(OutboxItem).where(OutboxItem.kind == "call")).scalar_one()
    assert item.status == "sent" and item.attempts == 2


def test_a_caller_who_hangs_up_while_talking_to_the_operator_closes_the_handoff(cloud: Cloud) -> None:
    caller = cloud.waiting_caller()
    with cloud.rt.sessions() as db, db.begin():  # taken, and Twilio is connecting the two
        handoff = db.execute(select(Handoff)).scalar_one()
        handoff.status, handoff.taken_by = "taken", "zhang"
    with cloud.sim.lock:
        caller.hangup()
    assert cloud.handoff().status == "done"


def test_a_caller_queued_while_the_database_was_down_can_be_taken_once_it_is_back(cloud: Cloud) -> None:
    import sqlite3
    from pathlib import Path
    hotline = cloud.hotline
    caller = cloud.call()
    lock = sqlite3.connect(Path(hotline.settings.database_url.removeprefix("sqlite:///")), isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        with cloud.sim.lock:
            caller.press("1")  # the apology
            caller.press("0")  # the queue, without a record
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert caller.state == "queued"
    hotline.rt.availability.answered()
    with cloud.sim.lock:
        caller.wait(35)  # the wait loop reaches the database again: the handoff is recorded
    taken = cloud.take()
    assert taken.number == "*********0002"
    assert caller.dials[-1].targets == [OPERATOR_PHONE] and caller.dials[-1].status == "completed"
    assert cloud.handoff().status == "done" and hotline.step(caller) == "after_person"
