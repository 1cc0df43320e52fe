"""Login and logout.  Failure messages never tell whether a username exists."""
from __future__ import annotations

import math
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ivr.console.accounts import audit, authenticate
from ivr.console.throttle import ThrottlePolicy
from ivr.console.web.db import console_now, db_session, runtime
from ivr.console.web.forms import LoginForm
from ivr.console.web.guards import current_operator
from ivr.console.web.identity import ConsoleUser, sign_in, sign_out

WRONG = "用户名或密码错误。"
# One answer for a wrong password, an unknown name, a disabled account and a refused attempt:
# the wait comes from counters kept alike for every name, so it tells nothing either.
WAIT = "用户名或密码错误，或尝试次数过多。请 {wait}后再试。"


def failure_message(wait_seconds: int) -> str:
    if wait_seconds <= 0:
        return WRONG
    wait = f"{wait_seconds} 秒" if wait_seconds < 60 else f"{math.ceil(wait_seconds / 60)} 分钟"
    return WAIT.format(wait=wait)


def safe_next(target: str | None) -> str:
    """Only a path inside the console: a crafted link must not send a fresh login to another site."""
    home = url_for("console.index")
    if not target or not target.startswith("/console/") or "\\" in target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or ".." in parts.path.split("/") or any(ord(c) < 32 for c in target):
        return home
    return target


def login() -> str | Response:
    target = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(target)
    form = LoginForm()
    if form.validate_on_submit():
        rt = runtime()
        result = authenticate(rt.sessions, form.username.data, form.password.data, request.remote_addr,
                              console_now(), ThrottlePolicy.from_settings(rt.settings))
        if result.operator is not None:
            sign_in(ConsoleUser.from_operator(result.operator))
            return redirect(target)
        flash(failure_message(result.wait_seconds), "error")
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
