"""The telephony control for console views: the one the app was built with (see ivr.web)."""
from __future__ import annotations

from flask import current_app

from ivr.telephony.control import TelephonyControl

EXTENSION = "telephony_control"


def telephony() -> TelephonyControl:
    return current_app.extensions[EXTENSION]
