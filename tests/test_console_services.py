"""The console's rules, below the web pages: who waits, claims, outcomes and retries, rules."""
from __future__ import annotations

import threading
from datetime import timedelta, timezone

import pytest
from sqlalchemy import select

from ivr.console.accounts import create_operator
from ivr.console.callbacks import CallbackError, claim, followups, record_outcome, release_stale_claims, worklist
from ivr.console.waiting import waiting_now
from ivr.db.models import AuditEntry, Booking, ServiceRule
from ivr.service_rules import RuleError, current_rules, save_rule, save_rules
from ivr.timeutil import to_db


def test_an_escalated_caller_waits_with_a_masked_number_and_a_story_without_id_digits(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    call.press("1")
    call.press("1234#")  # ID characters: wrong, never shown
    call.press("0#")
    (handoff,) = hotline.handoffs()
    with hotline.rt.sessions() as db:
        (waiting,) = waiting_now(db, handoff.created_at.replace(tzinfo=timezone.utc) + timedelta(seconds=42))
    assert waiting.number == "*********0002" and waiting.language == "普通话" and not waiting.verified
    assert waiting.reason == "按 0 要人工" and waiting.waited_seconds == 42
    text = "\n".join(waiting.story)
    assert "主菜单：按键 1" in text and "身份核验：按键 ####" in text and "1234" not in text
    call.hangup()
    with hotline.rt.sessions() as db:
        assert waiting_now(db, hotline.clock.now()) == []
    assert hotline.handoffs()[0].status == "hung_up"


def test_a_caller_who_gives_up_waiting_leaves_the_list(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    call.press("0")
    call.wait(31)
    call.press("1")  # "don't want to wait: call me back"
    assert hotline.handoffs()[0].status == "left"


def test_after_hours_handoffs_do_not_wait(make_hotline) -> None:
    from hotline_harness import THURSDAY_10AM
    hotline = make_hotline(start=THURSDAY_10AM.replace(hour=20))
    hotline.remember_language("+8613800000002")
    hotline.call().press("0")
    assert hotline.handoffs()[0].status == "after_hours"


def test_only_one_of_two_operators_racing_wins_a_booking(hotline) -> None:
    booking = hotline.book()
    now = hotline.clock.now()
    results: dict[str, str] = {}
    start = threading.Barrier(2)

    def try_claim(name: str) -> None:
        start.wait()
        try:
            with hotline.rt.sessions() as db, db.begin():
                claim(db, booking.id, name, now, 20)
            results[name] = "won"
        except CallbackError as exc:
            results[name] = str(exc)

    threads = [threading.Thread(target=try_claim, args=(name,)) for name in ("op.li", "op.wang")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert list(results.values()).count("won") == 1
    loser = next(name for name, result in results.items() if result != "won")
    winner = next(name for name, result in results.items() if result == "won")
    assert results[loser] == f"这条预约已由 {winner} 认领"
    # A forgotten claim is freed after the claim time; then someone else may take it.
    with hotline.rt.sessions() as db, db.begin():
        assert release_stale_claims(db, now + timedelta(minutes=21), 20) == 1
        claim(db, booking.id, loser, now + timedelta(minutes=21), 20)


def test_no_answer_is_retried_then_needs_manual_follow_up(hotline) -> None:
    booking = hotline.book()
    settings = hotline.settings  # 3 attempts, 30 minutes apart
    now = hotline.clock.now()
    for attempt in range(1, 4):
        with hotline.rt.sessions() as db, db.begin():
            claim(db, booking.id, "op.li", now, 20)
            status = record_outcome(db, booking.id, "op.li", "no_answer", f"try {attempt}", now, settings)
        with hotline.rt.sessions() as db:
            row = db.get(Booking, booking.id)
            if attempt < 3:
                assert status == "open" and row.claimed_by is None
                assert row.next_attempt_at == to_db(now + timedelta(minutes=30))
                assert [item.attempts for item in worklist(db, now)] == [attempt]
            else:
                assert status == "followup" and worklist(db, now) == []
                (item,) = followups(db)
                assert item.attempts == 3 and item.note == "try 3" and item.number == "*********0002"
        now += timedelta(minutes=31)
    with hotline.rt.sessions() as db:
        actions = db.execute(select(AuditEntry.action).where(AuditEntry.actor == "op.li")).scalars().all()
    assert actions.count("callback_outcome") == 3


def test_outcomes_need_the_claim_and_a_known_outcome(hotline) -> None:
    booking = hotline.book()
    now = hotline.clock.now()
    with hotline.rt.sessions() as db, db.begin():
        with pytest.raises(CallbackError, match="请先认领"):
            record_outcome(db, booking.id, "op.li", "reached", "", now, hotline.settings)
        claim(db, booking.id, "op.li", now, 20)
        with pytest.raises(CallbackError, match="请选择"):
            record_outcome(db, booking.id, "op.li", "maybe", "", now, hotline.settings)
        assert record_outcome(db, booking.id, "op.li", "resolved", "pension paid", now, hotline.settings) == "done"
        with pytest.raises(CallbackError, match="已经处理完"):
            claim(db, booking.id, "op.wang", now, 20)


def test_slot_capacity_changed_by_a_supervisor_applies_to_the_next_caller(hotline) -> None:
    now = hotline.clock.now()
    with hotline.rt.sessions() as db, db.begin():
        create_operator(db, "boss", "a long password", "supervisor", now)
        save_rule(db, "slot_capacity", "1", "boss", now)
    first = hotline.book("+8613800000002")
    second = hotline.book("+8613800000003")
    assert first.slot_start != second.slot_start  # the first slot is full with one booking
    with hotline.rt.sessions() as db:
        (entry,) = db.execute(select(AuditEntry).where(AuditEntry.action == "rule_changed")).scalars()
    assert entry.detail == {"rule": "slot_capacity", "old": None, "new": 1}


def test_a_day_off_and_shorter_hours_close_the_queue(hotline) -> None:
    now = hotline.clock.now()
    with hotline.rt.sessions() as db, db.begin():
        save_rule(db, "operator_hours", "13:00-17:00", "boss", now)
    hotline.remember_language("+8613800000002")
    hotline.call().press("0")
    assert hotline.handoffs()[-1].status == "after_hours"
    with hotline.rt.sessions() as db, db.begin():
        save_rule(db, "operator_hours", "09:00-17:00", "boss", now)
        save_rule(db, "days_off", [now.date().isoformat()], "boss", now)
        rules = current_rules(db, hotline.rt.policy)
    assert rules.operator_hours == "09:00-17:00" and rules.days_off == (now.date(),)
    hotline.call("+8613800000003").press("0")
    assert hotline.handoffs()[-1].status == "after_hours"


@pytest.mark.parametrize("key, value, message", [
    ("operator_hours", "9-5", "not a time like 09:00"), ("slot_capacity", "0", "from 1 to 50"),
    ("slot_capacity", "many", "whole number"), ("colour", "red", "unknown rule")])
def test_bad_rules_are_refused_with_a_reason(hotline, key, value, message) -> None:
    with hotline.rt.sessions() as db, db.begin():
        with pytest.raises(RuleError, match=message):
            save_rule(db, key, value, "boss", hotline.clock.now())


def test_saving_the_rules_form_stores_only_what_changed(hotline) -> None:
    now = hotline.clock.now()
    base = hotline.rt.policy
    form = {"operator_hours": "09:00-12:00, 13:00-17:00", "service_hours": str(base.service_hours),
            "slot_capacity": str(base.slot_capacity), "days_off": [], "extra_working_days": []}
    with hotline.rt.sessions() as db, db.begin():
        assert save_rules(db, form, base, "boss", now) == []  # the same hours, written differently
        assert save_rules(db, dict(form, slot_capacity="2", days_off=["2026-12-01"]), base, "boss", now) == \
            ["slot_capacity", "days_off"]
        assert [row.key for row in db.execute(select(ServiceRule).order_by(ServiceRule.key)).scalars()] == \
            ["days_off", "slot_capacity"]
