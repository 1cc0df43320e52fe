"""The prompt studio's recordings in the database: every take kept, one in use per prompt.

The database is the one place every web, stream and worker process can see, so a take saved in the
console is heard on the next call everywhere (ivr.prompts.recorded follows the choice).  Each change
is written to the audit log in the same transaction.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ivr.audit import audit
from ivr.db.models import PromptRecording, PromptRecordingInUse
from ivr.timeutil import to_db


class TakeAudio(Protocol):
    """What the intake made of an upload (ivr.prompts.intake.Intake)."""

    wav: bytes
    seconds: float
    level_db: float
    source_format: str
    warnings: Sequence[object]


class NoSuchTake(LookupError):
    pass


@dataclass(frozen=True)
class Take:
    """A take as the studio lists it (no audio)."""

    id: int
    language: str
    prompt_id: str
    version: int
    seconds: float
    level_db: float
    source_format: str
    source_name: str
    warnings: tuple[dict, ...]
    text: str
    created_by: str
    created_at: datetime
    in_use: bool


@dataclass(frozen=True)
class InUse:
    recording_id: int
    seconds: float
    sha256: str


InUseMap = dict[tuple[str, str], InUse]


def _warning_dicts(warnings: Sequence[object]) -> list[dict]:
    return [{"code": getattr(w, "code", ""), "message": getattr(w, "message", str(w))} for w in warnings]


def save_take(db: Session, language: str, prompt_id: str, take: TakeAudio, *, text: str, source_name: str,
              actor: str, now: datetime) -> PromptRecording:
    """Store a new take and put it in use (the previous one stays, to be restored)."""
    last = db.execute(select(func.max(PromptRecording.version)).where(
        PromptRecording.language == language, PromptRecording.prompt_id == prompt_id)).scalar_one()
    row = PromptRecording(language=language, prompt_id=prompt_id, version=(last or 0) + 1, audio=take.wav,
                          sha256=hashlib.sha256(take.wav).hexdigest(), seconds=round(take.seconds, 3),
                          level_db=round(take.level_db, 2), source_format=take.source_format[:24],
                          source_name=source_name[:200], warnings=_warning_dicts(take.warnings), text=text,
                          created_by=actor, created_at=to_db(now))
    db.add(row)
    db.flush()
    _use(db, row, actor, now)
    audit(db, actor, "prompt_recorded", now, language=language, prompt=prompt_id, version=row.version,
          seconds=row.seconds, source=row.source_format,
          warnings=[w["code"] for w in row.warnings])
    return row


def restore(db: Session, language: str, prompt_id: str, version: int, *, actor: str, now: datetime) -> PromptRecording:
    row = db.execute(select(PromptRecording).where(
        PromptRecording.language == language, PromptRecording.prompt_id == prompt_id,
        PromptRecording.version == version)).scalar_one_or_none()
    if row is None:
        raise NoSuchTake(f"{language}/{prompt_id} v{version}")
    _use(db, row, actor, now)
    audit(db, actor, "prompt_restored", now, language=language, prompt=prompt_id, version=version)
    return row


def stop_using(db: Session, language: str, prompt_id: str, *, actor: str, now: datetime) -> bool:
    """Callers hear synthesised speech again; the takes stay."""
    gone = db.execute(delete(PromptRecordingInUse).where(
        PromptRecordingInUse.language == language, PromptRecordingInUse.prompt_id == prompt_id)).rowcount
    if gone:
        audit(db, actor, "prompt_recording_off", now, language=language, prompt=prompt_id)
    return bool(gone)


def _use(db: Session, row: PromptRecording, actor: str, now: datetime) -> None:
    chosen = db.get(PromptRecordingInUse, (row.language, row.prompt_id))
    if chosen is None:
        db.add(PromptRecordingInUse(language=row.language, prompt_id=row.prompt_id, recording_id=row.id,
                                    changed_by=actor, changed_at=to_db(now)))
    else:
        chosen.recording_id, chosen.changed_by, chosen.changed_at = row.id, actor, to_db(now)


def takes(db: Session, language: str, prompt_id: str) -> list[Take]:
    """Every take of one prompt, newest first."""
    chosen = db.get(PromptRecordingInUse, (language, prompt_id))
    rows = db.execute(select(PromptRecording.id, PromptRecording.version, PromptRecording.seconds,
                             PromptRecording.level_db, PromptRecording.source_format,
                             PromptRecording.source_name, PromptRecording.warnings, PromptRecording.text,
                             PromptRecording.created_by, PromptRecording.created_at).where(
        PromptRecording.language == language, PromptRecording.prompt_id == prompt_id)
        .order_by(PromptRecording.version.desc())).all()
    return [Take(r.id, language, prompt_id, r.version, r.seconds, r.level_db, r.source_format, r.source_name,
                 tuple(r.warnings or ()), r.text, r.created_by, r.created_at,
                 chosen is not None and chosen.recording_id == r.id) for r in rows]


def in_use(db: Session) -> InUseMap:
    """Which take each recorded prompt plays: (language, prompt id) → recording id and length."""
    rows = db.execute(select(PromptRecordingInUse.language, PromptRecordingInUse.prompt_id,
                             PromptRecording.id, PromptRecording.seconds, PromptRecording.sha256)
                      .join(PromptRecording, PromptRecording.id == PromptRecordingInUse.recording_id)).all()
    return {(r[0], r[1]): InUse(r[2], r[3], r[4]) for r in rows}


def choice_version(db: Session) -> tuple:
    """Changes whenever any choice changes: compared at each call start, so it must stay cheap."""
    return tuple(db.execute(select(func.count(), func.sum(PromptRecordingInUse.recording_id),
                                   func.max(PromptRecordingInUse.changed_at))).one())


def audio(db: Session, recording_id: int) -> bytes | None:
    return db.execute(select(PromptRecording.audio).where(PromptRecording.id == recording_id)).scalar_one_or_none()


def take_audio(db: Session, language: str, prompt_id: str, version: int) -> bytes | None:
    return db.execute(select(PromptRecording.audio).where(
        PromptRecording.language == language, PromptRecording.prompt_id == prompt_id,
        PromptRecording.version == version)).scalar_one_or_none()
