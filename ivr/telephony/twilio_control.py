"""TelephonyControl over Twilio's REST API (ivr.telephony.control is the port).

The only place that knows how Twilio does what the console and the worker ask: a queue is found
by its friendly name and its member redirected, a call and an SMS are created; Twilio's and
requests' exceptions become TelephonyError.  Built from settings over rest_client, so every
request has the configured timeout and TWILIO_API_BASE (the loopback fake in tests) applies.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from twilio.rest import Client

from ivr.config import Settings
from ivr.telephony.control import CallGone, TelephonyError
from ivr.telephony.rest_client import REST_ERRORS, client_from_settings, describe_error, error_status

# What Twilio reports to a placed call's status callback (the console shows the attempt's progress).
CALL_EVENTS = ["initiated", "ringing", "answered", "completed"]
QUEUE_NOT_FOUND = "Twilio 上没有找到等候队列"
TOO_MANY_REQUESTS = 429


def as_telephony_error(exc: BaseException) -> TelephonyError:
    """Twilio's failure in the port's terms: Twilio's own failures (5xx), its rate limit (429)
    and no answer in time are worth another try; any other refusal (4xx) is not."""
    status = error_status(exc)
    refused = status is not None and 400 <= status < 500 and status != TOO_MANY_REQUESTS
    return TelephonyError(describe_error(exc), retryable=not refused, code=status)


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except REST_ERRORS as exc:
        raise as_telephony_error(exc) from exc


class TwilioControl:
    """The Twilio implementation of TelephonyControl; one per process (it holds the client)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioControl:
        return cls(client_from_settings(settings))

    def queue_sid(self, queue_name: str) -> str | None:
        """Twilio addresses a queue by sid; the TwiML <Enqueue> names it."""
        with _translated():
            for queue in self.client.queues.list(limit=100):
                if queue.friendly_name == queue_name:
                    return queue.sid
        return None

    def take_queued_call(self, queue_name: str, call_sid: str, connect_url: str) -> None:
        sid = self.queue_sid(queue_name)
        if sid is None:
            raise TelephonyError(QUEUE_NOT_FOUND, retryable=False)
        try:
            self.client.queues(sid).members(call_sid).update(url=connect_url, method="POST")
        except REST_ERRORS as exc:
            error = as_telephony_error(exc)
            if error.code == 404:  # not (or no longer) a member: hung up, or already dequeued
                raise CallGone(error.message, code=404) from exc
            raise error from exc

    def place_call(self, to: str, from_: str, answer_url: str, status_callback: str,
                   ring_seconds: int) -> str:
        with _translated():
            call = self.client.calls.create(to=to, from_=from_, url=answer_url, method="POST",
                                            status_callback=status_callback, status_callback_method="POST",
                                            status_callback_event=CALL_EVENTS, timeout=ring_seconds)
        return call.sid

    def send_sms(self, to: str, from_: str, body: str) -> str:
        with _translated():
            return self.client.messages.create(to=to, from_=from_, body=body).sid
