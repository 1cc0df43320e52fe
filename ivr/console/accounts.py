"""Operator accounts: strong password hashes, lock-out after repeated failures, an audit trail."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from ivr.audit import audit
from ivr.db.models import Operator
from ivr.privacy import mask_phone
from ivr.timeutil import to_db

ROLES = ("operator", "supervisor")
MIN_PASSWORD = 10
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
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
    reason: str  # "ok" | "wrong" | "locked" | "disabled"


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
                        role=role, phone=phone, failed_logins=0, disabled=False, created_at=to_db(now))
    db.add(operator)
    audit(db, actor, "account_created", now, username=username, role=role, phone=mask_phone(phone))
    return operator


def authenticate(db: Session, username: str, password: str, now: datetime) -> LoginResult:
    """Check a login; MAX_FAILED_LOGINS wrong passwords lock the account for LOCK_MINUTES."""
    operator = db.execute(select(Operator).where(Operator.username == username)).scalar_one_or_none()
    if operator is None:
        check_password_hash(_DUMMY_HASH, password)
        audit(db, username[:64], "login_failed", now, reason="unknown user")
        return LoginResult(None, "wrong")
    if operator.disabled:
        audit(db, username, "login_failed", now, reason="disabled")
        return LoginResult(None, "disabled")
    if operator.locked_until and operator.locked_until > to_db(now):
        audit(db, username, "login_failed", now, reason="locked")
        return LoginResult(None, "locked")
    if not check_password_hash(operator.password_hash, password):
        operator.failed_logins += 1
        if operator.failed_logins >= MAX_FAILED_LOGINS:
            operator.locked_until = to_db(now + timedelta(minutes=LOCK_MINUTES))
            operator.failed_logins = 0
            audit(db, username, "account_locked", now, minutes=LOCK_MINUTES)
            return LoginResult(None, "locked")
        audit(db, username, "login_failed", now, reason="wrong password")
        return LoginResult(None, "wrong")
    operator.failed_logins, operator.locked_until = 0, None
    audit(db, username, "login", now)
    return LoginResult(operator, "ok")


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
