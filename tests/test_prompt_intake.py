"""Supervisors' prompt recordings taken in: real speech (espeak-ng) encoded by FFmpeg (PyAV)
into every format a browser, phone or recorder makes, converted to telephone audio, and
measured here with a meter of the tests' own (ITU-T P.56 method B on the sample envelope)."""

from __future__ import annotations

import io
import math
import random
import subprocess
import tempfile
import time
import wave
from fractions import Fraction
from pathlib import Path

import av
import pytest

from ivr.prompts import intake
from ivr.prompts.audio import WAVE_FORMAT_MULAW, audioop, read_telephone_audio, read_telephone_wav
from ivr.prompts.intake import (MAX_SECONDS, MAX_UPLOAD_BYTES, TARGET_LEVEL_DB, Intake,
                                UploadRefused, expected_seconds, take_in)

VOICE = "cmn-latn-pinyin"  # espeak-ng 1.51's plain "cmn" reads Hanzi as English (test_prompt_audio)
# Prompts from flows/prompts/cmn.yaml.
GREETING = "您好，这里是上海市民办事热线。任何时候按0，转人工。"
LONG = "查办理进度，请按1。预约回电，请按2。听或取消预约，请按3。转人工，请按0。"
SHORT = "这个键不对。"
OTHERS = {"nomatch_1": SHORT, "main_menu": LONG, "greeting": GREETING,
          "to_person": "我们帮您转接工作人员。"}
FORMATS = {  # extension: (muxer, codec, rate, channels)
    "wav": ("wav", "pcm_s16le", 44100, 2),
    "mp3": ("mp3", "libmp3lame", 44100, 1),
    "m4a": ("ipod", "aac", 44100, 1),
    "aac": ("adts", "aac", 44100, 1),
    "ogg": ("ogg", "libopus", 48000, 1),
    "opus": ("ogg", "libopus", 48000, 2),
    "webm": ("webm", "libopus", 48000, 1),  # what Chromium's MediaRecorder uploads
    "flac": ("flac", "flac", 44100, 1),
}


# ------------------------------------------------------------------ making audio

def speak(tmp: Path, text: str) -> tuple[bytes, int]:
    """espeak-ng's rendering of text: (mono s16 PCM, rate)."""
    out = tmp / f"{abs(hash(text))}.wav"
    subprocess.run(["espeak-ng", "-v", VOICE, "-s", "160", "-w", str(out), text],
                   check=True, capture_output=True)
    with wave.open(str(out)) as w:
        return w.readframes(w.getnframes()), w.getframerate()


