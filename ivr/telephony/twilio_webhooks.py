"""Flask endpoints for Twilio: signature check, request → event, Turn → TwiML, and error TwiML.

No request ever gets a 5xx: whatever goes wrong, the caller hears an apology and a way to a
person or a restart, and the log gets the CallSid.
"""
from __future__ import annotations

import logging
from typing import Callable

from flask import Blueprint, Response, abort, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from ivr.engine import events as ev
from ivr.engine.actions import Prompt, Turn
from ivr.privacy import mask_phone
from ivr.runtime import Runtime
from ivr.scheduling.hours import is_open
from ivr.telephony.operator_webhooks import add_operator_routes
from ivr.telephony.recordings import fetch_recording
from ivr.telephony.twiml import Listening, TurnUrls, add_speech, render_turn

log = logging.getLogger(__name__)
MAX_PARAM = 64
MAX_URL = 512


def _rt() -> Runtime:
    return current_app.extensions["hotline"]


def _xml(body: str) -> Response:
    return Response(body, status=200, mimetype="text/xml")


def _param(name: str) -> str:
    limit = MAX_URL if name == "RecordingUrl" else MAX_PARAM
    return (request.form.get(name) or "")[:limit]


def _number(name: str, default: int) -> int:
    raw = _param(name)
    return int(raw) if raw.isdigit() else default


def _renderer(rt: Runtime) -> Callable[[Turn, int], str]:
    base = rt.settings.public_base_url
    listening = Listening(enabled=rt.hearing is not None and rt.hearing.enabled,
                          record_silence=rt.settings.record_silence_seconds,
                          max_seconds=rt.settings.record_max_seconds)
    return lambda turn, number: render_turn(turn, rt.store, TurnUrls(base, number), listening)


def _error_twiml(rt: Runtime, call_sid: str, note: str) -> Response:
    """Static apology that needs no database: 1 starts again, 0 reaches a person."""
    log.error("call %s: %s", call_sid or "-", note)
    response = VoiceResponse()
    _recover_gather(rt, response, ("error_apology", "error_options"))
    return _xml(str(response.to_xml()))


def _recover_gather(rt: Runtime, response: VoiceResponse, prompt_ids: tuple[str, ...]) -> None:
    """Say the prompts (fixed words: no database needed) and take 1 = start again, 0 = person."""
    base = rt.settings.public_base_url
    words = rt.flow.prompts["cmn"]
    gather = response.gather(input="dtmf", num_digits=1, timeout=rt.policy.later_timeout_seconds, finish_on_key="",
                             action=f"{base}/twilio/recover", method="POST", action_on_empty_result=True)
    add_speech(gather, [Prompt(pid, "cmn", words[pid]) for pid in prompt_ids], rt.store, base)


def _static_person(rt: Runtime, call_sid: str) -> Response:
    """Reaching a person when the database is not usable: queue if open, else say we call back."""
    base = rt.settings.public_base_url
    words = rt.flow.prompts["cmn"]
    response = VoiceResponse()
    if is_open(rt.clock(), rt.policy.operator_hours, rt.policy.calendar):
        add_speech(response, [Prompt("connecting", "cmn", words["connecting"])], rt.store, base)
        response.enqueue(rt.policy.queue_name, wait_url=f"{base}/twilio/queue/wait", wait_url_method="POST")
        return _xml(str(response.to_xml()))
    _recover_gather(rt, response, ("error_after_hours", "error_options"))
    log.error("call %s: no database; caller %s asked for a person after hours", call_sid,
              mask_phone(_param("From")))
    return _xml(str(response.to_xml()))


def _guarded(handler: Callable[[Runtime, str], str]) -> Response:
    rt = _rt()
    call_sid = _param("CallSid")
    try:
        if not call_sid:
            return _error_twiml(rt, "", "request without CallSid")
        return _xml(handler(rt, call_sid))
    except Exception as exc:  # noqa: BLE001 - every failure must still give the caller TwiML
        log.exception("call %s: %s failed: %s", call_sid or "-", request.path, type(exc).__name__)
        return _error_twiml(rt, call_sid, f"{request.path} failed")


def _listen(rt: Runtime, call_sid: str, token: int | None) -> ev.Event:
    """Fetch and understand the recording; anything short of an answer counts as no input."""
    step = rt.calls.current_step(call_sid, token)
    if step is None or rt.hearing is None or not rt.hearing.enabled:
        return ev.NoInput()
    settings = rt.settings
    audio = fetch_recording(_param("RecordingUrl")[:MAX_URL], settings.twilio_account_sid,
                            settings.twilio_auth_token, settings.recording_deadline_seconds,
                            settings.recording_hosts)
    if audio is None:
        return ev.NoInput()
    grammar, language = step
    heard = rt.hearing.hear(audio, grammar, language, timeout=settings.recognition_timeout_seconds)
    if heard is None:
        log.info("call %s: nothing usable recognised", call_sid)
        return ev.NoInput()
    return heard


