"""The whole speech chain in a call, with a real Kaldi model: Twilio <Record> → recording fetched
from the (simulated) Twilio API with Basic auth → decoded → Vosk grammar recognition in the
isolated pool → understood → the dialog moves on.

No Chinese model can be fetched on build machines, so this uses the Korean model packaged on
PyPI with a small Korean grammar; Chinese understanding is tested on recogniser-style text.
"""
from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from hotline_harness import Hotline, heard
from ivr.flow.loader import read_yaml
from speech_fixtures.helpers import korean_model_dir, speak_telephone

ROOT = Path(__file__).resolve().parent.parent


def korean_grammars(target: Path) -> Path:
    """The project's grammars with a Korean confirm context and a Korean word for a person."""
    import yaml
    shutil.copytree(ROOT / "grammars", target)
    confirm = {"context": "confirm", "intents": {"yes": {"cmn": ["네", "확인"]}, "no": {"cmn": ["아니요"]}}}
    (target / "confirm.yaml").write_text(yaml.safe_dump(confirm, allow_unicode=True), encoding="utf-8")
    common = read_yaml(target / "common.yaml")
    common["intents"]["operator"]["cmn"].append("상담원")
    (target / "common.yaml").write_text(yaml.safe_dump(common, allow_unicode=True), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def korean_hotline(tmp_path_factory, prompt_cache):
    model = korean_model_dir()
    root = tmp_path_factory.mktemp("ko")
    hotline = Hotline(root / "h", prompt_cache, speech=True, SPEECH="vosk", MODELS_DIR=str(model.parent),
                      VOSK_MODEL=model.name, GRAMMARS_DIR=str(korean_grammars(root / "grammars")),
                      RECOGNITION_WORKERS="1", RECOGNITION_TIMEOUT_SECONDS="20",
                      RECORDING_DEADLINE_SECONDS="5",
                      # The first answer waits for the model to load in the worker, on a machine
                      # busy with the other tests: the longest budget Twilio's 15 s allows.
                      WEBHOOK_BUDGET_SECONDS="14", DB_WAIT_SECONDS="1")
    hotline.audio_dir = root / "audio"
    yield hotline
    hotline.rt.hearing.recogniser._get_pool().close()
    hotline.close()


def speak(hotline: Hotline, call, korean: str) -> None:
    if call.pending_record is None and call.pending_gather is not None:
        call.silence()
    assert call.pending_record is not None
    call.speak(audio=speak_telephone(korean, hotline.audio_dir))


def test_spoken_yes_and_no_move_the_call(korean_hotline) -> None:
    hotline = korean_hotline
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    assert "<Record" in call.requests[0].text  # the model is installed: the service listens
    call.press("2")
    assert hotline.step(call) == "confirm_own_number"
    speak(hotline, call, "네")
    assert hotline.step(call) == "choose_slot"
    call.press("1")
    assert hotline.step(call) == "confirm_booking"
    speak(hotline, call, "아니요")
    assert hotline.step(call) == "choose_slot"
    assert len(call.recordings) == 2
    assert all(hotline.recordings.fetch_count(r.sid) >= 1 for r in call.recordings)


def test_out_of_grammar_speech_is_rejected_and_the_caller_can_use_keys(korean_hotline) -> None:
    hotline = korean_hotline
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    call.press("2")
    speak(hotline, call, "오늘 날씨가 정말 좋네요")
    assert hotline.step(call) == "confirm_own_number"
    assert "我没有听明白" in heard(call)
    call.press("1")
    assert hotline.step(call) == "choose_slot"


def test_a_crashed_recogniser_costs_one_turn_and_the_call_goes_on(korean_hotline) -> None:
    hotline = korean_hotline
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    call.press("2")
    pool = hotline.rt.hearing.recogniser._get_pool()
    pool.wait_ready(60)
    [worker] = list(pool._workers)

    def kill_while_recognising() -> None:  # as when Vosk aborts on a bad grammar
        deadline = time.monotonic() + 30
        while pool._dispatch._idle and time.monotonic() < deadline:
            time.sleep(0.0005)  # the one worker is still idle: the answer has not reached it
        os.kill(worker.process.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_while_recognising)
    killer.start()
    speak(hotline, call, "네 네 네 네 네 네")  # long enough to be still decoding when killed
    killer.join()
    assert hotline.step(call) == "confirm_own_number"  # that turn is lost: heard as no input
    assert "我没有听到您的回答" in heard(call)
    pool.wait_ready(60)
    speak(hotline, call, "네")
    assert hotline.step(call) == "choose_slot"


def test_recording_not_ready_at_first_is_fetched_after_retries(make_hotline) -> None:
    hotline = make_hotline(speech=True)
    hotline.recordings.not_ready_fetches = 2
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    hotline.say(call, "预约回电")
    assert hotline.step(call) == "confirm_own_number"
    assert hotline.recordings.fetch_count(call.recordings[-1].sid) == 3


def test_recording_never_available_is_heard_as_no_input(make_hotline) -> None:
    hotline = make_hotline(speech=True, RECORDING_DEADLINE_SECONDS="1")
    hotline.recordings.not_ready_fetches = 1000
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    hotline.say(call, "预约回电")
    assert hotline.step(call) == "main_menu"
    assert "我没有听到您的回答" in heard(call)


def test_a_slow_recording_cannot_use_up_the_webhook_budget(make_hotline) -> None:
    """Fetching waits at most what the budget leaves after the turn's database wait."""
    import time
    hotline = make_hotline(speech=True, RECORDING_DEADLINE_SECONDS="10", WEBHOOK_BUDGET_SECONDS="2",
                           DB_WAIT_SECONDS="1")
    hotline.recordings.not_ready_fetches = 1000
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    started = time.monotonic()
    hotline.say(call, "预约回电")
    assert time.monotonic() - started < 2.0
    assert hotline.step(call) == "main_menu" and "我没有听到您的回答" in heard(call)


def test_recordings_are_only_fetched_from_allowed_hosts(make_hotline) -> None:
    hotline = make_hotline(speech=True, RECORDING_HOSTS="api.twilio.com")
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    hotline.say(call, "预约回电")
    assert hotline.step(call) == "main_menu"
    assert hotline.recordings.fetch_count(call.recordings[-1].sid) == 0


def test_without_a_model_the_service_runs_keys_only(make_hotline, tmp_path) -> None:
    hotline = make_hotline(SPEECH="auto", MODELS_DIR=str(tmp_path / "no-models"))
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    assert "<Record" not in call.requests[0].text
    assert "查办理进度，请按1。" in heard(call) and "请说" not in heard(call)
