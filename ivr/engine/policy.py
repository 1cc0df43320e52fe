"""The service rules the engine applies (hours, slots, limits), built once from Settings."""
from __future__ import annotations

from dataclasses import dataclass, fields

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
    first_timeout_seconds: int = 8
    later_timeout_seconds: int = 10
    queue_name: str = "operators"
    queue_max_wait_seconds: int = 300
    queue_announce_seconds: int = 30
    callback_from_number: str = ""
    speech_enabled: bool = False  # a recogniser is installed: prompts mention speaking
    max_silent_in_a_row: int = 8
    max_transitions_per_turn: int = 40

    @classmethod
    def from_settings(cls, settings: Settings) -> "Policy":
        """Parsed hours and calendar, plus every rule that has a setting of the same name."""
        shared = {f.name for f in fields(cls)} & {f.name for f in fields(Settings)}
        shared -= {"operator_hours", "service_hours"}
        return cls(operator_hours=OpeningHours.parse(settings.operator_hours),
                   service_hours=OpeningHours.parse(settings.service_hours),
                   calendar=WorkCalendar.from_file(settings.calendar_file),
                   **{name: getattr(settings, name) for name in shared})