def _turn_token() -> int | None:
    raw = request.args.get("t", "")
    return int(raw) if raw.isdigit() else None


def create_blueprint() -> Blueprint:
    bp = Blueprint("twilio", __name__, url_prefix="/twilio")

    @bp.before_request
    def check_signature() -> None:
        rt = _rt()
        url = rt.settings.public_base_url + request.full_path.rstrip("?")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not RequestValidator(rt.settings.twilio_auth_token).validate(url, request.form, signature):
            log.warning("rejected %s with a bad or missing Twilio signature (from %s, call %s)",
                        request.path, mask_phone(request.form.get("From")), request.form.get("CallSid", "-"))
            abort(403)

    @bp.post("/voice")
    def voice() -> Response:
        def start(rt: Runtime, call_sid: str) -> str:
            caller = _param("From")
            log.info("call %s started from %s", call_sid, mask_phone(caller))
            return rt.calls.start(call_sid, caller, _param("To"), _renderer(rt))
        return _guarded(start)

    @bp.post("/turn")
    def turn() -> Response:
        def answer(rt: Runtime, call_sid: str) -> str:
            digits = request.form.get("Digits")
            finished = bool(_param("FinishedOnKey")) or "FinishedOnKey" not in request.form
            event: ev.Event = ev.KeysPressed(digits[:MAX_PARAM + 1], finished) if digits else ev.NoInput()
            return rt.calls.turn(call_sid, _turn_token(), event, _renderer(rt))
        return _guarded(answer)

    @bp.post("/heard")
    def heard() -> Response:
        """The <Record> action: a key that ended the recording, or the recording itself."""
        def answer(rt: Runtime, call_sid: str) -> str:
            digits = _param("Digits")
            token = _turn_token()
            if digits == "hangup":
                return str(VoiceResponse().to_xml())
            if digits:
                return rt.calls.turn(call_sid, token, ev.KeysPressed(digits), _renderer(rt))
            return rt.calls.turn(call_sid, token, _listen(rt, call_sid, token), _renderer(rt))
        return _guarded(answer)

    @bp.post("/queue/wait")
    def queue_wait() -> Response:
        def wait(rt: Runtime, call_sid: str) -> str:
            event = ev.QueueWaiting(_number("QueuePosition", 1), _number("QueueTime", 0))
            return rt.calls.side_event(call_sid, event, _renderer(rt))
        return _guarded(wait)

    @bp.post("/queue/key")
    def queue_key() -> Response:
        def key(rt: Runtime, call_sid: str) -> str:
            return rt.calls.side_event(call_sid, ev.QueueKeyPressed(_param("Digits")), _renderer(rt))
        return _guarded(key)

    @bp.post("/queue/done")
    def queue_done() -> Response:
        def done(rt: Runtime, call_sid: str) -> str:
            event = ev.QueueEnded(_param("QueueResult") or "error")
            return rt.calls.turn(call_sid, _turn_token(), event, _renderer(rt))
        return _guarded(done)

    @bp.post("/status")
    def status() -> Response:
        def ended(rt: Runtime, call_sid: str) -> str:
            duration = _number("CallDuration", -1)
            rt.calls.end(call_sid, _param("CallStatus") or "completed", duration if duration >= 0 else None)
            log.info("call %s ended: %s", call_sid, _param("CallStatus"))
            return str(VoiceResponse().to_xml())
        return _guarded(ended)

    @bp.post("/fallback")
    def fallback() -> Response:
        rt = _rt()
        return _error_twiml(rt, _param("CallSid"),
                            f"Twilio used the fallback URL (error {_param('ErrorCode') or '?'})")

    @bp.post("/recover")
    def recover() -> Response:
        rt = _rt()
        call_sid, caller = _param("CallSid"), _param("From")
        try:
            if _param("Digits") == "0":
                return _xml(rt.calls.escalate(call_sid, caller, "system_error", _renderer(rt)))
            return _xml(rt.calls.restart(call_sid, caller, _renderer(rt)))
        except Exception as exc:  # noqa: BLE001
            log.error("call %s: recovery failed (%s)", call_sid or "-", type(exc).__name__)
            if _param("Digits") == "0":
                return _static_person(rt, call_sid)
            return _error_twiml(rt, call_sid, "still failing after a restart")

    add_operator_routes(bp, _guarded, _renderer)
    return bp
