"""A locked, slow or lost database: every webhook answers within its budget, a person is
always reachable without the database, and a promised callback is kept (the spool)."""
from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import select

from hotline_harness import heard
from ivr.callback_spool import NOTE, CallbackSpool, SpooledCallback
from ivr.config import SHANGHAI
from ivr.console.callbacks import worklist
from ivr.console.waiting import waiting_now
from ivr.db.models import Booking
from ivr.telephony.webhook_guard import GUARD_CATCHES

EVENING = datetime(2026, 11, 26, 21, 0, tzinfo=SHANGHAI)
WAIT = 1.0  # DB_WAIT_SECONDS in these tests: the default (3 s) would only make them slower


def _db_file(hotline) -> Path:
    return Path(hotline.settings.database_url.removeprefix("sqlite:///"))


@contextmanager
def write_lock_held(hotline) -> Iterator[None]:
    """Another program holds SQLite's write lock (BEGIN IMMEDIATE) until the block ends."""
    other = sqlite3.connect(_db_file(hotline), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def test_a_locked_database_costs_one_bounded_wait_then_a_person_without_it(make_hotline) -> None:
    hotline = make_hotline(DB_WAIT_SECONDS=str(WAIT))
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    with write_lock_held(hotline):
        waited = timed(lambda: call.press("1"))
        assert WAIT * 0.9 < waited < WAIT + 1.0, waited
        assert "对不起，系统出了点问题。" in heard(call)
        assert call.pending_gather is not None and call.pending_gather.action.endswith("/twilio/recover")
        # 0 at the apology: the database failed a moment ago, so no second wait
        assert timed(lambda: call.press("0")) < 0.5
        assert "正在为您转接工作人员" in heard(call)
        assert call.state == "queued"
        # The queue's wait loop goes on from Twilio's values alone; 1 leaves for a callback.
        call.wait(35)
        assert "请稍等" in heard(call)
        assert timed(lambda: call.press("1")) < 0.5
        assert "我们已经记下您的来电" in heard(call)
        assert hotline.rt.spool.pending() == 1
        health = hotline.app.test_client().get("/healthz")
        assert health.status_code == 503 and health.get_json()["database"].startswith("error")
    assert hotline.app.test_client().get("/healthz").get_json()["spooled_callbacks"] == 1
    assert hotline.rt.spool.drain(hotline.rt.sessions) == 1
    assert [(b.caller, b.status, b.outcome_note) for b in hotline.bookings()] == [
        ("+8613800000002", "open", NOTE)]
    with hotline.rt.sessions() as db:
        assert [item.note for item in worklist(db, hotline.clock.now())] == [NOTE]


def test_a_caller_queued_without_the_database_is_seen_by_operators_once_it_is_back(make_hotline) -> None:
    hotline = make_hotline(DB_WAIT_SECONDS=str(WAIT))
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    with write_lock_held(hotline):
        call.press("1")
        call.press("0")
        assert call.state == "queued"
    assert hotline.handoffs() == []
    hotline.rt.availability.answered()  # as after any other caller's successful turn
    call.wait(35)  # the next round of the wait loop reaches the database again
    assert "请稍等" in heard(call)
    [handoff] = hotline.handoffs()
    assert (handoff.call_sid, handoff.reason, handoff.status) == (call.call_sid, "system_error", "waiting")
    with hotline.rt.sessions() as db:
        assert [w.handoff_id for w in waiting_now(db, hotline.clock.now())] == [handoff.id]
    assert hotline.step(call) == "queue"
    call.press("1")  # leaving the queue is the usual way on now: a callback booked in the dialog
    assert "好的，我们帮您预约回电" in heard(call)
    assert hotline.rt.spool.pending() == 0 and hotline.handoffs()[0].status != "waiting"


def test_every_answer_stays_within_the_budget_while_the_database_is_locked(make_hotline) -> None:
    hotline = make_hotline(DB_WAIT_SECONDS=str(WAIT))
    hotline.remember_language("+8613800000002")
    calls = [hotline.call() for _ in range(3)]
    before = sum(GUARD_CATCHES.values())
    with write_lock_held(hotline):
        waits = [timed(lambda c=c: c.press("1")) for c in calls]  # noqa: B023
        new_call = hotline.call("+8613800000001")
        assert "对不起，系统出了点问题。" in heard(new_call)
    assert max(waits) < WAIT + 1.0
    assert sum(GUARD_CATCHES.values()) - before == 4  # the four locked turns, nothing else
    for call in calls:  # the database is back: 1 starts again where a caller left off
        call.press("1")
        assert hotline.step(call) == "main_menu"


def test_after_hours_the_promise_is_kept_by_the_spool(make_hotline) -> None:
    hotline = make_hotline(start=EVENING, DB_WAIT_SECONDS=str(WAIT))
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    with write_lock_held(hotline):
        call.press("0")
        call.press("0")
        assert "会在工作时间给您回电" in heard(call)
        replay = call.replay_last_request()  # Twilio retries the webhook: still one entry
        assert "/twilio/recover" in replay
        assert hotline.rt.spool.pending() == 1
    assert hotline.rt.spool.drain(hotline.rt.sessions) == 1
    assert hotline.rt.spool.drain(hotline.rt.sessions) == 0
    assert len(hotline.bookings()) == 1


def test_no_promise_without_a_place_to_keep_it(make_hotline, tmp_path: Path) -> None:
    hotline = make_hotline(start=EVENING, DB_WAIT_SECONDS=str(WAIT))
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    hotline.rt.spool = CallbackSpool(blocker / "callbacks")
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    with write_lock_held(hotline):
        call.press("0")
        call.press("0")
    said = heard(call)
    assert "会在工作时间给您回电" not in said and "请过一会儿再打来" in said


def test_two_workers_book_each_spooled_callback_once(make_hotline) -> None:
    hotline = make_hotline()
    spool = hotline.rt.spool
    for n in range(20):
        assert spool.add(SpooledCallback(f"CA{n:032x}", f"+86138000{n:05d}", "cmn", "after_hours",
                                         hotline.clock.now()))
    results: list[int] = []
    workers = [threading.Thread(target=lambda: results.append(spool.drain(hotline.rt.sessions)))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sum(results) == 20 and spool.pending() == 0
    with hotline.rt.sessions() as db:
        sids = list(db.execute(select(Booking.call_sid)).scalars())
    assert sorted(sids) == [f"CA{n:032x}" for n in range(20)]


def test_a_worker_that_died_after_booking_does_not_book_again(make_hotline) -> None:
    hotline = make_hotline()
    spool = hotline.rt.spool
    entry = SpooledCallback("CA" + "a" * 32, "+8613800000002", "cmn", "after_hours", hotline.clock.now())
    assert spool.add(entry)
    assert spool.drain(hotline.rt.sessions) == 1
    assert spool.add(entry)  # as if the file had survived the commit
    assert spool.drain(hotline.rt.sessions) == 0
    assert spool.pending() == 0 and len(hotline.bookings()) == 1


def test_the_spool_refuses_what_is_not_a_call_and_a_number(make_hotline) -> None:
    spool = make_hotline().rt.spool
    now = datetime(2026, 11, 26, 21, 0, tzinfo=SHANGHAI)
    assert not spool.add(SpooledCallback("../../etc/passwd", "+8613800000002", "cmn", "x", now))
    assert not spool.add(SpooledCallback("CA" + "b" * 32, "anonymous", "cmn", "x", now))
    assert spool.pending() == 0


def test_healthz_reports_a_database_that_can_be_read_but_not_written(make_hotline) -> None:
    hotline = make_hotline(DB_WAIT_SECONDS=str(WAIT))
    client = hotline.app.test_client()
    assert client.get("/healthz").status_code == 200
    with write_lock_held(hotline):
        started = time.monotonic()
        response = client.get("/healthz")
        assert time.monotonic() - started < WAIT + 1.0
    assert response.status_code == 503
    assert response.get_json()["database"] == "error: OperationalError"


@pytest.mark.parametrize("value", ["0", "15", "soon"])
def test_budgets_must_fit_inside_twilios_15_seconds(make_hotline, value: str) -> None:
    from ivr.config import ConfigError
    with pytest.raises(ConfigError, match="WEBHOOK_BUDGET_SECONDS"):
        make_hotline(WEBHOOK_BUDGET_SECONDS=value)
