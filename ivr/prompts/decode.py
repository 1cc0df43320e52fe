"""Decode an uploaded recording (any format a phone, recorder or browser makes) to 8 kHz mono
16-bit PCM with FFmpeg (PyAV), refusing what is not the audio its name says.

An upload is untrusted: the content must be of the container family its extension names
(sniffed from the magic bytes, then confirmed by FFmpeg's own probe), decoding runs on the
bytes in memory (no temporary files) and stops as soon as it has more audio than a prompt may
last, or after a few seconds of work, so a hostile file cannot make the service decode hours.
Clipping is counted on the source samples, before resampling smooths the flattened peaks.
"""

from __future__ import annotations

import io
import re
import sys
import time
from dataclasses import dataclass

import av
import av.error

from .audio import TELEPHONE_RATE

__all__ = ["CONTAINERS", "Decoded", "UploadRefused", "decode", "sniff"]

MIN_SECONDS = 0.3  # less than this decoded is a broken file, not a prompt
DEADLINE_SECONDS = 10.0  # wall-clock time decoding may take
MAX_BAD_PACKETS = 50  # packets the decoder rejects before the file counts as corrupt
# Near full scale: the high byte of a 16-bit sample is 0x73…0x7F or 0x80…0x8C (|x| ≥ 29440,
# −0.9 dBFS); three such samples in a row are a flattened peak. Not only the exact maximum:
# a lossy codec turns a flat top into ripple around it (a +20 dB hard clip, 13…21 % of the
# samples of espeak-ng speech, still counts 11…16 % after MP3 or AAC).
_CLIPPED_RUN = re.compile(rb"[\x73-\x8c]{3,}")

# Extension → container families its content may be (FFmpeg demuxer names).
CONTAINERS: dict[str, frozenset[str]] = {
    "wav": frozenset({"wav"}),
    "mp3": frozenset({"mp3"}),
    "m4a": frozenset({"mp4"}),
    "aac": frozenset({"aac", "mp4"}),  # raw ADTS, or an MP4 file some apps name .aac
    "ogg": frozenset({"ogg"}),
    "opus": frozenset({"ogg"}),
    "webm": frozenset({"matroska"}),  # Chromium's MediaRecorder: audio/webm;codecs=opus
    "flac": frozenset({"flac"}),
}
# FFmpeg demuxer name (its first alias) → our container family.
_FAMILY_OF_DEMUXER = {"wav": "wav", "mp3": "mp3", "mov": "mp4", "aac": "aac", "ogg": "ogg",
                      "matroska": "matroska", "flac": "flac"}
_LABEL = {"wav": "wav", "mp3": "mp3", "mp4": "m4a", "aac": "aac", "ogg": "ogg",
          "matroska": "webm", "flac": "flac"}
_FAMILY_NAMES = {"wav": "WAV", "mp3": "MP3", "mp4": "M4A/MP4", "aac": "AAC", "ogg": "OGG",
                 "matroska": "WebM", "flac": "FLAC"}

# What non-audio files people upload by mistake look like, for a message that says so.
_NOT_AUDIO = [
    (b"\x89PNG\r\n\x1a\n", "PNG 图片"), (b"\xff\xd8\xff", "JPEG 图片"), (b"GIF8", "GIF 图片"),
    (b"%PDF", "PDF 文档"), (b"PK\x03\x04", "压缩包或 Office 文档"), (b"MZ", "Windows 程序"),
    (b"\x7fELF", "程序文件"), (b"\xd0\xcf\x11\xe0", "Office 文档"),
]


class UploadRefused(ValueError):
    """The upload cannot become a prompt; str() tells the supervisor why, in Chinese."""


@dataclass(frozen=True)
class Decoded:
    pcm: bytes  # 8 kHz mono s16, native byte order
    source_format: str  # "mp3", "webm/opus", "wav/pcm_s16le", …
    source_rate: int
    source_channels: int
    clipped_fraction: float  # source samples in flattened runs at full scale


