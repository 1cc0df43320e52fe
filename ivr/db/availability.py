"""Whether the database answered lately, so a caller who just heard "system problem" and
presses 0 is not made to wait on the same locked database again."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ivr import deadline

RECENT_SECONDS = 30.0


class DatabaseAvailability:
    """Memory of the last database failure, shared by every worker process of the service
    through the modification time of a marker file (one stat per check), so it does not
    matter which process Twilio's next request reaches."""

    def __init__(self, marker: Path | None = None, recent_seconds: float = RECENT_SECONDS) -> None:
        self.marker = marker
        self.recent_seconds = recent_seconds
        self._failed_at: float | None = None  # time.time(), when there is no marker file
        self._lock = threading.Lock()

    def failed(self) -> None:
        with self._lock:
            self._failed_at = time.time()
        if self.marker is not None:
            try:
                self.marker.parent.mkdir(parents=True, exist_ok=True)
                self.marker.touch()
                os.utime(self.marker)
            except OSError:
                pass  # the process still remembers for itself

    def answered(self) -> None:
        with self._lock:
            self._failed_at = None
        if self.marker is not None:
            try:
                self.marker.unlink(missing_ok=True)
            except OSError:
                pass

    def recently_failed(self) -> bool:
        with self._lock:
            failed_at = self._failed_at
        if self.marker is not None:
            try:
                failed_at = max(failed_at or 0.0, self.marker.stat().st_mtime)
            except OSError:
                pass
        return failed_at is not None and time.time() - failed_at < self.recent_seconds


def is_database_error(exc: BaseException) -> bool:
    import sqlite3
    return isinstance(exc, (SQLAlchemyError, sqlite3.Error, OSError)) or "database is locked" in str(exc)


def check_writable(engine: Engine, wait_seconds: float) -> str:
    """"ok", or why a turn could not write now: takes the write lock as a turn does (SQLite:
    BEGIN IMMEDIATE through the writer queue; PostgreSQL: a read-write transaction), then
    rolls back."""
    try:
        with deadline.budget(wait_seconds), engine.connect() as conn, conn.begin() as tx:
            if engine.dialect.name == "postgresql":
                if conn.execute(text("SHOW transaction_read_only")).scalar_one() == "on":
                    return "error: read-only"
                conn.execute(text("SELECT 1 FROM alembic_version FOR UPDATE"))
            else:
                conn.execute(text("SELECT 1"))
            tx.rollback()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        return f"error: {type(exc).__name__}"
