"""Login and logout.  Failure messages never tell whether a username exists."""
from __future__ import annotations

import math
from datetime import datetime
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ivr.console.accounts import audit, authenticate
from ivr.console.web.db import console_now, db_session
from ivr.console.web.forms import LoginForm
from ivr.console.web.guards import current_operator
from ivr.console.web.identity import ConsoleUser, sign_in, sign_out
from ivr.db.models import Operator
from ivr.timeutil import to_db

WRONG = "用户名或密码错误。"
DISABLED = "此账户已停用，请联系主管。"


def safe_next(target: str | None) -> str:
    """Only a path inside the console: a crafted link must not send a fresh login to another site."""
    home = url_for("console.index")
    if not target or not target.startswith("/console/") or "\\" in target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or ".." in parts.path.split("/") or any(ord(c) < 32 for c in target):
        return home
    return target


def _minutes_locked(db: Session, username: str, now: datetime) -> int:
    until = db.execute(select(Operator.locked_until).where(Operator.username == username)).scalar_one_or_none()
    return max(1, math.ceil((until - to_db(now)).total_seconds() / 60)) if until else 1


def login() -> str | Response:
    target = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data.strip().lower()
        now = console_now()
        with db_session() as db:
            result = authenticate(db, username, form.password.data, now)
            user = ConsoleUser.from_operator(result.operator) if result.operator else None
            minutes = _minutes_locked(db, username, now) if result.reason == "locked" else 0
        if user is not None:
            sign_in(user)
            return redirect(target)
        flash({"locked": f"登录失败次数过多，账户已锁定。请 {minutes} 分钟后再试。",
               "disabled": DISABLED}.get(result.reason, WRONG), "error")
    return render_template("console/login.html", form=form, next=request.args.get("next"))


def logout() -> Response:
    user = current_operator()
    with db_session() as db:
        audit(db, user.username, "logout", console_now())
    sign_out()
    flash("已退出登录。", "info")
    return redirect(url_for("console.login"))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout, methods=["POST"])
