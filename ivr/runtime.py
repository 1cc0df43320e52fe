"""Builds the running service from Settings: database, flow, engine, prompts, call service."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import Engine as DbEngine, func, select
from sqlalchemy.orm import Session, sessionmaker

from ivr.callback_spool import CallbackSpool
from ivr.calls import CallService
from ivr.config import SHANGHAI, Settings
from ivr.db.availability import DatabaseAvailability
from ivr.db.models import Matter
from ivr.db.schema import make_engine, session_factory, upgrade
from ivr.engine.interpreter import Engine
from ivr.engine.policy import Policy
from ivr.flow.loader import Flow, load_flow
from ivr.hearing.batch import Hearing
from ivr.importer import import_matters
from ivr.hearing.build import build_hearing
from ivr.prompts.render import PromptRenderer
from ivr.notify.rules import NotificationRules, load_rules
from ivr.prompts.pieces import pieces_for
from ivr.prompts.recorded import RecordingIndex
from ivr.prompts.store import PromptStore
from ivr.timeutil import utc_now

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def shanghai_now() -> datetime:
    return utc_now().astimezone(SHANGHAI)


@dataclass
class Runtime:
    settings: Settings
    db: DbEngine
    sessions: sessionmaker[Session]
    flow: Flow
    policy: Policy
    engine: Engine
    store: PromptStore
    calls: CallService
    clock: Clock
    hearing: Hearing | None = None
    notify_rules: NotificationRules | None = None
    spool: CallbackSpool | None = None
    availability: DatabaseAvailability | None = None

    def __post_init__(self) -> None:
        if self.spool is None:
            self.spool = callback_spool(self.settings)
        if self.availability is None:
            self.availability = DatabaseAvailability(self.settings.var_dir / "database-unavailable")


def build_runtime(settings: Settings, clock: Clock | None = None, *, load_demo: bool = True) -> Runtime:
    clock = clock or shanghai_now
    flow = load_flow(settings.flows_dir)
    policy = Policy.from_settings(settings)
    db = make_engine(settings.database_url, settings.db_wait_seconds)
    upgrade(db)
    sessions = session_factory(db)
    if load_demo and settings.demo_csv and settings.demo_csv.exists():
        load_demo_if_empty(sessions, settings)
    renderer = PromptRenderer(settings.prompt_cache_dir, voice=settings.tts_voice,
                              rate_wpm=settings.tts_rate_wpm)
    recordings = RecordingIndex(settings.prompt_cache_dir, sessions)
    recordings.refresh()
    pieces = {lang: pieces_for(flow.prompts, lang, flow.piece_words.get(lang, {})) for lang in flow.prompts
              if lang != "cmn"}
    store = PromptStore(renderer, settings.prompt_cache_dir, flow.prompts, recordings, pieces)
    missing = store.missing_recordings("wuu")
    if missing:
        shown = ", ".join(missing[:8]) + (" …" if len(missing) > 8 else "")
        log.warning("Shanghainese recordings missing for %d prompts, callers hear Mandarin instead: %s "
                    "(record them in the console's prompt studio; list: python -m ivr prompts missing)", len(missing), shown)
    from ivr.flow.checker import translation_report
    script = translation_report(flow, "wuu")
    if script.missing:
        log.warning("Shanghainese script: %d prompts have no words in %s yet: %s "
                    "(full list: python -m ivr prompts missing --text)", len(script.missing), script.file,
                    ", ".join(script.missing[:8]) + (" …" if len(script.missing) > 8 else ""))
    hearing = build_hearing(settings)
    if hearing is not None and hearing.enabled:
        policy = dataclasses.replace(policy, speech_enabled=True)
    engine = Engine(flow, policy)
    calls = CallService(sessions, engine, settings.id_hash_secret, lambda: clock().astimezone(SHANGHAI),
                        on_call_start=recordings.refresh)
    return Runtime(settings, db, sessions, flow, policy, engine, store, calls, clock, hearing,
                   load_rules(settings.flows_dir))


def callback_spool(settings: Settings) -> CallbackSpool:
    """Where callbacks promised without a database wait for the worker (see ivr.callback_spool)."""
    return CallbackSpool(settings.var_dir / "spool" / "callbacks")


def load_demo_if_empty(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions() as db, db.begin():
        if db.execute(select(func.count()).select_from(Matter)).scalar_one():
            return
        report = import_matters(db, settings.demo_csv, settings.id_hash_secret)  # type: ignore[arg-type]
        log.info("empty database: loaded demo matters (%s)", report.summary())
