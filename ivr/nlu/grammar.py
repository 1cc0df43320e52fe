"""Loading and validating ``grammars/*.yaml`` (the phrases callers may say at each question).

The file format is described in grammars/README.md.  ``check_grammars(directory)`` returns every
problem as a sentence naming the file, the intent and the phrase; ``load_grammars(directory)``
raises ``GrammarError`` with the same list, or returns the compiled ``Grammars`` (cached per
directory).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ivr.nlu.normalize import clean, strip_fillers
from ivr.nlu.phonetics import encode

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "grammars"

COMMON = "common"
COMMON_INTENTS = ("operator", "repeat", "help", "goodbye", "slower", "language_cmn", "language_wuu")
# The contract other code relies on: contexts, their intents, and slot values.
CONTEXTS: dict[str, tuple[str, ...]] = {
    "main_menu": ("status_query", "book_callback", "manage_callback"),
    "service": ("application", "social_security_card", "pension", "medical_insurance",
                "housing_fund"),
    "confirm": ("yes", "no"),
    "callback_slot": ("slot",),
    "digits": ("digits",),
}
SLOTS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("callback_slot", "slot"): {"day": ("today", "tomorrow", "day_after_tomorrow"),
                                "period": ("morning", "afternoon", "evening")},
}
DIGIT_KEYS = tuple("0123456789") + ("ten", "twenty")
DIGIT_INTENTS = {("digits", "digits")}
KINDS = ("cmn", "wuu", "aliases")


class GrammarError(Exception):
    def __init__(self, problems: list[str]):
        super().__init__("invalid grammars:\n" + "\n".join(problems))
        self.problems = problems


# ---------------------------------------------------------------- file schema (pydantic)

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=True)


class PhraseSet(_Model):
    cmn: list[str] = []
    wuu: list[str] = []
    aliases: list[str] = []
    except_: list[str] = Field(default=[], alias="except")


class IntentSpec(PhraseSet):
    slots: dict[str, dict[str, PhraseSet]] | None = None
    digits: dict[str, PhraseSet] | None = None


class GrammarFile(_Model):
    context: str
    carriers: list[str] = []
    ignore: list[str] = []
    intents: dict[str, IntentSpec]


class _Loader(yaml.SafeLoader):
    """SafeLoader where only true/false are booleans (so ``yes:`` and ``no:`` stay text) and a
    repeated key is an error instead of silently replacing the first."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                              __import__("re").compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


# ---------------------------------------------------------------- compiled form

@dataclass(frozen=True)
class Entry:
    """One phrase, normalised and spelled in folded pinyin."""
    original: str
    text: str
    intent: str
    kind: str                        # cmn | wuu | aliases
    slot: tuple[str, str] | None     # (slot name, value) for slot phrases
    code_a: str
    code_b: str
    spell: str
    source: str

    @property
    def key(self) -> tuple:
        return (self.intent, self.slot)


@dataclass
class Context:
    name: str
    intents: tuple[str, ...]                       # context intents first, then common
    entries: list[Entry] = field(default_factory=list)
    carriers: list[str] = field(default_factory=list)          # context + common, longest first
    own_carriers: list[str] = field(default_factory=list)      # the context's own, longest first
    ignore: list[str] = field(default_factory=list)
    excepts: dict[tuple, list[str]] = field(default_factory=dict)
    digits: dict[str, tuple[str, bool]] = field(default_factory=dict)   # char → (value, strong)
    phrases: list[str] = field(default_factory=list)           # every phrase, for phrase lists
    slot_names: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Grammars:
    directory: Path
    contexts: dict[str, Context]

    def context(self, name: str) -> Context:
        try:
            return self.contexts[name]
        except KeyError:
            raise ValueError(f"unknown context {name!r} (known: {', '.join(sorted(self.contexts))})"
                             ) from None


# ---------------------------------------------------------------- loading

def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _describe(loc: tuple) -> str:
    parts = []
    loc = list(loc)
    if loc[:1] == ["intents"] and len(loc) > 1:
        parts.append(f"intent {loc[1]!r}")
        loc = loc[2:]
    text = ", ".join(parts)
    rest = ".".join(str(x) for x in loc)
    return f"{text}: {rest}" if text and rest else text or rest


def _parse(path: Path, problems: list[str]) -> GrammarFile | None:
    name = path.name
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: cannot read: {exc}")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{name}: not valid YAML: {exc}".replace("\n", " "))
        return None
    if not isinstance(raw, dict):
        problems.append(f"{name}: expected a mapping with 'context' and 'intents' at the top")
        return None
    try:
        return GrammarFile.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (allowed: context, carriers, ignore, intents; under an intent: " \
                      "cmn, wuu, aliases, except, slots, digits)"
            elif err["type"] in ("string_type", "list_type"):
                msg = f"{msg} (got {err.get('input')!r})"
            problems.append(f"{name}: {_describe(err['loc'])}: {msg}")
        return None


def _phrase_sets(spec: IntentSpec) -> Iterator[tuple[tuple[str, str] | None, PhraseSet]]:
    yield None, spec
    for slot_name, values in (spec.slots or {}).items():
        for value, phrases in values.items():
            yield (slot_name, value), phrases