def encode(pcm: bytes, rate: int, ext: str, *, bit_rate: int | None = None,
           out_rate: int | None = None) -> bytes:
    """Mono s16 PCM at rate, as a file of the given extension (see FORMATS)."""
    muxer, codec, usual_rate, channels = FORMATS[ext]
    out_rate = out_rate or usual_rate
    layout = "stereo" if channels == 2 else "mono"
    buf = io.BytesIO()
    with av.open(buf, "w", format=muxer) as out:
        stream = out.add_stream(codec, rate=out_rate, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate
        ctx = stream.codec_context
        resampler = av.AudioResampler(format=ctx.codec.audio_formats[0].name, layout=layout,
                                      rate=out_rate, frame_size=ctx.frame_size or 1024)
        if channels == 2:  # the same voice on both sides, as a stereo recorder makes it
            pcm = audioop.tostereo(pcm, 2, 1, 1)
        frame = av.AudioFrame(format="s16", layout=layout, samples=len(pcm) // 2 // channels)
        frame.planes[0].update(pcm)
        frame.sample_rate, frame.time_base, frame.pts = rate, Fraction(1, rate), 0
        for part in (*resampler.resample(frame), *resampler.resample(None)):
            part.pts = None
            out.mux(stream.encode(part))
        out.mux(stream.encode(None))
    return buf.getvalue()


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def silence(seconds: float, rate: int) -> bytes:
    return b"\x00\x00" * round(seconds * rate)


def white_noise(seconds: float, rate: int, rms: float) -> bytes:
    rng = random.Random(7)
    n = round(seconds * rate)
    return b"".join(round(max(-32767, min(32767, rng.gauss(0, rms)))).to_bytes(2, "little", signed=True)
                    for _ in range(n))


def to_rate(pcm: bytes, rate: int, new_rate: int) -> bytes:
    """Resample mono s16 with FFmpeg (band-limited), for material made at another rate."""
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
    frame.planes[0].update(pcm)
    frame.sample_rate, frame.time_base, frame.pts = rate, Fraction(1, rate), 0
    resampler = av.AudioResampler(format="s16", layout="mono", rate=new_rate)
    return b"".join(bytes(f.planes[0])[:f.samples * 2]
                    for f in (*resampler.resample(frame), *resampler.resample(None)))


# ------------------------------------------------------------------ measuring

def p56_level_db(pcm: bytes, rate: int = 8000) -> float:
    """ITU-T P.56 method B active speech level (dBov) of 16-bit PCM: envelope with a 30 ms
    time constant, 0.2 s hangover, thresholds at powers of two, 15.9 dB margin."""
    g = math.exp(-1 / (rate * 0.03))
    hang = round(0.2 * rate)
    active, since = [0] * 16, [hang] * 16
    p = q = energy = 0.0
    for i in range(0, len(pcm), 2):
        v = int.from_bytes(pcm[i:i + 2], "little", signed=True)
        energy += v * v
        p = g * p + (1 - g) * abs(v)
        q = g * q + (1 - g) * p
        top = int(math.log2(q)) if q >= 1 else -1
        for j in range(16):
            if j <= top:
                active[j], since[j] = active[j] + 1, 0
            elif since[j] < hang:
                active[j], since[j] = active[j] + 1, since[j] + 1
    previous = None
    level = -100.0
    for j in range(16):
        if not active[j]:
            break
        level = 10 * math.log10(energy / active[j] / 32768 ** 2)
        gap = level - 20 * math.log10(2 ** j / 32768)
        if gap <= 15.9:
            if previous is None:
                return level
            before, before_gap = previous
            return before + (level - before) * (before_gap - 15.9) / (before_gap - gap)
        previous = (level, gap)
    return level


def telephone_pcm(result: Intake, tmp: Path) -> bytes:
    """The result's samples as linear PCM, after checking it is 8 kHz mono μ-law."""
    path = tmp / "result.wav"
    path.write_bytes(result.wav)
    tag, channels, rate, n = read_telephone_wav(path)
    assert (tag, channels, rate) == (WAVE_FORMAT_MULAW, 1, 8000)
    assert n == round(result.seconds * 8000)
    return audioop.ulaw2lin(read_telephone_audio(path), 2)


def speech_span(pcm: bytes, rate: int, below_peak_db: float = 40.0) -> tuple[float, float]:
    """Seconds from the start to the first and to the last 10 ms louder than peak − 40 dB."""
    step = rate // 100 * 2
    peak = audioop.max(pcm, 2)
    loud = [i for i in range(0, len(pcm) - step + 1, step)
            if audioop.max(pcm[i:i + step], 2) >= peak * 10 ** (-below_peak_db / 20)]
    return loud[0] / 2 / rate, (loud[-1] + step) / 2 / rate


def codes(result: Intake) -> list[str]:
    return [w.code for w in result.warnings]


# ------------------------------------------------------------------ fixtures (once per module)

@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, int]]:
    tmp = tmp_path_factory.mktemp("espeak")
    return {text: speak(tmp, text) for text in (GREETING, SHORT, LONG)}


@pytest.fixture(scope="module")
def greeting_files(voice: dict[str, tuple[bytes, int]]) -> dict[str, bytes]:
    """The greeting with half a second of silence before and after, as people record."""
    pcm, rate = voice[GREETING]
    pcm = silence(0.5, rate) + pcm + silence(0.5, rate)
    return {ext: encode(pcm, rate, ext) for ext in FORMATS}


@pytest.fixture(scope="module")
def clean(greeting_files: dict[str, bytes]) -> Intake:
    return take_in(greeting_files["flac"], "greeting.flac", text=GREETING, other_texts=OTHERS)


# ------------------------------------------------------------------ every format

