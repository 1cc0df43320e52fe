"""Runs a Flow: takes the call state and one event, returns the Turn to play.

VoiceXML's model, kept small: a step plays its prompt and waits for keys; noinput and nomatch
handlers escalate by a per-step failure counter; global keys (0 person, * repeat, 9 language)
work at every step that asks something.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime

from ivr.engine import events as ev
from ivr.engine.actions import Ask, Enqueue, Hangup, Hold, LeaveQueue, Nothing, Pause, Prompt, Speech, Turn
from ivr.engine.builtin_actions import ACTIONS, ActionContext
from ivr.engine.spoken import Speaker, set_spoken, spoken_values
from ivr.engine.policy import Policy
from ivr.engine.ports import Repository
from ivr.engine.state import CallState
from ivr.flow.checker import placeholders
from ivr.flow.loader import Flow
from ivr.flow.schema import Handler, Step, Transition
from ivr.privacy import mask_digits

log = logging.getLogger(__name__)

KEY_PAUSE_SECONDS = 0.5
VALID_KEYS = set("0123456789*#")
MAX_KEYS = 32
COMMON_INTENTS = {"operator", "repeat", "help", "goodbye", "slower", "language_cmn", "language_wuu"}


class EngineError(RuntimeError):
    """A flow led somewhere the engine cannot follow (e.g. a loop without input)."""


class _Vars(defaultdict):
    def __missing__(self, key: str) -> str:
        return ""


class Engine:
    def __init__(self, flow: Flow, policy: Policy) -> None:
        self.flow = flow
        self.policy = policy

    # --- prompts ------------------------------------------------------------------------------

    def words(self, prompt_id: str, values: Mapping[str, str] | None = None, language: str = "cmn") -> str:
        """A prompt's words in `language` (Mandarin where it has none), filled in with `values`."""
        texts = self.flow.prompts.get(language, {})
        template = texts.get(prompt_id) or self.flow.prompts["cmn"].get(prompt_id, "")
        return template.format_map(_Vars(str, values or {}))

    def variant(self, state: CallState, prompt_id: str) -> str:
        """Wording for the situation: after speech we did not understand ("@spoken"), or when
        callers can answer by voice ("@speech"); otherwise the keys-only words."""
        cmn = self.flow.prompts["cmn"]
        suffixes = (["@spoken"] if state.vars.get("last_input") == "speech" else []) + \
            (["@speech"] if self.policy.speech_enabled else [])
        for suffix in suffixes:
            if prompt_id + suffix in cmn:
                return prompt_id + suffix
        return prompt_id

    def prompt(self, state: CallState, prompt_id: str) -> Prompt:
        """The caller's words are filled with the spoken values of the caller's language (Wu
        numbers and dates for a Wu caller), the Mandarin fallback with the Mandarin values."""
        prompt_id = self.variant(state, prompt_id)
        cmn = self.flow.prompts["cmn"].get(prompt_id, "")
        text = self.words(prompt_id, spoken_values(state.vars, state.language), state.language)
        fallback = cmn.format_map(_Vars(str, spoken_values(state.vars, "cmn")))
        return Prompt(prompt_id=prompt_id, language=state.language, text=text,
                      fallback_text=fallback, static=not placeholders(cmn), slow=state.slow)

    # --- entry point --------------------------------------------------------------------------

    def accepts(self, state: CallState, event: ev.Event) -> bool:
        """Whether the current step waits for this kind of event: the caller's answer only at a
        question, the queue's events only in the queue.  Anything else is a late or forged
        request, which a transport answers as it answered before."""
        step = self.flow.steps.get(state.step)
        if step is None or state.ended or isinstance(event, (ev.CallStarted, ev.CallEnded)):
            return True  # an unknown step is reported by handle(); an ended call ignores all
        if isinstance(event, (ev.QueueWaiting, ev.QueueKeyPressed, ev.QueueEnded)):
            return step.enqueue
        return step.takes_input

    def handle(self, state: CallState, event: ev.Event, repo: Repository, now: datetime,
               policy: Policy | None = None) -> Turn:
        """`policy` carries the rules supervisors changed since start-up (hours, capacity, days off)."""
        run = _Run(self, state, repo, now, policy or self.policy)
        if isinstance(event, ev.CallStarted):
            state.caller, state.called = event.caller, event.called
            state.note("call_started")
            run.enter(self.flow.start)
        elif state.ended:
            return Turn(wait=Nothing(), step=state.step)
        elif isinstance(event, ev.CallEnded):
            state.ended = True
            state.note("call_ended", status=event.status)
            return Turn(wait=Nothing(), step=state.step)
        elif isinstance(event, ev.KeysPressed):
            run.entered(event)
        elif isinstance(event, ev.NoInput):
            run.silence()
        elif isinstance(event, ev.SpeechHeard):
            run.speech(event)
        elif isinstance(event, ev.QueueWaiting):
            run.queue_wait(event)
        elif isinstance(event, ev.QueueKeyPressed):
            run.queue_key(event.digits)
        elif isinstance(event, ev.QueueEnded):
            run.queue_ended(event.result)
        else:  # pragma: no cover - exhaustive over Event
            raise EngineError(f"unknown event {event!r}")
        return Turn(speech=run.speech_out, wait=run.wait, step=state.step)

    def jump(self, state: CallState, step_id: str, repo: Repository, now: datetime,
             policy: Policy | None = None) -> Turn:
        """Enter a step from outside the flow (recovery after a system error, back from a person)."""
        run = _Run(self, state, repo, now, policy or self.policy)
        run.enter(step_id)
        return Turn(speech=run.speech_out, wait=run.wait, step=state.step)


