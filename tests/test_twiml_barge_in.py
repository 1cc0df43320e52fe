"""A step's barge-in policy in webhook mode: keys interrupt the prompt unless the step says none."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ivr.engine.actions import Ask, Prompt, Turn
from ivr.telephony.twiml import Listening, TurnUrls, render_turn


@pytest.mark.parametrize("listening", [Listening(), Listening(enabled=True)])
@pytest.mark.parametrize("policy, inside", [("any", True), ("keys", True), ("none", False)])
def test_prompts_sit_inside_the_gather_unless_the_step_may_not_be_interrupted(
        hotline, listening: Listening, policy: str, inside: bool) -> None:
    turn = Turn(speech=[Prompt("main_menu", "cmn", "查询办理进度，请按1。")],
                wait=Ask(max_digits=1, finish_on_key="", timeout=8, grammar="main_menu", listen=True,
                         barge_in=policy))
    root = ET.fromstring(render_turn(turn, hotline.rt.store, TurnUrls("https://h.example", 3), listening))
    first = root[0]
    if inside:
        assert first.tag == "Gather" and [child.tag for child in first] == ["Play"]
    else:
        assert first.tag == "Play" and root[1].tag == "Gather" and len(root[1]) == 0
