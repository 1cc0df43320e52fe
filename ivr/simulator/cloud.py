"""Twilio's cloud in a test: the fake REST API acting on the call simulator.

Why: the operator console drives Twilio over REST (take a caller out of the
queue, call someone back) while the hotline answers Twilio's webhooks. To test
the two together, REST requests made with the real ``twilio`` client against
:class:`~ivr.simulator.rest_api.FakeTwilioApi` must act on the calls the
:class:`~ivr.simulator.twilio_sim.TwilioSimulator` is running, so that the
app's webhooks are called exactly as Twilio would call them::

    sim = TwilioSimulator(WsgiTransport(app), BASE, AUTH_TOKEN, account_sid=ACCOUNT_SID)
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        cloud = SimulatedTwilio(sim, api)              # becomes api.backend
        caller = cloud.place_call("+8613800138000", "+862161234567", "/voice")
        client = fake_client(api, timeout=2.0)
        queue = next(q for q in client.queues.list() if q.friendly_name == "operators")
        client.queues(queue.sid).members("Front").update(url=BASE + "/connect", method="POST")
        client.calls.create(to="+8613900000001", from_="+862161234567", url=BASE + "/callback")
        cloud.wait_idle()                              # the outbound call has run

What it models:

* Queues: REST Queues and Members show the simulator's queues, with the QueueSid
  the webhooks carry; a queue created over REST is the one ``<Enqueue>`` uses.
  A member's ``wait_time`` is its virtual queue time, counted back from the wall
  clock (``date_enqueued`` is therefore wall-clock time, not the virtual clock).
* Dequeue (Members POST ``Url``): the call is redirected like
  :meth:`~ivr.simulator.twilio_sim.SimCall.update_url` (its Enqueue action gets
  QueueResult=redirected, then ``Url`` is fetched and run), before the REST answer.
* ``calls.create``: after the 201 ``queued`` answer, on a background thread,
  :meth:`~ivr.simulator.twilio_sim.TwilioSimulator.place_outbound_call` places
  the call; the called phone responds as :attr:`SimulatedTwilio.answers` says
  (default "answered"); its ``<Dial>`` uses ``sim.dial_outcomes``.
* ``calls(sid).update``: ``url``/``twiml`` redirect the call, ``status=completed``
  hangs it up. ``api.calls`` follows every simulated call's REST status.

Threads: the simulator is driven by one thread at a time, under
:attr:`SimulatedTwilio.lock`. REST-triggered work takes it itself; a test that
drives a caller directly while REST requests or background calls may run holds
it: ``with cloud.lock: caller.press("1")``.

Unverified or simplified:

* The simulated phone rings and answers in no real time, so a REST update never
  finds an outbound call still queued or ringing: an update waits until the call
  has been placed, after which ``status=canceled`` has no effect (Twilio cancels
  only queued or ringing calls). An update to a call that has ended is ignored
  (Twilio answers 21220 to a redirect).
* QueueResult of a REST dequeue ("redirected") and of a REST hang-up of a queued
  call ("hangup"); that the Enqueue action is requested before the new URL.
* Twilio carries out a dequeue or update asynchronously; here it has run when
  the REST answer arrives.
* An app webhook must not make REST requests that need the simulator (dequeue,
  update, queue listings) while the simulator waits for that same webhook: the
  request waits for the simulator lock and answers 500 after ``lock_timeout``
  (Twilio would serve it). Creating a call from a webhook is fine: it runs later.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from .rest_api import FakeTwilioApi
from .twilio_sim import SimCall, SimQueue, SimulatorError, TwilioSimulator

__all__ = ["SimulatedTwilio"]


class SimulatedTwilio:
    """A :class:`~ivr.simulator.rest_api.TelephonyBackend` made of a :class:`TwilioSimulator`.

    Attaches itself as ``api.backend`` and reports every simulated call to
    ``api.calls``. :attr:`answers` maps a number called over REST to how it
    responds: "answered" (default), "no-answer", "busy" or "failed".
    """

    def __init__(self, sim: TwilioSimulator, api: FakeTwilioApi, *, lock_timeout: float = 5.0) -> None:
        if (api.account_sid, api.auth_token) != (sim.account_sid, sim.auth_token):
            raise ValueError("the REST API and the simulator must be one account (same sid and auth token)")
        self.sim = sim
        self.api = api
        self.lock = threading.RLock()
        self.lock_timeout = lock_timeout
        self.answers: dict[str, str] = {}
        self._placed = threading.Condition(self.lock)
        sim.on_call_status = self._report
        for call in sim.calls:
            self._report(call)
        api.backend = self

    @property
    def outbound_calls(self) -> list[SimCall]:
        """The calls placed over REST, oldest first."""
        with self.lock:
            return [call for call in self.sim.calls if call.direction == "outbound-api"]

    def place_call(self, from_: str, to: str, voice_path: str = "/twilio/voice", **kwargs: Any) -> SimCall:
        """An inbound call (:meth:`TwilioSimulator.place_call`), under the simulator lock."""
        with self._locked():
            return self.sim.place_call(from_, to, voice_path, **kwargs)

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until the calls created over REST have run (ended, or wait for the callee).

        Raises what such a call raised (e.g. :class:`SimulatorError` on bad TwiML).
        """
        self.api.wait_background(timeout)

    # -- TelephonyBackend ----------------------------------------------------------------

    def queues(self) -> list[tuple[str, str, int]]:
        with self._locked():
            return [(queue.name, queue.sid, queue.max_size) for queue in self.sim.queues.values()]

    def add_queue(self, friendly_name: str, sid: str, max_size: int) -> None:
        with self._locked():
            if friendly_name not in self.sim.queues:
                self.sim.queues[friendly_name] = SimQueue(friendly_name, sid, max_size)

    def queue_members(self, queue_name: str) -> list[tuple[str, float, int]]:
        with self._locked():
            queue = self.sim.queues.get(queue_name)
            if queue is None:
                return []
            now = time.time()
            return [(call.call_sid, now - (call.queue_time or 0.0), queue.position(call))
                    for call in queue.members]

    def dequeue(self, queue_name: str, call_sid: str, url: str, method: str) -> Optional[str]:
        with self._locked():
            queue = self.sim.queues.get(queue_name)
            members = queue.members if queue is not None else []
            if call_sid == "Front":
                call = members[0] if members else None
            else:
                call = next((member for member in members if member.call_sid == call_sid), None)
            if call is None:
                return None
            call.update_url(url, method)
            return call.call_sid

    def create_call(self, call_sid: str, to: str, from_: str, url: str, method: str,
                    status_callback: Optional[str], status_callback_method: str,
                    status_callback_events: list[str], timeout: int) -> None:
        with self._locked():
            try:
                self.sim.place_outbound_call(
                    to, from_, url, method, status_callback, status_callback_method,
                    status_callback_events, timeout, answer=self.answers.get(to, "answered"),
                    call_sid=call_sid)
            finally:
                self._placed.notify_all()

    def update_call(self, call_sid: str, *, url: Optional[str], method: str,
                    twiml: Optional[str], status: Optional[str]) -> None:
        with self._locked():
            if not self._placed.wait_for(lambda: not self._unplaced(call_sid), self.lock_timeout):
                raise SimulatorError(f"call {call_sid} was not placed within {self.lock_timeout} s")
            call = self._call(call_sid)
            if call is None:
                raise SimulatorError(f"{call_sid} is not a simulated call")
            if call.ended or status == "canceled":
                return
            if status == "completed":
                call.complete()
            elif url:
                call.update_url(url, method)
            elif twiml:
                call.update_twiml(twiml)

    # -- internals -----------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self.lock.acquire(timeout=self.lock_timeout):
            raise SimulatorError(f"the simulator was busy for {self.lock_timeout} s: does an app webhook "
                                 "make a REST request that needs the simulator while it waits for the webhook?")
        try:
            yield
        finally:
            self.lock.release()

    def _call(self, call_sid: str) -> SimCall | None:
        return next((call for call in self.sim.calls if call.call_sid == call_sid), None)

    def _unplaced(self, call_sid: str) -> bool:
        """Created over REST, its background placing not yet begun."""
        fake = self.api.calls.get(call_sid)
        return self._call(call_sid) is None and fake is not None and fake.status == "queued"

    def _report(self, call: SimCall) -> None:
        self.api.track_call(call.call_sid, call.to, call.from_, call.status, call.direction)
