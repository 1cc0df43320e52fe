"""Operator accounts: strong hashes, log-in throttling, audit, and the shell command for the first supervisor."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ivr.config import SHANGHAI
from ivr.console import accounts, throttle
from ivr.console.account_admin import reset_password
from ivr.console.accounts import AccountError, authenticate, create_operator
from ivr.console.throttle import ThrottlePolicy
from ivr.db.models import AuditEntry, LoginThrottle, Operator
from ivr.db.schema import make_engine, session_factory, upgrade

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)


@pytest.fixture()
def sessions(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def test_password_is_stored_as_a_strong_hash(sessions) -> None:
    with sessions() as db, db.begin():
        create_operator(db, "wang.li", "correct horse battery", "supervisor", NOW, phone="+8613800009999")
    with sessions() as db:
        operator = db.execute(select(Operator)).scalar_one()
        assert operator.password_hash.startswith("scrypt:")
        assert "correct horse" not in operator.password_hash
        entry = db.execute(select(AuditEntry)).scalar_one()
        assert (entry.actor, entry.action) == ("shell", "account_created")
        assert entry.detail["phone"].endswith("9999") and "13800009999" not in str(entry.detail)


@pytest.mark.parametrize("username,password,role,message", [
    ("Wang", "long enough pw", "operator", "username"),
    ("wang", "short", "operator", "at least 10"),
    ("wang", "long enough pw", "admin", "role"),
])
def test_bad_accounts_are_refused(sessions, username, password, role, message) -> None:
    with sessions() as db, db.begin(), pytest.raises(AccountError, match=message):
        create_operator(db, username, password, role, NOW)


ATTACKER, OFFICE = "203.0.113.66", "198.51.100.7"
POLICY = ThrottlePolicy()  # 3 free tries, account waits up to 30 s, a source up to 600 s


def _operator(sessions, username: str = "zhang", password: str = "a good long password") -> None:
    with sessions() as db, db.begin():
        create_operator(db, username, password, "operator", NOW)


def _audit(sessions) -> list[tuple[str, str, dict]]:
    with sessions() as db:
        return [(e.actor, e.action, e.detail) for e in db.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


def test_back_off_grows_exponentially_to_the_cap_and_resets_on_success(sessions) -> None:
    _operator(sessions)
    now, waits = NOW, []
    for _ in range(14):  # each attempt waits out the previous back-off, so each is let through
        result = authenticate(sessions, "zhang", "wrong", ATTACKER, now)
        assert result.reason == "wrong password"
        waits.append(result.wait_seconds)
        now += timedelta(seconds=result.wait_seconds)
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]  # the source's cap
    # during a wait even the right password is refused, and the wait does not grow
    refused = authenticate(sessions, "zhang", "a good long password", ATTACKER, now - timedelta(seconds=100))
    assert (refused.reason, refused.operator, refused.wait_seconds) == ("throttled", None, 100)
    assert authenticate(sessions, "zhang", "a good long password", ATTACKER, now).reason == "ok"
    assert [authenticate(sessions, "zhang", "wrong", ATTACKER, now).wait_seconds for _ in range(3)] == [0, 0, 1]


def test_failures_from_many_addresses_slow_the_account_to_its_short_cap(sessions) -> None:
    _operator(sessions)
    now, waits = NOW, []
    for n in range(10):
        result = authenticate(sessions, "zhang", "wrong", f"203.0.113.{n}", now)
        waits.append(result.wait_seconds)
        now += timedelta(seconds=result.wait_seconds)
    assert waits == [0, 0, 1, 2, 4, 8, 16, 30, 30, 30]
    early = authenticate(sessions, "zhang", "a good long password", OFFICE, now - timedelta(seconds=1))
    assert (early.reason, early.wait_seconds) == ("throttled", 1)
    assert authenticate(sessions, "zhang", "a good long password", OFFICE, now).reason == "ok"


def test_an_attacker_at_one_address_cannot_keep_the_operator_out(sessions) -> None:
    _operator(sessions)
    now = NOW
    for _ in range(40):  # hammering: one try a second, most of them refused
        authenticate(sessions, "zhang", "guess", ATTACKER, now)
        now += timedelta(seconds=1)
    office = authenticate(sessions, "zhang", "a good long password", OFFICE, now)
    if office.reason == "throttled":  # at most the account's capped wait
        assert office.wait_seconds <= POLICY.account_max_wait
        now += timedelta(seconds=office.wait_seconds)
        office = authenticate(sessions, "zhang", "a good long password", OFFICE, now)
    assert office.reason == "ok" and office.operator.username == "zhang"
    assert authenticate(sessions, "zhang", "guess", ATTACKER, now).reason == "throttled"  # still held


def test_unknown_and_disabled_names_are_counted_and_hashed_like_real_ones(sessions, monkeypatch) -> None:
    _operator(sessions)
    _operator(sessions, "li.na", "another long password")
    with sessions() as db, db.begin():
        db.execute(select(Operator).where(Operator.username == "li.na")).scalar_one().disabled = True
    hashed: list[str] = []
    real_check = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash", lambda h, p: hashed.append(h) or real_check(h, p))

    def seen_by_client(username: str, password: str, source: str) -> list[tuple[bool, int]]:
        now, seen = NOW, []
        for step in range(6):
            result = authenticate(sessions, username, password, source, now)
            seen.append((result.operator is None, result.wait_seconds))
            now += timedelta(seconds=step % 2)  # some attempts land inside a wait
        return seen

    known = seen_by_client("zhang", "wrong", "192.0.2.1")
    assert len(hashed) == 4  # every attempt let through checks a hash
    assert seen_by_client("nobody", "wrong", "192.0.2.2") == known
    assert seen_by_client("li.na", "another long password", "192.0.2.3") == known  # right password, disabled
    assert len(hashed) == 12 and hashed.count(accounts._DUMMY_HASH) == 4
    reasons = [(actor, action, detail.get("reason")) for actor, action, detail in _audit(sessions)
               if action.startswith("login")]
    assert ("no…", "login_failed", "unknown user") in reasons and ("li.na", "login_failed", "disabled") in reasons
    assert not any("nobody" in actor for actor, _, _ in reasons)  # unknown names are masked


def test_failures_and_refusals_are_audited_with_reason_and_source(sessions) -> None:
    _operator(sessions)
    for _ in range(3 + 9):  # three counted failures, then nine refusals within the 1 s wait
        authenticate(sessions, "Zhang ", "wrong", ATTACKER, NOW)
    authenticate(sessions, "zhang", "a good long password", OFFICE, NOW + timedelta(seconds=1))
    rows = [(actor, action, detail) for actor, action, detail in _audit(sessions) if action != "account_created"]
    assert rows[0] == ("zhang", "login_failed", {"reason": "wrong password", "source": ATTACKER, "failures": 1,
                                                   "wait_seconds": 0})
    assert rows[2][2]["wait_seconds"] == 1
    throttled = [detail for _, action, detail in rows if action == "login_throttled"]
    assert [d["refused"] for d in throttled] == [1, 2, 4, 8]  # every refusal counted, the log stays short
    assert throttled[0] == {"by": "account+source", "source": ATTACKER, "refused": 1, "wait_seconds": 1}
    assert rows[-1] == ("zhang", "login", {"source": OFFICE})


def test_concurrent_attempts_cannot_slip_past_the_count(sessions) -> None:
    _operator(sessions)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: authenticate(sessions, "zhang", "wrong", ATTACKER, NOW).reason,
                                range(8)))
    assert sorted(results) == ["throttled"] * 5 + ["wrong password"] * POLICY.free_tries


def _rows(sessions) -> int:
    with sessions() as db:
        return db.execute(select(func.count()).select_from(LoginThrottle)).scalar_one()


def test_a_spray_of_names_keeps_the_table_bounded(sessions, monkeypatch) -> None:
    for n in range(30):  # one address: once it waits, refused names leave no rows behind
        authenticate(sessions, f"sprayed{n}", "wrong", ATTACKER, NOW)
    assert _rows(sessions) == 1 + POLICY.free_tries
    monkeypatch.setattr(throttle, "MAX_ROWS", 10)
    for n in range(30):  # many addresses: the oldest counters go first
        authenticate(sessions, f"name{n}", "wrong", f"192.0.2.{n}", NOW + timedelta(seconds=n))
    assert _rows(sessions) <= 10 + 2
    later = NOW + POLICY.forget_after + timedelta(minutes=1)
    authenticate(sessions, "someone", "wrong", "192.0.2.200", later)
    assert _rows(sessions) == 2  # stale counters are forgotten when new ones are made


def test_ipv6_addresses_count_per_64_block() -> None:
    assert throttle.source_key("2001:db8:1:2::1") == throttle.source_key("2001:db8:1:2:ffff::9")
    assert throttle.source_key("2001:db8:1:3::1") != throttle.source_key("2001:db8:1:2::1")
    assert throttle.source_key("::ffff:192.0.2.1") == throttle.source_key("192.0.2.1")
    assert throttle.account_key("Zhang ") == throttle.account_key("zhang")


def test_a_password_reset_clears_the_account_back_off(sessions) -> None:
    _operator(sessions)
    with sessions() as db, db.begin():
        create_operator(db, "chen", "supervisor long password", "supervisor", NOW)
    for n in range(5):
        authenticate(sessions, "zhang", "wrong", f"203.0.113.{n}", NOW)
    with sessions() as db, db.begin():
        assert throttle.account_wait(db, "zhang", NOW) > 0
        ids = dict(db.execute(select(Operator.username, Operator.id)).all())
        reset_password(db, ids["chen"], ids["zhang"], "a brand new password", NOW)
    assert authenticate(sessions, "zhang", "a brand new password", OFFICE, NOW).reason == "ok"


def test_unknown_user_is_just_a_wrong_login(sessions) -> None:
    result = authenticate(sessions, "nobody", "whatever password", OFFICE, NOW)
    assert (result.operator, result.reason, result.wait_seconds) == (None, "unknown user", 0)


def test_operator_add_from_the_shell(tmp_path: Path) -> None:
    env = dict(os.environ, HOTLINE_VAR_DIR=str(tmp_path))
    run = lambda *args, password="first supervisor pw": subprocess.run(  # noqa: E731
        [sys.executable, "-m", "ivr", "operator", "add", *args, "--password-stdin"], cwd=ROOT, env=env,
        input=password + "\n", capture_output=True, text=True)
    first = run("chen", "--role", "supervisor")
    assert first.returncode == 0 and "supervisor chen created" in first.stdout
    again = run("chen")
    assert again.returncode == 1 and "taken" in again.stderr
    weak = run("zhao", password="short")
    assert weak.returncode == 1 and "at least 10" in weak.stderr
