"""Flow checks run at start-up and by `python -m ivr flows check`.

Each rule guards a way a caller could get stuck: a jump to nowhere, a prompt nobody wrote, a
reprompt that is silent (dead air), a step with no way to a person, a step nothing leads to.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Iterator

from ivr.flow.schema import BARGE_IN_POLICIES, SPECIAL_TARGETS, Handler, Step, Transition

if TYPE_CHECKING:
    from ivr.flow.loader import Flow

SPECIAL_PROMPTS = {"@reprompt", "@example"}
MENU_KEYS_NOT_COUNTED = {"0", "*", "#"}
MAX_MENU_OPTIONS = 3
MIN_FIRST_TIMEOUT = 8
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A prompt id names its recording file and the URL that plays it; "." is kept for the segments of a
# templated prompt (confirm_booking.1) and "w." for the words of a pieces file.
_PROMPT_ID = re.compile(r"^[A-Za-z0-9_@-]+$")


def step_transitions(step: Step) -> Iterator[tuple[str, Transition]]:
    for key, transition in step.keys.items():
        yield f"key {key}", transition
    for result, transition in step.on.items():
        yield f"result {result}", transition
    if step.next:
        yield "next", step.next


def handler_targets(handlers: list[Handler]) -> Iterator[tuple[str, str]]:
    for handler in handlers:
        if handler.goto:
            yield f"handler {handler.count}", handler.goto


def check_flow(flow: "Flow") -> None:
    from ivr.engine.builtin_actions import ACTIONS
    from ivr.flow.loader import FlowError

    problems: list[str] = []
    known = set(flow.steps) | SPECIAL_TARGETS
    cmn = flow.prompts.get("cmn", {})

    def check_prompt_ids(where: str, ids: list[str]) -> None:
        for prompt_id in ids:
            if prompt_id in SPECIAL_PROMPTS:
                continue
            if prompt_id not in cmn:
                problems.append(f"{where}: unknown prompt id '{prompt_id}' (not in {flow.prompt_files['cmn']})")
            elif not cmn[prompt_id]:
                problems.append(f"{where}: prompt '{prompt_id}' has no words")

    def check_target(where: str, target: str) -> None:
        if target not in known:
            problems.append(f"{where}: unknown target '{target}'")

    def check_action(where: str, name: str | None) -> None:
        if name is not None and name not in ACTIONS:
            problems.append(f"{where}: unknown action '{name}'")

    def check_handlers(where: str, what: str, handlers: list[Handler]) -> None:
        for handler in handlers:
            hwhere = f"{where} {what} handler {handler.count}"
            if not handler.prompt and not handler.goto:
                problems.append(f"{hwhere}: empty reprompt (says nothing and goes nowhere)")
            check_prompt_ids(hwhere, handler.prompt)
            if handler.goto:
                check_target(hwhere, handler.goto)

    check_handlers("defaults", "noinput", flow.defaults.noinput)
    check_handlers("defaults", "nomatch", flow.defaults.nomatch)
    for key, transition in flow.defaults.global_keys.items():
        check_target(f"defaults global key {key}", transition.goto)
        check_action(f"defaults global key {key}", transition.do)

    for step_id, step in flow.steps.items():
        where = flow.where(step_id)
        check_prompt_ids(where, step.say + step.prompt + step.reprompt + step.example)
        for label, transition in step_transitions(step):
            check_target(f"{where} {label}", transition.goto)
            check_action(f"{where} {label}", transition.do)
        check_action(where, step.do)
        kinds = [step.takes_input, step.do is not None and not step.takes_input, step.enqueue,
                 step.next is not None and not step.do and not step.takes_input, step.hangup]
        if sum(kinds) != 1:
            problems.append(f"{where}: must do exactly one of: ask (keys/collect), run an action "
                            "(do + on), enqueue, go on (next), hang up")
        if step.do and step.do in ACTIONS:
            spec = ACTIONS[step.do]
            missing = sorted(spec.results - set(step.on))
            extra = sorted(set(step.on) - spec.results)
            if missing:
                problems.append(f"{where}: action '{step.do}' can answer {missing} but 'on' has no step for it")
            if extra:
                problems.append(f"{where}: action '{step.do}' never answers {extra}")
        if step.enqueue:
            missing = sorted({"left", "full", "timeout", "bridged"} - set(step.on))
            if missing:
                problems.append(f"{where}: a queue step needs 'on' steps for {missing}")
        if step.takes_input:
            if not step.prompt:
                problems.append(f"{where}: asks for input but has no prompt")
            if not step.reprompt:
                problems.append(f"{where}: empty reprompt (a short reminder of the question is required)")
            elif _words(cmn, step.reprompt) and len(_words(cmn, step.reprompt)) >= len(_words(cmn, step.prompt)):
                problems.append(f"{where}: the reprompt must be shorter than the prompt")
            if not step.grammar:
                problems.append(f"{where}: asks for input but names no speech grammar")
            if step.keys and step.collect:
                problems.append(f"{where}: use either keys or collect, not both")
            options = [k for k in step.keys if k not in MENU_KEYS_NOT_COUNTED
                       and k not in flow.defaults.global_keys]
            if len(options) > MAX_MENU_OPTIONS:
                problems.append(f"{where}: {len(options)} options; older callers need at most "
                                f"{MAX_MENU_OPTIONS} plus 0 for a person")
            person_keys = [t for t in step.keys.values() if t.goto == flow.person_step]
            if not step.operator and not person_keys:
                problems.append(f"{where}: no way to reach a person (0 is switched off and no key leads to "
                                f"'{flow.person_step}')")
            if step.timeout is not None and step.timeout < MIN_FIRST_TIMEOUT:
                problems.append(f"{where}: timeout {step.timeout}s is too short (at least {MIN_FIRST_TIMEOUT}s)")
            if step.collect and step.collect.min > step.collect.max:
                problems.append(f"{where}: collect min is larger than max")
        check_handlers(where, "noinput", step.noinput or [])
        check_handlers(where, "nomatch", step.nomatch or [])
        problems += _barge_in_problems(where, step)

    for lang, texts in flow.prompts.items():
        for prompt_id, text in texts.items():
            if not text:
                problems.append(f"{flow.prompt_files[lang]}: prompt '{prompt_id}' has no words")
    for lang, texts in flow.prompts.items():
        for prompt_id in texts:
            if not _PROMPT_ID.match(prompt_id):
                problems.append(f"{flow.prompt_files[lang]}: prompt '{prompt_id}': the id may only use letters, "
                                "digits, _, - and @ (it names the recording file)")
    for prompt_id in cmn:
        base = prompt_id.split("@")[0]
        if "@" in prompt_id and (base not in cmn or prompt_id.split("@")[1] not in ("speech", "spoken")):
            problems.append(f"{flow.prompt_files['cmn']}: prompt '{prompt_id}' is a variant of nothing "
                            "(write <id>@speech or <id>@spoken for an existing <id>)")
    for lang in flow.prompts:
        if lang != "cmn":
            problems += _translation_problems(flow, lang)

    if flow.start not in flow.steps:
        problems.append(f"start step '{flow.start}' is not defined")
    if flow.goodbye_step and flow.goodbye_step not in flow.steps:
        problems.append(f"goodbye_step '{flow.goodbye_step}' is not defined")
    for step_id, step in flow.steps.items():
        for intent, key in step.intents.items():
            if key not in step.keys and key not in flow.defaults.global_keys and not step.collect:
                problems.append(f"{flow.where(step_id)}: intent '{intent}' stands for key {key!r}, "
                                "which the step does not accept")
    problems += _grammar_problems(flow)
    if flow.person_step not in flow.steps:
        problems.append(f"person_step '{flow.person_step}' is not defined")
    for step_id in sorted(set(flow.steps) - reachable_steps(flow)):
        problems.append(f"{flow.where(step_id)}: unreachable (no step leads here)")
    if problems:
        raise FlowError(problems)


def _translation_problems(flow: "Flow", lang: str) -> list[str]:
    """A translation (wuu.yaml) names only Mandarin prompt ids, fills in the same parts as the
    Mandarin words (else a recording would leave out, or invent, a number), and marks reviewed
    only prompts it has words for."""
    cmn, texts, rel = flow.prompts["cmn"], flow.prompts[lang], flow.prompt_files[lang]
    problems = []
    for prompt_id, text in texts.items():
        if prompt_id not in cmn:
            problems.append(f"{rel}: prompt '{prompt_id}' has no Mandarin version "
                            f"(not in {flow.prompt_files['cmn']}: misspelt or removed there?)")
            continue
        ours, theirs = set(placeholders(text)), set(placeholders(cmn[prompt_id]))
        if ours != theirs:
            gaps = [f"missing {{{p}}}" for p in sorted(theirs - ours)] + \
                   [f"{{{p}}} is not in the Mandarin words" for p in sorted(ours - theirs)]
            problems.append(f"{rel}: prompt '{prompt_id}': the filled-in parts differ from "
                            f"{flow.prompt_files['cmn']} ({', '.join(gaps)})")
    for prompt_id in flow.reviewed.get(lang, []):
        if prompt_id not in cmn:
            problems.append(f"{rel}: reviewed: prompt '{prompt_id}' is not a prompt id "
                            f"(not in {flow.prompt_files['cmn']})")
        elif not texts.get(prompt_id):
            problems.append(f"{rel}: reviewed: prompt '{prompt_id}' is marked reviewed but has no words "
                            "in this file")
    return problems


@dataclass(frozen=True)
class PieceReport:
    """What a fully recorded language takes (ivr.prompts.pieces): whole prompts, segments of the
    templated ones, and the words of its pieces file, drafts or reviewed."""

    language: str
    file: str  # prompts/<lang>_pieces.yaml
    has_file: bool
    prompts: int
    segments: int
    words: int
    word_drafts: int
    word_reviewed: int
    pieces: tuple = ()  # the Pieces, for the spoken-forms check

    @property
    def total(self) -> int:
        return self.prompts + self.segments + self.words

    @cached_property
    def unsayable(self) -> list[str]:
        """Spoken numbers, dates and times (a sample of every form) the words cannot say."""
        from ivr.prompts.pieces import Composer, value_samples
        from ivr.speakable import LANGUAGES as SPOKEN
        if self.language not in SPOKEN:
            return []
        composer = Composer(self.pieces, self.language)
        return [text for text in value_samples(self.language)
                if not composer.compose(text, lambda _: True).complete]

    def summary(self) -> str:
        words = (f"{self.words} words ({self.word_drafts} drafts, {self.word_reviewed} reviewed)"
                 if self.has_file else "no such file: numbers, dates and times cannot be recorded")
        line = (f"{self.file}: {words}; a full recording is {self.total} pieces: {self.prompts} whole "
                f"prompts, {self.segments} segments, {self.words} words")
        gaps = self.unsayable
        if gaps:
            shown = "、".join(gaps[:5]) + (" …" if len(gaps) > 5 else "")
            line += f"\n  {len(gaps)} spoken numbers, dates or times no word says, e.g. {shown}"
        return line


@dataclass(frozen=True)
class TranslationReport:
    """How far a language's script is: ids with no words yet, drafts, reviewed; and its pieces."""

    language: str
    file: str
    missing: list[str]
    drafts: list[str]
    reviewed: list[str]
    pieces: PieceReport | None = None

    def summary(self) -> str:
        total = len(self.missing) + len(self.drafts) + len(self.reviewed)
        line = (f"{self.file}: {len(self.drafts) + len(self.reviewed)} of {total} prompts have words "
                f"({len(self.drafts)} drafts, {len(self.reviewed)} reviewed, {len(self.missing)} missing)")
        return line + ("\n" + self.pieces.summary() if self.pieces else "")


