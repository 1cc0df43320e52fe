"""The call story in an operator's words: steps with what the caller answered there."""
from ivr.console.story import reason_words, story_lines


def test_steps_with_their_answers_and_no_plumbing() -> None:
    story = [
        {"step": "start", "event": "call_started"},
        {"step": "start", "event": "step"},
        {"step": "start", "event": "result", "action": "identify_caller", "result": "new"},
        {"step": "main_menu", "event": "step"},
        {"step": "main_menu", "event": "silence"},
        {"step": "main_menu", "event": "speech", "intent": "status_query", "band": "accept", "masked": False},
        {"step": "ask_id", "event": "step"},
        {"step": "ask_id", "event": "keys", "keys": "####"},
        {"step": "ask_id", "event": "result", "action": "verify_id", "result": "wrong"},
        {"step": "ask_id", "event": "step"},
        {"step": "ask_id", "event": "speech", "intent": "digits", "masked": True},
        {"step": "person", "event": "step"},
        {"step": "person", "event": "handoff", "reason": "id_check_failed+after_hours"},
    ]
    assert story_lines(story) == [
        "接通",
        "主菜单：没有应答，说话：查进度",
        "身份核验：按键 ####，核验不对",
        "身份核验：说话：（内容已隐藏）",
        "转人工：身份核验未通过（非工作时间）",
    ]


def test_unknown_reasons_and_steps_show_as_they_are() -> None:
    assert reason_words("something_new") == "something_new"
    assert story_lines([{"step": "new_step", "event": "step"}]) == ["new_step"]