def sniff(data: bytes) -> str:
    """The container family the magic bytes say ("wav", "mp4", …), or a Chinese description
    of a non-audio file prefixed with "!", or "" when nothing is recognised."""
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RIFF":
        return "!" + {b"AVI ": "AVI 视频", b"WEBP": "WebP 图片"}.get(head[8:12], "RIFF 文件")
    if head[:3] == b"ID3":
        inner = sniff(data[_id3_end(data):])  # usually MP3 frames; FFmpeg skips the tag itself
        return inner if inner in ("aac", "flac") else "mp3"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] == b"fLaC":
        return "flac"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "aac" if (head[1] >> 1) & 3 == 0 else "mp3"  # layer bits 00: ADTS
    for magic, what in _NOT_AUDIO:
        if head.startswith(magic):
            return "!" + what
    if _looks_like_text(data[:4096]):
        return "!文本文件"
    return ""


def _id3_end(data: bytes) -> int:
    """Where the ID3v2 tag at the start ends (its size is 4 × 7 bits, plus a footer flag)."""
    size = 0
    for byte in data[6:10]:
        size = size << 7 | byte & 0x7F
    return 10 + size + (10 if len(data) > 5 and data[5] & 0x10 else 0)


def _looks_like_text(sample: bytes) -> bool:
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the end
            return False
        text = sample[:exc.start].decode("utf-8")
    return bool(text) and all(c.isprintable() or c in "\r\n\t" for c in text)


def _check_family(data: bytes, extension: str) -> str:
    """The demuxer to use (FFmpeg is never left to guess from a few bytes); refuses content
    that is not what the extension says."""
    found = sniff(data)
    wanted = CONTAINERS[extension]
    if found.startswith("!"):
        what = found[1:] if not found[1].isascii() else " " + found[1:]
        raise UploadRefused(f"这个文件名是 .{extension}，内容却是{what}，不是录音。"
                            "请上传录好的声音文件。")
    if found in wanted:
        return found if found != "mp4" else "mov"
    if found:
        raise UploadRefused(f"这个文件名是 .{extension}，内容却是 {_FAMILY_NAMES[found]} 格式。"
                            f"请把文件名改成正确的扩展名再上传，或重新导出为 .{extension}。")
    raise UploadRefused(f"这个文件名是 .{extension}，但内容不是能识别的录音格式，"
                        "可能已损坏。请重新导出或重新录一遍。")


def _family_of(container: av.container.InputContainer) -> str:
    return _FAMILY_OF_DEMUXER.get(container.format.name.split(",")[0], "")


def _clipped(frame: av.AudioFrame) -> tuple[int, int]:
    """(samples in clipped runs, samples) of one s16 packed frame, counted per channel."""
    channels = len(frame.layout.channels)
    raw = bytes(frame.planes[0])[:frame.samples * channels * 2]
    high = 1 if sys.byteorder == "little" else 0
    clipped = 0
    for channel in range(channels):
        his = raw[2 * channel + high::2 * channels]
        clipped += sum(m.end() - m.start() for m in _CLIPPED_RUN.finditer(his))
    return clipped, frame.samples * channels


