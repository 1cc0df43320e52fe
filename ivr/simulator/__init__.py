"""Twilio voice simulator: Twilio's side of the protocol, on a virtual clock.

See :mod:`ivr.simulator.twilio_sim` (the simulator), :mod:`ivr.simulator.transport`
(how requests reach the app) and :mod:`ivr.simulator.terminal` (a phone in the terminal).
"""

from .terminal import run_terminal_call
from .transport import HttpResponse, HttpTransport, Transport, WsgiTransport
from .twilio_sim import (
    APPLICATION_ERROR_TEXT,
    DEFAULT_ACCOUNT_SID,
    Heard,
    PendingGather,
    SimCall,
    SimError,
    SimQueue,
    SimRequest,
    SimulatorError,
    TwilioSimulator,
    VirtualClock,
)

__all__ = [
    "APPLICATION_ERROR_TEXT",
    "DEFAULT_ACCOUNT_SID",
    "Heard",
    "HttpResponse",
    "HttpTransport",
    "PendingGather",
    "SimCall",
    "SimError",
    "SimQueue",
    "SimRequest",
    "SimulatorError",
    "Transport",
    "TwilioSimulator",
    "VirtualClock",
    "WsgiTransport",
    "run_terminal_call",
]
