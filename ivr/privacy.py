"""Masking and hashing of personal data: what may be logged or stored, and how."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets

_PHONE_RE = re.compile(r"\+?\d{7,15}")


def mask_phone(phone: str | None) -> str:
    """Keep the last 4 digits so operators and logs can still tell callers apart."""
    if not phone:
        return "-"
    digits = re.sub(r"\D", "", phone)
    return "*" * max(len(digits) - 4, 0) + digits[-4:]


def mask_digits(digits: str | None) -> str:
    """Replace every keyed character; used for ID entries in the call story."""
    return "#" * len(digits or "")


def hash_id_last4(secret: str, last4: str, salt: str | None = None) -> tuple[str, str]:
    """Salted, keyed hash of the last 4 ID characters; returns (salt, hex digest).

    Four characters are easy to brute-force from a plain hash, so the digest is keyed with a
    server secret that never sits in the database.
    """
    salt = salt or secrets.token_hex(8)
    digest = hmac.new(secret.encode(), f"{salt}:{last4.upper()}".encode(), hashlib.sha256)
    return salt, digest.hexdigest()


def id_last4_matches(secret: str, last4: str, salt: str, expected: str) -> bool:
    return hmac.compare_digest(hash_id_last4(secret, last4, salt)[1], expected)


class PhoneMaskingFilter(logging.Filter):
    """Last line of defence: masks anything that looks like a phone number in log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(isinstance(f, PhoneMaskingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler.addFilter(PhoneMaskingFilter())
        root.addHandler(handler)
    root.setLevel(level)
