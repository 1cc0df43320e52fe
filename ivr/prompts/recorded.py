"""Which prompts this process plays as recordings, kept in step with the database.

Every call start compares one cheap version figure (ivr.prompts.library.choice_version); when a
supervisor saved or restored a take, the map is read again and the new takes' audio is written to
the local cache, named by take id and content (a take never changes), so serving a prompt never
waits for the database.  If the database cannot answer, calls go on with the map they had.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ivr.prompts import library
from ivr.prompts.audio import atomic_write_bytes

log = logging.getLogger(__name__)
RETRY_AFTER_FAILURE_S = 5.0  # a database that is down is not asked again at every call start


class RecordingIndex:
    def __init__(self, cache_dir: Path, sessions: sessionmaker[Session] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.cache_dir = cache_dir / "rec"
        self.sessions = sessions
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._version: tuple | None = None
        self._map: library.InUseMap = {}
        self._failed_at: float | None = None
        self._files: dict[int, Path] = {}

    def refresh(self, db: Session | None = None) -> None:
        """Follow the supervisors' choices; `db` is the caller's open transaction, if it has one."""
        if self._failed_at is not None and self._monotonic() - self._failed_at < RETRY_AFTER_FAILURE_S:
            return
        try:
            if db is not None:
                with db.begin_nested():  # a failure must not spoil the caller's transaction
                    self._follow(db)
            elif self.sessions is not None:
                with self.sessions() as own, own.begin():
                    self._follow(own)
            self._failed_at = None
        except SQLAlchemyError as exc:
            self._failed_at = self._monotonic()
            log.warning("recordings: could not read the choices (%s); keeping the %d in use",
                        type(exc).__name__, len(self._map))

    def _follow(self, db: Session) -> None:
        version = library.choice_version(db)
        if version == self._version:
            return
        chosen = library.in_use(db)
        files = {}
        for use in chosen.values():
            # Named by content too: two databases (tests, a restored backup) reuse take ids.
            path = self.cache_dir / f"{use.recording_id}-{use.sha256[:16]}.wav"
            if not path.exists():
                data = library.audio(db, use.recording_id)
                if data is None:
                    continue
                atomic_write_bytes(path, data, fsync=False)
            files[use.recording_id] = path
        with self._lock:
            self._map, self._version = chosen, version
            self._files.update(files)
        log.info("recordings: %d prompts play a recording", len(chosen))

    def lookup(self, language: str, prompt_id: str) -> int | None:
        use = self._map.get((language, prompt_id))
        return use.recording_id if use is not None else None

    def recorded(self, language: str) -> dict[str, library.InUse]:
        return {pid: use for (lang, pid), use in self._map.items() if lang == language}

    def file(self, recording_id: int) -> Path | None:
        """A take this process has played (in use now, or before a supervisor changed it: a call
        that started earlier may still fetch it)."""
        return self._files.get(recording_id)
