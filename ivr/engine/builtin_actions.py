"""Named actions that flows can run with `do:`; each returns one of its declared results.

An action reads and writes the call state and the repository; it never speaks directly.  What the
caller hears comes from prompts filled with the `vars` an action sets.

Values the caller hears are set with ``ctx.spoken(name, build)`` in every spoken language
(ivr.engine.spoken).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable

from ivr.engine.policy import Policy
from ivr.engine.ports import MatterView, Repository
from ivr.engine.spoken import PromptWords, Speaker, set_spoken
from ivr.engine.state import CallState
from ivr.phone_numbers import normalise_callback_number
from ivr.scheduling.hours import is_open
from ivr.scheduling.slots import Slot, offer_slots, slot_from_key
from ivr.speakable import written_phone, written_slot

MATTERS_PER_PAGE = 1  # one matter at a time: 1 skips to the next one, even while it is read
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


@dataclass
class ActionContext:
    state: CallState
    repo: Repository
    policy: Policy
    now: datetime  # aware, Asia/Shanghai
    words: Callable[..., str]  # words(prompt_id, **vars): Mandarin text of a prompt, filled in (SMS)
    value: str | None = None  # what the caller keyed at this step (may be sensitive: never store)
    arg: str | None = None
    prompt_words: PromptWords | None = None  # Engine.words; None: Mandarin words in every language

    def spoken(self, name: str, build: Callable[[Speaker], Any]) -> None:
        """Set a value the caller hears, in every spoken language (see `set_spoken`)."""
        set_spoken(self.state.vars, name, build, self.prompt_words or self._mandarin_words)

    def _mandarin_words(self, prompt_id: str, values: Mapping[str, str], language: str) -> str:  # noqa: ARG002
        return self.words(prompt_id, **values)


@dataclass(frozen=True)
class ActionSpec:
    run: Callable[[ActionContext], str]
    results: frozenset[str]


ACTIONS: dict[str, ActionSpec] = {}


def action(*results: str) -> Callable[[Callable[[ActionContext], str]], Callable[[ActionContext], str]]:
    def register(fn: Callable[[ActionContext], str]) -> Callable[[ActionContext], str]:
        ACTIONS[fn.__name__] = ActionSpec(fn, frozenset(results))
        return fn
    return register


# --- caller and language -------------------------------------------------------------------

@action("new", "returning")
def identify_caller(ctx: ActionContext) -> str:
    state = ctx.state
    language = ctx.repo.preferred_language(state.caller) if state.caller else None
    if language:
        state.language, state.language_known = language, True
        return "returning"
    return "new"


@action("done")
def set_language(ctx: ActionContext) -> str:
    ctx.state.language = ctx.arg or "cmn"
    ctx.state.language_known = True
    if ctx.state.caller:
        ctx.repo.remember_language(ctx.state.caller, ctx.state.language, ctx.now)
    return "done"


@action("done")
def switch_language(ctx: ActionContext) -> str:
    ctx.arg = "wuu" if ctx.state.language == "cmn" else "cmn"
    return set_language(ctx)


@action("senior", "other")
def check_senior(ctx: ActionContext) -> str:
    profile = ctx.repo.caller_profile(ctx.state.caller) if ctx.state.caller else None
    if profile and profile.birth_year and ctx.now.year - profile.birth_year >= ctx.policy.senior_age:
        return "senior"
    return "other"


# --- identity checks and status ------------------------------------------------------------

def _locked(ctx: ActionContext, phone: str) -> bool:
    if ctx.state.id_failures >= ctx.policy.id_checks_per_call:
        return True
    since = ctx.now - timedelta(days=1)
    return ctx.repo.id_failures_since(phone, since) >= ctx.policy.id_checks_per_day


def _fail_check(ctx: ActionContext, phone: str) -> str:
    ctx.state.id_failures += 1
    ctx.repo.record_id_failure(phone or ctx.state.caller, ctx.state.call_sid, ctx.now)
    left = ctx.policy.id_checks_per_call - ctx.state.id_failures
    ctx.spoken("checks_left", lambda say: say.count(max(left, 0)))
    return "locked" if _locked(ctx, phone) else "wrong"


@action("registered", "unregistered", "locked", "verified")
def status_identify(ctx: ActionContext) -> str:
    state = ctx.state
    if state.verified and state.vars.get("status_pages"):
        return "verified"
    profile = ctx.repo.caller_profile(state.caller) if state.caller else None
    if profile and profile.registered:
        state.vars["status_phone"] = state.caller
        return "locked" if _locked(ctx, state.caller) else "registered"
    return "locked" if state.caller and _locked(ctx, state.caller) else "unregistered"


@action("found", "wrong", "locked")
def check_case_no(ctx: ActionContext) -> str:
    phone = ctx.repo.phone_of_case((ctx.value or "").strip())
    if phone is None:
        return _fail_check(ctx, ctx.state.caller)
    ctx.state.vars["status_phone"] = phone
    return "locked" if _locked(ctx, phone) else "found"


@action("ok", "wrong", "locked")
def verify_id(ctx: ActionContext) -> str:
    phone = ctx.state.vars.get("status_phone") or ctx.state.caller
    if _locked(ctx, phone):
        return "locked"
    matters = ctx.repo.matters_verified(phone, ctx.value or "")
    if not matters:
        return _fail_check(ctx, phone)
    ctx.state.verified = True
    if ctx.arg == "news":  # a notification: the matters with news, told from now on
        news = ctx.repo.news_cases(phone)
        matters = [m for m in matters if m.case_no in news] or matters
        told = ctx.repo.news_heard(phone, ctx.now)
        ctx.state.note("news_heard", count=len(matters) if told else 0)
    ordered = sorted(matters, key=lambda m: m.updated_at, reverse=True)
    ctx.spoken("status_pages", lambda say: _pages(say, ordered, ctx.now.date()))
    ctx.spoken("matter_count", lambda say: say.count(len(ordered)))
    ctx.state.vars["status_page_no"] = 0
    return "ok"


def _spoken_detail(detail: str, say: Speaker, today: date) -> str:
    """The office's free-text detail with its ISO dates spoken; the rest stays as written."""
    def date_words(match: re.Match[str]) -> str:
        y, m, d = (int(g) for g in match.groups())
        return say.full_date(datetime(y, m, d).date(), today)
    return _ISO_DATE.sub(date_words, detail.strip().rstrip("。"))


