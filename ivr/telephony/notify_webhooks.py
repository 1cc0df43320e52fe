"""TwiML and status callbacks of the calls that tell people about news on their matters.

The worker places the call (ivr.notify.planning → outbox → telephony port); when it is answered
Twilio asks /notify/answered, which starts the dialog at `notify_intro` (who is calling and why,
nothing personal) for the number the notification is for — never the number Twilio reports;
/notify/status hears how the call ended, and plans the next try.
"""
from __future__ import annotations

import logging
from typing import Callable

from flask import Blueprint, Response, request
from twilio.twiml.voice_response import VoiceResponse

from ivr.notify import planning
from ivr.runtime import Runtime
from ivr.telephony.replay import WebhookReplies
from ivr.telephony.request_values import bounded_int

log = logging.getLogger(__name__)


def add_notify_routes(bp: Blueprint, guarded: Callable, renderer: Callable) -> None:
    """Routes on the signed /twilio blueprint (same signature check, same never-a-5xx guard)."""

    @bp.post("/notify/answered")
    def notify_answered() -> Response:
        def answered(rt: Runtime, call_sid: str) -> str:
            number = bounded_int(request.args.get("n"), 0)
            with rt.sessions() as db, db.begin():
                notification = planning.answered(db, number, call_sid, rt.clock())
                person = (notification.phone, notification.language, notification.id) if notification else None
            if person is None:
                log.error("call %s: answered a notification call we do not know", call_sid)
                response = VoiceResponse()
                response.hangup()
                return str(response.to_xml())
            phone, language, notification_id = person
            return rt.calls.start_outbound(call_sid, phone, "notify_intro", language,
                                           WebhookReplies.first(renderer(rt)), notification=notification_id)
        return guarded(answered)

    @bp.post("/notify/status")
    def notify_status() -> Response:
        def status(rt: Runtime, call_sid: str) -> str:
            with rt.sessions() as db, db.begin():
                planning.call_ended(db, bounded_int(request.args.get("n"), 0), call_sid,
                                    request.form.get("CallStatus", "")[:20], rt.notify_rules,
                                    rt.flow.prompts["cmn"]["sms_news_waiting"], rt.clock())
            return str(VoiceResponse().to_xml())
        return guarded(status)
