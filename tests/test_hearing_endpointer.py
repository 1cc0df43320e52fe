"""End of speech on real audio (espeak-ng Korean through 8 kHz μ-law) with the real webrtcvad,
what counts as a complete answer (the real matcher on Chinese text), and the settings."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import webrtcvad

from ivr.config import ConfigError, load_settings
from ivr.hearing.build import endpoint_settings
from ivr.hearing.endpointer import FRAME_MS, Endpointer, EndpointSettings, Turn
from ivr.hearing.understanding import grammar_completeness, phrase_completeness
from speech_fixtures.helpers import require_espeak, spoken_frames

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_espeak()
    return tmp_path_factory.mktemp("endpointer-audio")


def run(frames: list[bytes], complete: bool, settings: EndpointSettings = EndpointSettings()
        ) -> Endpointer:
    ep = Endpointer(settings)
    for frame in frames:
        if ep.push(audioop.ulaw2lin(frame, 2), complete) is Turn.ENDED:
            break
    return ep


def test_silence_never_starts_a_turn() -> None:
    ep = run([audioop.lin2ulaw(b"\0\0" * 160, 2)] * 200, complete=True)
    assert ep.state is Turn.WAITING and ep.speech_start_frame is None


@pytest.mark.parametrize("complete, wait_ms", [(True, 300), (False, 750)])
def test_the_turn_ends_after_the_silence_its_partial_allows(audio_dir: Path, complete: bool,
                                                            wait_ms: int) -> None:
    frames, [(start, end)] = spoken_frames(["상담원"], audio_dir)
    ep = run(frames, complete)
    assert ep.state is Turn.ENDED and ep.ended_complete is complete
    assert abs(ep.speech_start_frame * FRAME_MS / 1000 - start) <= 0.1
    # the silence is counted from the VAD's last voiced frame, which trails the voice a little
    assert wait_ms <= ep.elapsed_ms - ep.last_voiced_frame * FRAME_MS < wait_ms + FRAME_MS
    hangover = ep.last_voiced_frame * FRAME_MS / 1000 - end
    assert 0.0 <= hangover <= 0.2
    assert ep.elapsed_ms / 1000 - end <= (0.5 if complete else 0.9)  # the targets


def test_an_inner_pause_of_0_7_s_does_not_end_an_incomplete_answer(audio_dir: Path) -> None:
    frames, [_, (second, end)] = spoken_frames(["아니요", 0.7, "상담원"], audio_dir)
    ep = run(frames, complete=False)
    assert ep.state is Turn.ENDED
    assert ep.elapsed_ms / 1000 > end  # not before the second word was over
    assert ep.last_voiced_frame * FRAME_MS / 1000 > second


def test_the_same_pause_ends_a_complete_answer(audio_dir: Path) -> None:
    frames, [(_, first_end), (second, _)] = spoken_frames(["아니요", 0.7, "상담원"], audio_dir)
    ep = run(frames, complete=True)
    assert first_end < ep.elapsed_ms / 1000 < second


def test_bursts_shorter_than_speech_start_do_not_start_speech(audio_dir: Path) -> None:
    frames, _ = spoken_frames(["네"], audio_dir)
    assert run(frames, complete=True).state is Turn.ENDED  # the shortest word is speech
    vad = webrtcvad.Vad(2)
    voiced = [f for f in frames if vad.is_speech(audioop.ulaw2lin(f, 2), 8000)]
    assert len(voiced) >= 5
    silence = [audioop.lin2ulaw(b"\0\0" * 160, 2)] * 20
    clicks = silence + voiced[:5] + silence + voiced[5:10] + silence  # 100 ms bursts
    assert run(clicks, complete=True).state is Turn.WAITING
    assert run(silence + voiced[:7] + silence * 3, complete=True).state is Turn.ENDED  # 140 ms: speech


def test_frames_must_be_20_ms_of_8_khz_pcm() -> None:
    with pytest.raises(ValueError):
        Endpointer().push(b"\0" * 160)


@pytest.mark.parametrize("kwargs", [{"vad_mode": 4}, {"short_silence_ms": 800},
                                    {"speech_start_ms": 10}])
def test_endpoint_settings_refuse_nonsense(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        EndpointSettings(**kwargs)


def test_settings_come_from_the_environment(tmp_path: Path) -> None:
    base = {"HOTLINE_VAR_DIR": str(tmp_path), "TWILIO_AUTH_TOKEN": "t"}
    env = {**base, "ENDPOINT_SHORT_SILENCE_MS": "250",
           "ENDPOINT_LONG_SILENCE_MS": "1200", "SPEECH_START_MS": "100", "VAD_MODE": "3"}
    assert endpoint_settings(load_settings(env)) == EndpointSettings(250, 1200, 100, 3)
    assert endpoint_settings(load_settings(base)) == EndpointSettings()
    for bad in ({"VAD_MODE": "5"}, {"ENDPOINT_LONG_SILENCE_MS": "100"}, {"SPEECH_START_MS": "0"},
                {"ENDPOINT_SHORT_SILENCE_MS": "x"}):
        with pytest.raises(ConfigError):
            load_settings({**base, **bad})


def test_a_complete_answer_is_what_the_matcher_accepts() -> None:
    confirm = grammar_completeness("confirm")
    assert confirm("是的") and confirm("不 是") and confirm("勿是")
    assert not confirm("") and not confirm("是不是") and not confirm("嗯")
    menu = grammar_completeness("main_menu")
    assert not menu("我")  # the start of an answer, nothing the menu knows yet


def test_a_number_is_complete_only_with_all_its_digits() -> None:
    assert not grammar_completeness("digits")("一 三 八")  # how long is unknown: wait longer
    eleven = grammar_completeness("digits", digits=11)
    assert not eleven("一 三 八 零 零")
    assert eleven("一 三 八 零 零 一 三 八 零 零 零")


def test_a_plain_phrase_list_completes_on_exact_phrases() -> None:
    complete = phrase_completeness(["아니요 상담원", "네"])
    assert complete("네") and complete("아니요 상담원")
    assert not complete("아니요") and not complete("")
