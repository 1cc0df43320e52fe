"""Operator accounts: strong hashes, lock-out, audit, and the shell command for the first supervisor."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.config import SHANGHAI
from ivr.console.accounts import (LOCK_MINUTES, MAX_FAILED_LOGINS, AccountError, authenticate,
                                  create_operator)
from ivr.db.models import AuditEntry, Operator
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


def test_lock_out_after_repeated_failures_then_unlock_after_the_wait(sessions) -> None:
    with sessions() as db, db.begin():
        create_operator(db, "zhang", "a good long password", "operator", NOW)
    for attempt in range(MAX_FAILED_LOGINS - 1):
        with sessions() as db, db.begin():
            assert authenticate(db, "zhang", "wrong", NOW).reason == "wrong"
    with sessions() as db, db.begin():
        assert authenticate(db, "zhang", "wrong", NOW).reason == "locked"
    with sessions() as db, db.begin():
        assert authenticate(db, "zhang", "a good long password", NOW).reason == "locked"
    later = NOW + timedelta(minutes=LOCK_MINUTES + 1)
    with sessions() as db, db.begin():
        result = authenticate(db, "zhang", "a good long password", later)
        assert result.reason == "ok" and result.operator.username == "zhang"
    with sessions() as db:
        actions = [e.action for e in db.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]
    assert actions.count("login_failed") == MAX_FAILED_LOGINS - 1 + 1
    assert "account_locked" in actions and actions[-1] == "login"


def test_unknown_user_is_just_a_wrong_login(sessions) -> None:
    with sessions() as db, db.begin():
        assert authenticate(db, "nobody", "whatever password", NOW).reason == "wrong"


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
