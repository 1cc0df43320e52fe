"""Flask endpoints for Twilio: signature check, request → event, Turn → TwiML.

Every handler runs inside the guard (webhook_guard: a time budget, never a 5xx, a
database-free answer when anything fails).
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from ivr import deadline
from ivr.calls import UnknownCall
from ivr.engine import events as ev
from ivr.engine.actions import Ask, Prompt, Turn
from ivr.privacy import mask_phone
from ivr.runtime import Runtime
from ivr.telephony import fallback_twiml
from ivr.telephony.notify_webhooks import add_notify_routes
from ivr.telephony.operator_webhooks import add_operator_routes
from ivr.telephony.recordings import fetch_recording
from ivr.telephony.replay import Render, WebhookReplies
from ivr.telephony.request_values import bounded_int, keys_value, queue_outcome, turn_token
from ivr.streams.upgrade import stream_token, stream_url
from ivr.telephony.webhook_guard import caught, error_twiml, guarded, param, runtime
from ivr.telephony.twiml import Listening, TurnUrls, render_key_continuation, render_stream_connect, render_turn

log = logging.getLogger(__name__)


def _number(name: str, default: int) -> int:
    return bounded_int(request.form.get(name), default)


def _renderer(rt: Runtime) -> Render:
    base = rt.settings.public_base_url
    listening = Listening(enabled=rt.hearing is not None and rt.hearing.enabled,
                          record_silence=rt.settings.record_silence_seconds,
                          max_seconds=rt.settings.record_max_seconds)
    return lambda turn, number: render_turn(turn, rt.store, TurnUrls(base, number), listening)


def _listen(rt: Runtime, call_sid: str, token: int) -> ev.Event:
    """Fetch and understand the recording; anything short of an answer counts as no input.
    Both waits leave enough of the budget for the turn's database write."""
    step = rt.calls.current_step(call_sid, WebhookReplies.turn(_renderer(rt), token))
    if step is None or rt.hearing is None or not rt.hearing.enabled:
        return ev.NoInput()
    settings = rt.settings
    keep = settings.db_wait_seconds + 0.5
    audio = fetch_recording(param("RecordingUrl"), settings.twilio_account_sid, settings.twilio_auth_token,
                            deadline.remaining(settings.recording_deadline_seconds, keep),
                            settings.recording_hosts)
    if audio is None:
        return ev.NoInput()
    grammar, language = step
    heard = rt.hearing.hear(audio, grammar, language,
                            timeout=max(deadline.remaining(settings.recognition_timeout_seconds, keep), 0.1))
    if heard is None:
        log.info("call %s: nothing usable recognised", call_sid)
        return ev.NoInput()
    return heard


def _to_stream(rt: Runtime, call_sid: str, caller: str) -> str:
    rt.store.recordings.refresh()  # the call goes on here by webhooks if its stream is lost
    parameters = {"token": stream_token(rt.settings.id_hash_secret, call_sid), "from": caller, "to": param("To")}
    return render_stream_connect(TurnUrls(rt.settings.public_base_url, 0), stream_url(rt.settings.public_base_url),
                                 parameters)


def _after_stream(rt: Runtime) -> Render:
    """What the stream had not done: a question again (after an apology), or just the wait —
    the prompts before a hand-off were played in the stream."""
    render = _renderer(rt)
    apology = Prompt("stream_lost", "cmn", rt.flow.prompts["cmn"]["stream_lost"])

    def after(turn: Turn, number: int) -> str:
        speech = [apology, *turn.speech] if isinstance(turn.wait, Ask) else []
        return render(Turn(speech=speech, wait=turn.wait, step=turn.step), number)
    return after


def _turn_token() -> int:
    return turn_token(request.args.get("t"))


def _keys_event() -> ev.Event:
    """The caller's keys; those pressed before a pause in the key window come back in the
    continuation's URL and are joined here, so the engine sees one entry."""
    keys = keys_value(request.form.get("Digits"))
    before = keys_value(request.args.get("keyed"))
    if before:
        return ev.KeysPressed(before + (keys or ""))
    if keys is None:
        return ev.NoInput()
    return ev.KeysPressed(keys, bool(param("FinishedOnKey")) or "FinishedOnKey" not in request.form)