def _check_file(path: Path, gf: GrammarFile, problems: list[str]) -> None:
    name = path.name
    ctx = gf.context
    if ctx != COMMON and ctx not in CONTEXTS:
        problems.append(f"{name}: unknown context {ctx!r} (known: {COMMON}, "
                        f"{', '.join(CONTEXTS)})")
        return
    if path.stem != ctx:
        problems.append(f"{name}: context {ctx!r} must be in a file named {ctx}.yaml")
    expected = COMMON_INTENTS if ctx == COMMON else CONTEXTS[ctx]
    for intent in gf.intents:
        if intent not in expected:
            problems.append(f"{name}: unknown intent {intent!r} in context {ctx!r} "
                            f"(expected: {', '.join(expected)})")
    for intent in expected:
        if intent not in gf.intents:
            problems.append(f"{name}: intent {intent!r} is missing from context {ctx!r}")
    for where, items in (("carriers", gf.carriers), ("ignore", gf.ignore)):
        for phrase in items:
            if not clean(phrase):
                problems.append(f"{name}: {where}: empty phrase {phrase!r}")
    for intent, spec in gf.intents.items():
        slots = SLOTS.get((ctx, intent))
        is_digits = (ctx, intent) in DIGIT_INTENTS
        if slots is None and spec.slots is not None:
            problems.append(f"{name}: intent {intent!r} has no slots (only callback_slot.slot has)")
        if slots is not None:
            given = spec.slots or {}
            for slot_name in given:
                if slot_name not in slots:
                    problems.append(f"{name}: intent {intent!r}: unknown slot {slot_name!r} "
                                    f"(expected: {', '.join(slots)})")
            for slot_name, values in slots.items():
                for value in given.get(slot_name, {}):
                    if value not in values:
                        problems.append(f"{name}: intent {intent!r}: slot {slot_name!r}: unknown "
                                        f"value {value!r} (expected: {', '.join(values)})")
                for value in values:
                    if value not in given.get(slot_name, {}):
                        problems.append(f"{name}: intent {intent!r}: slot {slot_name!r}: value "
                                        f"{value!r} has no phrases")
        if is_digits:
            given = spec.digits or {}
            for key in given:
                if key not in DIGIT_KEYS:
                    problems.append(f"{name}: intent {intent!r}: digits: unknown key {key!r} "
                                    f"(expected 0-9, ten, twenty)")
            for key in "0123456789":
                if key not in given:
                    problems.append(f"{name}: intent {intent!r}: digits: digit {key!r} missing")
            for key, phrases in given.items():
                for kind in KINDS:
                    for phrase in getattr(phrases, kind):
                        if len(clean(phrase)) != 1:
                            problems.append(f"{name}: intent {intent!r}: digit {key!r}: {phrase!r} "
                                            f"must be exactly one character")
        elif spec.digits is not None:
            problems.append(f"{name}: intent {intent!r} has no digits (only digits.digits has)")
        total = 0
        for slot, phrases in _phrase_sets(spec):
            label = f"intent {intent!r}" + (f", slot {slot[0]}={slot[1]}" if slot else "")
            for kind in KINDS + ("except_",):
                for phrase in getattr(phrases, kind):
                    total += kind != "except_"
                    if not phrase.strip():
                        problems.append(f"{name}: {label}: empty phrase in {kind.rstrip('_')}")
                    elif not strip_fillers(clean(phrase)):
                        problems.append(f"{name}: {label}: phrase {phrase!r} is only fillers or "
                                        f"punctuation")
        if total == 0 and not (is_digits and spec.digits):
            problems.append(f"{name}: intent {intent!r} has no phrases")


def _cross_check(files: dict[str, tuple[Path, GrammarFile]], problems: list[str]) -> None:
    common = files.get(COMMON)
    for ctx in CONTEXTS:
        owners: dict[tuple, tuple[str, str, str]] = {}     # (slot name?, text) → (file, label, raw)
        sources = [files[ctx]] if ctx in files else []
        if common and ctx != COMMON:
            sources.append(common)
        for path, gf in sources:
            for intent, spec in gf.intents.items():
                for slot, phrases in _phrase_sets(spec):
                    label = f"intent {intent!r}" + (f" (slot {slot[0]}={slot[1]})" if slot else "")
                    for kind in KINDS:
                        for phrase in getattr(phrases, kind):
                            text = strip_fillers(clean(phrase))
                            if not text:
                                continue
                            # a phrase may name a day and a period at once (今晚), not two days
                            key = (slot[0] if slot else None, text)
                            clash = owners.get(key) or (owners.get((None, text)) if slot else None)
                            if slot is None:
                                clash = clash or next((v for k, v in owners.items()
                                                       if k[1] == text and k[0] is not None), None)
                            if clash and clash[1] != label:
                                problems.append(
                                    f"{path.name}: phrase {phrase!r} is under {label} and also "
                                    f"under {clash[1]} in {clash[0]}"
                                    + (f" (as {clash[2]!r})" if clash[2] != phrase else "")
                                    + f"; in context {ctx!r} a phrase may belong to one intent")
                            owners.setdefault(key, (path.name, label, phrase))
            if (ctx, "digits") in DIGIT_INTENTS and ctx in files and gf is files[ctx][1]:
                seen: dict[str, str] = {}
                spec = gf.intents.get("digits")
                for key, phrases in ((spec.digits or {}).items() if spec else ()):
                    for kind in KINDS:
                        for phrase in getattr(phrases, kind):
                            char = clean(phrase)
                            if char in seen and seen[char] != key:
                                problems.append(f"{path.name}: intent 'digits': {phrase!r} is "
                                                f"under digit {key!r} and digit {seen[char]!r}")
                            seen.setdefault(char, key)


