"""The recording kit: what a voice talent reads (the script) and how their files come back in
(one upload, or a whole folder or zip named by prompt id, with a report of what was taken).

Each file goes through the same intake as a take recorded in the browser (ivr.prompts.intake), and
is saved in its own transaction, so one bad file never costs the others.
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import PurePosixPath
from typing import Iterable, Iterator

from sqlalchemy.orm import Session, sessionmaker

from ivr.flow.checker import placeholders
from ivr.flow.loader import Flow
from ivr.prompts import catalog, library
from ivr.prompts.intake import ALLOWED_EXTENSIONS, MAX_UPLOAD_BYTES, UploadRefused, expected_seconds, take_in
from ivr.prompts.recorded import RecordingIndex

MAX_FILES = 1000  # a zip with more entries is refused whole (no prompt set is that large)
MAX_ZIP_TOTAL_BYTES = 1024 * 1024 * 1024  # uncompressed, all entries together


@dataclass(frozen=True)
class Saved:
    version: int
    seconds: float
    warnings: list[dict]


@dataclass(frozen=True)
class ImportRow:
    name: str
    prompt_id: str
    accepted: bool
    reason: str = ""
    version: int | None = None
    seconds: float | None = None
    warnings: tuple[dict, ...] = ()


@dataclass
class ImportReport:
    language: str
    rows: list[ImportRow] = field(default_factory=list)

    @property
    def accepted(self) -> list[ImportRow]:
        return [r for r in self.rows if r.accepted]

    @property
    def refused(self) -> list[ImportRow]:
        return [r for r in self.rows if not r.accepted]


@dataclass(frozen=True)
class ScriptLine:
    prompt_id: str
    file_name: str
    text: str
    mandarin: str
    note: str
    expected_seconds: float
    recorded: bool
    reviewed: bool
    kind: str  # "prompt" | piece kinds


def recordable_texts(flow: Flow, language: str) -> dict[str, str]:
    """Every id a take can be recorded for in `language`, with the words to say: the prompts
    (the language's words, Mandarin where it has none yet) and the pieces dynamic prompts need."""
    texts = flow.prompts.get(language, {})
    words = {pid: texts.get(pid) or cmn for pid, cmn in flow.prompts["cmn"].items() if catalog.spoken(pid)}
    for piece in catalog.pieces(flow, language):
        words.setdefault(piece.piece_id, piece.text)
    return words


def _other_texts(words: dict[str, str], prompt_id: str) -> dict[str, str]:
    return {pid: text for pid, text in words.items() if pid != prompt_id and text and not placeholders(text)}


def take_in_one(sessions: sessionmaker[Session], flow: Flow, language: str, prompt_id: str, data: bytes,
                filename: str, *, actor: str, now: datetime) -> Saved:
    """Convert, check and save one take; UploadRefused (nothing stored) if it cannot be used.

    The conversion (seconds, for a long file) runs before the transaction: a write transaction
    held meanwhile would make live calls wait for the database."""
    words = recordable_texts(flow, language)
    if prompt_id not in words:
        raise UploadRefused(f"没有编号为 {prompt_id} 的提示语。")
    intake = take_in(data, filename, text=words[prompt_id], other_texts=_other_texts(words, prompt_id))
    with sessions() as db, db.begin():
        row = library.save_take(db, language, prompt_id, intake, text=words[prompt_id], source_name=filename,
                                actor=actor, now=now)
        return Saved(row.version, row.seconds, list(row.warnings))


def _extension(name: str) -> str:
    return PurePosixPath(name).suffix.lower().lstrip(".")


def _skipped(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return name.endswith("/") or any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _unpacked(files: Iterable[tuple[str, bytes]], report: ImportReport) -> Iterator[tuple[str, bytes]]:
    """Files as given, zips opened (bounded: entry count, sizes as declared and as read)."""
    for name, data in files:
        if _extension(name) != "zip":
            yield name, data
            continue
        try:
            archive = zipfile.ZipFile(BytesIO(data))
            entries = [i for i in archive.infolist() if not _skipped(i.filename)]
        except (zipfile.BadZipFile, OSError, ValueError):
            report.rows.append(ImportRow(name, "", False, "不是完整的 zip 包，没有导入。"))
            continue
        if len(entries) > MAX_FILES or sum(i.file_size for i in entries) > MAX_ZIP_TOTAL_BYTES:
            report.rows.append(ImportRow(name, "", False, f"zip 包太大（最多 {MAX_FILES} 个文件），没有导入。"))
            continue
        for info in entries:
            shown = f"{name}/{info.filename}"
            if info.file_size > MAX_UPLOAD_BYTES:
                report.rows.append(ImportRow(shown, _prompt_id(info.filename), False,
                                             f"文件太大（超过 {MAX_UPLOAD_BYTES // (1024 * 1024)} MB）。"))
                continue
            try:
                with archive.open(info) as member:
                    body = member.read(MAX_UPLOAD_BYTES + 1)  # the declared size may lie
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
                report.rows.append(ImportRow(shown, _prompt_id(info.filename), False, "zip 包里这个文件坏了。"))
                continue
            yield shown, body


def _prompt_id(name: str) -> str:
    return PurePosixPath(name).stem


def bulk_import(sessions: sessionmaker[Session], flow: Flow, language: str, files: Iterable[tuple[str, bytes]], *,
                actor: str, now: datetime) -> ImportReport:
    """Files named `<prompt id>.<ext>` (alone, in folders, or in zips) become takes in use."""
    report = ImportReport(language)
    known = recordable_texts(flow, language)
    seen: set[str] = set()
    for name, data in _unpacked(files, report):
        prompt_id = _prompt_id(name)
        if _extension(name) not in ALLOWED_EXTENSIONS:
            report.rows.append(ImportRow(name, prompt_id, False,
                                         f"不是支持的录音格式（{'、'.join(sorted(ALLOWED_EXTENSIONS))}）。"))
        elif prompt_id not in known:
            report.rows.append(ImportRow(name, prompt_id, False, "文件名不是提示语编号（请用录音稿里的编号命名）。"))
        elif prompt_id in seen:
            report.rows.append(ImportRow(name, prompt_id, False, "这一批里已经有这个编号的录音，没有重复导入。"))
        else:
            try:
                saved = take_in_one(sessions, flow, language, prompt_id, data, name, actor=actor, now=now)
            except UploadRefused as exc:
                report.rows.append(ImportRow(name, prompt_id, False, str(exc)))
                continue
            seen.add(prompt_id)
            report.rows.append(ImportRow(name, prompt_id, True, version=saved.version, seconds=saved.seconds,
                                         warnings=tuple(saved.warnings)))
    return report


def _tone(prompt_id: str, text: str) -> str:
    """A short reading note for the voice talent."""
    if prompt_id.endswith("@speech"):
        return "可以说话回答的版本：引号里的词读清楚。"
    if prompt_id.startswith("sms_"):
        return "短信文字，不用录音。"
    if "按" in text and "请" in text:  # 请按1 / 请说“对”或者按1
        return "选项：每个选项之间停半秒，数字读清楚。"
    if text.endswith(("？", "吗？", "吗")):
        return "问句：语气上扬，放慢。"
    return "平稳、亲切，像当面讲话。"


def script_lines(flow: Flow, language: str, recordings: RecordingIndex) -> list[ScriptLine]:
    recorded = recordings.recorded(language)
    reviewed = set(flow.reviewed.get(language, []))
    texts = flow.prompts.get(language, {})
    lines = []
    for entry in catalog.entries(flow, language, recordings, None):
        if entry.prompt_id.startswith("sms_") or entry.dynamic:
            continue  # texts, and prompts said with pieces (their pieces follow)
        words = texts.get(entry.prompt_id) or entry.mandarin
        lines.append(ScriptLine(entry.prompt_id, f"{entry.prompt_id}.wav", texts.get(entry.prompt_id, ""),
                                entry.mandarin, _tone(entry.prompt_id, words), expected_seconds(words),
                                entry.prompt_id in recorded, entry.prompt_id in reviewed, "prompt"))
    for piece in catalog.pieces(flow, language):
        if piece.piece_id in flow.prompts["cmn"]:
            continue  # a whole prompt, listed above
        lines.append(ScriptLine(piece.piece_id, f"{piece.piece_id}.wav", piece.text, "", piece.note,
                                expected_seconds(piece.text), piece.piece_id in recorded, False, piece.kind))
    return lines
