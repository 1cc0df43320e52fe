"""The service rules the engine applies (hours, slots, limits), built once from Settings."""
from __future__ import annotations

from dataclasses import dataclass

from ivr.config import Settings
from ivr.scheduling.calendar import WorkCalendar
from ivr.scheduling.hours import OpeningHours


@dataclass(frozen=True)
class Policy:
    operator_hours: OpeningHours
    service_hours: OpeningHours
    calendar: WorkCalendar
    slot_minutes: int = 60
    slot_capacity: int = 4
    slot_lead_minutes: int = 30
    slot_offer_count: int = 3
    senior_age: int = 65
    id_checks_per_call: int = 3
    id_checks_per_day: int = 5
    first_timeout: int = 8
    later_timeout: int = 10
    queue_name: str = "operators"
    queue_max_wait_seconds: int = 300
    queue_announce_seconds: int = 30
    callback_from_number: str = ""
    max_silent_in_a_row: int = 8
    max_transitions_per_turn: int = 40

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        return cls(
            operator_hours=OpeningHours.parse(settings.operator_hours),
            service_hours=OpeningHours.parse(settings.service_hours),
            calendar=WorkCalendar.from_file(settings.calendar_file),
            slot_minutes=settings.slot_minutes,
            slot_capacity=settings.slot_capacity,
            slot_lead_minutes=settings.slot_lead_minutes,
            slot_offer_count=settings.slot_offer_count,
            senior_age=settings.senior_age,
            id_checks_per_call=settings.id_checks_per_call,
            id_checks_per_day=settings.id_checks_per_day,
            first_timeout=settings.first_timeout_seconds,
            later_timeout=settings.later_timeout_seconds,
            queue_name=settings.queue_name,
            queue_max_wait_seconds=settings.queue_max_wait_seconds,
            queue_announce_seconds=settings.queue_announce_seconds,
            callback_from_number=settings.callback_from_number,
        )