def _matter_sentences(say: Speaker, number: int, matter: MatterView, today: date) -> str:
    """One fact per sentence, plain words: which matter, where it stands, what to do."""
    parts = [say.words("status_item", n=say.number(number),
                       service=say.words(f"service_{matter.service}"),
                       status=say.words(f"status_{matter.status}"))]
    if matter.detail:
        parts.append(_spoken_detail(matter.detail, say, today) + "。")
    parts.append(say.words("status_updated", date=say.full_date(matter.updated_at.date(), today)))
    return "".join(parts)


def _pages(say: Speaker, ordered: list[MatterView], today: date) -> list[str]:
    sentences = [_matter_sentences(say, i + 1, m, today) for i, m in enumerate(ordered)]
    return [" ".join(sentences[i:i + MATTERS_PER_PAGE]) for i in range(0, len(sentences), MATTERS_PER_PAGE)]


@action("more", "next", "last", "none")
def status_page(ctx: ActionContext) -> str:
    """"more" after the first matter (the options in full), "next" after later ones (short:
    the caller knows them by then), "last" after the last."""
    pages: list[str] = ctx.state.vars.get("status_pages") or []
    number = int(ctx.state.vars.get("status_page_no", 0))
    if not pages:
        return "none"
    number = min(number, len(pages) - 1)
    ctx.spoken("status_text", lambda say: _page(say.var("status_pages"), pages, number))
    if number + 1 >= len(pages):
        return "last"
    return "more" if number == 0 else "next"


def _page(pages: Any, mandarin: list[str], number: int) -> str:
    """Page `number` in a language, or the Mandarin one if that language's pages do not match
    (a state stored before it had them)."""
    return pages[number] if isinstance(pages, list) and len(pages) == len(mandarin) else mandarin[number]


@action("done")
def status_next_page(ctx: ActionContext) -> str:
    ctx.state.vars["status_page_no"] = int(ctx.state.vars.get("status_page_no", 0)) + 1
    return "done"


@action("done")
def status_first_page(ctx: ActionContext) -> str:
    ctx.state.vars["status_page_no"] = 0
    return "done"


# --- callbacks -------------------------------------------------------------------------------

@action("own_number", "no_number")
def booking_prepare(ctx: ActionContext) -> str:
    state = ctx.state
    existing = ctx.repo.open_booking(state.caller, ctx.now) if state.caller else None
    state.vars["replacing"] = bool(existing)
    ctx.spoken("old_slot", lambda say: say.slot(existing.slot_start, existing.slot_end, ctx.now.date())
               if existing else "")
    own = normalise_callback_number(state.caller or "")
    if own:
        ctx.spoken("caller_spoken", lambda say: say.phone(own))
        return "own_number"
    return "no_number"


@action("done")
def use_own_number(ctx: ActionContext) -> str:
    number = normalise_callback_number(ctx.state.caller) or ctx.state.caller
    ctx.state.vars["callback_number"] = number
    ctx.spoken("callback_spoken", lambda say: say.phone(number))
    return "done"