def piece_report(flow: "Flow", lang: str) -> PieceReport:
    from ivr.prompts.pieces import pieces_for
    pieces = pieces_for(flow.prompts, lang, flow.piece_words.get(lang, {}))
    count = {kind: sum(1 for p in pieces if p.kind == kind) for kind in ("prompt", "segment", "word")}
    marked = set(flow.pieces_reviewed.get(lang, []))
    words = flow.piece_words.get(lang, {})
    reviewed = sum(1 for word_id in words if word_id in marked)
    return PieceReport(lang, flow.piece_files.get(lang, f"prompts/{lang}_pieces.yaml"), lang in flow.piece_files,
                       count["prompt"], count["segment"], count["word"], len(words) - reviewed, reviewed,
                       tuple(pieces))


def translation_report(flow: "Flow", lang: str) -> TranslationReport:
    cmn, texts = flow.prompts["cmn"], flow.prompts.get(lang, {})
    marked = set(flow.reviewed.get(lang, []))
    missing = [pid for pid in cmn if not texts.get(pid)]
    reviewed = [pid for pid in cmn if texts.get(pid) and pid in marked]
    drafts = [pid for pid in cmn if texts.get(pid) and pid not in marked]
    return TranslationReport(lang, flow.prompt_files.get(lang, f"prompts/{lang}.yaml"), missing, drafts, reviewed,
                             piece_report(flow, lang))