def _paused_in_key_window(rt: Runtime, event: ev.Event) -> str | None:
    """Continuation TwiML when a number entry was cut off by a pause in the key window."""
    finish = keys_value(request.args.get("w"))
    if not finish or not isinstance(event, ev.KeysPressed) or event.finished or not event.digits.isdigit():
        return None
    urls = TurnUrls(rt.settings.public_base_url, _turn_token())
    return render_key_continuation(urls, event.digits, finish, rt.policy.later_timeout_seconds)


def create_blueprint() -> Blueprint:
    bp = Blueprint("twilio", __name__, url_prefix="/twilio")

    @bp.before_request
    def check_signature() -> None:
        rt = runtime()
        url = rt.settings.public_base_url + request.full_path.rstrip("?")
        signature = request.headers.get("X-Twilio-Signature", "")
        if not RequestValidator(rt.settings.twilio_auth_token).validate(url, request.form, signature):
            log.warning("rejected %s with a bad or missing Twilio signature (from %s, call %s)",
                        request.path, mask_phone(request.form.get("From")), request.form.get("CallSid", "-"))
            abort(403)

    @bp.post("/voice")
    def voice() -> Response:
        def start(rt: Runtime, call_sid: str) -> str:
            caller = param("From")
            log.info("call %s started from %s", call_sid, mask_phone(caller))
            if rt.settings.call_audio == "stream":
                return _to_stream(rt, call_sid, caller)
            return rt.calls.start(call_sid, caller, param("To"), WebhookReplies.first(_renderer(rt)))
        return guarded(start)

    @bp.post("/stream/ended")
    def stream_ended() -> Response:
        """<Connect action>: the media stream is over.  The dialog goes on here from the stored
        state — a hand-off (the queue, a hang-up) is carried out, a question cut off by a lost
        stream is asked again after an apology; a call the stream never started (the stream
        server is down) starts here, in webhook mode."""
        def resume(rt: Runtime, call_sid: str) -> str:
            try:
                return rt.calls.resume(call_sid, WebhookReplies(_after_stream(rt)))
            except UnknownCall:
                log.warning("call %s: the media stream never started; the call goes on by webhooks", call_sid)
                return rt.calls.start(call_sid, param("From"), param("To"), WebhookReplies.first(_renderer(rt)))
        return guarded(resume)

    @bp.post("/turn")
    def turn() -> Response:
        def answer(rt: Runtime, call_sid: str) -> str:
            event = _keys_event()
            return _paused_in_key_window(rt, event) or rt.calls.handle(
                call_sid, event, WebhookReplies.turn(_renderer(rt), _turn_token()))
        return guarded(answer)

    @bp.post("/heard")
    def heard() -> Response:
        """The <Record> action: a key that ended the recording, or the recording itself."""
        def answer(rt: Runtime, call_sid: str) -> str:
            token = _turn_token()
            if request.form.get("Digits") == "hangup":
                return str(VoiceResponse().to_xml())
            if request.form.get("Digits"):
                return rt.calls.handle(call_sid, _keys_event(), WebhookReplies.turn(_renderer(rt), token))
            return rt.calls.handle(call_sid, _listen(rt, call_sid, token), WebhookReplies.turn(_renderer(rt), token))
        return guarded(answer)

    # The queue's wait loop and its end work without the database too: a caller queued while
    # it was down (or who was waiting when it failed) keeps waiting, and leaves with a
    # callback the spool keeps.
    @bp.post("/queue/wait")
    def queue_wait() -> Response:
        position, waited = _number("QueuePosition", 1), _number("QueueTime", 0)

        def wait(rt: Runtime, call_sid: str) -> str:
            return rt.calls.queue_event(call_sid, ev.QueueWaiting(position, waited),
                                        WebhookReplies.queue_loop(_renderer(rt)))

        def hold(rt: Runtime, _call_sid: str) -> str:
            return fallback_twiml.hold(rt, position, waited)

        def adopt(rt: Runtime, call_sid: str) -> str:
            """Queued while the database was down, which is back: operators get to see them."""
            try:
                if rt.calls.adopt_queued(call_sid, param("From"), WebhookReplies(_renderer(rt))):
                    log.warning("call %s: queued without the database; handoff recorded now", call_sid)
            except Exception as exc:  # noqa: BLE001 - down again: they keep waiting all the same
                caught(rt, call_sid, exc)
            return hold(rt, call_sid)
        return guarded(wait, hold, adopt, skip_when_down=True)

    @bp.post("/queue/key")
    def queue_key() -> Response:
        keys = keys_value(request.form.get("Digits"))

        def key(rt: Runtime, call_sid: str) -> str:
            return rt.calls.queue_event(call_sid, ev.QueueKeyPressed(keys or ""),
                                        WebhookReplies.queue_loop(_renderer(rt)))
        hold = lambda rt, _sid: fallback_twiml.hold_key(rt, keys)  # noqa: E731
        return guarded(key, hold, hold, skip_when_down=True)

    @bp.post("/queue/done")
    def queue_done() -> Response:
        outcome = queue_outcome(param("QueueResult"))

        def done(rt: Runtime, call_sid: str) -> str:
            return rt.calls.handle(call_sid, ev.QueueEnded(outcome), WebhookReplies.turn(_renderer(rt), _turn_token()))
        return guarded(done, lambda rt, sid: fallback_twiml.queue_ended(rt, sid, param("From"), outcome))

    @bp.post("/recover/queue")
    def queue_done_without_database() -> Response:
        """End of the queue a caller joined while the database was down: as after any queue if
        the call was adopted since, else a callback kept in the spool (no database needed)."""
        outcome = queue_outcome(param("QueueResult"))

        def kept(rt: Runtime, call_sid: str) -> str:
            return fallback_twiml.queue_ended(rt, call_sid, param("From"), outcome)

        def done(rt: Runtime, call_sid: str) -> str:
            body = rt.calls.end_adopted_queue(call_sid, ev.QueueEnded(outcome), WebhookReplies(_renderer(rt)))
            return kept(rt, call_sid) if body is None else body
        return guarded(done, kept, skip_when_down=True)

    @bp.post("/status")
    def status() -> Response:
        def ended(rt: Runtime, call_sid: str) -> str:
            duration = _number("CallDuration", -1)
            rt.calls.end(call_sid, param("CallStatus") or "completed", duration if duration >= 0 else None)
            log.info("call %s ended: %s", call_sid, param("CallStatus"))
            return str(VoiceResponse().to_xml())
        return guarded(ended, lambda _rt, _sid: str(VoiceResponse().to_xml()))

    @bp.post("/fallback")
    def fallback() -> Response:
        rt = runtime()
        return error_twiml(rt, param("CallSid"),
                            f"Twilio used the fallback URL (error {param('ErrorCode') or '?'})")

    @bp.post("/recover")
    def recover() -> Response:
        """After the apology: 1 starts again, 0 a person — at once without the database if it
        failed a moment ago, so the caller does not wait on it twice."""
        wants_person = keys_value(request.form.get("Digits")) == "0"

        def person(rt: Runtime, call_sid: str) -> str:
            return fallback_twiml.person(rt, call_sid, param("From"))

        def again(rt: Runtime, call_sid: str) -> str:
            if wants_person:
                return rt.calls.escalate(call_sid, param("From"), "system_error", WebhookReplies(_renderer(rt)))
            return rt.calls.restart(call_sid, WebhookReplies(_renderer(rt)))
        return guarded(again, person if wants_person else None, skip_when_down=True)

    add_operator_routes(bp, guarded, _renderer)
    add_notify_routes(bp, guarded, _renderer)
    return bp
