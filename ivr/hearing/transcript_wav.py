"""WAV files that carry what the caller said as text (RIFF LIST/INFO "ICMT" chunk).

The call simulator records a caller's words this way, so tests and the terminal phone can inject
recognised text at the recogniser boundary while capture (Record, fetch, decode) stays real.
"""
from __future__ import annotations

import io
import struct
import wave

RATE = 8000


def _chunk(tag: bytes, payload: bytes) -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return tag + struct.pack("<I", len(payload)) + payload + pad


def write_transcript_wav(text: str, seconds: float = 1.0) -> bytes:
    """8 kHz 16-bit mono silence of `seconds`, carrying `text`."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(b"\0\0" * int(RATE * seconds))
    riff = buffer.getvalue()
    info = _chunk(b"LIST", b"INFO" + _chunk(b"ICMT", text.encode("utf-8") + b"\0"))
    body = riff[12:] + info
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def read_transcript(data: bytes) -> str | None:
    """The text carried by a transcript WAV, or None for ordinary audio."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        payload = data[pos + 8:pos + 8 + size]
        if tag == b"LIST" and payload[:4] == b"INFO":
            inner = 4
            while inner + 8 <= len(payload):
                sub, sub_size = payload[inner:inner + 4], struct.unpack("<I", payload[inner + 4:inner + 8])[0]
                if sub == b"ICMT":
                    return payload[inner + 8:inner + 8 + sub_size].rstrip(b"\0").decode("utf-8")
                inner += 8 + sub_size + (sub_size % 2)
        pos += 8 + size + (size % 2)
    return None
