"""Who is logged in: Flask-Login's user, loaded from the database on every request.

The session keeps the operator id and a token derived from the password hash, so a password
reset ends every older session; a disabled account stops loading at its next request.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import Flask, session
from flask_login import LoginManager, UserMixin, login_user, logout_user

from ivr.console.web.db import console_now, db_session
from ivr.db.models import Operator

LAST_SEEN = "seen"  # session key: Unix time of the operator's last request


@dataclass(frozen=True, eq=False)
class ConsoleUser(UserMixin):
    """A snapshot of the operator row for one request (no live ORM object outside a session)."""

    id: int
    username: str
    role: str
    token: str

    @classmethod
    def from_operator(cls, operator: Operator) -> "ConsoleUser":
        return cls(operator.id, operator.username, operator.role, session_token(operator))

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    def get_id(self) -> str:
        return f"{self.id}:{self.token}"


def session_token(operator: Operator) -> str:
    """Changes whenever the password hash does; hashed so the cookie does not carry the salt."""
    return hashlib.sha256(operator.password_hash.encode()).hexdigest()[:20]


def load_user(user_id: str) -> ConsoleUser | None:
    raw_id, _, token = user_id.partition(":")
    if not raw_id.isdigit():
        return None
    with db_session(read_only=True) as db:
        operator = db.get(Operator, int(raw_id))
        if operator is None or operator.disabled or session_token(operator) != token:
            return None
        return ConsoleUser.from_operator(operator)


def setup_login(app: Flask) -> LoginManager:
    manager = LoginManager(app)
    manager.session_protection = "strong"  # a session copied to another browser is dropped
    manager.user_loader(load_user)
    return manager


def sign_in(user: ConsoleUser) -> None:
    """A fresh session: nothing from before the login (a planted token, say) carries over."""
    session.clear()
    session.permanent = True
    login_user(user)
    touch()


def sign_out() -> None:
    logout_user()
    session.clear()


def touch() -> None:
    session[LAST_SEEN] = int(console_now().timestamp())


def idle_expired(minutes: int) -> bool:
    seen = session.get(LAST_SEEN)
    return not isinstance(seen, int) or console_now().timestamp() - seen > minutes * 60
