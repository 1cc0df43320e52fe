"""The telephony control port: what the console and the outbox worker ask of the carrier.

Taking a queued caller to an operator, placing a call, sending an SMS.  Callers depend on this
module only (no twilio, no requests), so another telephony (SIP, Media Streams) can stand behind
the same port; ivr.telephony.twilio_control is the Twilio implementation.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


class TelephonyError(RuntimeError):
    """A carrier request that failed.  The one error callers handle, so they never see a
    carrier's own exceptions.

    ``message`` is short and safe to log and show an operator (no credentials, no URLs).
    ``retryable``: trying the same request again later may work (the carrier failed or did not
    answer in time; it may even have acted on the request); False when the request itself was
    refused.  ``code``: the carrier's status for the failure (an HTTP status for Twilio), None
    when it gave none (no answer, unreachable).
    """

    def __init__(self, message: str, *, retryable: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code


class CallGone(TelephonyError):
    """The call to act on is no longer there (it hung up or already left the queue)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message, retryable=False, code=code)


@runtime_checkable
class TelephonyControl(Protocol):
    """Outbound control of calls and messages.  Every method raises TelephonyError (or CallGone)
    on failure and never blocks longer than the implementation's request timeout."""

    def take_queued_call(self, queue_name: str, call_sid: str, connect_url: str) -> None:
        """Move the caller `call_sid` out of the queue `queue_name` to `connect_url` (POST),
        whose answer connects them to an operator.  CallGone if the caller is not in the queue."""
        ...

    def place_call(self, to: str, from_: str, answer_url: str, status_callback: str,
                   ring_seconds: int) -> str:
        """Call `to` from `from_`; `answer_url` says what to do once answered, `status_callback`
        hears how the call goes (initiated, ringing, answered, completed).  Rings at most
        `ring_seconds`.  Returns the carrier's id of the call."""
        ...

    def send_sms(self, to: str, from_: str, body: str) -> str:
        """Send a text message; returns the carrier's id of the message."""
        ...
