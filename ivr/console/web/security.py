"""Cookie settings, CSRF and response headers for the console.

The Content-Security-Policy allows no inline script or style, so templates use only static
files and SVG presentation attributes.
"""
from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFProtect

from ivr.config import ConfigError, Settings
from ivr.console.web.guards import in_console

# media-src blob: lets the prompt studio play back a take recorded in the browser before it is sent.
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def configure_session(app: Flask, settings: Settings) -> None:
    """The idle limit is enforced from the runtime clock; the cookie lifetime only mirrors it."""
    if not settings.console_secret_key:
        raise ConfigError("CONSOLE_SECRET_KEY is empty: console sessions could not be signed")
    app.secret_key = settings.console_secret_key
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        SESSION_REFRESH_EACH_REQUEST=True,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.console_session_minutes),
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session, which idles out anyway
    )


def protect_forms(app: Flask) -> CSRFProtect:
    """Every POST needs a token, except Twilio's webhooks, which prove themselves by signature."""
    csrf = CSRFProtect(app)
    csrf.exempt(app.blueprints["twilio"])
    return csrf


def add_security_headers(response: Response) -> Response:
    if not in_console():
        return response
    response.headers.update(HEADERS)
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"  # pages show callers' data
    return response
