"""Loads flows/*.yaml and the prompt catalogues into one checked Flow."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from ivr.flow.schema import FlowDefaults, FlowFile, Step
from ivr.prompts.pieces import WordEntry, spoken_chars

LANGUAGES = ("cmn", "wuu")


class FlowError(ValueError):
    """A problem in a flow or prompt file, naming the file and the step."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Flow:
    start: str
    person_step: str
    defaults: FlowDefaults
    steps: dict[str, Step]
    step_files: dict[str, str]
    prompts: dict[str, dict[str, str]] = field(default_factory=dict)  # lang -> id -> text
    prompt_files: dict[str, str] = field(default_factory=dict)
    goodbye_step: str | None = None
    # lang -> ids a supervisor marked reviewed (the `reviewed:` list of a translation file);
    # every other text of that file is a draft.  Mandarin is the source and has no such list.
    reviewed: dict[str, list[str]] = field(default_factory=dict)
    # lang -> word id -> the words recorded numbers, dates and times are made of
    # (prompts/<lang>_pieces.yaml; see ivr.prompts.pieces), their files and reviewed ids.
    piece_words: dict[str, dict[str, WordEntry]] = field(default_factory=dict)
    piece_files: dict[str, str] = field(default_factory=dict)
    pieces_reviewed: dict[str, list[str]] = field(default_factory=dict)

    def where(self, step_id: str) -> str:
        return f"{self.step_files.get(step_id, '?')}: step '{step_id}'"


class _FlowYamlLoader(yaml.SafeLoader):
    """YAML 1.1 reads `on`, `yes`, `no` as booleans; flow writers mean the words."""


_FlowYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FlowYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def read_yaml(path: Path) -> object:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_FlowYamlLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise FlowError([f"{path.name}: not valid YAML: {exc}"]) from exc


def _pydantic_problems(name: str, exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = list(error["loc"])
        if len(loc) >= 2 and loc[0] == "steps":
            where = f"{name}: step '{loc[1]}'" + (f" field {'.'.join(map(str, loc[2:]))}" if loc[2:] else "")
        else:
            where = f"{name}: {'.'.join(map(str, loc))}"
        problems.append(f"{where}: {error['msg']}")
    return problems


#: The top-level key of a translation file (wuu.yaml) listing the prompt ids a supervisor
#: has marked reviewed; it is not a prompt id.
REVIEWED_KEY = "reviewed"


def load_prompts(flows_dir: Path) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    prompts, files, _ = load_prompt_files(flows_dir)
    return prompts, files


def load_prompt_files(flows_dir: Path) -> tuple[dict[str, dict[str, str]], dict[str, str], dict[str, list[str]]]:
    """Prompt words by language and id, the file of each language, and the reviewed ids of
    each translation (see the header of flows/prompts/wuu.yaml)."""
    prompts: dict[str, dict[str, str]] = {}
    files: dict[str, str] = {}
    reviewed: dict[str, list[str]] = {}
    problems: list[str] = []
    for lang in LANGUAGES:
        path = flows_dir / "prompts" / f"{lang}.yaml"
        rel = f"prompts/{lang}.yaml"
        files[lang] = rel
        data = read_yaml(path) if path.exists() else {}
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems.append(f"{rel}: expected a mapping of prompt id to words")
            continue
        prompts[lang] = {}
        if lang != "cmn":
            reviewed[lang] = []
            marked = data.pop(REVIEWED_KEY, None)
            if marked is None:
                marked = []
            if not isinstance(marked, list) or not all(isinstance(m, str) for m in marked):
                problems.append(f"{rel}: '{REVIEWED_KEY}' must be a list of prompt ids, one per line "
                                "starting with '- '")
            else:
                for prompt_id in marked:
                    if prompt_id in reviewed[lang]:
                        problems.append(f"{rel}: prompt '{prompt_id}' is listed twice under '{REVIEWED_KEY}'")
                    else:
                        reviewed[lang].append(prompt_id)
        for key, text in data.items():
            if not isinstance(text, str):
                problems.append(f"{rel}: prompt '{key}': words must be text")
            else:
                prompts[lang][str(key)] = text.strip()
    if problems:
        raise FlowError(problems)
    return prompts, files, reviewed


class _PiecesYamlLoader(_FlowYamlLoader):
    """Also refuses an id written twice: YAML would silently keep the last one."""


def _mapping_without_repeats(loader: _PiecesYamlLoader, node: yaml.MappingNode) -> dict:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"'{key}' is written twice (line {key_node.start_mark.line + 1})", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_PiecesYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats)

#: A word id: it names a recording file and, as "w.<id>", a URL path part.
WORD_ID = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class PieceWords:
    words: dict[str, dict[str, WordEntry]] = field(default_factory=dict)  # lang -> id -> entry
    files: dict[str, str] = field(default_factory=dict)  # lang -> file, for messages
    reviewed: dict[str, list[str]] = field(default_factory=dict)


