"""A hotline whose Twilio REST requests reach the call simulator its calls run in.

The console's telephony control (TwilioControl over the real twilio client) → the loopback
FakeTwilioApi → SimulatedTwilio → the simulator → the hotline's signed webhooks.  Shared by tests/test_console_twilio.py (service
level) and tests/test_console_browser.py (through a real browser).

Threads (see ivr/simulator/cloud.py): REST work takes ``cloud.sim.lock`` itself; the helpers
here that drive a caller hold it too, so they are safe while a browser may trigger REST.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from sqlalchemy import select

from hotline_harness import ACCOUNT_SID, HOTLINE_NUMBER, TOKEN, Hotline
from ivr.console.accounts import create_operator
from ivr.console.callbacks import claim, start_call
from ivr.console.waiting import take_caller
from ivr.db.models import Booking, CallbackAttempt, Handoff, Operator
from ivr.outbox.sending import DrainReport, send_item
from ivr.simulator.cloud import SimulatedTwilio
from ivr.simulator.rest_api import FakeTwilioApi
from ivr.simulator.twilio_sim import SimCall
from ivr.telephony.twilio_control import TwilioControl

CALLER = "+8613800000002"
OPERATOR, OPERATOR_PW = "zhang", "operator password 1"
OPERATOR_PHONE = "+8613900002222"


class Cloud:
    """A hotline whose REST requests reach the simulator its calls run in."""

    def __init__(self, make_hotline: Callable[..., Hotline], api: FakeTwilioApi, **env: str) -> None:
        self.hotline: Hotline = make_hotline(TWILIO_API_BASE=api.base_url, TWILIO_REST_TIMEOUT_SECONDS="1", **env)
        self.api = api
        self.sim = SimulatedTwilio(self.hotline.sim, api)
        self.rt = self.hotline.rt
        self.telephony = TwilioControl.from_settings(self.rt.settings)
        with self.rt.sessions() as db, db.begin():
            create_operator(db, OPERATOR, OPERATOR_PW, "operator", self.now(), phone=OPERATOR_PHONE)

    def now(self):
        return self.hotline.clock.now()

    def operator(self) -> Operator:
        with self.rt.sessions() as db:
            return db.execute(select(Operator).where(Operator.username == OPERATOR)).scalar_one()

    def call(self, caller: str = CALLER, *keys: str) -> SimCall:
        """A caller (language remembered) who presses `keys` one entry at a time, under the lock."""
        self.hotline.remember_language(caller)
        with self.sim.lock:
            call = self.sim.place_call(caller, HOTLINE_NUMBER)
            for entry in keys:
                call.press(entry)
        return call

    def waiting_caller(self, caller: str = CALLER, *keys: str) -> SimCall:
        """Presses `keys` (default: 0 at the main menu) and ends up in the operators' queue."""
        call = self.call(caller, *(keys or ("0",)))
        assert call.state == "queued", call.transcript()
        return call

    def take(self, handoff_id: int | None = None):
        return take_caller(self.rt.sessions, self.telephony, self.rt.settings, "operators", self.operator(),
                           handoff_id, self.now())

    def handoff(self) -> Handoff:
        with self.rt.sessions() as db:
            return db.execute(select(Handoff)).scalar_one()

    def booking(self, caller: str = CALLER) -> Booking:
        """A caller books the first callback slot offered and hangs up."""
        call = self.call(caller, *"2111")
        assert self.hotline.step(call) == "booked", call.transcript()
        with self.sim.lock:
            call.hangup()
        return self.hotline.bookings(caller)[-1]

    def call_now(self, booking_id: int) -> CallbackAttempt:
        operator = self.operator()
        with self.rt.sessions() as db, db.begin():
            claim(db, booking_id, OPERATOR, self.now(), 20)
            item = start_call(db, booking_id, operator, self.rt.settings, self.now())
            item_id, attempt_id = item.id, item.payload["attempt_id"]
        send_item(self.rt.sessions, item_id, self.telephony, HOTLINE_NUMBER, self.now(), DrainReport())
        self.sim.wait_idle()
        return self.attempt(attempt_id)

    def attempt(self, attempt_id: int) -> CallbackAttempt:
        with self.rt.sessions() as db:
            return db.get(CallbackAttempt, attempt_id)

    def attempts(self, booking_id: int) -> list[CallbackAttempt]:
        with self.rt.sessions() as db:
            return list(db.execute(select(CallbackAttempt).where(CallbackAttempt.booking_id == booking_id)
                                   .order_by(CallbackAttempt.id)).scalars())

    def get(self, model: Any, key: Any) -> Any:
        with self.rt.sessions() as db:
            return db.get(model, key)


@pytest.fixture()
def api() -> Iterator[FakeTwilioApi]:
    """Twilio's REST API on loopback, for this test (registered in conftest.py)."""
    with FakeTwilioApi(ACCOUNT_SID, TOKEN) as server:
        yield server


@pytest.fixture()
def cloud(make_hotline, api) -> Cloud:
    return Cloud(make_hotline, api)