@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_every_format_becomes_telephone_audio_at_the_target_level(
        ext: str, greeting_files: dict[str, bytes], voice: dict[str, tuple[bytes, int]],
        tmp_path: Path) -> None:
    result = take_in(greeting_files[ext], f"录音.{ext}", text=GREETING, other_texts=OTHERS)
    pcm = telephone_pcm(result, tmp_path)
    assert abs(p56_level_db(pcm) - TARGET_LEVEL_DB) <= 1.0
    assert abs(result.level_db - TARGET_LEVEL_DB) <= 0.5
    assert result.warnings == ()
    expected_format = {"wav": "wav/pcm_s16le", "m4a": "m4a/aac", "ogg": "ogg/opus",
                       "opus": "ogg/opus", "webm": "webm/opus"}.get(ext, ext)
    assert result.source_format == expected_format
    # Same speech, same length: the voice from its first to its last sound, plus the two
    # 0.15 s margins trimming keeps (codecs add a few ms of delay or padding).
    source, rate = voice[GREETING]
    start, end = speech_span(source, rate)
    assert abs(result.seconds - (end - start + 0.3)) < 0.05
    assert audioop.max(pcm, 2) < 32124  # under μ-law's largest code: not clipped


def test_the_source_level_is_measured_as_recorded(greeting_files: dict[str, bytes],
                                                  voice: dict[str, tuple[bytes, int]]) -> None:
    source, rate = voice[GREETING]
    as_recorded = p56_level_db(to_rate(source, rate, 8000))
    result = take_in(greeting_files["flac"], "greeting.flac")
    assert abs(result.source_level_db - as_recorded) < 0.5
    stereo = take_in(greeting_files["wav"], "greeting.wav")  # both channels alike: same level
    assert abs(stereo.source_level_db - as_recorded) < 0.5


def test_silence_at_both_ends_is_trimmed_to_a_short_margin(
        voice: dict[str, tuple[bytes, int]], clean: Intake, tmp_path: Path) -> None:
    pcm, rate = voice[GREETING]
    padded = silence(2.0, rate) + pcm + silence(2.0, rate)
    result = take_in(encode(padded, rate, "wav"), "padded.wav", text=GREETING)
    out = telephone_pcm(result, tmp_path)
    first, last = speech_span(out, 8000)
    assert 0.1 <= first <= 0.2 and 0.1 <= result.seconds - last <= 0.2
    assert abs(result.seconds - clean.seconds) < 0.03  # clean: the same with 0.5 s each side
    assert abs(result.trimmed_seconds - (len(padded) / 2 / rate - result.seconds)) < 0.01
    assert result.trimmed_seconds > 4.0
    assert result.warnings == ()


def test_a_stream_that_changes_its_sample_rate_is_decoded_whole(
        voice: dict[str, tuple[bytes, int]]) -> None:
    pcm, rate = voice[SHORT]
    first = encode(pcm, rate, "mp3")
    both = take_in(first + encode(pcm, rate, "mp3", out_rate=16000), "joined.mp3")  # 44.1, 16 kHz
    alone = take_in(first, "one.mp3")
    assert 1.8 * alone.seconds < both.seconds < 2.2 * alone.seconds


