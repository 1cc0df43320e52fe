"""The guard around every Twilio webhook: a time budget, and TwiML whatever goes wrong.

No request gets a 5xx or takes longer than WEBHOOK_BUDGET_SECONDS: a failure gives the
handler's database-free fallback, or the apology with 1 = start again and 0 = a person
(fallback_twiml), and the log gets the CallSid.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Callable

from flask import Response, current_app, request

from ivr import deadline
from ivr.calls import UnknownCall
from ivr.db.availability import is_database_error
from ivr.runtime import Runtime
from ivr.telephony import fallback_twiml
from ivr.telephony.request_values import MAX_URL, text_value

log = logging.getLogger(__name__)
# Exceptions the guard turned into an apology, by type: zero in a healthy service under any
# input (the fuzz test asserts it); a locked database counts here too.
GUARD_CATCHES: Counter[str] = Counter()
Handler = Callable[[Runtime, str], str]


def runtime() -> Runtime:
    return current_app.extensions["hotline"]


def xml(body: str) -> Response:
    return Response(body, status=200, mimetype="text/xml")


def param(name: str) -> str:
    return text_value(request.form, name, MAX_URL if name == "RecordingUrl" else 64)


def error_twiml(rt: Runtime, call_sid: str, note: str) -> Response:
    """Static apology that needs no database: 1 starts again, 0 reaches a person."""
    log.error("call %s: %s", call_sid or "-", note)
    return xml(fallback_twiml.apology(rt))


def caught(rt: Runtime, call_sid: str, exc: Exception) -> None:
    GUARD_CATCHES[type(exc).__name__] += 1
    if is_database_error(exc):
        rt.availability.failed()
        log.error("call %s: %s failed, database unavailable: %s", call_sid or "-", request.path,
                  type(exc).__name__)
    else:
        log.exception("call %s: %s failed: %s", call_sid or "-", request.path, type(exc).__name__)


def guarded(handler: Handler, fallback: Handler | None = None, when_unknown: Handler | None = None,
             *, skip_when_down: bool = False) -> Response:
    """Run a webhook within its time budget; on failure the fallback's database-free TwiML
    (default: the apology with 1 = start again, 0 = a person); `when_unknown` answers a call
    the database does not know (default: the apology).  `skip_when_down`: go straight to the
    fallback while the database failed a moment ago (nothing to gain from waiting on it)."""
    rt = runtime()
    call_sid = param("CallSid")
    if not call_sid:
        return error_twiml(rt, "", "request without CallSid")
    if skip_when_down and fallback is not None and rt.availability.recently_failed():
        return xml(fallback(rt, call_sid))
    with deadline.budget(rt.settings.webhook_budget_seconds):
        try:
            body = handler(rt, call_sid)
            rt.availability.answered()
            return xml(body)
        except UnknownCall:
            if when_unknown is not None:
                return xml(when_unknown(rt, call_sid))
            return error_twiml(rt, call_sid, "a call this service never saw start")
        except Exception as exc:  # noqa: BLE001 - every failure must still give the caller TwiML
            caught(rt, call_sid, exc)
            note = f"{request.path} failed"
    if fallback is not None:
        log.warning("call %s: %s answered without the database (%s)", call_sid, request.path, note)
        return xml(fallback(rt, call_sid))
    return error_twiml(rt, call_sid, note)
