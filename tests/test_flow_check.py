"""The flow checker rejects each way a caller could get stuck, naming the file and the step."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ivr.flow.checker import reachable_steps
from ivr.flow.loader import FlowError, load_flow, read_yaml

FLOWS = Path(__file__).resolve().parent.parent / "flows"
ROOT = FLOWS.parent


@pytest.fixture()
def flows_copy(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(FLOWS, target, ignore=shutil.ignore_patterns("recordings"))
    return target


def edit(path: Path, change) -> None:
    data = read_yaml(path)
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def problems_after(flows: Path, file: str, change) -> str:
    edit(flows / file, change)
    with pytest.raises(FlowError) as caught:
        load_flow(flows)
    return str(caught.value)


def test_shipped_flows_are_valid_and_every_step_is_reachable() -> None:
    flow = load_flow(FLOWS)
    assert reachable_steps(flow) == set(flow.steps)
    assert flow.start == "start" and flow.person_step == "person"


def test_unknown_target_names_file_and_step(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "main.yaml",
                             lambda d: d["steps"]["main_menu"]["keys"].update({"3": "nowhere"}))
    assert "main.yaml: step 'main_menu' key 3: unknown target 'nowhere'" in message


def test_unknown_prompt_id(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "status.yaml",
                             lambda d: d["steps"]["ask_id"].update(prompt=["no_such_prompt"]))
    assert "status.yaml: step 'ask_id': unknown prompt id 'no_such_prompt'" in message


def test_empty_reprompt(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "callback.yaml",
                             lambda d: d["steps"]["confirm_number"].pop("reprompt"))
    assert "callback.yaml: step 'confirm_number': empty reprompt" in message


def test_handler_that_says_nothing_and_goes_nowhere(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "main.yaml",
                             lambda d: d["steps"]["help"]["noinput"].append({"count": 3}))
    assert "main.yaml: step 'help' noinput handler 3: empty reprompt" in message


def test_prompt_without_words(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "prompts/cmn.yaml", lambda d: d.update(main_menu_short=""))
    assert "prompt 'main_menu_short' has no words" in message


def test_step_without_a_way_to_a_person(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "callback.yaml",
                             lambda d: d["steps"]["confirm_number"].update(operator=False))
    assert "callback.yaml: step 'confirm_number': no way to reach a person" in message


def test_unreachable_step(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "person.yaml", lambda d: d["steps"].update(
        orphan={"say": ["connecting"], "next": "queue"}))
    assert "person.yaml: step 'orphan': unreachable" in message


def test_too_many_menu_options(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "main.yaml",
                             lambda d: d["steps"]["main_menu"]["keys"].update({"4": "booking"}))
    assert "main.yaml: step 'main_menu': 4 options" in message


def test_action_result_without_a_step(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "status.yaml",
                             lambda d: d["steps"]["ask_id"]["on"].pop("locked"))
    assert "status.yaml: step 'ask_id': action 'verify_id' can answer ['locked']" in message


def test_short_timeout_is_rejected(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "main.yaml",
                             lambda d: d["steps"]["main_menu"].update(timeout=3))
    assert "main.yaml: step 'main_menu': timeout 3s is too short" in message


def test_misspelt_field_is_reported(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "main.yaml",
                             lambda d: d["steps"]["main_menu"].update(promt=["main_menu"]))
    assert "main.yaml: step 'main_menu' field promt" in message


def test_cli_flows_check_exit_codes(flows_copy: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "ivr", "flows", "check"], cwd=ROOT,
                        capture_output=True, text=True, env=_env(FLOWS))
    assert ok.returncode == 0 and f"{len(load_flow(FLOWS).steps)} steps" in ok.stdout
    edit(flows_copy / "main.yaml", lambda d: d["steps"]["main_menu"]["keys"].update({"3": "nowhere"}))
    bad = subprocess.run([sys.executable, "-m", "ivr", "flows", "check"], cwd=ROOT,
                         capture_output=True, text=True, env=_env(flows_copy))
    assert bad.returncode == 1
    assert "error: main.yaml: step 'main_menu' key 3: unknown target 'nowhere'" in bad.stderr


def test_diagram_names_every_step() -> None:
    out = subprocess.run([sys.executable, "-m", "ivr", "flows", "diagram"], cwd=ROOT,
                         capture_output=True, text=True, env=_env(FLOWS), check=True).stdout
    assert out.startswith("flowchart TD")
    for step in load_flow(FLOWS).steps:
        assert f"  {step}" in out


def _env(flows: Path) -> dict[str, str]:
    import os
    env = dict(os.environ, FLOWS_DIR=str(flows), HOTLINE_VAR_DIR=str(flows.parent / "var"))
    env.pop("TWILIO_AUTH_TOKEN", None)
    return env


def test_reprompt_longer_than_the_prompt(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "callback.yaml",
                             lambda d: d["steps"]["cancel_confirm"].update(reprompt=["main_menu"]))
    assert "callback.yaml: step 'cancel_confirm': the reprompt must be shorter than the prompt" in message


def test_question_without_a_speech_grammar(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "main.yaml", lambda d: d["steps"]["main_menu"].pop("grammar"))
    assert "main.yaml: step 'main_menu': asks for input but names no speech grammar" in message


def test_unknown_grammar_and_intent(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "main.yaml", lambda d: d["steps"]["main_menu"].update(
        grammar="menu", intents={"status_query": "1"}))
    assert "main.yaml: step 'main_menu': grammar 'menu' is not a context of grammars/" in message
    message = problems_after(flows_copy, "callback.yaml", lambda d: d["steps"]["confirm_number"].update(
        intents={"maybe": "1"}))
    assert "callback.yaml: step 'confirm_number': intent 'maybe' is not in grammar 'confirm'" in message


def test_unknown_barge_in_policy_names_file_and_step(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "main.yaml",
                             lambda d: d["steps"]["main_menu"].update(barge_in="voice"))
    assert "main.yaml: step 'main_menu': barge_in 'voice' is not one of any, keys, none" in message


def test_barge_in_policy_on_a_step_that_asks_nothing(flows_copy: Path) -> None:
    def change(data: dict) -> None:
        step = next(name for name, s in data["steps"].items() if "next" in s and "keys" not in s)
        data["steps"][step]["barge_in"] = "none"
        change.step = step  # type: ignore[attr-defined]
    message = problems_after(flows_copy, "main.yaml", change)
    assert f"main.yaml: step '{change.step}': barge_in 'none' on a step that asks nothing" in message  # type: ignore[attr-defined]


def test_barge_in_policy_is_read_and_defaults_to_any(flows_copy: Path) -> None:
    edit(flows_copy / "main.yaml", lambda d: d["steps"]["main_menu"].update(barge_in="keys"))
    flow = load_flow(flows_copy)
    assert flow.steps["main_menu"].barge_in == "keys"
    assert {s.barge_in for name, s in flow.steps.items() if name != "main_menu"} == {"any"}


# --- the Shanghainese script (prompts/wuu.yaml): drafts, reviewed, missing --------------------

def test_every_mandarin_prompt_has_shanghainese_words_all_drafts_today() -> None:
    from ivr.flow.checker import translation_report
    flow = load_flow(FLOWS)
    report = translation_report(flow, "wuu")
    assert report.missing == []
    assert len(report.drafts) + len(report.reviewed) == len(flow.prompts["cmn"])


def test_a_prompt_without_shanghainese_words_is_listed_by_the_checker(flows_copy: Path) -> None:
    total = len(load_flow(FLOWS).prompts["cmn"])
    edit(flows_copy / "prompts/wuu.yaml", lambda d: (d.pop("ask_id_short"), d.update(reviewed=["greeting"])))
    check = subprocess.run([sys.executable, "-m", "ivr", "flows", "check"], cwd=ROOT,
                           capture_output=True, text=True, env=_env(flows_copy))
    assert check.returncode == 0, check.stderr  # a missing translation falls back to Mandarin: not an error
    assert f"prompts/wuu.yaml: {total - 1} of {total} prompts have words " \
           f"({total - 2} drafts, 1 reviewed, 1 missing)" in check.stdout
    assert "no wuu words yet: ask_id_short" in check.stdout
    listed = subprocess.run([sys.executable, "-m", "ivr", "prompts", "missing", "--text"], cwd=ROOT,
                            capture_output=True, text=True, env=_env(flows_copy))
    assert listed.returncode == 0 and listed.stdout.split() == ["ask_id_short"]


def test_shanghainese_prompt_with_an_unknown_id(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "prompts/wuu.yaml", lambda d: d.update(main_mnu="查进度按1。"))
    assert "prompts/wuu.yaml: prompt 'main_mnu' has no Mandarin version" in message


def test_shanghainese_placeholders_must_match_the_mandarin_ones(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "prompts/wuu.yaml",
                             lambda d: d.update(confirm_number="侬输个号码是：{callback}。对个，请按1。"))
    assert ("prompts/wuu.yaml: prompt 'confirm_number': the filled-in parts differ from prompts/cmn.yaml "
            "(missing {callback_spoken}, {callback} is not in the Mandarin words)") in message


def test_reviewed_prompt_must_have_words_and_a_known_id(flows_copy: Path) -> None:
    def change(data: dict) -> None:
        data.pop("goodbye")
        data["reviewed"] = ["greeting", "goodbye", "no_such_prompt"]
    message = problems_after(flows_copy, "prompts/wuu.yaml", change)
    assert "prompts/wuu.yaml: reviewed: prompt 'goodbye' is marked reviewed but has no words" in message
    assert "prompts/wuu.yaml: reviewed: prompt 'no_such_prompt' is not a prompt id" in message
    assert "'greeting'" not in message


def test_reviewed_must_be_a_list_of_ids(flows_copy: Path) -> None:
    message = problems_after(flows_copy, "prompts/wuu.yaml", lambda d: d.update(reviewed="greeting"))
    assert "prompts/wuu.yaml: 'reviewed' must be a list of prompt ids" in message
    message = problems_after(flows_copy, "prompts/wuu.yaml", lambda d: d.update(reviewed=["greeting", "greeting"]))
    assert "prompts/wuu.yaml: prompt 'greeting' is listed twice under 'reviewed'" in message


def test_reviewed_ids_are_read_and_are_not_prompts(flows_copy: Path) -> None:
    edit(flows_copy / "prompts/wuu.yaml", lambda d: d.update(reviewed=["greeting", "main_menu"]))
    flow = load_flow(flows_copy)
    assert flow.reviewed["wuu"] == ["greeting", "main_menu"]
    assert "reviewed" not in flow.prompts["wuu"]
