"""Prompt audio: real espeak-ng via pyttsx3, real μ-law files, real cache."""

from __future__ import annotations

import ctypes.util
import math
import shutil
import struct
import subprocess
import threading
from pathlib import Path

import pytest

from ivr.prompts import audio
from ivr.prompts.audio import (
    WAVE_FORMAT_MULAW,
    WavError,
    read_telephone_wav,
    silence_wav,
    to_telephone_wav,
)
from ivr.prompts.render import PromptRenderer, RenderError

SENTENCE = "您好，这里是老年人办事热线。"


def duration(path: Path) -> float:
    _tag, _channels, rate, n = read_telephone_wav(path)
    return n / rate


def ulaw_rms(path: Path) -> float:
    """RMS of a μ-law WAV decoded to 16-bit linear."""
    data = audio._parse_wav(path).data
    return audio.audioop.rms(audio.audioop.ulaw2lin(data, 2), 2)


def sox(*args: str) -> None:
    subprocess.run(["sox", *args], check=True, capture_output=True)


def assert_telephone_format(path: Path) -> None:
    tag, channels, rate, n = read_telephone_wav(path)
    assert (tag, channels, rate) == (WAVE_FORMAT_MULAW, 1, 8000)
    assert n > 0


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompt-cache")


@pytest.fixture(scope="module")
def renderer(cache_dir: Path) -> PromptRenderer:
    r = PromptRenderer(cache_dir)
    assert r.available(), r.voice_report()
    return r


@pytest.fixture(scope="module")
def rendered(renderer: PromptRenderer) -> Path:
    return renderer.render(SENTENCE)


# ---------------------------------------------------------------- rendering

def test_render_produces_telephone_mulaw(rendered: Path, cache_dir: Path) -> None:
    assert rendered.parent == cache_dir
    assert_telephone_format(rendered)
    # 14 characters at 130 wpm: a few seconds, not a blip and not a hang.
    assert 1.5 < duration(rendered) < 8.0
    assert ulaw_rms(rendered) > 500  # actual speech, not silence


def test_rendered_file_is_readable_by_sox(rendered: Path) -> None:
    out = subprocess.run(["soxi", str(rendered)], check=True, capture_output=True, text=True).stdout
    assert "u-law" in out
    assert "Sample Rate    : 8000" in out
    assert "Channels       : 1" in out


