"""Per-call dialog state, stored as JSON in the call_sessions row between turns."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_STORY = 200


@dataclass
class CallState:
    call_sid: str
    caller: str
    called: str = ""
    language: str = "cmn"
    language_known: bool = False
    step: str = ""
    step_failures: int = 0  # noinput + nomatch at the current step; reset on entering a step
    silent_in_a_row: int = 0
    id_failures: int = 0
    verified: bool = False
    slow: bool = False  # the caller asked for slower prompts
    vars: dict[str, Any] = field(default_factory=dict)
    story: list[dict[str, Any]] = field(default_factory=list)
    handoff_reason: str | None = None
    ended: bool = False

    def to_json(self) -> dict[str, Any]:
        """A new top-level dict sharing vars and story: cheap, so the caller must mark the
        stored value as changed (the nested objects may be the very ones it loaded)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "CallState":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def note(self, kind: str, **details: Any) -> None:
        """Append to the call story shown to operators; callers of this mask ID digits first."""
        if len(self.story) < MAX_STORY:
            self.story.append({"step": self.step, "event": kind, **details})
