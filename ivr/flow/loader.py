"""Loads flows/*.yaml and the prompt catalogues into one checked Flow."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from ivr.flow.schema import FlowDefaults, FlowFile, Step

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
    flow = Flow(start=start, person_step=person, defaults=defaults, steps=steps,  # type: ignore[arg-type]
                step_files=step_files, prompts=prompts, prompt_files=prompt_files, goodbye_step=goodbye,
                reviewed=reviewed)
    check_flow(flow)
    return flow