def test_nothing_is_written_to_disk(greeting_files: dict[str, bytes], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    for ext, data in greeting_files.items():
        take_in(data, f"greeting.{ext}")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ warnings

def test_a_clipped_recording_is_flagged_with_the_share_of_clipped_samples(
        voice: dict[str, tuple[bytes, int]], tmp_path: Path) -> None:
    pcm, rate = voice[GREETING]
    # +20 dB at the recorder's own rate (audioop saturates: a hard clip), as an input stage
    # overdriven before its converter would.
    clipped = audioop.mul(to_rate(pcm, rate, 44100), 2, 10.0)
    for ext in ("wav", "mp3"):  # also after a lossy codec has blurred the flat tops
        result = take_in(encode(clipped, 44100, ext), f"loud.{ext}", text=GREETING)
        assert "clipping" in codes(result), ext
        warning = next(w for w in result.warnings if w.code == "clipping")
        percent = float(warning.message.split("峰值削波 ")[1].split("%")[0])
        assert percent > 5, warning.message
        # Still usable: brought down to the target and not clipped any further.
        out = telephone_pcm(result, tmp_path)
        assert abs(p56_level_db(out) - TARGET_LEVEL_DB) <= 1.0


def test_a_quiet_recording_is_flagged_and_still_brought_to_the_target(
        voice: dict[str, tuple[bytes, int]], tmp_path: Path) -> None:
    pcm, rate = voice[GREETING]
    quiet = audioop.mul(pcm, 2, 10 ** ((-50 - p56_level_db(to_rate(pcm, rate, 8000))) / 20))
    result = take_in(encode(quiet, rate, "m4a"), "quiet.m4a", text=GREETING)
    assert codes(result) == ["too_quiet"]
    assert abs(result.source_level_db - -50) < 1.0
    assert f"{result.source_level_db:.1f} dBFS" in result.warnings[0].message
    assert abs(p56_level_db(telephone_pcm(result, tmp_path)) - TARGET_LEVEL_DB) <= 1.0


def test_a_noisy_recording_is_flagged_with_its_signal_to_noise_ratio(
        voice: dict[str, tuple[bytes, int]]) -> None:
    pcm, rate = voice[GREETING]
    phone = to_rate(silence(0.5, rate) + pcm + silence(0.5, rate), rate, 8000)
    level = p56_level_db(phone)
    noise = white_noise(len(phone) / 2 / 8000, 8000, 32768 * 10 ** ((level - 15) / 20))
    noisy = audioop.add(phone, noise[:len(phone)], 2)  # white noise 15 dB under the speech
    result = take_in(wav_bytes(noisy, 8000), "noisy.wav", text=GREETING)
    assert "noisy" in codes(result)
    message = next(w.message for w in result.warnings if w.code == "noisy")
    snr = float(message.split("高 ")[1].split(" dB")[0])
    assert 5 < snr < 20, message


def test_a_short_recording_for_a_long_prompt_points_at_the_prompt_it_fits(
        voice: dict[str, tuple[bytes, int]]) -> None:
    pcm, rate = voice[SHORT]
    result = take_in(encode(pcm, rate, "webm"), "blob.webm", text=LONG, other_texts=OTHERS)
    assert codes(result) == ["too_short", "other_prompt"]
    too_short, other = result.warnings
    assert f"{result.seconds:.1f} 秒" in too_short.message
    assert f"{expected_seconds(LONG):.1f} 秒" in too_short.message
    assert other.prompt_id == "nomatch_1" and "nomatch_1" in other.message


def test_a_long_recording_for_a_short_prompt_is_flagged(
        voice: dict[str, tuple[bytes, int]]) -> None:
    pcm, rate = voice[LONG]
    result = take_in(encode(pcm, rate, "mp3"), "menu.mp3", text=SHORT, other_texts=OTHERS)
    assert codes(result) == ["too_long", "other_prompt"]
    assert result.warnings[1].prompt_id == "main_menu"
    alone = take_in(encode(pcm, rate, "mp3"), "menu.mp3", text=SHORT)
    assert codes(alone) == ["too_long"]  # no other prompts given: nothing to point at


def test_a_recording_that_fits_its_text_names_no_other_prompt(clean: Intake) -> None:
    assert clean.warnings == ()  # although other prompts were given (the fixture passes OTHERS)


def test_expected_seconds_counts_syllables_and_pauses() -> None:
    assert expected_seconds(SHORT) == pytest.approx(5 / 3 + 0.3)
    assert expected_seconds("还可以再试{checks_left}次。") == expected_seconds("还可以再试次。")
    assert expected_seconds("请按1，再按2。") == pytest.approx(6 / 3 + 0.3 + 0.3)
    assert expected_seconds("第一句。第二句。") == pytest.approx(6 / 3 + 0.5 + 0.3)
    assert expected_seconds("X请按星号") == pytest.approx(5 / 3 + 0.3)
    assert expected_seconds("{status_text}") == 0.0
    assert expected_seconds(LONG) > 3 * expected_seconds(SHORT)


# ------------------------------------------------------------------ refusals

def test_the_allowed_types() -> None:
    assert intake.ALLOWED_EXTENSIONS == {"wav", "mp3", "m4a", "aac", "ogg", "opus", "webm", "flac"}


@pytest.mark.parametrize("name", ["setup.exe", "words.txt", "录音", "track.mp4"])
def test_a_file_that_is_not_an_allowed_type_is_refused_by_its_name(
        name: str, greeting_files: dict[str, bytes]) -> None:
    with pytest.raises(UploadRefused) as refused:
        take_in(greeting_files["mp3"], name)
    assert "扩展名" in str(refused.value) or "不能上传" in str(refused.value)
    assert "MP3" in str(refused.value)


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00"
       b"\x00\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe"
       b"\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.mark.parametrize(("data", "name", "says"), [
    (PNG, "greeting.mp3", "PNG 图片"),
    ("请按1。这不是录音，是提示的文字。\n".encode() * 20, "greeting.wav", "文本"),
    (b"\x00\x01\x02\x03" * 200, "greeting.ogg", "不是能识别的录音格式"),
])
def test_content_that_is_not_audio_is_refused(data: bytes, name: str, says: str) -> None:
    with pytest.raises(UploadRefused, match=says):
        take_in(data, name)


