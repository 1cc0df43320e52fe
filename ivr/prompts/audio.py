"""Convert TTS output (PCM WAV) into telephone audio: 8 kHz mono G.711 μ-law WAV.

Twilio plays μ-law 8 kHz WAV without transcoding, so prompts sound the same
as on any phone line and are ~5x smaller than 22 kHz PCM. The stdlib `wave`
module cannot write μ-law, so the RIFF header is written by hand here.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import warnings
from array import array
from dataclasses import dataclass
from math import cos, pi, sin
from pathlib import Path

with warnings.catch_warnings():
    # audioop is deprecated in 3.11 and removed in 3.13, where the
    # `audioop-lts` distribution provides the same `audioop` module.
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError as exc:  # pragma: no cover - only on Python >= 3.13
        raise ImportError(
            "ivr.prompts.audio needs the 'audioop' module; on Python >= 3.13 "
            "install the 'audioop-lts' package"
        ) from exc

__all__ = [
    "TELEPHONE_RATE",
    "WAVE_FORMAT_PCM",
    "WAVE_FORMAT_MULAW",
    "WavError",
    "to_telephone_wav",
    "read_telephone_wav",
    "silence_wav",
    "atomic_write_bytes",
    "mulaw_wav_bytes",
]

TELEPHONE_RATE = 8000
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_ALAW = 0x0006
WAVE_FORMAT_MULAW = 0x0007
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

# Anti-alias low-pass before decimating to 8 kHz. audioop.ratecv only
# interpolates linearly, so without this, TTS energy between 4 and 11 kHz
# folds back into the speech band as hiss. Cut-off sits just above the
# 300-3400 Hz telephone band.
_CUTOFF_HZ = 3700.0
_TRANSITION_HZ = 800.0


class WavError(ValueError):
    """The file is not a WAV file this module understands."""


@dataclass(frozen=True)
class _WavInfo:
    format_tag: int  # as written in the header (0xFFFE for extensible)
    codec: int  # effective codec (sub-format for extensible files)
    channels: int
    rate: int
    block_align: int
    bits: int
    data: bytes


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------

def _parse_wav(path: Path) -> _WavInfo:
    """Parse a RIFF/WAVE file's fmt and data chunks (tolerates streamed sizes)."""
    raw = Path(path).read_bytes()
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise WavError(f"{path}: not a RIFF/WAVE file")
    fmt: tuple[int, ...] | None = None
    codec = 0
    data: bytes | None = None
    pos = 12
    while pos + 8 <= len(raw):
        chunk_id = raw[pos:pos + 4]
        (size,) = struct.unpack_from("<I", raw, pos + 4)
        body = raw[pos + 8:pos + 8 + size]  # clamped: streamed writers put 0xFFFFFFFF
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise WavError(f"{path}: fmt chunk too short")
            fmt = struct.unpack_from("<HHIIHH", body)
            codec = fmt[0]
            if codec == WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                (codec,) = struct.unpack_from("<H", body, 24)  # first bytes of SubFormat GUID
        elif chunk_id == b"data" and data is None:
            data = body
        pos += 8 + size + (size & 1)  # chunks are word aligned
    if fmt is None or data is None:
        raise WavError(f"{path}: missing fmt or data chunk")
    tag, channels, rate, _byte_rate, block_align, bits = fmt
    if channels < 1 or rate < 1 or block_align < 1:
        raise WavError(f"{path}: invalid fmt chunk {fmt}")
    data = data[:len(data) - len(data) % block_align]  # drop a torn last frame
    return _WavInfo(tag, codec, channels, rate, block_align, bits, data)


def read_telephone_wav(path: Path | str) -> tuple[int, int, int, int]:
    """Return (format_tag, channels, rate, n_samples) from a WAV header.

    Used by tests and health checks to verify cached prompts are really
    μ-law 8 kHz mono (format_tag 7). n_samples counts frames in the data
    chunk, which for μ-law equals the 'fact' chunk's sample length.
    """
    info = _parse_wav(Path(path))
    return info.format_tag, info.channels, info.rate, len(info.data) // info.block_align


def read_telephone_audio(path: Path | str) -> bytes:
    """The raw μ-law samples of a telephone WAV (what a media stream carries, no header)."""
    info = _parse_wav(Path(path))
    if info.codec != WAVE_FORMAT_MULAW or info.channels != 1 or info.rate != TELEPHONE_RATE:
        raise WavError(f"{path}: not 8 kHz μ-law mono")
    return info.data


def _to_pcm16_mono(info: _WavInfo) -> bytes:
    """Decode any supported WAV payload to native-endian 16-bit mono."""
    width = info.block_align // info.channels
    data = info.data
    if info.codec == WAVE_FORMAT_PCM:
        if width not in (1, 2, 3, 4):
            raise WavError(f"unsupported PCM sample width {width}")
        if sys.byteorder == "big" and width > 1:
            data = audioop.byteswap(data, width)
        if width == 1:
            data = audioop.bias(data, 1, -128)  # 8-bit WAV is unsigned
        pcm = audioop.lin2lin(data, width, 2) if width != 2 else data
    elif info.codec == WAVE_FORMAT_IEEE_FLOAT and width in (4, 8):
        floats = array("f" if width == 4 else "d", data)
        if sys.byteorder == "big":
            floats.byteswap()
        pcm = array("h", (int(max(-1.0, min(1.0, v)) * 32767) for v in floats)).tobytes()
    elif info.codec == WAVE_FORMAT_MULAW and width == 1:
        pcm = audioop.ulaw2lin(data, 2)
    elif info.codec == WAVE_FORMAT_ALAW and width == 1:
        pcm = audioop.alaw2lin(data, 2)
    else:
        raise WavError(f"unsupported WAV codec {info.codec:#06x} / width {width}")

    n = info.channels
    if n == 1:
        return pcm
    if n == 2:
        return audioop.tomono(pcm, 2, 0.5, 0.5)
    samples = array("h", pcm)
    mixed: bytes | None = None
    for ch in range(n):
        part = audioop.mul(samples[ch::n].tobytes(), 2, 1.0 / n)
        mixed = part if mixed is None else audioop.add(mixed, part, 2)
    return mixed or b""