def _barge_in_problems(where: str, step: Step) -> list[str]:
    """A misspelt policy would silently fall back to a default; a policy on a step that asks
    nothing has no prompt-and-answer to govern, so it is a mistake in the flow."""
    if step.barge_in not in BARGE_IN_POLICIES:
        return [f"{where}: barge_in '{step.barge_in}' is not one of {', '.join(BARGE_IN_POLICIES)}"]
    if step.barge_in != "any" and not step.takes_input:
        return [f"{where}: barge_in '{step.barge_in}' on a step that asks nothing (only questions can be "
                "interrupted)"]
    return []


def _grammar_problems(flow: "Flow") -> list[str]:
    """Each question names a context of grammars/ and maps only that context's intents."""
    from ivr.nlu import COMMON_INTENTS, CONTEXTS
    problems = []
    for step_id, step in flow.steps.items():
        if step.grammar and step.grammar not in CONTEXTS:
            problems.append(f"{flow.where(step_id)}: grammar '{step.grammar}' is not a context of grammars/ "
                            f"({', '.join(sorted(CONTEXTS))})")
            continue
        allowed = set(CONTEXTS.get(step.grammar or "", ())) | set(COMMON_INTENTS)
        for intent in step.intents:
            if intent not in allowed:
                problems.append(f"{flow.where(step_id)}: intent '{intent}' is not in grammar '{step.grammar}'")
    return problems


def reachable_steps(flow: "Flow") -> set[str]:
    seen: set[str] = set()
    queue = deque([flow.start])
    global_targets = [t.goto for t in flow.defaults.global_keys.values()]
    if flow.goodbye_step:
        global_targets.append(flow.goodbye_step)  # said at any question
    default_targets = [t for _, t in handler_targets(flow.defaults.noinput + flow.defaults.nomatch)]
    while queue:
        step_id = queue.popleft()
        if step_id in seen or step_id not in flow.steps:
            continue
        seen.add(step_id)
        step = flow.steps[step_id]
        targets = [t.goto for _, t in step_transitions(step)]
        targets += [t for _, t in handler_targets((step.noinput or []) + (step.nomatch or []))]
        if step.takes_input:
            targets += global_targets + default_targets
        queue.extend(t for t in targets if t not in SPECIAL_TARGETS)
    return seen


def _words(texts: dict[str, str], prompt_ids: list[str]) -> str:
    """The fixed words of prompts (filled-in parts left out, their length is unknown)."""
    return "".join(_PLACEHOLDER.sub("", texts.get(pid, "")) for pid in prompt_ids)


def placeholders(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)
