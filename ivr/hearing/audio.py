"""Decode a caller's recording into what a Vosk recogniser eats.

Twilio serves `RecordingUrl + ".wav"` as a WAV file: normally 8 kHz mono
16-bit PCM, sometimes G.711 μ-law (tag 7) or A-law (tag 6), possibly with
a streamed header whose sizes are 0 or 0xFFFFFFFF. Vosk wants 16-bit
little-endian mono PCM plus its rate; small Vosk models are trained at 16 kHz.

Self-contained (stdlib only; no vosk) so the web process can decode and
validate audio before handing it to the recognition pool.
"""

from __future__ import annotations

import struct
import sys
import warnings
from array import array

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError as exc:  # pragma: no cover - Python >= 3.13 without audioop-lts
        raise ImportError("ivr.hearing.audio needs 'audioop' (on Python >= 3.13 install "
                          "'audioop-lts')") from exc

__all__ = [
    "AudioError",
    "decode_wav",
    "to_model_rate",
    "StreamUpsampler",
    "decode_for_model",
    "pcm_seconds",
]

_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE
_MAX_RATE = 384_000


class AudioError(ValueError):
    """The bytes are not audio this module can decode."""


def _chunks(raw: bytes):
    pos = 12
    while pos + 8 <= len(raw):
        cid = raw[pos:pos + 4]
        (size,) = struct.unpack_from("<I", raw, pos + 4)
        yield cid, raw[pos + 8:pos + 8 + size]  # clamped for streamed sizes
        pos += 8 + size + (size & 1)


def decode_wav(data: bytes) -> tuple[bytes, int]:
    """Decode a WAV file's bytes to (16-bit little-endian mono PCM, sample rate).

    Understands PCM 8/16/24/32-bit, IEEE float, μ-law and A-law, any channel
    count (mixed down), WAVE_FORMAT_EXTENSIBLE, and streamed headers.
    Raises AudioError for anything else.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    fmt = None
    codec = 0
    payload = None
    for cid, body in _chunks(data):
        if cid == b"fmt ":
            if len(body) < 16:
                raise AudioError("fmt chunk too short")
            fmt = struct.unpack_from("<HHIIHH", body)
            codec = fmt[0]
            if codec == _EXTENSIBLE and len(body) >= 26:
                (codec,) = struct.unpack_from("<H", body, 24)
        elif cid == b"data" and payload is None:
            payload = body
    if fmt is None or payload is None:
        raise AudioError("missing fmt or data chunk")
    _tag, channels, rate, _byte_rate, block_align, _bits = fmt
    if not (1 <= channels <= 32 and 1000 <= rate <= _MAX_RATE and block_align >= channels
            and block_align % channels == 0):
        raise AudioError(f"implausible format: {channels} channels, {rate} Hz, "
                         f"block align {block_align}")
    width = block_align // channels
    payload = payload[:len(payload) - len(payload) % block_align]

    if codec == _PCM and width in (1, 2, 3, 4):
        if sys.byteorder == "big" and width > 1:
            payload = audioop.byteswap(payload, width)
        if width == 1:
            payload = audioop.bias(payload, 1, -128)  # 8-bit WAV is unsigned
        pcm = audioop.lin2lin(payload, width, 2) if width != 2 else payload
    elif codec == _MULAW and width == 1:
        pcm = audioop.ulaw2lin(payload, 2)
    elif codec == _ALAW and width == 1:
        pcm = audioop.alaw2lin(payload, 2)
    elif codec == _FLOAT and width in (4, 8):
        floats = array("f" if width == 4 else "d", payload)
        if sys.byteorder == "big":
            floats.byteswap()
        pcm = array("h", (int(max(-1.0, min(1.0, v)) * 32767) for v in floats)).tobytes()
    else:
        raise AudioError(f"unsupported WAV codec {codec:#06x} with {width}-byte samples")

    if channels == 2:
        pcm = audioop.tomono(pcm, 2, 0.5, 0.5)
    elif channels > 2:
        samples = array("h", pcm)
        mixed = None
        for ch in range(channels):
            part = audioop.mul(samples[ch::channels].tobytes(), 2, 1.0 / channels)
            mixed = part if mixed is None else audioop.add(mixed, part, 2)
        pcm = mixed or b""
    if sys.byteorder == "big":
        pcm = audioop.byteswap(pcm, 2)  # Vosk reads little-endian int16
    return pcm, rate


def to_model_rate(pcm: bytes, rate: int, model_rate: int) -> tuple[bytes, int]:
    """Bring 16-bit mono PCM to a rate the model can take; returns (pcm, rate).

    Lower rates (a phone line's 8 kHz into a 16 kHz model) are upsampled with
    audioop.ratecv, so it works whether or not the model allows upsampling
    (a model without --allow-upsample makes Kaldi abort the process on 8 kHz).
    Higher rates are returned as they are: Vosk always allows downsampling and
    its resampler low-pass filters, which ratecv does not.
    """
    if rate <= 0 or model_rate <= 0:
        raise AudioError("sample rates must be positive")
    if len(pcm) % 2:
        pcm = pcm[:-1]
    if rate >= model_rate or not pcm:
        return pcm, rate
    if sys.byteorder == "big":
        pcm = audioop.byteswap(pcm, 2)
    out, _state = audioop.ratecv(pcm, 2, 1, rate, model_rate, None)
    if sys.byteorder == "big":
        out = audioop.byteswap(out, 2)
    return out, model_rate


class StreamUpsampler:
    """`to_model_rate` for audio that arrives in frames: the filter state carries over from one
    frame to the next, so 20 ms frames upsample exactly like the whole recording would
    (the batch path upsamples too: same accuracy for live calls as for recordings)."""

    def __init__(self, rate: int, model_rate: int) -> None:
        if rate <= 0 or model_rate <= 0:
            raise AudioError("sample rates must be positive")
        self.rate = rate
        self.out_rate = model_rate if rate < model_rate else rate
        self._state: object = None

    def __call__(self, pcm: bytes) -> bytes:
        if self.out_rate == self.rate or not pcm:
            return pcm
        if sys.byteorder == "big":
            pcm = audioop.byteswap(pcm, 2)
        out, self._state = audioop.ratecv(pcm, 2, 1, self.rate, self.out_rate, self._state)
        return audioop.byteswap(out, 2) if sys.byteorder == "big" else out


def decode_for_model(data: bytes, model_rate: int) -> tuple[bytes, int]:
    """`decode_wav` then `to_model_rate`: a Twilio recording → (pcm, rate) for Vosk."""
    pcm, rate = decode_wav(data)
    return to_model_rate(pcm, rate, model_rate)


def pcm_seconds(pcm: bytes, rate: int) -> float:
    """Duration of 16-bit mono PCM."""
    return len(pcm) / 2 / rate if rate > 0 else 0.0
