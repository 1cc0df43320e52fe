"""What the engine needs from the outside world, as protocols (implemented in ivr.db)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class MatterView:
    case_no: str
    service: str
    status: str
    updated_at: datetime  # aware, Asia/Shanghai
    detail: str | None


@dataclass(frozen=True)
class CallerProfile:
    registered: bool
    birth_year: int | None


@dataclass(frozen=True)
class BookingView:
    callback_number: str
    slot_start: datetime  # aware, Asia/Shanghai
    slot_end: datetime


class Repository(Protocol):
    def preferred_language(self, phone: str) -> str | None: ...
    def remember_language(self, phone: str, language: str, now: datetime) -> None: ...
    def caller_profile(self, phone: str) -> CallerProfile: ...
    def phone_of_case(self, case_no: str) -> str | None: ...
    def matters_verified(self, phone: str, id_last4: str) -> list[MatterView]: ...
    def id_failures_since(self, phone: str, since: datetime) -> int: ...
    def record_id_failure(self, phone: str, call_sid: str, now: datetime) -> None: ...
    def open_booking(self, caller: str, now: datetime) -> BookingView | None: ...
    def booked_counts(self, start: datetime, end: datetime) -> dict[str, int]: ...
    def book(self, caller: str, callback_number: str, slot_start: datetime, slot_end: datetime,
             capacity: int, language: str, call_sid: str, now: datetime) -> BookingView | None: ...
    def cancel_booking(self, caller: str, now: datetime) -> bool: ...
    def record_handoff(self, call_sid: str, caller: str, language: str, verified: bool,
                       reason: str, story: list[dict], waiting: bool, now: datetime) -> None: ...
    def end_handoff(self, call_sid: str, status: str, now: datetime) -> None: ...
    def queue_sms(self, to: str, body: str, dedupe_key: str, now: datetime) -> None: ...
