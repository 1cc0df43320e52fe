"""Values the caller hears, in every language that has spoken forms (ivr.speakable.LANGUAGES).

Numbers, dates, slots, phone numbers and the sentences built from them are made once per language
with a `Speaker` bound to it: the Mandarin words go in ``vars[name]`` (what Mandarin TTS says, also
for callers of another language whose recording is missing), the others in
``vars[f"{name}@{lang}"]``; a prompt for a caller of `lang` is filled with
``spoken_values(vars, lang)``.  Every language, not only the caller's: a caller may switch language
(key 9) while a value is still in use.
"""
from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Callable

from ivr.speakable import LANGUAGES as SPOKEN_LANGUAGES
from ivr.speakable import say_count, say_digit_groups, say_full_date, say_number, say_phone, say_slot

# prompt_words(prompt_id, values, language): a prompt's words in `language` (Mandarin where it has
# none), filled in with `values` (Engine.words).
PromptWords = Callable[[str, Mapping[str, str], str], str]


def spoken_key(name: str, language: str) -> str:
    """Where the words of spoken value `name` in `language` are kept in the call's vars."""
    return name if language == "cmn" else f"{name}@{language}"


def spoken_values(values: Mapping[str, Any], language: str) -> dict[str, str]:
    """The text vars a prompt for a caller of `language` is filled with: each spoken value in
    that language where it has one, the Mandarin words otherwise."""
    plain = {k: v for k, v in values.items() if isinstance(v, str) and "@" not in k}
    if language != "cmn":
        suffix = "@" + language
        plain.update({k[:-len(suffix)]: v for k, v in values.items()
                      if isinstance(v, str) and k.endswith(suffix)})
    return plain


@dataclass(frozen=True)
class Speaker:
    """The say_* functions and the prompt words of one language, so that a spoken value is built
    the same way in each language (see `set_spoken`)."""

    language: str
    vars: Mapping[str, Any]
    prompt_words: PromptWords

    def phone(self, number: str) -> str:
        return say_phone(number, lang=self.language)

    def digits(self, digits: str) -> str:
        return say_digit_groups(digits, lang=self.language)

    def number(self, n: int) -> str:
        return say_number(n, lang=self.language)

    def count(self, n: int) -> str:
        return say_count(n, lang=self.language)

    def full_date(self, d: date, today: date | None = None) -> str:
        return say_full_date(d, today, lang=self.language)

    def slot(self, start: datetime, end: datetime, today: date) -> str:
        return say_slot(start, end, today, lang=self.language)

    def words(self, prompt_id: str, **values: str) -> str:
        """A prompt's words in this language, filled in (values built with this Speaker)."""
        return self.prompt_words(prompt_id, values, self.language)

    def var(self, name: str) -> Any:
        """A spoken value set earlier, in this language (Mandarin if it has no words in it)."""
        return self.vars.get(spoken_key(name, self.language), self.vars.get(name, ""))


def set_spoken(vars_: MutableMapping[str, Any], name: str, build: Callable[[Speaker], Any],
               prompt_words: PromptWords) -> None:
    """Set spoken value `name` in every language with spoken forms: ``build(say)`` gives its words
    (a string, or e.g. a list of pages) with `say` bound to one language.  Every language, not
    only the caller's: a caller may switch language (key 9) while the value is still in use."""
    for language in SPOKEN_LANGUAGES:
        vars_[spoken_key(name, language)] = build(Speaker(language, vars_, prompt_words))