class _Pipeline:
    """Source frames → s16 at the source rate (clipping is counted there) → 8 kHz mono s16.

    A new pair of resamplers is made whenever the source changes rate or layout mid-stream
    (FFmpeg's filter graph is fixed to its first frame's parameters)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.clipped = 0
        self.samples = 0
        self.seconds = 0.0
        self._key: tuple[str, str, int] | None = None
        self._to_s16: av.AudioResampler | None = None
        self._to_phone: av.AudioResampler | None = None

    def push(self, frame: av.AudioFrame | None) -> None:
        if frame is not None:
            if frame.sample_rate <= 0 or frame.samples <= 0:
                return
            key = (frame.format.name, frame.layout.name, frame.sample_rate)
            if key != self._key:
                self._flush()
                self._key = key
                self._to_s16 = av.AudioResampler(format="s16")
                self._to_phone = av.AudioResampler(format="s16", layout="mono",
                                                   rate=TELEPHONE_RATE)
            self.seconds += frame.samples / frame.sample_rate
        if self._to_s16 is None or self._to_phone is None:
            return
        for s16 in self._to_s16.resample(frame):
            clipped, samples = _clipped(s16)
            self.clipped += clipped
            self.samples += samples
            self._phone(s16)
        if frame is None:
            self._phone(None)

    def _phone(self, frame: av.AudioFrame | None) -> None:
        assert self._to_phone is not None
        for mono in self._to_phone.resample(frame):
            self.out += bytes(mono.planes[0])[:mono.samples * 2]

    def _flush(self) -> None:
        if self._to_s16 is not None:
            self.push(None)


def _too_long(max_seconds: float, container: av.container.InputContainer) -> UploadRefused:
    stated = (container.duration or 0) / av.time_base
    length = f"长约 {_minutes(stated)}，" if stated > max_seconds else f"超过 {max_seconds:g} 秒，"
    return UploadRefused(f"录音太长：{length}一段提示最长 {max_seconds:g} 秒。"
                         "请只录这一段提示的话。")


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} 分 {rest} 秒" if minutes else f"{rest} 秒"


def decode(data: bytes, extension: str, *, max_seconds: float) -> Decoded:
    """Decode data (named .extension) to 8 kHz mono s16, or raise UploadRefused."""
    demuxer = _check_family(data, extension)
    try:
        container = av.open(io.BytesIO(data), mode="r", format=demuxer, metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError) as exc:
        raise UploadRefused("这个文件读不出来：可能不完整或已损坏。请重新导出或重新录一遍。") from exc
    with container:
        family = _family_of(container)
        if family not in CONTAINERS[extension]:
            raise UploadRefused(f"这个文件名是 .{extension}，内容却是 "
                                f"{_FAMILY_NAMES.get(family, container.format.name)} 格式。"
                                f"请把文件名改成正确的扩展名再上传。")
        if not container.streams.audio:
            raise UploadRefused("这个文件里没有声音，只有画面或其他数据。请上传录音文件。")
        stream = container.streams.audio[0]
        codec = stream.codec_context.codec.canonical_name
        pipeline = _Pipeline()
        try:
            _run(container, stream, pipeline, max_seconds)
        except UploadRefused:
            raise
        except (av.error.FFmpegError, ValueError) as exc:  # e.g. parameters no filter takes
            raise UploadRefused("这个文件读不出来：可能已损坏，或者录音参数不常见。"
                                "请重新导出（例如存成 MP3 或 WAV）再上传。") from exc
        label = _LABEL[family]
        source_format = label if codec == label else f"{label}/{codec}"
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
    if pipeline.seconds < MIN_SECONDS or len(pipeline.out) < MIN_SECONDS * TELEPHONE_RATE * 2:
        raise UploadRefused("这个文件里几乎没有能播放的声音：可能不完整或已损坏。"
                            "请重新导出或重新录一遍。")
    return Decoded(bytes(pipeline.out), source_format, rate, channels,
                   pipeline.clipped / max(1, pipeline.samples))


def _run(container: av.container.InputContainer, stream: av.AudioStream, pipeline: _Pipeline,
         max_seconds: float) -> None:
    """Demux and decode until the end, a cut-off end, too much audio or the deadline."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    bad = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError:
            break  # a cut-off or damaged end: keep what was decoded before it
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            bad += 1
            if bad > MAX_BAD_PACKETS:
                break
            continue
        for frame in frames:
            pipeline.push(frame)
        if pipeline.seconds > max_seconds:
            raise _too_long(max_seconds, container)
        if time.monotonic() > deadline:
            raise UploadRefused("这个文件处理得太久，没有完成。请换一种格式（例如 MP3 或 WAV）"
                                "重新导出后再上传。")
    pipeline.push(None)
