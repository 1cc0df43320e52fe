"""Masking and hashing of personal data: what may be logged or stored, and how."""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets

from ivr.logsafe import SafeFormatter

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# A run of 7+ digits that stands alone: after + or %2B (URL-encoded +), or not touching a letter or
# digit, so the digits inside a Twilio sid (CA03b1c692377332276855a44d810aea57) or any other
# alphanumeric token are left alone. Runs of up to 15 digits are phone numbers (E.164, Chinese
# mobiles and landlines); longer runs, or runs ending in X, are ID card numbers.
_DIGIT_RUN = re.compile(r"(?:\+|%2[Bb]|(?<![A-Za-z0-9]))(\d{7,}[Xx]?)(?![A-Za-z0-9])")
# The value after a key whose values are keyed ID characters or the like, however it was printed:
# Digits=567*#, digits='567*#', 'Digits': '567*#', ('Digits', '567*#'), "Digits": "567*#".
_SECRET_VALUE = re.compile(
    r"""(?P<lead>\b(?:digits|speech_?result|id_last4|last4)['"]?\s*[=:,]\s*)"""
    r"""(?:(?P<q>['"])(?P<quoted>[^'"\n]*)(?:(?P<close>(?P=q))|\Z)|(?P<bare>[^\s&,;'")\]}]+))""",
    re.IGNORECASE)
GUNICORN_LOGGERS = ("gunicorn.error", "gunicorn.access")  # they keep their own handlers


def mask_phone(phone: str | None) -> str:
    """Keep the last 4 digits so operators and logs can still tell callers apart."""
    if not phone:
        return "-"
    digits = re.sub(r"\D", "", phone)
    return "*" * max(len(digits) - 4, 0) + digits[-4:]


def mask_digits(digits: str | None) -> str:
    """Replace every keyed character; used for ID entries in the call story."""
    return "#" * len(digits or "")


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(1)
    if len(run) > 15 or run[-1] in "Xx":  # an ID number: its last four are what callers key
        return "*" * len(run)
    return mask_phone(run)


def _mask_secret(match: re.Match[str]) -> str:
    if match.group("q"):  # a quoted value; a cut (see ivr.logsafe.clip) may have taken its end quote
        quoted = mask_digits(match.group("quoted"))
        return f"{match.group('lead')}{match.group('q')}{quoted}{match.group('close') or ''}"
    return match.group("lead") + mask_digits(match.group("bare"))


def mask_text(text: str) -> str:
    """Free text as it may be logged: keyed values (Digits=…) and phone and ID numbers masked."""
    return _DIGIT_RUN.sub(_mask_run, _SECRET_VALUE.sub(_mask_secret, text))


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


def safe_formatter(fmt: str = LOG_FORMAT, datefmt: str | None = None) -> SafeFormatter:
    """The formatter every log handler of the project uses: masked, escaped, bounded lines."""
    return SafeFormatter(fmt, datefmt, mask=mask_text)


def secure_handlers(*loggers: logging.Logger) -> None:
    """Give these loggers' handlers the safe formatter, keeping each handler's own format."""
    for logger in loggers:
        for handler in logger.handlers:
            old = handler.formatter
            if isinstance(old, SafeFormatter):
                continue
            fmt, datefmt = (old._fmt, old.datefmt) if old else (None, None)
            handler.setFormatter(safe_formatter(fmt or "%(message)s", datefmt))


def configure_logging(level: str = "INFO") -> None:
    """One stderr handler on the root logger (ivr.*, werkzeug, sqlalchemy, alembic propagate to
    it), and gunicorn's own handlers, if gunicorn set them up already, made safe as well."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, SafeFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(safe_formatter())
        root.addHandler(handler)
    root.setLevel(level)
    secure_handlers(*(logging.getLogger(name) for name in GUNICORN_LOGGERS))
