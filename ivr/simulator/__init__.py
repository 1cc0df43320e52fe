"""Twilio voice simulator: Twilio's side of the protocol, on a virtual clock.

See :mod:`ivr.simulator.twilio_sim` (the simulator), :mod:`ivr.simulator.transport`
(how requests reach the app), :mod:`ivr.simulator.recordings` (Twilio's REST side:
recording media behind Basic auth) and :mod:`ivr.simulator.terminal` (a phone in the terminal).
"""

from .recordings import RecordingServer
from .terminal import run_terminal_call
from .transport import HttpResponse, HttpTransport, Transport, WsgiTransport
from .twilio_sim import (
    APPLICATION_ERROR_TEXT,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_RECORDINGS_BASE,
    Heard,
    PendingGather,
    PendingRecord,
    SimCall,
    SimError,
    SimQueue,
    SimRecording,
    SimRequest,
    SimulatorError,
    TwilioSimulator,
    VirtualClock,
)

__all__ = [
    "APPLICATION_ERROR_TEXT",
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_RECORDINGS_BASE",
    "Heard",
    "HttpResponse",
    "HttpTransport",
    "PendingGather",
    "PendingRecord",
    "RecordingServer",
    "SimCall",
    "SimError",
    "SimQueue",
    "SimRecording",
    "SimRequest",
    "SimulatorError",
    "Transport",
    "TwilioSimulator",
    "VirtualClock",
    "WsgiTransport",
    "run_terminal_call",
]
