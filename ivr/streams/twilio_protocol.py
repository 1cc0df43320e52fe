"""Twilio Media Streams on the wire: the JSON messages of a bidirectional `<Connect><Stream>`.

Only the translation lives here — text frames in, typed messages out, and the messages the
service sends (media, mark, clear) — so the stream transport, the simulator and the tests
share one reading of the protocol (../shared/reference/realtime-voice.md, section 1):

- from Twilio: `connected`, then one `start` (streamSid, callSid, customParameters, the media
  format — always 8 kHz μ-law mono), then `media` (base64 μ-law, about 20 ms each, `timestamp`
  in ms of media time), `dtmf` (one digit), `mark` (the echo of a mark we sent: the audio
  before it has played *or was cleared*), `stop`;
- to Twilio: text frames only — `media` (raw μ-law, no WAV header, any size, buffered and played
  in order), `mark` (named; echoed when the audio before it has played), `clear` (drops the
  buffered audio, and Twilio then echoes every pending mark).

A frame that is not one of these (or too large, or malformed) is a ProtocolError: the
transport closes the stream, it never reaches the call.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

MAX_FRAME_CHARS = 64_000  # a 20 ms media frame is ~300 characters; Twilio bunches a few at most
MAX_MARK_NAME = 256
FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
DTMF_DIGITS = frozenset("0123456789*#")


class ProtocolError(ValueError):
    """A frame Twilio would not send."""


@dataclass(frozen=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1
    sequence: int = 0


@dataclass(frozen=True)
class Media:
    stream_sid: str
    audio: bytes  # μ-law, 8 kHz mono
    timestamp_ms: int
    chunk: int
    sequence: int = 0


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    digit: str
    sequence: int = 0


@dataclass(frozen=True)
class MarkEcho:
    stream_sid: str
    name: str
    sequence: int = 0


@dataclass(frozen=True)
class Stop:
    stream_sid: str
    call_sid: str
    sequence: int = 0


Inbound = Connected | Start | Media | Dtmf | MarkEcho | Stop


def _field(data: dict[str, Any], name: str, kind: type = str) -> Any:
    value = data.get(name)
    if not isinstance(value, kind):
        raise ProtocolError(f"{name!r} missing or not {kind.__name__}")
    return value


def _number(data: dict[str, Any], name: str) -> int:
    raw = data.get(name, "0")  # Twilio sends sequence numbers, chunks and timestamps as strings
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 12:
        return int(raw)
    raise ProtocolError(f"{name!r} is not a whole number")


def parse(frame: str | bytes) -> Inbound:
    """One text frame from Twilio as a typed message."""
    if isinstance(frame, bytes):
        raise ProtocolError("binary frame (Twilio sends text frames only)")
    if len(frame) > MAX_FRAME_CHARS:
        raise ProtocolError(f"frame of {len(frame)} characters")
    try:
        message = json.loads(frame)
    except ValueError as exc:
        raise ProtocolError("not JSON") from exc
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    event = message.get("event")
    if event == "connected":
        return Connected(_field(message, "protocol"), str(message.get("version", "")))
    stream_sid = _field(message, "streamSid")
    if event == "start":
        start = _field(message, "start", dict)
        media_format = start.get("mediaFormat") or {}
        custom = start.get("customParameters") or {}
        if not isinstance(custom, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in custom.items()):
            raise ProtocolError("customParameters is not a map of strings")
        return Start(stream_sid, _field(start, "callSid"), _field(start, "accountSid"), dict(custom),
                     str(media_format.get("encoding", "audio/x-mulaw")), int(media_format.get("sampleRate", 8000)),
                     int(media_format.get("channels", 1)), _number(message, "sequenceNumber"))
    if event == "media":
        media = _field(message, "media", dict)
        try:
            audio = base64.b64decode(_field(media, "payload"), validate=True)
        except binascii.Error as exc:
            raise ProtocolError("payload is not base64") from exc
        return Media(stream_sid, audio, _number(media, "timestamp"), _number(media, "chunk"),
                     _number(message, "sequenceNumber"))
    if event == "dtmf":
        digit = _field(_field(message, "dtmf", dict), "digit")
        if digit not in DTMF_DIGITS:
            raise ProtocolError(f"dtmf digit {digit[:8]!r}")
        return Dtmf(stream_sid, digit, _number(message, "sequenceNumber"))
    if event == "mark":
        name = _field(_field(message, "mark", dict), "name")
        if len(name) > MAX_MARK_NAME:
            raise ProtocolError("mark name too long")
        return MarkEcho(stream_sid, name, _number(message, "sequenceNumber"))
    if event == "stop":
        stop = message.get("stop") or {}
        return Stop(stream_sid, str(stop.get("callSid", "")) if isinstance(stop, dict) else "",
                    _number(message, "sequenceNumber"))
    raise ProtocolError(f"unknown event {str(event)[:32]!r}")


def media(stream_sid: str, audio: bytes) -> str:
    """Audio for Twilio to play: raw μ-law bytes, no WAV header."""
    payload = base64.b64encode(audio).decode("ascii")
    return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def mark(stream_sid: str, name: str) -> str:
    if not name or len(name) > MAX_MARK_NAME:
        raise ValueError("a mark needs a name of at most 256 characters")
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear(stream_sid: str) -> str:
    return json.dumps({"event": "clear", "streamSid": stream_sid})


def frames(audio: bytes, size: int = FRAME_BYTES) -> list[bytes]:
    """μ-law audio in 20 ms pieces (the last one shorter), as a stream carries it."""
    return [audio[i:i + size] for i in range(0, len(audio), size)]


# --- Twilio's side: what the simulator, tests and benches send, and how they read ours --------

@dataclass(frozen=True)
class PlayMedia:
    audio: bytes


@dataclass(frozen=True)
class PlayMark:
    name: str


@dataclass(frozen=True)
class ClearAudio:
    pass


Outbound = PlayMedia | PlayMark | ClearAudio


def parse_outbound(frame: str | bytes) -> Outbound:
    """One frame the service sent, as Twilio reads it (anything else is an error to Twilio)."""
    if isinstance(frame, bytes):
        raise ProtocolError("binary frame (Twilio warning 31950)")
    message = json.loads(frame)
    event = message.get("event")
    if event == "media":
        return PlayMedia(base64.b64decode(message["media"]["payload"], validate=True))
    if event == "mark":
        return PlayMark(message["mark"]["name"])
    if event == "clear":
        return ClearAudio()
    raise ProtocolError(f"Twilio does not take {str(event)[:32]!r} (error 31951)")


def connected_message() -> str:
    return json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def start_message(stream_sid: str, call_sid: str, account_sid: str, parameters: dict[str, str],
                  sequence: int = 1) -> str:
    return json.dumps({"event": "start", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                       "start": {"streamSid": stream_sid, "accountSid": account_sid, "callSid": call_sid,
                                 "tracks": ["inbound"], "customParameters": parameters,
                                 "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                 "channels": 1}}})


def inbound_media(stream_sid: str, sequence: int, chunk: int, timestamp_ms: int, audio: bytes) -> str:
    return json.dumps({"event": "media", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                       "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(timestamp_ms),
                                 "payload": base64.b64encode(audio).decode("ascii")}})


def dtmf_message(stream_sid: str, sequence: int, digit: str) -> str:
    return json.dumps({"event": "dtmf", "streamSid": stream_sid, "sequenceNumber": str(sequence),
                       "dtmf": {"track": "inbound_track", "digit": digit}})


def mark_echo(stream_sid: str, sequence: int, name: str) -> str:
    return json.dumps({"event": "mark", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                       "mark": {"name": name}})


def stop_message(stream_sid: str, sequence: int, account_sid: str, call_sid: str) -> str:
    return json.dumps({"event": "stop", "sequenceNumber": str(sequence), "streamSid": stream_sid,
                       "stop": {"accountSid": account_sid, "callSid": call_sid}})
