"""Tables.  Schema changes go through Alembic migrations in ivr/db/migrations."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Matter(Base):
    """One government matter (办件) of a resident, as imported from the service's CSV export."""

    __tablename__ = "matters"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_no: Mapped[str] = mapped_column(String(40), unique=True)
    service: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    id_salt: Mapped[str] = mapped_column(String(32))
    id_hash: Mapped[str] = mapped_column(String(64))
    birth_year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    imported_at: Mapped[datetime] = mapped_column(DateTime)


class CallerPreference(Base):
    """What we remember about a calling number between calls (only the language for now)."""

    __tablename__ = "caller_preferences"
    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class CallSession(Base):
    """Dialog state of one call, keyed by CallSid so any worker can serve any turn."""

    __tablename__ = "call_sessions"
    call_sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller: Mapped[str] = mapped_column(String(20))
    state: Mapped[dict] = mapped_column(JSON)
    turn: Mapped[int] = mapped_column(Integer, default=0)
    last_response: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default="in-progress")
    started_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    duration_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)


class IdCheckFailure(Base):
    """A wrong identity check, kept to limit guessing per number per day."""

    __tablename__ = "id_check_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20))
    call_sid: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (Index("ix_id_check_failures_phone_at", "phone", "at"),)


class Booking(Base):
    """A callback booked by a caller; at most one open booking per caller number."""

    __tablename__ = "bookings"
    id: Mapped[int] = mapped_column(primary_key=True)
    caller: Mapped[str] = mapped_column(String(20), index=True)
    callback_number: Mapped[str] = mapped_column(String(20))
    slot_start: Mapped[datetime] = mapped_column(DateTime, index=True)
    slot_end: Mapped[datetime] = mapped_column(DateTime)
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="open")
    call_sid: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # The operators' side: status open → done | followup (or cancelled by the caller).
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    outcome_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Handoff(Base):
    """What an operator needs to know about an escalated call (no ID digits, ever)."""

    __tablename__ = "handoffs"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    caller: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(8))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(40))
    story: Mapped[list] = mapped_column(JSON)
    # waiting → taken → done; or left / hung_up / after_hours (the caller was offered a callback)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    taken_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Operator(Base):
    """A person who takes escalated calls and callbacks; supervisors also manage the service."""

    __tablename__ = "operators"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class LoginThrottle(Base):
    """A console log-in counter for one hashed account name or one source address
    (see ivr/console/throttle.py); rows for names nobody has are kept exactly like real ones."""

    __tablename__ = "login_throttles"
    key: Mapped[str] = mapped_column(String(72), primary_key=True)  # "account:" or "source:" + sha256
    failures: Mapped[int] = mapped_column(Integer, default=0)
    wait_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    refused: Mapped[int] = mapped_column(Integer, default=0)  # refused during the current wait
    last_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # last attempt let through


class AuditEntry(Base):
    """Who did what in the console, for supervisors (never ID digits, numbers masked)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict] = mapped_column(JSON)


class OutboxItem(Base):
    """Something to send through Twilio; committed with the turn, sent later by the worker."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)


class CallbackAttempt(Base):
    """One outbound call for a booking: placed by an operator ("call now") or by the worker."""

    __tablename__ = "callback_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(Integer, index=True)
    operator: Mapped[str] = mapped_column(String(64))  # "auto" when the worker retries
    mode: Mapped[str] = mapped_column(String(20))  # operator_first | caller_first | caller_to_queue
    call_sid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(20))  # placing, then Twilio's CallStatus; error
    dial_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ServiceRule(Base):
    """A rule supervisors changed in the console (hours, capacity, days off); overrides Settings."""

    __tablename__ = "service_rules"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[object] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class PromptRecording(Base):
    """One take of a prompt (or a piece of one) in one language, as telephone audio.

    Takes are never overwritten: a new take is a new row, so any earlier one can be restored."""

    __tablename__ = "prompt_recordings"
    id: Mapped[int] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    prompt_id: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, … per language and prompt
    audio: Mapped[bytes] = mapped_column(LargeBinary)  # 8 kHz mono μ-law WAV file
    sha256: Mapped[str] = mapped_column(String(64))
    seconds: Mapped[float] = mapped_column(Float)
    level_db: Mapped[float] = mapped_column(Float)
    source_format: Mapped[str] = mapped_column(String(24))
    source_name: Mapped[str] = mapped_column(String(200))
    warnings: Mapped[list] = mapped_column(JSON)  # [{"code": …, "message": …}]
    text: Mapped[str] = mapped_column(Text)  # the words the take was recorded for
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("language", "prompt_id", "version", name="uq_prompt_recording_version"),)


class PromptRecordingInUse(Base):
    """Which take callers hear for a prompt; no row: the prompt is synthesised."""

    __tablename__ = "prompt_recordings_in_use"
    language: Mapped[str] = mapped_column(String(8), primary_key=True)
    prompt_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("prompt_recordings.id"))
    changed_by: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(DateTime)


class MatterChange(Base):
    """A status change an import brought that the rules say to tell the person about
    (flows/notifications.yaml); `notification_id` is set once a notification carries it."""

    __tablename__ = "matter_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("matters.id"), index=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    old_status: Mapped[str] = mapped_column(String(40))
    new_status: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(DateTime)  # when the import saw it (UTC)
    notification_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    told: Mapped[bool] = mapped_column(Boolean, default=False)  # heard after an identity check


class Notification(Base):
    """One notification to one number: the calls that try to reach it, then an SMS.

    status: queued → calling → reached (answered) → heard (identity checked, matters read);
    or not_reached (tries used up; an SMS for a mobile), opted_out (pressed 3), cancelled."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), index=True)
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    call_sid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    last_result: Mapped[str | None] = mapped_column(String(40), nullable=True)
    sms_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class NotificationOptOut(Base):
    """A number that asked not to be called with news (by pressing 3, or through an operator)."""

    __tablename__ = "notification_opt_outs"
    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    by: Mapped[str] = mapped_column(String(64))  # "caller" or an operator's username
