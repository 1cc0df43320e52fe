"""One call turn = one database transaction: load the call's state, run the engine, store the
state.  The service returns the engine's Turn; what a transport keeps with each turn (the
webhook adapter: turn numbers and the reply to repeat to a retried request, see
ivr.telephony.replay) it keeps through a `Keeper` called inside the same transaction, so a
retried request and its side effects (a booking) can never run twice.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable, Generic, Protocol, TypeVar

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

Answer = TypeVar("Answer")


class UnknownCall(LookupError):
    """A request named a call this service never saw start."""


class _NotQueued(Exception):
    """The person step did not lead to the queue (operator hours just ended)."""


class NotInQueue(UnknownCall):
    """A queue event for a call whose stored state is not in the queue: it was queued while
    the database was down (or the request is forged); the transport answers without it."""


class Keeper(Protocol[Answer]):
    """A transport's part of each turn, inside the turn's transaction."""

    def replay(self, row: CallSession) -> Answer | None:
        """The answer already given to this request (a retry), or None to run the turn."""

    def answer(self, row: CallSession, turn: Turn) -> Answer:
        """The transport's answer for a new turn; may store what a retry must get back."""

    def unchanged(self, row: CallSession) -> Answer:
        """The answer to an event the current step does not wait for (late or forged)."""


class Turns(Generic[Answer]):
    """A transport that keeps nothing: answers are the engine's Turns."""

    def replay(self, row: CallSession) -> None:
        return None

    def answer(self, row: CallSession, turn: Turn) -> Turn:
        return turn

    def unchanged(self, row: CallSession) -> Turn:
        raise NotInQueue(row.call_sid)