@action("ok", "invalid")
def check_callback_number(ctx: ActionContext) -> str:
    number = normalise_callback_number(ctx.value or "")
    if number is None:
        return "invalid"
    ctx.state.vars["callback_number"] = number
    ctx.spoken("callback_spoken", lambda say: say.phone(number))
    return "ok"


def _free_slots(ctx: ActionContext) -> list[Slot]:
    policy = ctx.policy
    horizon = ctx.now + timedelta(days=15)
    booked = ctx.repo.booked_counts(ctx.now, horizon)
    return offer_slots(ctx.now, policy.service_hours, policy.calendar, policy.slot_minutes,
                       policy.slot_capacity, booked, count=policy.slot_offer_count,
                       lead_minutes=policy.slot_lead_minutes)


@action("offered", "none")
def offer_callback_slots(ctx: ActionContext) -> str:
    slots = _free_slots(ctx)
    if not slots:
        return "none"
    ctx.state.vars["slot_keys"] = [s.key for s in slots]
    ctx.spoken("slot_choices", lambda say: "".join(
        say.words("slot_choice", slot=say.slot(s.start, s.end, ctx.now.date()), key=str(i + 1))
        for i, s in enumerate(slots)))
    return "offered"


@action("ok", "invalid")
def pick_slot(ctx: ActionContext) -> str:
    keys: list[str] = ctx.state.vars.get("slot_keys") or []
    choice = ctx.value or ""
    if not choice.isdigit() or not 1 <= int(choice) <= len(keys):
        return "invalid"
    slot = slot_from_key(keys[int(choice) - 1], ctx.policy.slot_minutes)
    ctx.state.vars["chosen_slot"] = slot.key
    ctx.spoken("chosen_slot_spoken", lambda say: say.slot(slot.start, slot.end, ctx.now.date()))
    ctx.spoken("replace_note", lambda say: say.words("replace_note", old_slot=say.var("old_slot"))
               if say.var("old_slot") else "")
    return "ok"


@action("booked", "full")
def book_slot(ctx: ActionContext) -> str:
    slot = slot_from_key(ctx.state.vars["chosen_slot"], ctx.policy.slot_minutes)
    booking = ctx.repo.book(ctx.state.caller, ctx.state.vars["callback_number"], slot.start, slot.end,
                            ctx.policy.slot_capacity, ctx.state.language, ctx.state.call_sid, ctx.now)
    if booking is None:
        return "full"
    ctx.spoken("from_spoken", lambda say: say.phone(ctx.policy.callback_from_number))
    ctx.state.note("booked", slot=slot.key)
    number = ctx.state.vars["callback_number"]
    if number.startswith("+861"):  # a mainland mobile can take the confirmation by SMS
        body = ctx.words("sms_booking_confirmed", slot=written_slot(slot.start, slot.end),
                         from_number=written_phone(ctx.policy.callback_from_number))
        ctx.repo.queue_sms(number, body, f"booking:{ctx.state.call_sid}:{slot.key}", ctx.now)
    return "booked"


@action("found", "none")
def load_booking(ctx: ActionContext) -> str:
    booking = ctx.repo.open_booking(ctx.state.caller, ctx.now) if ctx.state.caller else None
    if booking is None:
        return "none"
    ctx.spoken("booked_slot_spoken", lambda say: say.slot(booking.slot_start, booking.slot_end, ctx.now.date()))
    ctx.spoken("booked_number_spoken", lambda say: say.phone(booking.callback_number))
    ctx.spoken("from_spoken", lambda say: say.phone(ctx.policy.callback_from_number))
    return "found"


@action("cancelled", "none")
def cancel_booking(ctx: ActionContext) -> str:
    done = ctx.repo.cancel_booking(ctx.state.caller, ctx.now)
    if done:
        ctx.state.note("cancelled")
    return "cancelled" if done else "none"


# --- a person --------------------------------------------------------------------------------

@action("open", "closed")
def request_person(ctx: ActionContext) -> str:
    """Store the handoff record first, so operators see the caller's story whatever happens."""
    state = ctx.state
    opened = is_open(ctx.now, ctx.policy.operator_hours, ctx.policy.calendar)
    reason = state.handoff_reason or "asked_for_person"
    if not opened:
        reason = f"{reason}+after_hours"
    ctx.repo.record_handoff(state.call_sid, state.caller, state.language, state.verified, reason,
                            list(state.story), opened, ctx.now)
    state.note("handoff", reason=reason)
    return "open" if opened else "closed"


from ivr.engine import news_actions  # noqa: E402,F401 - registers the notification actions
