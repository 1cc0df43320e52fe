"""Operator accounts: strong password hashes, log-in throttling (ivr/console/throttle.py), an audit trail."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from ivr.audit import audit
from ivr.console.throttle import ThrottlePolicy, Verdict, admit, clear, normalise_username
from ivr.db.models import Operator
from ivr.privacy import mask_phone
from ivr.timeutil import to_db

ROLES = ("operator", "supervisor")
MIN_PASSWORD = 10
DEMO_USER = "demo"
DEMO_OPERATOR_PHONE = "+8613900000000"  # the demo's simulated phones answer any number
_USERNAME = re.compile(r"[a-z][a-z0-9_.-]{2,63}")
# A dummy hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = generate_password_hash("not a real password", method="scrypt")


class AccountError(ValueError):
    """A request the account rules refuse; the message is safe to show."""


@dataclass(frozen=True)
class LoginResult:
    operator: Operator | None
    reason: str  # "ok" | "wrong password" | "unknown user" | "disabled" | "throttled"
    wait_seconds: int = 0  # before the next attempt from this name or address is let through


def create_operator(db: Session, username: str, password: str, role: str, now: datetime,
                    phone: str | None = None, actor: str = "shell") -> Operator:
    if not _USERNAME.fullmatch(username):
        raise AccountError("username: 3–64 lower-case letters, digits, _ . - (starting with a letter)")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
    if db.execute(select(Operator).where(Operator.username == username)).scalar_one_or_none():
        raise AccountError(f"username {username!r} is taken")
    operator = Operator(username=username, password_hash=generate_password_hash(password, method="scrypt"),
                        role=role, phone=phone, disabled=False, created_at=to_db(now))
    db.add(operator)
    audit(db, actor, "account_created", now, username=username, role=role, phone=mask_phone(phone))
    return operator


def authenticate(sessions: sessionmaker[Session], username: str, password: str, source: str | None,
                 now: datetime, policy: ThrottlePolicy = ThrottlePolicy()) -> LoginResult:
    """Check a log-in in three short transactions, none held while the hash runs: admit the
    attempt (or refuse it while a back-off runs), check the password, record the outcome.

    Unknown names and disabled accounts cost one hash check like any other, are counted the same
    way and give the same result to the caller; only the audit trail tells them apart.
    """
    name = normalise_username(username)
    with sessions() as db, db.begin():
        verdict = admit(db, name, source, now, policy)
        operator = db.execute(select(Operator).where(Operator.username == name)).scalar_one_or_none()
        if not verdict.allowed:
            _audit_refusal(db, name if operator else mask_username(name), source, verdict, now)
            return LoginResult(None, "throttled", verdict.wait_seconds)
    stored = operator.password_hash if operator else _DUMMY_HASH
    matches = check_password_hash(stored, password)
    with sessions() as db, db.begin():
        current = db.get(Operator, operator.id) if operator else None
        if current is not None and matches and not current.disabled and current.password_hash == stored:
            clear(db, name, source)
            audit(db, name, "login", now, source=_source(source))
            return LoginResult(current, "ok")
        reason = "unknown user" if current is None else "disabled" if current.disabled else "wrong password"
        audit(db, name if current else mask_username(name), "login_failed", now, reason=reason,
              source=_source(source), failures=verdict.failures, wait_seconds=verdict.wait_seconds)
        return LoginResult(None, reason, verdict.wait_seconds)


def _audit_refusal(db: Session, actor: str, source: str | None, verdict: Verdict, now: datetime) -> None:
    """The 1st, 2nd, 4th, 8th … refusal of a wait: every one is counted, the log stays small."""
    if verdict.refused & (verdict.refused - 1) == 0:
        audit(db, actor, "login_throttled", now, by=verdict.blocked_by, source=_source(source),
              refused=verdict.refused, wait_seconds=verdict.wait_seconds)


def mask_username(name: str) -> str:
    """A name no account has may be a password typed in the wrong box: keep two characters."""
    return name[:2] + "…"


def _source(source: str | None) -> str:
    return (source or "-")[:64]


def demo_supervisor(db: Session, var_dir: Path, now: datetime) -> tuple[str, str] | None:
    """The demo's console login: made once with a random password kept under var/ (git-ignored);
    None when the database already has accounts of its own."""
    path = var_dir / "demo_console_password"
    exists = db.execute(select(Operator).where(Operator.username == DEMO_USER)).scalar_one_or_none()
    if exists is not None and path.exists():
        return DEMO_USER, path.read_text().strip()
    if exists is not None or db.execute(select(Operator.id)).first():
        return None
    password = secrets.token_urlsafe(12)
    create_operator(db, DEMO_USER, password, "supervisor", now, phone=DEMO_OPERATOR_PHONE, actor="demo")
    var_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(password)
    path.chmod(0o600)
    return DEMO_USER, password
