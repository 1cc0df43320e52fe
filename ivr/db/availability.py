"""Whether the database answered lately, so a caller who just heard "system problem" and
presses 0 is not made to wait on the same locked database again."""
from __future__ import annotations

import threading
import time

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ivr import deadline

RECENT_SECONDS = 30.0


class DatabaseAvailability:
    """Process-wide memory of the last database failure (thread-safe, no I/O)."""

    def __init__(self, recent_seconds: float = RECENT_SECONDS) -> None:
        self.recent_seconds = recent_seconds
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    def failed(self) -> None:
        with self._lock:
            self._failed_at = time.monotonic()

    def answered(self) -> None:
        with self._lock:
            self._failed_at = None

    def recently_failed(self) -> bool:
        with self._lock:
            return self._failed_at is not None and time.monotonic() - self._failed_at < self.recent_seconds


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
