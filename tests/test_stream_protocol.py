"""Media Streams messages as Twilio's documentation gives them, and the signed upgrade."""
from __future__ import annotations

import base64
import json

import pytest
from twilio.request_validator import RequestValidator

from ivr.streams import twilio_protocol as wire
from ivr.streams.upgrade import stream_url, upgrade_is_signed

SID = "MZ" + "1" * 32
CALL = "CA" + "2" * 32


def test_a_whole_stream_as_twilio_sends_it() -> None:
    audio = bytes(range(160))
    frames = [
        {"event": "connected", "protocol": "Call", "version": "1.0.0"},
        {"event": "start", "sequenceNumber": "1", "streamSid": SID,
         "start": {"streamSid": SID, "accountSid": "AC" + "3" * 32, "callSid": CALL, "tracks": ["inbound"],
                   "customParameters": {"token": "abc"},
                   "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}},
        {"event": "media", "sequenceNumber": "2", "streamSid": SID,
         "media": {"track": "inbound", "chunk": "1", "timestamp": "20",
                   "payload": base64.b64encode(audio).decode()}},
        {"event": "dtmf", "streamSid": SID, "sequenceNumber": "3", "dtmf": {"track": "inbound_track", "digit": "#"}},
        {"event": "mark", "sequenceNumber": "4", "streamSid": SID, "mark": {"name": "/prompts/tts/ab.txt"}},
        {"event": "stop", "sequenceNumber": "5", "streamSid": SID,
         "stop": {"accountSid": "AC" + "3" * 32, "callSid": CALL}},
    ]
    parsed = [wire.parse(json.dumps(frame)) for frame in frames]
    assert parsed[0] == wire.Connected("Call", "1.0.0")
    assert parsed[1] == wire.Start(SID, CALL, "AC" + "3" * 32, {"token": "abc"}, sequence=1)
    assert parsed[2] == wire.Media(SID, audio, 20, 1, sequence=2)
    assert parsed[3] == wire.Dtmf(SID, "#", sequence=3)
    assert parsed[4] == wire.MarkEcho(SID, "/prompts/tts/ab.txt", sequence=4)
    assert parsed[5] == wire.Stop(SID, CALL, sequence=5)


@pytest.mark.parametrize("frame", [
    b'{"event": "connected", "protocol": "Call"}',  # binary
    "not json", "[]", '{"event": "start"}', '{"event": "media", "streamSid": "MZ", "media": {"payload": "@@@"}}',
    '{"event": "dtmf", "streamSid": "MZ", "dtmf": {"digit": "A"}}',
    '{"event": "media", "streamSid": "MZ", "media": {"payload": "", "timestamp": "²"}}',
    '{"event": "surprise", "streamSid": "MZ"}', "x" * 70_000,
    '{"event": "mark", "streamSid": "MZ", "mark": {"name": "' + "n" * 300 + '"}}',
    '{"event": "start", "streamSid": "MZ", "start": {"callSid": "CA", "accountSid": "AC", '
    '"customParameters": {"token": 5}}}',
])
def test_frames_twilio_would_not_send_are_refused(frame) -> None:
    with pytest.raises(wire.ProtocolError):
        wire.parse(frame)


def test_what_the_service_sends() -> None:
    audio = bytes([0xFF]) * 400
    sent = json.loads(wire.media(SID, audio))
    assert sent == {"event": "media", "streamSid": SID, "media": {"payload": base64.b64encode(audio).decode()}}
    assert json.loads(wire.mark(SID, "/prompts/tts/ab.txt")) == {"event": "mark", "streamSid": SID,
                                                                 "mark": {"name": "/prompts/tts/ab.txt"}}
    assert json.loads(wire.clear(SID)) == {"event": "clear", "streamSid": SID}
    assert [len(f) for f in wire.frames(audio)] == [160, 160, 80]
    with pytest.raises(ValueError):
        wire.mark(SID, "")


def test_the_stream_url_follows_the_public_base_url() -> None:
    assert stream_url("https://hotline.example.org") == "wss://hotline.example.org/twilio/stream"
    assert stream_url("https://example.org/hotline/") == "wss://example.org/hotline/twilio/stream"
    assert stream_url("http://127.0.0.1:5000") == "ws://127.0.0.1:5000/twilio/stream"
    for bad in ("ftp://x", "https://x/?a=1"):
        with pytest.raises(ValueError):
            stream_url(bad)


def test_only_an_upgrade_signed_for_the_wss_url_is_accepted() -> None:
    token = "stream-test-token"
    url = stream_url("https://hotline.example.org")
    signature = RequestValidator(token).compute_signature(url, {})
    assert upgrade_is_signed(token, url, {"x-twilio-signature": signature})
    assert upgrade_is_signed(token, url, {"X-Twilio-Signature": signature})
    https_signed = RequestValidator(token).compute_signature("https://hotline.example.org/twilio/stream", {})
    assert not upgrade_is_signed(token, url, {"x-twilio-signature": https_signed})
    assert not upgrade_is_signed(token, url, {})
    assert not upgrade_is_signed("another-token", url, {"x-twilio-signature": signature})