def test_mandarin_voice_does_not_fall_back_to_english(renderer: PromptRenderer) -> None:
    # espeak-ng 1.51's plain "cmn" voice reads Hanzi as English-spelled pinyin
    # ("nin two"); the resolved voice must produce Mandarin phonemes only.
    report = renderer.voice_report()
    assert report["ok"], report
    phonemes = subprocess.run(
        ["espeak-ng", "-q", "-x", "-v", report["voice_id"], SENTENCE],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert phonemes.strip()
    assert "(en)" not in phonemes


def test_slower_rate_gives_longer_audio(rendered: Path, cache_dir: Path) -> None:
    fast = PromptRenderer(cache_dir, rate_wpm=200).render(SENTENCE)
    assert fast != rendered
    assert_telephone_format(fast)
    assert duration(rendered) > duration(fast) * 1.2


def test_cache_hit_returns_same_path_without_rendering(
    renderer: PromptRenderer, rendered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = rendered.stat().st_mtime_ns

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("cache hit must not start a process")

    monkeypatch.setattr("ivr.prompts.render.subprocess.run", no_process)
    assert renderer.render(SENTENCE) == rendered
    assert rendered.stat().st_mtime_ns == before


def test_text_twin_holds_the_text(renderer: PromptRenderer, rendered: Path) -> None:
    key = renderer.key_for(SENTENCE)
    assert rendered.name == f"{key}.wav"
    twin = rendered.with_suffix(".txt")
    assert twin.read_text(encoding="utf-8") == SENTENCE
    assert renderer.text_for(key) == SENTENCE


def test_write_text_twin_is_cheap_and_does_not_render(
    renderer: PromptRenderer, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ivr.prompts.render.subprocess.run", None)  # any call would fail
    text = "请按一号键。"
    key = renderer.write_text_twin(text)
    assert renderer.text_for(key) == text
    assert (cache_dir / f"{key}.txt").exists()
    assert not (cache_dir / f"{key}.wav").exists()


def test_text_for_unknown_or_malicious_key(renderer: PromptRenderer) -> None:
    assert renderer.text_for("0" * 24) is None
    assert renderer.text_for("../../etc/passwd") is None
    assert renderer.text_for("") is None


def test_keys(cache_dir: Path) -> None:
    r = PromptRenderer(cache_dir)
    key = r.key_for(SENTENCE)
    assert len(key) == 24 and all(c in "0123456789abcdef" for c in key)
    assert key == PromptRenderer(cache_dir / "other").key_for(SENTENCE)  # stable
    assert r.key_for("请稍等。") != key
    assert PromptRenderer(cache_dir, rate_wpm=150).key_for(SENTENCE) != key
    assert PromptRenderer(cache_dir, voice="yue").key_for(SENTENCE) != key


def test_concurrent_renders_of_same_text(tmp_path: Path) -> None:
    # Two renderers (as in two web workers) and several threads race on one key.
    text = "您的预约已经确认。"
    renderers = [PromptRenderer(tmp_path), PromptRenderer(tmp_path)]
    results: list[Path] = []
    errors: list[BaseException] = []

    def go(r: PromptRenderer) -> None:
        try:
            results.append(r.render(text))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(renderers[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(set(results)) == 1
    assert_telephone_format(results[0])
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert leftovers == []


def test_render_many(tmp_path: Path) -> None:
    r = PromptRenderer(tmp_path)
    texts = ["请按一号键。", "请按二号键。", "请按一号键。"]
    paths = r.render_many(texts, workers=2)
    assert set(paths) == {"请按一号键。", "请按二号键。"}
    assert len(set(paths.values())) == 2
    for text, path in paths.items():
        assert_telephone_format(path)
        assert path.with_suffix(".txt").read_text(encoding="utf-8") == text


def test_unavailable_voice_reports_false(tmp_path: Path) -> None:
    r = PromptRenderer(tmp_path, voice="xx-no-such-voice")
    assert r.available() is False
    with pytest.raises(RenderError):
        r.render("你好")


def test_missing_interpreter_reports_false(tmp_path: Path) -> None:
    r = PromptRenderer(tmp_path, python=str(tmp_path / "no-python"))
    assert r.available() is False


def test_hung_worker_times_out(tmp_path: Path) -> None:
    fake_python = tmp_path / "hang.sh"
    fake_python.write_text("#!/bin/sh\nexec sleep 30\n")
    fake_python.chmod(0o755)
    r = PromptRenderer(tmp_path / "cache", python=str(fake_python), timeout_s=0.5)
    with pytest.raises(RenderError, match="timed out"):
        r.render("你好")
    assert not (tmp_path / "cache" / f"{r.key_for('你好')}.wav").exists()


def test_rejects_rate_outside_espeak_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        PromptRenderer(tmp_path, rate_wpm=20)


# --------------------------------------------------------------- conversion

def test_convert_sox_tone(tmp_path: Path) -> None:
    src, dst = tmp_path / "tone.wav", tmp_path / "tone.ul.wav"
    sox("-n", "-r", "22050", "-c", "1", "-b", "16", str(src), "synth", "1.0", "sine", "1000", "vol", "0.5")
    to_telephone_wav(src, dst)
    tag, channels, rate, n = read_telephone_wav(dst)
    assert (tag, channels, rate) == (7, 1, 8000)
    assert abs(n - 8000) <= 2
    # Level preserved: a 0.5-amplitude sine has RMS 0.5/√2 of full scale.
    expected = 0.5 / math.sqrt(2) * 32767
    assert abs(20 * math.log10(ulaw_rms(dst) / expected)) < 1.0


def test_convert_removes_aliasing(tmp_path: Path) -> None:
    # 5 kHz cannot exist at 8 kHz; without a low-pass it would fold to 3 kHz.
    src, dst = tmp_path / "hi.wav", tmp_path / "hi.ul.wav"
    sox("-n", "-r", "22050", "-c", "1", "-b", "16", str(src), "synth", "1.0", "sine", "5000", "vol", "0.5")
    to_telephone_wav(src, dst)
    expected = 0.5 / math.sqrt(2) * 32767
    assert 20 * math.log10(max(ulaw_rms(dst), 1) / expected) < -30


@pytest.mark.parametrize(
    "sox_format",
    [
        ["-r", "44100", "-c", "2", "-b", "24"],  # WAVE_FORMAT_EXTENSIBLE stereo
        ["-r", "16000", "-c", "1", "-b", "8", "-e", "unsigned-integer"],
        ["-r", "48000", "-c", "1", "-b", "32", "-e", "floating-point"],
        ["-r", "8000", "-c", "1", "-b", "16"],  # already telephone rate
    ],
)
def test_convert_other_pcm_layouts(tmp_path: Path, sox_format: list[str]) -> None:
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    sox("-n", *sox_format, str(src), "synth", "0.5", "sine", "440", "vol", "0.5")
    to_telephone_wav(src, dst)
    tag, channels, rate, n = read_telephone_wav(dst)
    assert (tag, channels, rate) == (7, 1, 8000)
    assert abs(n - 4000) <= 2
    expected = 0.5 / math.sqrt(2) * 32767
    assert abs(20 * math.log10(ulaw_rms(dst) / expected)) < 1.5


def test_convert_espeak_ng_output(tmp_path: Path) -> None:
    src, dst = tmp_path / "espeak.wav", tmp_path / "espeak.ul.wav"
    subprocess.run(
        ["espeak-ng", "-v", "cmn-latn-pinyin", "-s", "130", "-w", str(src), SENTENCE],
        check=True,
        capture_output=True,
    )
    _tag, _ch, src_rate, src_n = read_telephone_wav(src)
    to_telephone_wav(src, dst)
    assert_telephone_format(dst)
    assert abs(duration(dst) - src_n / src_rate) < 0.01


def test_output_header_layout(tmp_path: Path) -> None:
    dst = tmp_path / "s.wav"
    silence_wav(dst, 0.25)
    raw = dst.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    # fmt: tag 7, mono, 8000 Hz, 8000 B/s, align 1, 8 bits, cbSize 0
    assert raw[12:16] == b"fmt " and struct.unpack_from("<I", raw, 16)[0] == 18
    assert struct.unpack_from("<HHIIHHH", raw, 20) == (7, 1, 8000, 8000, 1, 8, 0)
    assert raw[38:42] == b"fact" and struct.unpack_from("<II", raw, 42) == (4, 2000)
    assert raw[50:54] == b"data" and struct.unpack_from("<I", raw, 54)[0] == 2000
    assert raw[58:] == b"\xff" * 2000  # μ-law digital silence


def test_odd_length_output_is_padded(tmp_path: Path) -> None:
    dst = tmp_path / "odd.wav"
    silence_wav(dst, 1 / 8000)
    raw = dst.read_bytes()
    assert len(raw) % 2 == 0
    assert read_telephone_wav(dst) == (7, 1, 8000, 1)


def test_conversion_replaces_atomically(tmp_path: Path) -> None:
    src, dst = tmp_path / "tone.wav", tmp_path / "prompt.wav"
    sox("-n", "-r", "22050", "-c", "1", "-b", "16", str(src), "synth", "0.2", "sine", "440")
    dst.write_bytes(b"old")
    to_telephone_wav(src, dst)
    assert_telephone_format(dst)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompt.wav", "tone.wav"]
    assert oct(dst.stat().st_mode & 0o777) == oct(0o644)


def test_rejects_non_wav(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file at all")
    with pytest.raises(WavError):
        to_telephone_wav(bad, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


def test_tools_present() -> None:
    # Make a missing apt package an obvious failure rather than a mystery.
    assert shutil.which("espeak-ng"), "apt-get install espeak-ng"
    assert shutil.which("sox"), "apt-get install sox"
    assert ctypes.util.find_library("espeak-ng"), "apt-get install libespeak-ng1"
