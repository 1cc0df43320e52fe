"""Request values checked where they enter the service, so the engine only sees what Twilio
could really have sent: keys from the keypad, small whole numbers in ASCII, a turn token.

Anything else (a forged or fuzzed request, even a correctly signed one) becomes a neutral
value here — no key, no number, a stale turn — never an exception further in.
"""
from __future__ import annotations

import re
from typing import Mapping

MAX_PARAM = 64
MAX_URL = 512
MAX_KEYS = 64
_KEYS = re.compile(r"[0-9*#]+")
_ASCII_NUMBER = re.compile(r"[0-9]{1,9}")  # ≤ 999 999 999: fits every integer column and counter
STALE_TURN = -1  # never a real turn number: the stored reply is repeated


def text_value(form: Mapping[str, str], name: str, limit: int = MAX_PARAM) -> str:
    return (form.get(name) or "")[:limit]


def bounded_int(raw: str | None, default: int) -> int:
    """ASCII digits only ("²" and "①" pass str.isdigit), at most nine of them."""
    return int(raw) if raw and _ASCII_NUMBER.fullmatch(raw) else default


def keys_value(raw: str | None) -> str | None:
    """What the caller keyed: None for no keys; "" for something no keypad sends (the engine
    hears a wrong key, which gets the usual reprompt)."""
    if raw is None or raw == "":
        return None
    return raw if len(raw) <= MAX_KEYS and _KEYS.fullmatch(raw) else ""


def turn_token(raw: str | None) -> int:
    """The turn a webhook answers; missing or malformed means stale, never "any turn"."""
    return bounded_int(raw, STALE_TURN)


# Twilio's QueueResult → what the dialog knows of how a wait in the queue ended.
QUEUE_OUTCOMES = {"bridged": "bridged", "leave": "left", "hangup": "hung_up", "redirected": "taken"}


def queue_outcome(result: str) -> str:
    """queue-full, error, system-error and anything unknown: the queue failed the caller."""
    return QUEUE_OUTCOMES.get(result, "failed")