def load_piece_words(flows_dir: Path) -> PieceWords:
    """The words of each language's prompts/<lang>_pieces.yaml (a language without one has none).

    A word is ``id: words`` or ``id: {words: …, note: …}``; `reviewed:` lists the ids a supervisor
    has checked, as in wuu.yaml.  Raises FlowError naming the file and the entry for an id
    written twice or not made of letters, digits, _ and -, empty words, words that are only
    punctuation or hold a {placeholder}, two entries with the same words, an unknown field, and
    a bad `reviewed:` list."""
    found = PieceWords()
    problems: list[str] = []
    for lang in LANGUAGES:
        path = flows_dir / "prompts" / f"{lang}_pieces.yaml"
        if not path.exists():
            continue
        rel = f"prompts/{lang}_pieces.yaml"
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_PiecesYamlLoader)  # noqa: S506
        except yaml.YAMLError as exc:
            problems.append(f"{rel}: not valid YAML: {exc}")
            continue
        data = {} if data is None else data
        if not isinstance(data, dict):
            problems.append(f"{rel}: expected a list of `id: words` lines")
            continue
        found.files[lang] = rel
        words: dict[str, WordEntry] = {}
        by_sound: dict[str, str] = {}
        marked = data.pop(REVIEWED_KEY, None)
        for key, value in data.items():
            word_id = str(key)
            where = f"{rel}: word '{word_id}'"
            if not WORD_ID.match(word_id):
                problems.append(f"{where}: the id may only use letters a-z, digits, _ and - (it names "
                                "the recording file)")
                continue
            note = ""
            if isinstance(value, dict):
                unknown = sorted(str(k) for k in value if k not in ("words", "note"))
                if unknown:
                    problems.append(f"{where}: unknown field {', '.join(unknown)} (write words: and "
                                    "optionally note:)")
                    continue
                note = value.get("note") or ""
                value = value.get("words")
                if not isinstance(note, str):
                    problems.append(f"{where}: the note must be text")
                    continue
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)  # a key digit written without quotes: `key_1: 1`
            if value is None or (isinstance(value, str) and not value.strip()):
                problems.append(f"{where}: has no words")
                continue
            if not isinstance(value, str):
                problems.append(f"{where}: the words must be text")
                continue
            text = value.strip()
            sound = spoken_chars(text)
            if "{" in text or "}" in text:
                problems.append(f"{where}: words cannot hold a {{placeholder}} (those belong in the prompts)")
            elif not sound:
                problems.append(f"{where}: only punctuation (a pause needs no recording)")
            elif sound in by_sound:
                problems.append(f"{where}: the same words as '{by_sound[sound]}' ({text}): keep one of them")
            else:
                by_sound[sound] = word_id
                words[word_id] = WordEntry(text, note.strip())
        found.words[lang] = words
        found.reviewed[lang] = []
        if marked is None:
            marked = []
        if not isinstance(marked, list) or not all(isinstance(m, str) for m in marked):
            problems.append(f"{rel}: '{REVIEWED_KEY}' must be a list of word ids, one per line starting with '- '")
            continue
        for word_id in marked:
            if word_id in found.reviewed[lang]:
                problems.append(f"{rel}: word '{word_id}' is listed twice under '{REVIEWED_KEY}'")
            elif word_id not in words and word_id not in data:
                problems.append(f"{rel}: reviewed: '{word_id}' is not a word of this file")
            else:
                found.reviewed[lang].append(word_id)
    if problems:
        raise FlowError(problems)
    return found


def load_flow(flows_dir: Path) -> Flow:
    """Read and check every flow file; raise FlowError listing all problems found."""
    from ivr.flow.checker import check_flow  # late import: the checker needs Flow

    steps: dict[str, Step] = {}
    step_files: dict[str, str] = {}
    start = person = goodbye = None
    defaults = None
    problems: list[str] = []
    paths = sorted(flows_dir.glob("*.yaml"))
    for path in paths:
        data = read_yaml(path)
        if not isinstance(data, dict) or "steps" not in data:
            continue  # other data files (e.g. calendar.yaml) live beside the flows
        try:
            flow_file = FlowFile.model_validate(data)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(path.name, exc))
            continue
        if flow_file.start:
            if start:
                problems.append(f"{path.name}: a second 'start' (already set in another file)")
            start = flow_file.start
            person = flow_file.person_step
            goodbye = flow_file.goodbye_step
            defaults = flow_file.defaults
        for step_id, step in flow_file.steps.items():
            if step_id in steps:
                problems.append(f"{path.name}: step '{step_id}' is also defined in {step_files[step_id]}")
                continue
            steps[step_id] = step
            step_files[step_id] = path.name
    if not paths:
        problems.append(f"{flows_dir}: no flow files (*.yaml)")
    if start is None or defaults is None or person is None:
        problems.append("no flow file names 'start', 'person_step' and 'defaults'")
    if problems:
        raise FlowError(problems)
    prompts, prompt_files, reviewed = load_prompt_files(flows_dir)
    pieces = load_piece_words(flows_dir)
    flow = Flow(start=start, person_step=person, defaults=defaults, steps=steps,  # type: ignore[arg-type]
                step_files=step_files, prompts=prompts, prompt_files=prompt_files, goodbye_step=goodbye,
                reviewed=reviewed, piece_words=pieces.words, piece_files=pieces.files,
                pieces_reviewed=pieces.reviewed)
    check_flow(flow)
    return flow
