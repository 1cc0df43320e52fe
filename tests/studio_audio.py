"""Real recordings for the prompt studio's tests: espeak-ng speaks, PyAV encodes the formats phones
and recorders produce (the intake's own tests craft the faulty ones)."""
from __future__ import annotations

import io
import subprocess
from array import array
from dataclasses import dataclass
from pathlib import Path

import av

from ivr.prompts.audio import silence_wav

# extension → (container, codec, sample rate)
FORMATS = {"wav": ("wav", "pcm_s16le", 44100), "mp3": ("mp3", "libmp3lame", 44100),
           "m4a": ("ipod", "aac", 44100), "ogg": ("ogg", "libopus", 48000),
           "webm": ("webm", "libopus", 48000), "flac": ("flac", "flac", 44100)}


def speech_pcm(text: str, out: Path, voice: str = "cmn", lead_silence: float = 0.0) -> Path:
    """espeak-ng's own 22 kHz PCM WAV of `text` (optionally after some silence, as a person who
    clicks "record" and then starts to speak)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], check=True,
                   capture_output=True, timeout=30)
    if lead_silence:
        with av.open(str(out)) as src:
            rate = src.streams.audio[0].rate
        samples = array("h", out.read_bytes()[44:])
        pad = array("h", [0]) * int(rate * lead_silence)
        write_pcm_wav(out, pad + samples + pad, rate)
    return out


def write_pcm_wav(out: Path, samples: array, rate: int) -> None:
    import wave
    with wave.open(str(out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def encode(pcm_wav: Path, ext: str) -> bytes:
    """The speech re-encoded as a `.ext` file would be (stereo where the format usually is)."""
    container, codec, rate = FORMATS[ext]
    buffer = io.BytesIO()
    with av.open(str(pcm_wav)) as src, av.open(buffer, "w", format=container) as dst:
        stream = dst.add_stream(codec, rate=rate)
        stream.layout = "stereo" if ext in ("wav", "m4a", "mp3") else "mono"
        resampler = av.AudioResampler(format=stream.format.name if stream.format else "s16",
                                      layout=stream.layout.name, rate=rate)
        for frame in src.decode(audio=0):
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    dst.mux(packet)
        for converted in resampler.resample(None):
            for packet in stream.encode(converted):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)
    return buffer.getvalue()


@dataclass(frozen=True)
class SilentTake:
    """A take as ivr.prompts.library stores it, without the intake (tests of what plays a take,
    not of how it was made): `seconds` of μ-law silence."""

    wav: bytes
    seconds: float
    level_db: float = -18.5
    source_format: str = "wav"
    warnings: tuple = ()


def silent_take(folder: Path, seconds: float) -> SilentTake:
    path = folder / f"silence-{seconds}.wav"
    silence_wav(path, seconds)
    return SilentTake(path.read_bytes(), seconds)
