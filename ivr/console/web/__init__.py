"""The operator console: a Flask blueprint under /console plus the app-wide pieces it needs.

To add a page: write a module with a `register(bp)` function that adds its views, and list it in
PAGES.  Every /console URL already requires a login; see guards.py for the rest.
"""
from __future__ import annotations

from flask import Blueprint, Flask, redirect, url_for
from werkzeug.wrappers import Response

from ivr.console.web import auth, callbacks, errors, formatting, glance, history, nav, rules, studio, supervisor, waiting
from ivr.console.web.guards import require_login, unauthorized
from ivr.console.web.identity import setup_login
from ivr.console.web.security import add_security_headers, configure_session, protect_forms
from ivr.console.web.telephony import EXTENSION as TELEPHONY
from ivr.runtime import Runtime
from ivr.telephony.control import TelephonyControl

PAGES = (auth, waiting, callbacks, history, glance, supervisor, rules, studio)


def index() -> Response:
    return redirect(url_for("console.waiting"))


def create_console_blueprint() -> Blueprint:
    bp = Blueprint("console", "ivr.console", url_prefix="/console", template_folder="templates",
                   static_folder="static")
    bp.add_url_rule("/", "index", index)
    for page in PAGES:
        page.register(bp)
    errors.register(bp)
    formatting.register(bp)
    bp.context_processor(nav.template_context)
    return bp


def init_console(app: Flask, rt: Runtime, telephony: TelephonyControl) -> None:
    """Sessions, CSRF, login and headers, and the telephony that takes callers and calls back;
    call after the Twilio blueprint is registered."""
    app.extensions[TELEPHONY] = telephony
    configure_session(app, rt.settings)
    protect_forms(app)
    setup_login(app).unauthorized_handler(unauthorized)
    app.before_request(require_login)
    app.after_request(add_security_headers)