def _read(directory: Path) -> tuple[dict[str, tuple[Path, GrammarFile]], list[str]]:
    problems: list[str] = []
    if not directory.is_dir():
        return {}, [f"{directory}: no such grammar directory"]
    files: dict[str, tuple[Path, GrammarFile]] = {}
    for path in _files(directory):
        gf = _parse(path, problems)
        if gf is None:
            continue
        _check_file(path, gf, problems)
        if gf.context in files:
            problems.append(f"{path.name}: context {gf.context!r} is already defined in "
                            f"{files[gf.context][0].name}")
        elif gf.context == COMMON or gf.context in CONTEXTS:
            files[gf.context] = (path, gf)
    for ctx in (COMMON, *CONTEXTS):
        if ctx not in files and not any(p.startswith(f"{ctx}.yaml:") for p in problems):
            problems.append(f"{ctx}.yaml: missing: no grammar file defines context {ctx!r}")
    _cross_check(files, problems)
    return files, problems


def check_grammars(directory: str | Path | None = None) -> list[str]:
    """Every problem in the grammar files of ``directory`` (default: the project's grammars/)."""
    return _read(Path(directory) if directory else DEFAULT_DIR)[1]


def _compile(files: dict[str, tuple[Path, GrammarFile]], directory: Path) -> Grammars:
    def norm_list(items: list[str]) -> list[str]:
        out = {strip_fillers(clean(p)) or clean(p) for p in items}
        return sorted((p for p in out if p), key=lambda p: (-len(p), p))

    def clean_list(items: list[str]) -> list[str]:     # carriers: not stripped (好吗 ≠ 好)
        return sorted({c for c in map(clean, items) if c}, key=lambda p: (-len(p), p))

    common_path, common = files[COMMON]
    contexts: dict[str, Context] = {}
    for name, own in CONTEXTS.items():
        path, gf = files[name]
        ctx = Context(name=name, intents=own + COMMON_INTENTS)
        ctx.own_carriers = clean_list(gf.carriers)
        ctx.carriers = clean_list(gf.carriers + common.carriers)
        ctx.ignore = clean_list(gf.ignore + common.ignore)
        seen_phrases: dict[str, None] = {}
        for source_path, source in ((path, gf), (common_path, common)):
            for intent, spec in source.intents.items():
                for slot, phrases in _phrase_sets(spec):
                    key = (intent, slot)
                    for kind in KINDS:
                        for phrase in getattr(phrases, kind):
                            seen_phrases.setdefault(clean(phrase))
                            text = strip_fillers(clean(phrase))
                            if any(e.text == text and e.key == key for e in ctx.entries):
                                continue
                            _, code_a, code_b, spell, _ = encode(text)
                            ctx.entries.append(Entry(phrase, text, intent, kind, slot, code_a,
                                                     code_b, spell, source_path.name))
                    if phrases.except_:
                        ctx.excepts[key] = norm_list(phrases.except_)
                        for phrase in phrases.except_:
                            seen_phrases.setdefault(clean(phrase))
                if spec.digits:
                    for value, phrases in spec.digits.items():
                        for kind in KINDS:
                            for phrase in getattr(phrases, kind):
                                ctx.digits[clean(phrase)] = (value, kind != "aliases")
                                seen_phrases.setdefault(clean(phrase))
                if (name, intent) in SLOTS:
                    ctx.slot_names = dict(SLOTS[(name, intent)])
        for phrase in gf.carriers + common.carriers:
            seen_phrases.setdefault(clean(phrase))
        ctx.phrases = [p for p in seen_phrases if p]
        contexts[name] = ctx
    return Grammars(directory, contexts)


@lru_cache(maxsize=8)
def _load(directory: str) -> Grammars:
    path = Path(directory)
    files, problems = _read(path)
    if problems:
        raise GrammarError(problems)
    return _compile(files, path)


def load_grammars(directory: str | Path | None = None) -> Grammars:
    """The compiled grammars of ``directory`` (default: the project's grammars/), loaded once."""
    return _load(str(Path(directory).resolve() if directory else DEFAULT_DIR))


def all_phrases(context: str, directory: str | Path | None = None) -> list[str]:
    """Every phrase a caller may say in ``context`` — the context's intents, slot values, digit
    words and carriers, plus the common intents — cleaned (simplified characters, no
    punctuation), without duplicates, in file order.  Used to build recogniser phrase lists."""
    return list(load_grammars(directory).context(context).phrases)
