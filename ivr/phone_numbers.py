"""Validation of numbers a caller keys in for a callback (mainland mobile, Shanghai landline)."""
from __future__ import annotations

import re

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"[2-9]\d{7}")


def normalise_callback_number(keyed: str) -> str | None:
    """E.164 for a dialable number, or None.

    Accepts an 11-digit mainland mobile starting with 1, or a Shanghai landline of 8 digits with
    an optional 021 prefix (also 8621/+8621 when read from caller ID).
    """
    digits = re.sub(r"\D", "", keyed)
    if digits.startswith("86") and len(digits) in (13, 12):
        digits = digits[2:]
        if len(digits) == 10 and digits.startswith("21"):
            digits = "0" + digits
    if _MOBILE.fullmatch(digits):
        return "+86" + digits
    if digits.startswith("021") and _LANDLINE.fullmatch(digits[3:]):
        return "+8621" + digits[3:]
    if _LANDLINE.fullmatch(digits):
        return "+8621" + digits
    return None
