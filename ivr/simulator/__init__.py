"""Twilio voice simulator: Twilio's side of the protocol, on a virtual clock.

See :mod:`ivr.simulator.twilio_sim` (the simulator), :mod:`ivr.simulator.transport`
(how requests reach the app), :mod:`ivr.simulator.recordings` (Twilio's REST side:
recording media behind Basic auth), :mod:`ivr.simulator.terminal` (a phone in the terminal),
:mod:`ivr.simulator.rest_api` (a fake of Twilio's REST API) and :mod:`ivr.simulator.cloud`
(that fake acting on the simulator). The last two import the ``twilio`` REST client and are
not imported here.
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
    SimDial,
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
    "SimDial",
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