def test_audio_of_another_format_than_its_name_is_refused(greeting_files: dict[str, bytes]) -> None:
    with pytest.raises(UploadRefused, match="M4A/MP4"):
        take_in(greeting_files["m4a"], "greeting.mp3")
    with pytest.raises(UploadRefused, match="OGG"):
        take_in(greeting_files["ogg"], "greeting.webm")


def test_a_truncated_file_is_refused(greeting_files: dict[str, bytes]) -> None:
    with pytest.raises(UploadRefused, match="不完整或已损坏"):
        take_in(greeting_files["mp3"][:300], "cut.mp3")


def test_a_file_over_the_size_limit_is_refused_before_decoding(
        greeting_files: dict[str, bytes]) -> None:
    audio = greeting_files["wav"]
    big = audio + bytes(MAX_UPLOAD_BYTES + 1 - len(audio))  # a real WAV, zeros after it
    assert len(big) == MAX_UPLOAD_BYTES + 1
    start = time.monotonic()
    with pytest.raises(UploadRefused, match="文件太大：20.0 MB，最大 20 MB"):
        take_in(big, "big.wav")
    assert time.monotonic() - start < 0.5


def test_ten_minutes_of_audio_are_refused_without_decoding_them_all() -> None:
    rate = 8000
    tone = b"".join(round(8000 * math.sin(2 * math.pi * 440 * i / rate)).to_bytes(
        2, "little", signed=True) for i in range(rate * 6))
    buf = io.BytesIO()  # six seconds of MP3 frames, no tags: repeated, a ten-minute stream
    with av.open(buf, "w", format="mp3", options={"id3v2_version": "0", "write_xing": "0"}) as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = 8000
        resampler = av.AudioResampler(format="s16p", layout="mono", rate=rate, frame_size=576)
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(tone) // 2)
        frame.planes[0].update(tone)
        frame.sample_rate, frame.time_base, frame.pts = rate, Fraction(1, rate), 0
        for part in (*resampler.resample(frame), *resampler.resample(None)):
            part.pts = None
            out.mux(stream.encode(part))
        out.mux(stream.encode(None))
    long_file = buf.getvalue() * 100
    assert len(long_file) < MAX_UPLOAD_BYTES
    start = time.monotonic()
    with pytest.raises(UploadRefused, match="录音太长：长约 10 分") as refused:
        take_in(long_file, "long.mp3")
    assert f"最长 {MAX_SECONDS:g} 秒" in str(refused.value)
    assert time.monotonic() - start < 1.0


def test_silence_is_refused() -> None:
    with pytest.raises(UploadRefused, match="静音"):
        take_in(wav_bytes(silence(3.0, 16000), 16000), "nothing.wav")


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(UploadRefused, match="空的"):
        take_in(b"", "blob.webm")


def test_a_file_without_a_sound_track_is_refused() -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as out:
        stream = out.add_stream("libvpx", rate=10)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for i in range(5):
            frame = av.VideoFrame(16, 16, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(UploadRefused, match="没有声音"):
        take_in(buf.getvalue(), "video.webm")


def test_a_program_renamed_to_wav_is_refused_as_a_program() -> None:
    with pytest.raises(UploadRefused) as refused:
        take_in(b"MZ\x90\x00" + bytes(500), "setup.wav")
    assert "Windows 程序" in str(refused.value) and "请上传" in str(refused.value)
