"""The dialog answered by voice: understood speech arrives as an event and stands for keys.

Each answer travels the whole way a caller's does: the simulator records it at the pending
<Record>, posts the recording to the service, which fetches it and hears it; only the grammar
matcher is scripted, so each test says what the words meant (intent, band, slots).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hotline_harness import Hotline, heard
from ivr.engine.events import SpeechHeard
from ivr.nlu.matcher import Understanding
from ivr.calls import Turns


@dataclass
class ScriptedMeaning:
    """Stands in for the grammar matcher: returns the meaning the test queued for the next words."""

    queued: list[Understanding] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)

    def __call__(self, context: str, text: str, lang: str = "cmn") -> Understanding:  # noqa: ARG002
        assert self.queued, f"the service heard {text!r} that no test meant to say"
        self.contexts.append(context)
        return self.queued.pop(0)


@pytest.fixture()
def hotline(make_hotline) -> Hotline:
    """A listening hotline whose understanding of each recording is scripted."""
    hotline = make_hotline(speech=True)
    hotline.rt.hearing.understand = ScriptedMeaning()
    return hotline


def say(hotline: Hotline, call, intent: str | None, band: str = "accept", **slots: str) -> str:
    """The caller speaks at the pending <Record> and the service understands ``intent``;
    returns the words heard next."""
    meaning: ScriptedMeaning = hotline.rt.hearing.understand
    meaning.queued.append(Understanding(intent, 0.9 if band == "accept" else 0.6, slots, band))
    hotline.say(call, f"（{intent or '听不清的话'}）")
    assert not meaning.queued, "the recording never reached the service's ears"
    return heard(call)


def test_main_menu_by_voice(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    heard = say(hotline, call, "status_query")
    assert hotline.step(call) == "ask_id"
    assert "身份证号码最后四位" in heard


def test_unsure_answer_is_confirmed_first(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    heard = say(hotline, call, "book_callback", band="confirm")
    assert "您是说：预约回电，对吗？" in heard
    assert hotline.step(call) == "main_menu"
    heard = say(hotline, call, "no")
    assert hotline.step(call) == "main_menu" and "查进度说“查进度”或按1" in heard
    assert hotline.rt.hearing.understand.contexts == ["main_menu", "confirm"]  # heard as a yes/no
    say(hotline, call, "book_callback", band="confirm")
    say(hotline, call, "yes")
    assert hotline.step(call) == "confirm_own_number"


def test_rejected_speech_counts_as_a_wrong_answer(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    heard = say(hotline, call, None, band="reject")
    assert "我没有听明白" in heard and "这个键不对" not in heard
    assert hotline.state(call).step_failures == 1


def test_person_repeat_language_and_goodbye_work_everywhere(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    assert "查进度，请说“查进度”或者按1" in say(hotline, call, "repeat")
    say(hotline, call, "language_wuu")
    assert hotline.state(call).language == "wuu" and hotline.step(call) == "main_menu"
    say(hotline, call, "slower")
    assert hotline.state(call).slow is True
    say(hotline, call, "goodbye")
    assert hotline.step(call) == "goodbye"
    second = hotline.call()
    say(hotline, second, "operator")
    assert hotline.step(second) == "queue"
    assert hotline.handoffs()[-1].reason == "pressed_0"


def test_spoken_phone_number_is_read_back_in_groups(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    for key in "22":
        call.press(key)
    assert hotline.step(call) == "ask_number"
    heard = say(hotline, call, "digits", digits="13912345678")
    assert "您是说：幺三九，幺两三四，五六七八，对吗？" in heard
    say(hotline, call, "yes")
    assert hotline.step(call) == "confirm_number"


def test_id_digits_are_never_taken_by_voice(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    call.press("1")
    assert hotline.step(call) == "ask_id"
    assert call.pending_record is None and call.pending_gather is not None  # keys only: nothing recorded
    # Should a recording still arrive for this question, the engine refuses spoken ID digits.
    heard = hear_directly(hotline, call, "digits", digits="5670")
    assert "身份证号码请用按键输入" in heard
    assert hotline.step(call) == "ask_id"
    assert "5670" not in str(hotline.state(call).vars)


def hear_directly(hotline: Hotline, call, intent: str, **slots: str) -> str:
    """Speech handed straight to the engine at the call's current turn, for a question no call
    path records at. The simulator does not see this turn: drive the call no further."""
    rt = hotline.rt
    turn = rt.calls.handle(call.call_sid, SpeechHeard(text="…", intent=intent, score=0.9, band="accept",
                                                      slots=slots), Turns())
    return "".join(rt.store.audible(item).text for item in turn.speech)


def test_callback_slot_by_day_and_half_day(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    for key in "21":
        call.press(key)
    assert hotline.step(call) == "choose_slot"
    heard = say(hotline, call, "slot", day="tomorrow", period="morning")
    assert "您是说" in heard and "对吗" in heard
    say(hotline, call, "yes")
    assert hotline.step(call) == "confirm_booking"
    assert hotline.state(call).vars["chosen_slot_spoken"].startswith("明天上午")
    assert "已经" not in say(hotline, call, "no")
    assert hotline.step(call) == "choose_slot"


def test_asking_for_slower_speech_slows_every_later_prompt(hotline) -> None:
    from pathlib import Path
    from ivr.prompts.audio import read_telephone_wav
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    normal = [h for h in call.heard if h.url and "/prompts/tts/" in h.url][-1]
    say(hotline, call, "slower")
    repeated = call.press("*")  # only what * brought: the question again, slowly
    later = [h for h in repeated if h.url and "/prompts/tts/" in h.url][-1]
    assert later.text == normal.text and later.url != normal.url
    client = hotline.app.test_client()
    lengths = []
    for url in (normal.url, later.url):
        assert client.get(url.replace(hotline.settings.public_base_url, "")).status_code == 200
        lengths.append(read_telephone_wav(hotline.settings.prompt_cache_dir / Path(url).name)[3])
    assert lengths[1] > lengths[0] * 1.15
