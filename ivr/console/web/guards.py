"""Who may see what.  Every /console URL needs a login (checked once for all, in `require_login`);
supervisor pages add `@supervisor_required`.

Anonymous browsers are sent to the login page; anything under /console/api/ answers 401 JSON,
because a script cannot follow a login redirect.
"""
from __future__ import annotations

from functools import wraps
from typing import Callable, TypeVar

from flask import Response, abort, current_app, flash, jsonify, redirect, request, session, url_for
from flask_login import current_user

from ivr.console.web.db import runtime
from ivr.console.web.identity import ConsoleUser, idle_expired, sign_out, touch

PREFIX = "/console"
API_PREFIX = "/console/api/"
PUBLIC_ENDPOINTS = frozenset({"console.login", "console.static"})
F = TypeVar("F", bound=Callable)


def current_operator() -> ConsoleUser:
    """The logged-in operator; views behind the login check can rely on there being one."""
    user = current_user._get_current_object()  # noqa: SLF001 - the proxy's documented unwrap
    if not isinstance(user, ConsoleUser):
        abort(401)
    return user


def supervisor_required(view: F) -> F:
    @wraps(view)
    def guarded(*args: object, **kwargs: object) -> object:
        if not current_operator().is_supervisor:
            abort(403)
        return view(*args, **kwargs)
    return guarded  # type: ignore[return-value]


def wants_json() -> bool:
    return request.path.startswith(API_PREFIX)


def in_console() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def require_login() -> Response | None:
    """App-wide before_request, so console URLs that match no view are hidden from anonymous users too."""
    if not in_console() or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if "_user_id" in session and idle_expired(runtime().settings.console_session_minutes):
        sign_out()
        flash("长时间未操作，已自动退出。请重新登录。", "info")
        return current_app.login_manager.unauthorized()
    if not current_user.is_authenticated:
        if "_user_id" in session:  # disabled, password reset or session copied elsewhere
            sign_out()
            flash("登录已失效，请重新登录。", "info")
        return current_app.login_manager.unauthorized()
    if not wants_json():  # a page polling in the background is not the operator at work
        touch()
    return None


def unauthorized() -> Response | tuple[Response, int]:
    if wants_json():
        return jsonify(error="login required"), 401
    # Only a GET can be repeated after the login; a POST's page is not worth coming back to.
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("console.login", next=target))
