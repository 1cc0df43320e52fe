"""TwiML for the calls operators make through the console.

Taking a waiting caller: Twilio moves the caller out of the queue to /console/connect, which
dials the operator's phone; when that ends the caller is back in the dialog (or back in the
queue if the operator did not answer).  Calling back: the call rings the operator first and
then dials the caller (or the reverse, CALLBACK_MODE), always with the hotline's number.
"""
from __future__ import annotations

import logging
from typing import Callable

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.twiml.voice_response import VoiceResponse

from ivr.console.callbacks import attempt_status
from ivr.db.models import Booking, CallbackAttempt, Handoff, Operator
from ivr.engine.actions import Prompt
from ivr.runtime import Runtime
from ivr.telephony.replay import WebhookReplies
from ivr.telephony.request_values import bounded_int
from ivr.telephony.twiml import add_speech
from ivr.timeutil import to_db

log = logging.getLogger(__name__)


def _speech(rt: Runtime, response: VoiceResponse, prompt_id: str, **values: str) -> None:
    text = rt.engine.words(prompt_id, values)
    add_speech(response, [Prompt(prompt_id, "cmn", text, text, static=not values)], rt.store,
               rt.settings.public_base_url)


def _dial(rt: Runtime, response: VoiceResponse, number: str, action: str) -> None:
    dial = response.dial(caller_id=rt.settings.callback_from_number, timeout=rt.settings.callback_ring_seconds,
                         action=f"{rt.settings.public_base_url}{action}", method="POST")
    dial.number(number)


def _arg(name: str) -> int:
    return bounded_int(request.args.get(name), 0)


def add_operator_routes(bp: Blueprint, guarded: Callable, renderer: Callable) -> None:
    """Routes on the signed /twilio blueprint (same signature check, same never-a-5xx guard)."""

    @bp.post("/console/connect")
    def console_connect() -> Response:
        def connect(rt: Runtime, call_sid: str) -> str:
            response = VoiceResponse()
            with rt.sessions() as db:
                handoff = db.get(Handoff, _arg("handoff"))
                phone = _operator_phone(db, handoff.taken_by if handoff else None)
            if handoff is None or handoff.call_sid != call_sid or not phone:
                log.error("call %s: connect for an unknown handoff or operator", call_sid)
                return rt.calls.restart(call_sid, WebhookReplies(renderer(rt)), "connecting")
            _speech(rt, response, "connecting")
            _dial(rt, response, phone, f"/twilio/console/connected?handoff={handoff.id}")
            return str(response.to_xml())
        return guarded(connect)

    @bp.post("/console/connected")
    def console_connected() -> Response:
        def connected(rt: Runtime, call_sid: str) -> str:
            answered = request.form.get("DialCallStatus") == "completed"
            now = rt.clock()
            with rt.sessions() as db, db.begin():
                handoff = db.get(Handoff, _arg("handoff"))
                if handoff is not None and handoff.call_sid == call_sid and handoff.status == "taken":
                    if answered:
                        handoff.status, handoff.ended_at = "done", to_db(now)
                    else:  # the operator's phone did not answer: back to the front of the queue
                        log.warning("call %s: operator %s did not answer", call_sid, handoff.taken_by)
                        handoff.status, handoff.taken_by, handoff.taken_at = "waiting", None, None
            step = "after_person" if answered else "connecting"
            return rt.calls.restart(call_sid, WebhookReplies(renderer(rt)), step)
        return guarded(connected)

    @bp.post("/callback/answered")
    def callback_answered() -> Response:
        """The first leg answered. Operator first: say whom we call, then dial the caller.
        Caller first: greet the caller, then dial the operator."""
        def answered(rt: Runtime, call_sid: str) -> str:
            response = VoiceResponse()
            attempt, booking = _attempt(rt, call_sid)
            with rt.sessions() as db:
                phone = _operator_phone(db, attempt.operator if attempt else None)
            if attempt is None or booking is None or not phone:
                response.hangup()
                return str(response.to_xml())
            if attempt.mode == "operator_first":
                _speech(rt, response, "callback_whisper", last4=booking.callback_number[-4:])
                other = booking.callback_number
            else:
                _speech(rt, response, "callback_greeting")
                other = phone
            _dial(rt, response, other, f"/twilio/callback/dialed?attempt={attempt.id}")
            return str(response.to_xml())
        return guarded(answered)

    @bp.post("/callback/dialed")
    def callback_dialed() -> Response:
        def dialed(rt: Runtime, call_sid: str) -> str:
            status = request.form.get("DialCallStatus", "")[:20]
            with rt.sessions() as db, db.begin():
                attempt = db.get(CallbackAttempt, _arg("attempt"))
                if attempt is not None and attempt.call_sid == call_sid:
                    attempt.dial_status = status
                    mode = attempt.mode
                else:
                    mode = ""
            response = VoiceResponse()
            if status != "completed":
                _speech(rt, response, "callback_not_reached" if mode == "operator_first"
                        else "callback_operator_missed")
            response.hangup()
            return str(response.to_xml())
        return guarded(dialed)

    @bp.post("/callback/status")
    def callback_status() -> Response:
        def status(rt: Runtime, call_sid: str) -> str:
            with rt.sessions() as db, db.begin():
                attempt = db.get(CallbackAttempt, _arg("attempt"))
                if attempt is not None and attempt.call_sid in (None, call_sid):
                    attempt.call_sid = call_sid  # the status may arrive before the REST answer is stored
                    attempt_status(db, attempt.id, request.form.get("CallStatus", "")[:20], rt.clock())
            return str(VoiceResponse().to_xml())
        return guarded(status)


def _operator_phone(db: Session, username: str | None) -> str | None:
    return db.execute(select(Operator.phone).where(Operator.username == (username or ""))).scalar_one_or_none()



def _attempt(rt: Runtime, call_sid: str) -> tuple[CallbackAttempt | None, Booking | None]:
    with rt.sessions() as db, db.begin():
        attempt = db.get(CallbackAttempt, _arg("attempt"))
        if attempt is None or attempt.call_sid not in (None, call_sid):
            log.error("call %s: callback TwiML for an unknown attempt", call_sid)
            return None, None
        attempt.call_sid = call_sid
        return attempt, db.get(Booking, attempt.booking_id)
