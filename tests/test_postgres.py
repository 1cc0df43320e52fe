"""The same call paths on PostgreSQL, the production database (row locks instead of SQLite's
whole-database write lock)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pytest
from alembic import command
from sqlalchemy import inspect, text

from hotline_harness import ACCOUNT_SID, BASE_URL, TOKEN, heard
from ivr.config import SHANGHAI
from ivr.console.accounts import authenticate, create_operator
from ivr.console.callbacks import CallbackError, claim
from ivr.console.throttle import ThrottlePolicy
from ivr.db.models import CallSession
from ivr.db.schema import alembic_config, make_engine, session_factory, upgrade
from ivr.outbox.sending import drain
from ivr.simulator.rest_api import FakeTwilioApi, fake_client
from ivr.telephony.twilio_control import TwilioControl
from postgres_server import PostgresServer
from scenario_runner import build_hotline, load_scenarios, run_scenario

SCENARIOS = {s["name"]: s for s in load_scenarios()}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize("name", [
    "five matters are read newest first, one at a time, and 1 goes on to the next",
    "a new booking replaces the old one after confirmation",
    "the daily limit holds across calls from the same number",
    "zero reaches the queue, position is announced, 1 leaves for a callback",
])
def test_scenarios_on_postgres(make_hotline, postgres, name: str) -> None:
    scenario = dict(SCENARIOS[name])
    scenario["setup"] = dict(scenario.get("setup", {}), env={"DATABASE_URL": postgres.create_database()})
    hotline = build_hotline(make_hotline, scenario)
    assert hotline.rt.db.dialect.name == "postgresql"
    run_scenario(hotline, scenario)


def test_simultaneous_retries_book_once_on_postgres(make_hotline, postgres) -> None:
    hotline = make_hotline(DATABASE_URL=postgres.create_database())
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    for key in "211":
        call.press(key)
    with hotline.rt.sessions() as db:
        turn = db.get(CallSession, call.call_sid).turn
    params = {"CallSid": call.call_sid, "AccountSid": "AC" + "0" * 32, "From": "+8613800000002",
              "To": "+862160000000", "Digits": "1"}
    path = f"/twilio/turn?t={turn}"
    signature = hotline.sim.sign(BASE_URL + path, params)

    def post(_: int) -> bytes:
        return hotline.app.test_client().post(path, data=params,
                                              headers={"X-Twilio-Signature": signature}).data

    with ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(pool.map(post, range(6)))
    assert len(set(bodies)) == 1
    assert [b.status for b in hotline.bookings()] == ["open"]
    call.press("1")  # the simulator's own copy of the same turn is one more retry
    assert "预约好了" in heard(call)
    assert len(hotline.bookings()) == 1


def test_migrations_upgrade_an_old_postgres_database(postgres) -> None:
    engine = make_engine(postgres.create_database())
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO matters (case_no, service, status, updated_at, phone, id_salt, id_hash, imported_at)"
            " VALUES ('20260001', 'pension', 'paid', now(), '+8613800000009', 's', 'h', now())"))
    upgrade(engine)
    assert {"bookings", "handoffs"} <= set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM matters")).scalar_one() == 1
    engine.dispose()


def test_concurrent_log_ins_cannot_slip_past_the_count_on_postgres(postgres) -> None:
    engine = make_engine(postgres.create_database())
    upgrade(engine)
    sessions = session_factory(engine)
    now = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    with sessions() as db, db.begin():
        create_operator(db, "zhang", "a good long password", "operator", now)
    for name, source in (("zhang", "203.0.113.9"), ("nobody", "203.0.113.10")):
        with ThreadPoolExecutor(max_workers=8) as pool:  # the racing attempts create the counters' rows
            reasons = list(pool.map(lambda _: authenticate(sessions, name, "wrong", source, now).reason, range(8)))
        assert reasons.count("throttled") == 8 - ThrottlePolicy().free_tries, reasons
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:  # and the revision goes back down on PostgreSQL too
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert "login_throttles" not in inspect(engine).get_table_names()
    assert "locked_until" in {c["name"] for c in inspect(engine).get_columns("operators")}
    engine.dispose()


def test_operators_racing_for_a_booking_on_postgres(make_hotline, postgres) -> None:
    hotline = make_hotline(DATABASE_URL=postgres.create_database())
    booking = hotline.book()
    now = hotline.clock.now()

    def try_claim(name: str) -> str:
        try:
            with hotline.rt.sessions() as db, db.begin():
                claim(db, booking.id, name, now, 20)
            return "won"
        except CallbackError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(try_claim, [f"op{i}" for i in range(6)]))
    assert results.count("won") == 1
    assert {r for r in results if r != "won"} == {f"这条预约已由 {hotline.bookings()[0].claimed_by} 认领"}


def test_two_workers_send_each_message_once_on_postgres(make_hotline, postgres) -> None:
    hotline = make_hotline(DATABASE_URL=postgres.create_database())
    for n in range(4):
        hotline.book(f"+861380000001{n}")
    with FakeTwilioApi(ACCOUNT_SID, TOKEN) as api:
        telephony = TwilioControl(fake_client(api, timeout=2))
        with ThreadPoolExecutor(max_workers=2) as pool:
            reports = list(pool.map(lambda _: drain(hotline.rt.sessions, telephony, "+862160000000",
                                                    hotline.clock.now()), range(2)))
        assert sum(r.sent for r in reports) == 4
        assert sorted(m.to for m in api.messages.values()) == [f"+861380000001{n}" for n in range(4)]


def test_a_locked_call_row_costs_one_bounded_wait_on_postgres(make_hotline, postgres) -> None:
    """Another session holds the call's row lock: the turn gives up after DB_WAIT_SECONDS
    (lock_timeout inside the webhook's budget), and 0 reaches the queue without waiting again."""
    import time

    import psycopg
    hotline = make_hotline(DATABASE_URL=postgres.create_database(), DB_WAIT_SECONDS="1")
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    url = hotline.settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as other:
        other.execute("SELECT 1 FROM call_sessions WHERE call_sid = %s FOR UPDATE", (call.call_sid,))
        started = time.monotonic()
        call.press("1")
        waited = time.monotonic() - started
        assert 0.9 < waited < 2.0, waited
        assert call.pending_gather is not None and call.pending_gather.action.endswith("/twilio/recover")
        started = time.monotonic()
        call.press("0")
        assert time.monotonic() - started < 0.5 and call.state == "queued"
        other.rollback()
    call.press("1")  # leaves the queue joined without a record: the callback is kept
    assert hotline.rt.spool.pending() == 1


def test_two_workers_call_each_number_once_on_postgres(make_hotline, postgres) -> None:
    """Two workers gather and place the same changes at once: one notification and one call per number."""
    from sqlalchemy import select as select_
    from ivr.db.models import Matter, MatterChange, Notification, OutboxItem
    from ivr.notify.planning import run_pass
    from ivr.timeutil import to_db
    hotline = make_hotline(DATABASE_URL=postgres.create_database())
    rt, now = hotline.rt, hotline.clock.now()
    with rt.sessions() as db, db.begin():
        for matter in db.execute(select_(Matter)).scalars():
            db.add(MatterChange(matter_id=matter.id, phone=matter.phone, old_status="in_review",
                                new_status=matter.status, changed_at=to_db(now)))
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda _: run_pass(rt.sessions, rt.notify_rules, rt.calls.policies, rt.settings, now),
                      range(4)))
    with rt.sessions() as db:
        phones = set(db.execute(select_(Matter.phone)).scalars())
        notified = db.execute(select_(Notification.phone)).scalars().all()
        calls = db.execute(select_(OutboxItem.payload).where(OutboxItem.kind == "notify_call")).scalars().all()
    assert sorted(notified) == sorted(phones)
    assert sorted(c["to"] for c in calls) == sorted(phones)
