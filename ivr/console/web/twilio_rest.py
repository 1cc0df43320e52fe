"""The Twilio REST client for console views: one per app, with the configured timeout."""
from __future__ import annotations

from typing import Any

from flask import current_app

from ivr.console.web.db import runtime
from ivr.telephony.rest_client import client_from_settings


def twilio() -> Any:
    client = current_app.extensions.get("twilio_rest")
    if client is None:
        client = current_app.extensions["twilio_rest"] = client_from_settings(runtime().settings)
    return client
