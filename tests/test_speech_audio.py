"""Decoding what Twilio serves (RecordingUrl.wav) into PCM at the model's rate."""

from __future__ import annotations

import math
import struct
import subprocess
import warnings
from array import array
from pathlib import Path

import pytest

from ivr.prompts.audio import to_telephone_wav
from ivr.hearing.audio import AudioError, decode_for_model, decode_wav, pcm_seconds, to_model_rate

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0, amp: int = 12000) -> bytes:
    n = int(rate * seconds)
    return array("h", (int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))).tobytes()


def wav(payload: bytes, *, tag: int, channels: int, rate: int, bits: int,
        streamed: bool = False, extensible: bool = False) -> bytes:
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0)
        fmt += struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    data_size = 0xFFFFFFFF if streamed else len(payload)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 4) + b"INFO"  # an extra chunk to skip
    body += b"data" + struct.pack("<I", data_size) + payload
    riff = 0xFFFFFFFF if streamed else len(body)
    return b"RIFF" + struct.pack("<I", riff) + body


def test_twilio_pcm_8k() -> None:
    pcm = tone(8000)
    out, rate = decode_wav(wav(pcm, tag=1, channels=1, rate=8000, bits=16))
    assert (out, rate) == (pcm, 8000)


def test_mulaw_and_alaw() -> None:
    pcm = tone(8000)
    for tag, enc, dec in ((7, audioop.lin2ulaw, audioop.ulaw2lin),
                          (6, audioop.lin2alaw, audioop.alaw2lin)):
        coded = enc(pcm, 2)
        out, rate = decode_wav(wav(coded, tag=tag, channels=1, rate=8000, bits=8))
        assert rate == 8000 and out == dec(coded, 2)
        assert audioop.rms(out, 2) == pytest.approx(audioop.rms(pcm, 2), rel=0.05)


def test_streamed_header_extensible_stereo_and_24_bit() -> None:
    pcm = tone(8000)
    out, _ = decode_wav(wav(pcm, tag=1, channels=1, rate=8000, bits=16, streamed=True))
    assert out == pcm
    out, _ = decode_wav(wav(pcm, tag=1, channels=1, rate=8000, bits=16, extensible=True))
    assert out == pcm
    stereo = audioop.tostereo(pcm, 2, 1, 1)
    out, _ = decode_wav(wav(stereo, tag=1, channels=2, rate=8000, bits=16))
    assert out == pcm
    pcm24 = audioop.lin2lin(pcm, 2, 3)
    out, _ = decode_wav(wav(pcm24, tag=1, channels=1, rate=8000, bits=24))
    assert out == pcm
    out, _ = decode_wav(wav(pcm + b"\x01", tag=1, channels=1, rate=8000, bits=16))
    assert out == pcm  # torn last frame dropped


@pytest.mark.parametrize("data, message", [
    (b"", "RIFF"),
    (b"RIFF\0\0\0\0WAVEjunk", "missing"),
    (wav(b"\0" * 10, tag=0x55, channels=1, rate=8000, bits=16), "unsupported"),  # MP3
    (wav(b"\0" * 10, tag=1, channels=0, rate=8000, bits=16), "implausible"),
    (wav(b"\0" * 10, tag=1, channels=1, rate=10, bits=16), "implausible"),
])
def test_rejects_what_it_cannot_decode(data: bytes, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        decode_wav(data)


def test_upsamples_8k_to_the_model_rate() -> None:
    pcm = tone(8000, seconds=1.0)
    out, rate = to_model_rate(pcm, 8000, 16000)
    assert rate == 16000
    assert abs(len(out) - 2 * len(pcm)) <= 4
    assert pcm_seconds(out, rate) == pytest.approx(1.0, abs=0.001)
    assert audioop.rms(out, 2) == pytest.approx(audioop.rms(pcm, 2), rel=0.02)
    # Same rate: untouched. Higher rate: left for Vosk's own (filtered) downsampler.
    assert to_model_rate(pcm, 16000, 16000) == (pcm, 16000)
    assert to_model_rate(pcm, 44100, 16000) == (pcm, 44100)
    assert to_model_rate(b"", 8000, 16000) == (b"", 8000)
    with pytest.raises(AudioError):
        to_model_rate(pcm, 0, 16000)


def test_a_phone_line_recording_end_to_end(tmp_path: Path) -> None:
    """espeak-ng → 8 kHz μ-law WAV (as the phone line delivers) → 16 kHz PCM for the model."""
    from speech_fixtures.helpers import require_espeak
    require_espeak()
    clean = tmp_path / "clean.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(clean), "네"], check=True)
    tel = tmp_path / "tel.wav"
    to_telephone_wav(clean, tel)
    pcm, rate = decode_for_model(tel.read_bytes(), 16000)
    assert rate == 16000
    assert 0.3 < pcm_seconds(pcm, rate) < 2.0
    assert audioop.rms(pcm, 2) > 300