class _Run:
    """The work for one event: follows transitions until the call waits for the caller."""

    def __init__(self, engine: Engine, state: CallState, repo: Repository, now: datetime,
                 policy: Policy) -> None:
        self.engine, self.flow, self.policy = engine, engine.flow, policy
        self.state, self.repo, self.now = state, repo, now
        self.speech_out: list[Speech] = []
        self.wait: Ask | Enqueue | Hold | LeaveQueue | Hangup | Nothing = Nothing()
        self.transitions = 0

    @property
    def step(self) -> Step:
        return self.flow.steps[self.state.step]

    def say(self, prompt_ids: list[str], step: Step | None = None) -> None:
        step = step or self.step
        for prompt_id in prompt_ids:
            if prompt_id == "@reprompt":
                self.say(step.reprompt, step)
            elif prompt_id == "@example":
                self.say(step.example or step.reprompt, step)
            else:
                self.speech_out.append(self.engine.prompt(self.state, prompt_id))

    def spoken(self, name: str, build: Callable[[Speaker], str]) -> None:
        """A value the caller hears, in every spoken language (see builtin_actions.set_spoken)."""
        set_spoken(self.state.vars, name, build, self.engine.words)

    # --- moving between steps -------------------------------------------------------------------

    def run_action(self, name: str, arg: str | None, value: str | None = None) -> str:
        ctx = ActionContext(state=self.state, repo=self.repo, policy=self.policy, now=self.now,
                            words=lambda pid, **v: self.engine.words(pid, v), value=value, arg=arg,
                            prompt_words=self.engine.words)
        result = ACTIONS[name].run(ctx)
        self.state.note("result", action=name, result=result)
        return result

    def follow(self, transition: Transition) -> None:
        if transition.reason:
            self.state.handoff_reason = transition.reason
        if transition.do:
            self.run_action(transition.do, transition.arg)
        target = transition.goto
        if target == "@repeat":
            # The question again; from the second * at this question its short form (reprompt):
            # the caller has heard the whole question twice by then.
            repeats = self.state.vars.get("repeats", 0)
            self.state.vars["repeats"] = repeats + 1
            self.ask(prompts=self.step.reprompt if repeats and self.step.reprompt else None, repeat=True)
        elif target == "@same":
            self.enter(self.state.step)
        elif target == "@nomatch":
            self.failure("nomatch")
        elif target == "@end":
            self.wait = Hangup()
        else:
            self.enter(target)

    def enter(self, step_id: str) -> None:
        self.transitions += 1
        if self.transitions > self.policy.max_transitions_per_turn:
            raise EngineError(f"more than {self.policy.max_transitions_per_turn} steps without input "
                              f"(last: {step_id})")
        if step_id not in self.flow.steps:
            raise EngineError(f"unknown step {step_id!r}")
        self.state.step = step_id
        self.state.step_failures = 0
        self.state.vars.pop("pending", None)
        self.state.vars.pop("repeats", None)
        self.state.note("step")
        step = self.step
        self.say(step.say)
        if step.takes_input:
            self.ask()
        elif step.do:
            result = self.run_action(step.do, step.arg)
            self.follow(step.on[result])
        elif step.enqueue:
            self.state.vars.pop("queue_leave", None)
            self.wait = Enqueue(self.policy.queue_name)
        elif step.next:
            self.follow(step.next)
        else:
            self.wait = Hangup()

    def ask(self, prompts: list[str] | None = None, repeat: bool = False) -> None:
        step = self.step
        self.say(step.prompt if prompts is None else prompts)
        first = self.state.step_failures == 0 and not repeat
        timeout = step.timeout or (self.policy.first_timeout_seconds if first else self.policy.later_timeout_seconds)
        listen = self.policy.speech_enabled and step.grammar is not None and \
            not (step.collect and step.collect.sensitive)
        max_digits, finish = (step.collect.max, step.collect.finish) if step.collect else (1, "")
        self.wait = Ask(max_digits=max_digits, finish_on_key=finish, timeout=timeout, grammar=step.grammar,
                        listen=listen, barge_in=step.barge_in)

    # --- input ---------------------------------------------------------------------------------

    def entered(self, event: ev.KeysPressed) -> None:
        """A whole entry: the transport joins keys pressed on both sides of a pause."""
        self.keys(event.digits)

    def silence(self) -> None:
        self.failure("noinput")

    # --- input ---------------------------------------------------------------------------------

    def keys(self, digits: str, spoken: bool = False) -> None:
        step = self.flow.steps.get(self.state.step)
        if step is None or not step.takes_input:
            raise EngineError(f"keys at step {self.state.step!r}, which asks nothing")
        self.speech_out.append(Pause(KEY_PAUSE_SECONDS))
        self.state.vars["last_input"] = "speech" if spoken else "keys"
        globals_ = self.flow.defaults.global_keys
        sensitive = bool(step.collect and step.collect.sensitive) and digits not in globals_
        self.state.note("keys", keys=mask_digits(digits) if sensitive else digits[:MAX_KEYS])
        self.state.silent_in_a_row = 0
        if not digits or len(digits) > MAX_KEYS or set(digits) - VALID_KEYS:
            self.failure("nomatch")
            return
        pending = self.state.vars.get("pending")
        if pending is not None and digits in ("1", "2"):
            self.confirm_pending(pending, digits)
            return
        self.state.vars.pop("pending", None)
        if digits in step.keys:
            self.follow(step.keys[digits])
        elif digits in globals_ and (digits != "0" or step.operator):
            self.follow(globals_[digits])
        elif step.collect:
            self.collected(step, digits)
        else:
            self.failure("nomatch")

    def collected(self, step: Step, digits: str) -> None:
        collect = step.collect
        assert collect is not None
        value = digits
        if collect.star_means and value.endswith("*") and "*" not in value[:-1]:
            value = value[:-1] + collect.star_means
        body = value[:-1] if collect.star_means and value.endswith(collect.star_means) else value
        well_formed = body.isdigit() or (body == "" and value != "")
        if not well_formed or not collect.min <= len(value) <= collect.max:
            self.failure("nomatch")
            return
        if step.do:
            result = self.run_action(step.do, step.arg, value=value)
            self.follow(step.on[result])

    def speech(self, heard: ev.SpeechHeard) -> None:
        """Speech stands for keys: each step maps intents to its keys, common intents work
        everywhere, uncertain answers and spoken numbers are confirmed before use."""
        step = self.flow.steps.get(self.state.step)
        if step is None or not step.takes_input:
            raise EngineError(f"speech at step {self.state.step!r}, which asks nothing")
        self.state.note("speech", intent=heard.intent, band=heard.band,
                        score=round(heard.score, 2), masked=bool(step.collect and step.collect.sensitive))
        self.state.silent_in_a_row = 0
        self.state.vars["last_input"] = "speech"
        pending = self.state.vars.get("pending")
        if pending is not None:
            answer = {"yes": "1", "no": "2"}.get(heard.intent or "") if heard.band != "reject" else None
            self.confirm_pending(pending, answer)
            return
        if heard.band == "reject" or heard.intent is None:
            self.failure("nomatch")
            return
        if heard.intent in COMMON_INTENTS:
            self.common_intent(heard.intent)
            return
        digits = heard.slots.get("digits") if heard.intent == "digits" else None
        if step.collect and step.collect.sensitive and digits:
            # ID characters are keyed, never spoken aloud nor read back, nor kept unverified.
            self.say(["speech_keys_only"])
            self.ask(prompts=step.reprompt, repeat=True)
            return
        key = digits if step.collect and digits else self.key_for(step, heard)
        if key is None:
            self.failure("nomatch")
        elif step.collect or heard.band == "confirm":
            # A spoken number is never used without a grouped read-back; an unsure answer
            # is confirmed: "您是说…对吗？对按1，不对按2".
            self.ask_to_confirm(step, heard.intent, key)
        else:
            self.keys(key, spoken=True)

    def key_for(self, step: Step, heard: ev.SpeechHeard) -> str | None:
        if heard.intent == "slot":
            return self.slot_key(heard.slots)
        return step.intents.get(heard.intent or "")

    def slot_key(self, slots: dict[str, str]) -> str | None:
        """The offered callback slot matching the spoken day and half-day, as its key."""
        from ivr.scheduling.slots import slot_from_key
        days = {"today": 0, "tomorrow": 1, "day_after_tomorrow": 2}
        for index, slot_key in enumerate(self.state.vars.get("slot_keys") or []):
            slot = slot_from_key(slot_key, self.policy.slot_minutes)
            offset = (slot.day - self.now.date()).days
            if days.get(slots.get("day", ""), offset) == offset and slots.get("period", slot.period) == slot.period:
                return str(index + 1)
        return None

    def ask_to_confirm(self, step: Step, intent: str | None, key: str) -> None:
        state = self.state
        state.vars["pending"] = {"key": key}
        if step.collect:
            self.spoken("pending_words", lambda say: say.digits(key))
        else:
            self.spoken("pending_words", lambda say: say.words(f"intent_{intent}") or key)
        self.speech_out.append(Pause(KEY_PAUSE_SECONDS))
        self.say(["speech_confirm"])
        self.wait = Ask(max_digits=1, finish_on_key="", timeout=self.policy.later_timeout_seconds,
                        grammar="confirm", listen=self.policy.speech_enabled)

    def confirm_pending(self, pending: dict, answer: str | None) -> None:
        self.state.vars.pop("pending", None)
        if answer == "1":
            self.keys(pending["key"], spoken=True)
        elif answer == "2":
            self.state.note("not_confirmed")
            self.ask(prompts=self.step.reprompt)
        else:
            self.failure("nomatch")

    def common_intent(self, intent: str) -> None:
        if intent == "operator":
            self.keys("0", spoken=True)
        elif intent == "repeat":
            self.keys("*", spoken=True)
        elif intent in ("language_cmn", "language_wuu"):
            self.run_action("set_language", intent.removeprefix("language_"))
            self.enter(self.state.step)
        elif intent == "slower":
            self.state.slow = True
            self.ask(repeat=True)
        elif intent == "help":
            self.ask(prompts=self.step.example or self.step.reprompt, repeat=True)
        elif self.flow.goodbye_step:  # goodbye
            self.enter(self.flow.goodbye_step)
        else:
            self.ask(repeat=True)

    def failure(self, kind: str) -> None:
        """Escalating reprompts: the handler with the highest count not above the failures."""
        state = self.state
        step = self.flow.steps.get(state.step)
        if step is None or not step.takes_input:
            raise EngineError(f"{kind} at step {state.step!r}, which asks nothing")
        state.step_failures += 1
        if kind == "noinput":
            state.silent_in_a_row += 1
            state.note("silence")
        else:
            state.note("nomatch")
        if state.silent_in_a_row >= self.policy.max_silent_in_a_row:
            state.silent_in_a_row = 0
            state.handoff_reason = "silence"
            self.enter(self.flow.person_step)
            return
        handlers: list[Handler] = getattr(step, kind) or getattr(self.flow.defaults, kind)
        chosen = max((h for h in handlers if h.count <= state.step_failures), key=lambda h: h.count,
                     default=handlers[0])
        if chosen.goto:
            self.say(chosen.prompt)
            self.follow(Transition(goto=chosen.goto, reason=chosen.reason or "repeated_failures"))
        else:
            self.ask(prompts=chosen.prompt)

    # --- the operators' queue ------------------------------------------------------------------

    def queue_wait(self, event: ev.QueueWaiting) -> None:
        state = self.state
        if event.queue_seconds >= self.policy.queue_max_wait_seconds:
            state.vars["queue_leave"] = "timeout"
            self.wait = LeaveQueue()
            return
        self.spoken("queue_ahead", lambda say: say.count(max(event.position - 1, 0)))
        self.say(["queue_position" if event.position > 1 else "queue_next"], self.step)
        self.wait = Hold(leave_key="1", timeout=self.policy.queue_announce_seconds)

    def queue_key(self, digits: str) -> None:
        if digits == "1":
            self.state.vars["queue_leave"] = "caller"
            self.state.note("keys", keys="1")
            self.wait = LeaveQueue()
        else:
            self.say(["queue_still_waiting"], self.step)
            self.wait = Hold(leave_key="1", timeout=self.policy.queue_announce_seconds)

    def queue_ended(self, outcome: str) -> None:
        """outcome: bridged (talked to a person), left (the caller pressed 1, or the service
        ended the wait), hung_up, taken (an operator took the call elsewhere), failed."""
        step = self.step
        self.state.note("queue_result", result=outcome)
        if outcome == "hung_up":
            self.state.ended = True
            self.repo.end_handoff(self.state.call_sid, "hung_up", self.now)
            self.wait = Nothing()
            return
        if outcome == "taken":  # the telephony moves the call to the operator
            self.wait = Nothing()
            return
        if outcome == "left":
            outcome = "timeout" if self.state.vars.get("queue_leave") == "timeout" else "left"
        elif outcome != "bridged":
            outcome = "full"
        if outcome != "bridged":
            self.repo.end_handoff(self.state.call_sid, "left", self.now)
        self.follow(step.on[outcome])
