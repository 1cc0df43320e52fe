"""One call turn = one database transaction: load state, run the engine, store state and reply.

The stored reply makes retried webhooks safe: the same turn gets the same answer and no side
effect (such as a booking) happens twice.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified

from ivr.db.handoffs import close_handoffs_at_call_end
from ivr.db.models import CallSession
from ivr.db.repository import SqlRepository
from ivr.engine import events as ev
from ivr.engine.actions import Turn
from ivr.engine.interpreter import Engine
from ivr.engine.state import CallState
from ivr.service_rules import PolicySource
from ivr.timeutil import to_db

Render = Callable[[Turn, int], str]


class UnknownCall(LookupError):
    """A webhook named a CallSid this service never saw start."""


class _NotQueued(Exception):
    """The person step did not lead to the queue (operator hours just ended)."""


class NotInQueue(UnknownCall):
    """A queue event for a call whose stored state is not in the queue: it was queued while
    the database was down (or the request is forged); the transport answers without it."""


class CallService:
    def __init__(self, sessions: sessionmaker[Session], engine: Engine, id_hash_secret: str,
                 clock: Callable[[], datetime], policies: PolicySource | None = None) -> None:
        self.sessions = sessions
        self.engine = engine
        self.secret = id_hash_secret
        self.clock = clock
        self.policies = policies or PolicySource(engine.policy)

    def _handle(self, db: Session, state: CallState, event: ev.Event, now: datetime) -> Turn:
        return self.engine.handle(state, event, SqlRepository(db, self.secret), now, self.policies.current(db))

    def _jump(self, db: Session, state: CallState, step_id: str, now: datetime) -> Turn:
        return self.engine.jump(state, step_id, SqlRepository(db, self.secret), now, self.policies.current(db))

    def _load(self, db: Session, call_sid: str) -> CallSession | None:
        query = select(CallSession).where(CallSession.call_sid == call_sid)
        if db.get_bind().dialect.name != "sqlite":
            query = query.with_for_update()
        return db.execute(query).scalar_one_or_none()

    @staticmethod
    def _store(row: CallSession, state: CallState) -> None:
        row.state = state.to_json()
        flag_modified(row, "state")  # vars and story were changed in place

    def _answer(self, row: CallSession, state: CallState, turn: Turn, render: Render, now: datetime) -> str:
        """A new turn: number it, render it, store it with the state as the reply to replay."""
        row.turn += 1
        body = render(turn, row.turn)
        self._store(row, state)
        row.last_response, row.updated_at = body, to_db(now)
        return body

    def _load_or_new(self, db: Session, call_sid: str, caller: str, now: datetime) -> tuple[CallSession, CallState]:
        """The stored call, or a new one for a call the database never saw (it was down)."""
        row = self._load(db, call_sid)
        if row is not None:
            return row, CallState.from_json(row.state)
        row = CallSession(call_sid=call_sid, caller=caller, state={}, turn=0, last_response="",
                          status="in-progress", started_at=to_db(now), updated_at=to_db(now))
        db.add(row)
        return row, CallState(call_sid=call_sid, caller=caller)

    def start(self, call_sid: str, caller: str, called: str, render: Render) -> str:
        with self.sessions() as db, db.begin():
            row = self._load(db, call_sid)
            if row is not None:
                return row.last_response  # Twilio retried the first request
            now = self.clock()
            state = CallState(call_sid=call_sid, caller=caller)
            turn = self._handle(db, state, ev.CallStarted(caller, called), now)
            body = render(turn, 1)
            db.add(CallSession(call_sid=call_sid, caller=caller, state=state.to_json(), turn=1,
                               last_response=body, status="in-progress", started_at=to_db(now),
                               updated_at=to_db(now)))
            return body

    def turn(self, call_sid: str, token: int, event: ev.Event, render: Render) -> str:
        """Answer the caller's input for turn `token`; an old or repeated token, or an event the
        current step does not wait for (keys while queued), gets the stored reply."""
        with self.sessions() as db, db.begin():
            row = self._load(db, call_sid)
            if row is None:
                raise UnknownCall(call_sid)
            if token != row.turn:
                return row.last_response
            now = self.clock()
            state = CallState.from_json(row.state)
            if not self.engine.accepts(state, event):
                return row.last_response
            return self._answer(row, state, self._handle(db, state, event, now), render, now)

    def current_step(self, call_sid: str, token: int) -> tuple[str, str] | None:
        """(grammar, language) of the question the caller is answering, read without a lock:
        recognition runs before the turn's transaction so it never holds the database."""
        with self.sessions() as db:
            row = db.get(CallSession, call_sid)
            if row is None or token != row.turn:
                return None
            state = CallState.from_json(row.state)
        step = self.engine.flow.steps.get(state.step)
        grammar = "confirm" if state.vars.get("pending") else (step.grammar if step else None)
        return (grammar, state.language) if grammar else None

    def side_event(self, call_sid: str, event: ev.Event, render: Render) -> str:
        """Queue wait-loop events: they change state but not the turn, so the Enqueue action's
        turn number stays valid."""
        with self.sessions() as db, db.begin():
            row = self._load(db, call_sid)
            if row is None:
                raise UnknownCall(call_sid)
            state = CallState.from_json(row.state)
            if not self.engine.accepts(state, event):
                raise NotInQueue(call_sid)
            now = self.clock()
            turn = self._handle(db, state, event, now)
            self._store(row, state)
            row.updated_at = to_db(now)
            return render(turn, row.turn)

    def escalate(self, call_sid: str, caller: str, reason: str, render: Render) -> str:
        """After a system error: take the caller to a person, creating the session if needed."""
        with self.sessions() as db, db.begin():
            now = self.clock()
            row, state = self._load_or_new(db, call_sid, caller, now)
            state.handoff_reason = reason
            return self._answer(row, state, self._jump(db, state, self.engine.flow.person_step, now), render, now)

    def adopt_queued(self, call_sid: str, caller: str, render: Render) -> bool:
        """A caller Twilio holds in the queue that the database does not (queued while it was
        down): record the handoff and put the stored call in the queue, so operators see and can
        take the caller.  False if that is not possible now (e.g. operator hours just ended)."""
        try:
            with self.sessions() as db, db.begin():
                now = self.clock()
                row, state = self._load_or_new(db, call_sid, caller, now)
                state.handoff_reason = "system_error"
                turn = self._jump(db, state, self.engine.flow.person_step, now)
                step = self.engine.flow.steps.get(state.step)
                if step is None or not step.enqueue:
                    raise _NotQueued  # rolls the handoff (and a new row) back
                self._answer(row, state, turn, render, now)
                return True
        except _NotQueued:
            return False

    def end_adopted_queue(self, call_sid: str, event: ev.QueueEnded, render: Render) -> str | None:
        """The end of a queue joined without the database, for a call adopted since: the
        dialog goes on as after any queue.  None if the call was never adopted."""
        with self.sessions() as db, db.begin():
            row = self._load(db, call_sid)
            if row is None:
                return None
            state = CallState.from_json(row.state)
            if not self.engine.accepts(state, event):
                return None
            now = self.clock()
            return self._answer(row, state, self._handle(db, state, event, now), render, now)

    def restart(self, call_sid: str, caller: str, render: Render, step_id: str = "main_menu") -> str:
        """Go on with the dialog at `step_id`, keeping the call story: the main menu after a
        system error, the "anything else?" step after talking to a person."""
        with self.sessions() as db, db.begin():
            row = self._load(db, call_sid)
            now = self.clock()
            if row is None:
                raise UnknownCall(call_sid)
            state = CallState.from_json(row.state)
            return self._answer(row, state, self._jump(db, state, step_id, now), render, now)

    def end(self, call_sid: str, status: str, duration: int | None) -> None:
        with self.sessions() as db, db.begin():
            row = self._load(db, call_sid)
            if row is None:
                return
            now = self.clock()
            state = CallState.from_json(row.state)
            self._handle(db, state, ev.CallEnded(status, duration), now)
            close_handoffs_at_call_end(db, call_sid, now)
            self._store(row, state)
            row.status, row.ended_at = status, to_db(now)
            row.duration_seconds, row.updated_at = duration, to_db(now)
