"""Log lines that hostile input cannot forge or flood: one record, one bounded physical line.

Request values reach log messages (a CallSid, a URL, an exception message). A newline in one
would start a line that looks like a record of its own; a megabyte in one would cost a megabyte
of log per request. SafeFormatter is the one place that turns a record into text, so it is where
control characters are escaped and lengths bounded — for the message, each interpolated value,
the traceback and the stack — whichever logger the record came from.
"""
from __future__ import annotations

import copy
import logging
import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

MAX_VALUE = 512  # one interpolated value (a CallSid is 34 characters, a recording URL ~120)
MAX_MESSAGE = 2048  # the message after interpolation
MAX_TRACEBACK = 8192  # a traceback keeps its head and its tail (where the exception is)
MAX_LINE = MAX_MESSAGE + MAX_TRACEBACK + 512  # the whole line, time and level included
_CONTEXT = 64  # characters masked beyond a cut: longer than any phone or ID number

# C0 and C1 controls (\n \r \t \x00-\x1f \x7f \x80-\x9f, NEL \x85 among them), the Unicode line and
# paragraph separators, and the bidirectional controls that can reorder what a terminal shows.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

Mask = Callable[[str], str]


def escape_controls(text: str) -> str:
    """Control characters become visible escapes (a newline is the two characters backslash-n)."""
    def visible(match: re.Match[str]) -> str:
        char = match.group(0)
        if char in _NAMED:
            return _NAMED[char]
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    return _CONTROL.sub(visible, text)


def _cut_marker(length: int) -> str:
    # Thousands separators: the length must not look like a phone number to the masking.
    return f"…[{length:,} chars]"


def bound(text: str, limit: int) -> str:
    """The first `limit` characters, and a marker with the original length if any were cut."""
    return text if len(text) <= limit else text[:limit] + _cut_marker(len(text))


def clip(text: str, limit: int, mask: Mask, *, tail: bool = False) -> str:
    """At most `limit` characters of text, masked and escaped: its head, or (tail=True) a quarter
    from the head and the rest from the tail, where a traceback names the error.

    Only the kept parts, with _CONTEXT characters around them, are masked: a megabyte of input
    costs no megabyte of regular-expression work, and a phone number across a cut is still
    masked whole.
    """
    head_len = limit // 4 if tail else limit
    tail_len = limit - head_len
    if len(text) <= limit + _CONTEXT:
        shown = escape_controls(mask(text))
        if len(shown) <= limit:
            return shown
        head, end = shown[:head_len], shown[len(shown) - tail_len:] if tail else ""
    else:
        head = escape_controls(mask(text[:head_len + _CONTEXT]))[:head_len]
        end = escape_controls(mask(text[-tail_len - _CONTEXT:]))[-tail_len:] if tail else ""
    return head + _cut_marker(len(text)) + end


class _Bounded:
    """Stands in for a log argument: %s and %r give its masked, bounded text."""

    def __init__(self, value: Any, mask: Mask) -> None:
        self.value, self.mask = value, mask

    def __str__(self) -> str:
        return clip(str(self.value), MAX_VALUE, self.mask)

    def __repr__(self) -> str:
        return clip(repr(self.value), MAX_VALUE, self.mask)


def _unmasked(text: str) -> str:
    return text


class SafeFormatter(logging.Formatter):
    """A Formatter whose every line is masked, has no control characters and is bounded.

    The traceback and stack are rendered on the record's own line (their newlines escaped), so
    one record is always one physical line: a log reader never has to tell a traceback's
    newlines from injected ones. `mask` removes personal data (see ivr.privacy.mask_text).
    """

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, *,
                 mask: Mask | None = None) -> None:
        super().__init__(fmt, datefmt)
        self.mask = mask or _unmasked

    def message_of(self, record: logging.LogRecord) -> str:
        """The record's message, each argument bounded before interpolation, then the whole."""
        template = str(record.msg)
        args = record.args
        try:
            if isinstance(args, Mapping):
                text = template % {k: self._wrap(v) for k, v in args.items()}
            elif args:
                text = template % tuple(self._wrap(a) for a in args)
            else:
                text = template
        except (TypeError, ValueError, KeyError):  # a wrong log call must not lose the line
            text = f"{template} (log arguments did not fit: {', '.join(map(repr, self._listed(args)))})"
        return clip(text, MAX_MESSAGE, self.mask)

    def _wrap(self, value: Any) -> Any:
        return value if isinstance(value, numbers.Number) else _Bounded(value, self.mask)

    def _listed(self, args: Any) -> list[Any]:
        values = args.values() if isinstance(args, Mapping) else (args or ())
        return [self._wrap(v) for v in values]

    def _extra_text(self, record: logging.LogRecord) -> str:
        # Computed afresh, never from record.exc_text: another formatter may have cached it raw.
        parts = []
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return clip("\n".join(parts), MAX_TRACEBACK, self.mask, tail=True)

    def format(self, record: logging.LogRecord) -> str:
        safe = copy.copy(record)  # other handlers (and the caller) keep the original record
        safe.msg, safe.args = self.message_of(record), None
        safe.exc_info, safe.exc_text, safe.stack_info = None, None, None
        line = super().format(safe)
        extra = self._extra_text(record)
        if extra:
            line += " | " + extra
        # A second pass for fields of the format string itself (e.g. values passed as extra=).
        return bound(escape_controls(line), MAX_LINE)