class CallService:
    def __init__(self, sessions: sessionmaker[Session], engine: Engine, id_hash_secret: str,
                 clock: Callable[[], datetime], policies: PolicySource | None = None,
                 on_call_start: Callable[[Session], None] | None = None) -> None:
        """`on_call_start` runs in a new call's first transaction (the prompt recordings follow
        the supervisors' choices there: a new take is heard from the next call on)."""
        self.sessions = sessions
        self.engine = engine
        self.secret = id_hash_secret
        self.clock = clock
        self.policies = policies or PolicySource(engine.policy)
        self.on_call_start = on_call_start

    def _handle(self, db: Session, state: CallState, event: ev.Event, now: datetime) -> Turn:
        return self.engine.handle(state, event, SqlRepository(db, self.secret), now, self.policies.current(db))

    def _jump(self, db: Session, state: CallState, step_id: str, now: datetime) -> Turn:
        return self.engine.jump(state, step_id, SqlRepository(db, self.secret), now, self.policies.current(db))

    def _load(self, db: Session, call_sid: str) -> CallSession | None:
        query = select(CallSession).where(CallSession.call_sid == call_sid)
        if db.get_bind().dialect.name != "sqlite":
            query = query.with_for_update()
        return db.execute(query).scalar_one_or_none()

    def _load_known(self, db: Session, call_sid: str) -> CallSession:
        row = self._load(db, call_sid)
        if row is None:
            raise UnknownCall(call_sid)
        return row

    @staticmethod
    def _store(row: CallSession, state: CallState, now: datetime) -> None:
        row.state = state.to_json()
        flag_modified(row, "state")  # vars and story were changed in place
        row.updated_at = to_db(now)

    def _load_or_new(self, db: Session, call_sid: str, caller: str, now: datetime) -> tuple[CallSession, CallState]:
        """The stored call, or a new one for a call the database never saw (it was down)."""
        row = self._load(db, call_sid)
        if row is not None:
            return row, CallState.from_json(row.state)
        row = CallSession(call_sid=call_sid, caller=caller, state={}, turn=0, last_response="",
                          status="in-progress", started_at=to_db(now), updated_at=to_db(now))
        db.add(row)
        return row, CallState(call_sid=call_sid, caller=caller)

    def start(self, call_sid: str, caller: str, called: str, keeper: Keeper[Answer]) -> Answer:
        with self.sessions() as db, db.begin():
            if self.on_call_start is not None:  # also where a stream process picks a call up
                self.on_call_start(db)
            row = self._load(db, call_sid)
            now = self.clock()
            if row is not None:  # the first request again (a retry)
                state = CallState.from_json(row.state)
                again = keeper.replay(row)
                return again if again is not None else keeper.answer(row, self._jump(db, state, state.step, now))
            state = CallState(call_sid=call_sid, caller=caller)
            turn = self._handle(db, state, ev.CallStarted(caller, called), now)
            row = CallSession(call_sid=call_sid, caller=caller, state={}, turn=0, last_response="",
                              status="in-progress", started_at=to_db(now), updated_at=to_db(now))
            db.add(row)
            self._store(row, state, now)
            return keeper.answer(row, turn)

    def start_outbound(self, call_sid: str, person: str, step_id: str, language: str, keeper: Keeper[Answer],
                       **story: object) -> Answer:
        """A call the hotline placed (a notification): the dialog starts at `step_id` in the
        person's language, with `person` as the number whose matters are checked."""
        with self.sessions() as db, db.begin():
            row = self._load(db, call_sid)
            now = self.clock()
            if row is not None:  # Twilio asked again
                again = keeper.replay(row)
                state = CallState.from_json(row.state)
                return again if again is not None else keeper.answer(row, self._jump(db, state, state.step, now))
            state = CallState(call_sid=call_sid, caller=person)
            state.language, state.language_known = language, True
            state.note("notification_call", **story)
            turn = self._jump(db, state, step_id, now)
            row = CallSession(call_sid=call_sid, caller=person, state={}, turn=0, last_response="",
                              status="in-progress", started_at=to_db(now), updated_at=to_db(now))
            db.add(row)
            self._store(row, state, now)
            return keeper.answer(row, turn)

    def handle(self, call_sid: str, event: ev.Event, keeper: Keeper[Answer]) -> Answer:
        """The caller's answer, or the end of the queue; an event the current step does not
        wait for (keys while queued) changes nothing."""
        with self.sessions() as db, db.begin():
            row = self._load_known(db, call_sid)
            again = keeper.replay(row)
            if again is not None:
                return again
            state = CallState.from_json(row.state)
            if not self.engine.accepts(state, event):
                return keeper.unchanged(row)
            now = self.clock()
            turn = self._handle(db, state, event, now)
            self._store(row, state, now)
            return keeper.answer(row, turn)

    def current_step(self, call_sid: str, keeper: Keeper[Answer]) -> tuple[str, str] | None:
        """(grammar, language) of the question the caller is answering, read without a lock:
        recognition runs before the turn's transaction so it never holds the database."""
        with self.sessions() as db:
            row = db.get(CallSession, call_sid)
            if row is None or keeper.replay(row) is not None:
                return None
            state = CallState.from_json(row.state)
        step = self.engine.flow.steps.get(state.step)
        grammar = "confirm" if state.vars.get("pending") else (step.grammar if step else None)
        return (grammar, state.language) if grammar else None

    def queue_event(self, call_sid: str, event: ev.Event, keeper: Keeper[Answer]) -> Answer:
        """The queue's wait loop: changes state, but a transport's turn stays the same (the
        webhook adapter's Enqueue action keeps its turn number).  NotInQueue if the stored call
        is not queued."""
        with self.sessions() as db, db.begin():
            row = self._load_known(db, call_sid)
            state = CallState.from_json(row.state)
            if not self.engine.accepts(state, event):
                raise NotInQueue(call_sid)
            now = self.clock()
            turn = self._handle(db, state, event, now)
            self._store(row, state, now)
            return keeper.answer(row, turn)

    def escalate(self, call_sid: str, caller: str, reason: str, keeper: Keeper[Answer]) -> Answer:
        """After a system error: take the caller to a person, creating the session if needed."""
        with self.sessions() as db, db.begin():
            now = self.clock()
            row, state = self._load_or_new(db, call_sid, caller, now)
            state.handoff_reason = reason
            turn = self._jump(db, state, self.engine.flow.person_step, now)
            self._store(row, state, now)
            return keeper.answer(row, turn)

    def adopt_queued(self, call_sid: str, caller: str, keeper: Keeper[Answer]) -> bool:
        """A caller the telephony holds in the queue that the database does not (queued while
        it was down): record the handoff and put the stored call in the queue, so operators see
        and can take the caller.  False if that is not possible now (operator hours just ended)."""
        try:
            with self.sessions() as db, db.begin():
                now = self.clock()
                row, state = self._load_or_new(db, call_sid, caller, now)
                state.handoff_reason = "system_error"
                turn = self._jump(db, state, self.engine.flow.person_step, now)
                step = self.engine.flow.steps.get(state.step)
                if step is None or not step.enqueue:
                    raise _NotQueued  # rolls the handoff (and a new row) back
                self._store(row, state, now)
                keeper.answer(row, turn)
                return True
        except _NotQueued:
            return False

    def end_adopted_queue(self, call_sid: str, event: ev.QueueEnded, keeper: Keeper[Answer]) -> Answer | None:
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
            turn = self._handle(db, state, event, now)
            self._store(row, state, now)
            return keeper.answer(row, turn)

    def restart(self, call_sid: str, keeper: Keeper[Answer], step_id: str = "main_menu") -> Answer:
        """Go on with the dialog at `step_id`, keeping the call story: the main menu after a
        system error, the "anything else?" step after talking to a person."""
        with self.sessions() as db, db.begin():
            row = self._load_known(db, call_sid)
            now = self.clock()
            state = CallState.from_json(row.state)
            turn = self._jump(db, state, step_id, now)
            self._store(row, state, now)
            return keeper.answer(row, turn)

    def resume(self, call_sid: str, keeper: Keeper[Answer]) -> Answer:
        """Enter the current step again, as a new transport takes the call over (the webhook
        after a media stream ended): its question again, or its wait (the queue, a hang-up)."""
        with self.sessions() as db, db.begin():
            row = self._load_known(db, call_sid)
            state = CallState.from_json(row.state)
            if state.ended:
                return keeper.answer(row, Turn())
            now = self.clock()
            turn = self._jump(db, state, state.step, now)
            self._store(row, state, now)
            return keeper.answer(row, turn)

    def end(self, call_sid: str, status: str, duration: int | None) -> None:
        with self.sessions() as db, db.begin():
            row = self._load(db, call_sid)
            if row is None:
                return
            now = self.clock()
            state = CallState.from_json(row.state)
            self._handle(db, state, ev.CallEnded(status, duration), now)
            close_handoffs_at_call_end(db, call_sid, now)
            self._store(row, state, now)
            row.status, row.ended_at = status, to_db(now)
            row.duration_seconds = duration
