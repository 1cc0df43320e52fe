"""The shape of a flow file.  Kept small so that non-programmers can read and edit flows."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SPECIAL_TARGETS = {"@repeat", "@same", "@nomatch", "@end"}
# What may interrupt a question's prompt in media-stream mode (ivr/media): voice and keys, keys
# only, or nothing until the prompt has played (legal notices). Webhook mode is always "keys".
BARGE_IN_POLICIES = ("any", "keys", "none")


class Transition(BaseModel):
    """Where to go next.  YAML may write just the step name."""

    model_config = ConfigDict(extra="forbid")
    goto: str
    reason: str | None = None  # why the caller goes to a person; stored in the handoff record
    do: str | None = None  # an action run on the way (its result is not branched on)
    arg: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"goto": value} if isinstance(value, str) else value


class Handler(BaseModel):
    """A noinput/nomatch reply for the failure count `count` at a step."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=1)
    prompt: list[str] = []
    goto: str | None = None
    reason: str | None = None

    @field_validator("prompt", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Collect(BaseModel):
    """Multi-key entry such as an ID check or a phone number, ended by `finish` or by length."""

    model_config = ConfigDict(extra="forbid")
    min: int = Field(ge=1)
    max: int = Field(ge=1)
    finish: str = "#"
    star_means: str | None = None  # e.g. "X": the last ID character keyed as *
    sensitive: bool = False  # never stored nor logged: only its length is kept


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")
    say: list[str] = []
    prompt: list[str] = []
    reprompt: list[str] = []
    example: list[str] = []
    grammar: str | None = None
    intents: dict[str, str] = {}  # what a spoken intent stands for: intent name -> key
    keys: dict[str, Transition] = {}
    collect: Collect | None = None
    do: str | None = None
    arg: str | None = None
    on: dict[str, Transition] = {}
    next: Transition | None = None
    enqueue: bool = False
    hangup: bool = False
    operator: bool = True
    noinput: list[Handler] | None = None
    nomatch: list[Handler] | None = None
    timeout: int | None = None
    barge_in: str = "any"  # one of BARGE_IN_POLICIES; checked by the flow checker, not here

    @field_validator("say", "prompt", "reprompt", "example", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("keys", mode="before")
    @classmethod
    def _key_names(cls, value: Any) -> Any:
        return {str(k): v for k, v in (value or {}).items()}

    @property
    def takes_input(self) -> bool:
        return bool(self.keys) or self.collect is not None


class FlowDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    noinput: list[Handler]
    nomatch: list[Handler]
    global_keys: dict[str, Transition] = {}

    @field_validator("global_keys", mode="before")
    @classmethod
    def _key_names(cls, value: Any) -> Any:
        return {str(k): v for k, v in (value or {}).items()}


class FlowFile(BaseModel):
    """One flows/*.yaml file; exactly one file names the `start` step and the defaults."""

    model_config = ConfigDict(extra="forbid")
    description: str = ""
    start: str | None = None
    person_step: str | None = None
    goodbye_step: str | None = None  # where a caller who says goodbye (再会) is taken
    defaults: FlowDefaults | None = None
    steps: dict[str, Step]
