"""TwiML that needs no database: what a caller hears when a turn could not be served.

Everything here is built from the flow's fixed words, Twilio's own request values and the
callback spool, so it works with the database locked, slow or gone: an apology with a way on
(1 starts again, 0 a person), the queue in operator hours with its wait loop, and after hours
(or on leaving that queue) a callback that the spool keeps until the worker books it.
"""
from __future__ import annotations

import logging

from twilio.twiml.voice_response import VoiceResponse

from ivr.callback_spool import SpooledCallback
from ivr.engine.actions import Prompt
from ivr.privacy import mask_phone
from ivr.runtime import Runtime
from ivr.scheduling.hours import is_open
from ivr.telephony.twiml import add_speech

log = logging.getLogger(__name__)


def _prompts(rt: Runtime, *prompt_ids: str, **values: str) -> list[Prompt]:
    prompts = []
    for pid in prompt_ids:
        words = rt.engine.words(pid, values) if values else rt.flow.prompts["cmn"][pid]
        prompts.append(Prompt(pid, "cmn", words, words, static=not values))
    return prompts


def _recover_gather(rt: Runtime, response: VoiceResponse, prompts: list[Prompt]) -> None:
    """Say the prompts and take 1 = start again, 0 = a person (also after silence: 1)."""
    base = rt.settings.public_base_url
    gather = response.gather(input="dtmf", num_digits=1, timeout=rt.policy.later_timeout_seconds, finish_on_key="",
                             action=f"{base}/twilio/recover", method="POST", action_on_empty_result=True)
    add_speech(gather, prompts, rt.store, base)


def apology(rt: Runtime) -> str:
    response = VoiceResponse()
    _recover_gather(rt, response, _prompts(rt, "error_apology", "error_options"))
    return str(response.to_xml())


def person(rt: Runtime, call_sid: str, caller: str) -> str:
    """A person without the database: the queue in operator hours, else a spooled callback."""
    base = rt.settings.public_base_url
    response = VoiceResponse()
    if is_open(rt.clock(), rt.policy.operator_hours, rt.policy.calendar):
        add_speech(response, _prompts(rt, "connecting"), rt.store, base)
        response.enqueue(rt.policy.queue_name, wait_url=f"{base}/twilio/queue/wait", wait_url_method="POST",
                         action=f"{base}/twilio/recover/queue", method="POST")
        log.warning("call %s: no database; caller queued without a record", call_sid)
        return str(response.to_xml())
    return promise_callback(rt, call_sid, caller, "after_hours", "error_after_hours")


def promise_callback(rt: Runtime, call_sid: str, caller: str, reason: str, prompt_id: str) -> str:
    """Promise a callback only if the spool could keep it; otherwise ask the caller to call again."""
    spooled = rt.spool.add(SpooledCallback(call_sid, caller, "cmn", reason, rt.clock()))
    if spooled:
        log.warning("call %s: no database; callback for %s kept in the spool", call_sid, mask_phone(caller))
    else:
        log.error("call %s: no database, and the spool could not keep a callback for %s: asked to call again",
                  call_sid, mask_phone(caller))
    response = VoiceResponse()
    _recover_gather(rt, response, _prompts(rt, prompt_id if spooled else "error_call_again", "error_options"))
    return str(response.to_xml())


def hold(rt: Runtime, position: int, queue_seconds: int) -> str:
    """The queue's wait loop from Twilio's own values: position, time waited, leave with 1."""
    base = rt.settings.public_base_url
    response = VoiceResponse()
    if queue_seconds >= rt.policy.queue_max_wait_seconds:
        response.leave()
        return str(response.to_xml())
    prompts = (_prompts(rt, "queue_position", queue_ahead=str(position - 1)) if position > 1
               else _prompts(rt, "queue_next"))
    gather = response.gather(input="dtmf", num_digits=1, timeout=rt.policy.queue_announce_seconds,
                             action=f"{base}/twilio/queue/key", method="POST", finish_on_key="")
    add_speech(gather, prompts, rt.store, base)
    return str(response.to_xml())


def hold_key(rt: Runtime, keys: str | None) -> str:
    response = VoiceResponse()
    if keys == "1":
        response.leave()
        return str(response.to_xml())
    base = rt.settings.public_base_url
    gather = response.gather(input="dtmf", num_digits=1, timeout=rt.policy.queue_announce_seconds,
                             action=f"{base}/twilio/queue/key", method="POST", finish_on_key="")
    add_speech(gather, _prompts(rt, "queue_still_waiting"), rt.store, base)
    return str(response.to_xml())


def queue_ended(rt: Runtime, call_sid: str, caller: str, outcome: str) -> str:
    """Leaving the queue with no database (outcome as in ivr.engine.events.QueueEnded): a
    hang-up ends it, back from a person is the apology's way on, anything else is a kept callback."""
    if outcome in ("hung_up", "taken"):
        return str(VoiceResponse().to_xml())
    if outcome == "bridged":
        return apology(rt)
    return promise_callback(rt, call_sid, caller, f"queue_{outcome}", "error_callback_noted")
