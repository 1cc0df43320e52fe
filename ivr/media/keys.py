"""Key entry as Twilio's <Gather input="dtmf"> collects it, without the timers.

The session owns the timers (no input, between keys); this only decides when an entry is
complete and what it amounts to, so the rules can be read and tested in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ivr.engine import events as ev

DTMF_KEYS = frozenset("0123456789*#")


@dataclass
class KeyEntry:
    """One entry. With a finish key the entry ends only on it (no length cut-off, as the
    webhook renders numDigits only without a finish key); without one it ends at max_digits."""

    max_digits: int
    finish_on_key: str = ""
    digits: str = field(default="")

    def press(self, key: str) -> ev.KeysPressed | ev.NoInput | None:
        """The entry's result if `key` completes it, else None (keep collecting)."""
        if self.finish_on_key and key == self.finish_on_key:
            # The finish key is not part of the digits; alone it is no input (Gather scenario 1).
            return ev.KeysPressed(self.digits, True) if self.digits else ev.NoInput()
        self.digits += key
        if not self.finish_on_key and len(self.digits) >= max(self.max_digits, 1):
            return ev.KeysPressed(self.digits, True)
        return None

    def timed_out(self) -> ev.KeysPressed | ev.NoInput:
        """The caller stopped: what was keyed is an unfinished entry, nothing is no input."""
        return ev.KeysPressed(self.digits, False) if self.digits else ev.NoInput()