# --------------------------------------------------------------------------
# Resampling
# --------------------------------------------------------------------------

def _lowpass_taps(rate: int) -> list[float]:
    """Hamming-windowed sinc low-pass at _CUTOFF_HZ for the given input rate."""
    n = int(3.3 * rate / _TRANSITION_HZ) | 1  # odd length → symmetric, zero phase
    m = n // 2
    fc = _CUTOFF_HZ / rate
    taps = []
    for i in range(n):
        k = i - m
        ideal = 2 * fc if k == 0 else sin(2 * pi * fc * k) / (pi * k)
        taps.append(ideal * (0.54 - 0.46 * cos(2 * pi * i / (n - 1))))
    total = sum(taps)
    return [t / total for t in taps]


def _shift(frag: bytes, samples: int, width: int) -> bytes:
    """Delay (samples > 0) or advance a fragment, zero-filling, same length."""
    if samples == 0:
        return frag
    pad = b"\x00" * (min(abs(samples), len(frag) // width) * width)
    if samples > 0:
        return pad + frag[:len(frag) - len(pad)]
    return frag[len(pad):] + pad


def _lowpass(pcm16: bytes, rate: int) -> bytes:
    """FIR low-pass done as whole-buffer audioop mul/add per tap (fast, in C).

    Works in 32-bit so the per-tap rounding stays far below 16-bit LSB.
    """
    if not pcm16:
        return pcm16
    x = audioop.lin2lin(pcm16, 2, 4)
    taps = _lowpass_taps(rate)
    m = len(taps) // 2
    acc: bytes | None = None
    for i, h in enumerate(taps):
        term = audioop.mul(_shift(x, i - m, 4), 4, h)
        acc = term if acc is None else audioop.add(acc, term, 4)
    assert acc is not None
    return audioop.lin2lin(acc, 4, 2)


def _resample_to_telephone(pcm16: bytes, rate: int) -> bytes:
    if rate == TELEPHONE_RATE or not pcm16:
        return pcm16
    if rate > TELEPHONE_RATE:
        pcm16 = _lowpass(pcm16, rate)
    out, _state = audioop.ratecv(pcm16, 2, 1, rate, TELEPHONE_RATE, None)
    return out


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------

def _mulaw_wav_bytes(ulaw: bytes) -> bytes:
    """RIFF/WAVE with fmt (WAVEFORMATEX, tag 7), fact and data chunks."""
    n = len(ulaw)
    fmt = struct.pack(
        "<HHIIHHH",
        WAVE_FORMAT_MULAW,
        1,  # channels
        TELEPHONE_RATE,
        TELEPHONE_RATE,  # bytes per second
        1,  # block align
        8,  # bits per sample
        0,  # cbSize: non-PCM formats must carry it
    )
    fact = struct.pack("<I", n)  # required for non-PCM formats
    pad = b"\x00" if n & 1 else b""
    body = (
        b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"fact" + struct.pack("<I", len(fact)) + fact
        + b"data" + struct.pack("<I", n) + ulaw + pad
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def mulaw_wav_bytes(ulaw: bytes) -> bytes:
    """A complete 8 kHz mono μ-law WAV file around raw μ-law samples (for audio made
    elsewhere, e.g. an uploaded recording converted by ivr.prompts.intake)."""
    return _mulaw_wav_bytes(ulaw)


def atomic_write_bytes(dst: Path | str, data: bytes, *, fsync: bool = True) -> None:
    """Write via a temp file in the same directory + os.replace.

    Several workers may produce the same cached prompt at once; readers must
    never see a half-written file, and the last complete writer wins. Pass
    fsync=False for files that are cheap to recreate (skips a disk flush).
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a static file server may be another user
        os.replace(tmp, dst)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def to_telephone_wav(src_wav: Path | str, dst_wav: Path | str) -> None:
    """Convert any PCM (or float/A-law/μ-law) WAV to 8 kHz mono μ-law WAV."""
    info = _parse_wav(Path(src_wav))
    pcm = _resample_to_telephone(_to_pcm16_mono(info), info.rate)
    atomic_write_bytes(dst_wav, _mulaw_wav_bytes(audioop.lin2ulaw(pcm, 2)))


def silence_wav(dst: Path | str, seconds: float) -> None:
    """Write μ-law silence (for pauses between concatenated prompts)."""
    if seconds < 0:
        raise ValueError("seconds must be >= 0")
    n = round(seconds * TELEPHONE_RATE)
    ulaw = audioop.lin2ulaw(b"\x00\x00" * n, 2)  # 0xFF per sample
    atomic_write_bytes(dst, _mulaw_wav_bytes(ulaw))
