"""Is the partial result already a complete answer? Decides the endpointer's short wait.

"Complete" means the matcher (ivr.nlu) accepts the text as an intent of the step's context,
the same test the final text will pass. A number is complete only when it has as many digits
as the step expects (else a caller reading a phone number would be cut off after one digit).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from ivr.hearing.grammar import match_phrase

Completeness = Callable[[str], bool]


def grammar_completeness(context: str, lang: str = "cmn", *, grammars: Path | str | None = None,
                         digits: int | None = None) -> Completeness:
    """complete(text) for a step of the service's grammars (understanding by ivr.nlu)."""
    from ivr.nlu import matcher

    m = matcher(grammars)
    m.grammars.context(context)  # unknown context: fail now, not on the first frame

    def complete(text: str) -> bool:
        if not text.strip():
            return False
        understood = m.understand(context, text, lang)
        if understood.band != "accept" or understood.intent is None:
            return False
        if "digits" in understood.slots:
            return digits is not None and len(understood.slots["digits"]) >= digits
        return True

    return complete


def phrase_completeness(phrases: Iterable[str]) -> Completeness:
    """complete(text) when the text is exactly one of ``phrases`` (a plain phrase list, as the
    recogniser's grammar; used where no nlu grammar exists, e.g. the Korean test model)."""
    phrases = tuple(phrases)
    return lambda text: bool(text.strip()) and match_phrase(text, phrases) is not None
