"""Database engine creation and schema upgrades (Alembic, run in process)."""
from __future__ import annotations

import fcntl
import sqlite3
import threading
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from ivr import deadline

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


WRITER_WAIT_SECONDS = 10.0


def make_engine(url: str, wait_seconds: float = WRITER_WAIT_SECONDS) -> Engine:
    """SQLite gets WAL and a busy timeout so several web workers can share one file.

    No transaction waits longer than `wait_seconds` for a lock (or a connection), nor longer
    than the request's time budget (ivr.deadline) allows: a locked database then fails the
    turn in time for the caller to hear the apology, instead of using up Twilio's 15 s.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": wait_seconds, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no branch
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        lock_path = Path(url.removeprefix("sqlite:///") + ".writers")
        in_process = threading.Lock()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:
            wait = deadline.remaining(wait_seconds)
            # SQLite's own busy handler (another program holding the write lock) gets the
            # same bound as our writer queue.
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(wait * 1000)}")
            if conn.get_execution_options().get("read_only"):
                conn.exec_driver_sql("BEGIN")
                return
            # Writers queue instead of polling in SQLite's busy handler (which sleeps up to
            # 100 ms a try and lets late turns overtake): threads of a process wait on a lock,
            # one of them at a time on a file lock shared with the other worker processes.
            # BEGIN IMMEDIATE then takes SQLite's write lock at once, so two workers serving
            # the same call run one after the other.  A writer that waits too long gets an
            # error (the caller hears the apology), never a hang.
            conn.info["writer_lock"] = _acquire_writer(in_process, lock_path, wait)
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        def _release_info(info: dict) -> None:
            held = info.pop("writer_lock", None)
            if held is not None:
                handle, lock = held
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
                lock.release()

        event.listen(engine, "commit", lambda conn: _release_info(conn.info))
        event.listen(engine, "rollback", lambda conn: _release_info(conn.info))
        # A session dropped without commit or rollback is rolled back by the pool, not by
        # the Connection: release the queue there too, or every later writer would wait.
        event.listen(engine.pool, "checkin", lambda _dbapi, record: _release_info(record.info))
        return engine
    return _server_engine(url, wait_seconds)


def _server_engine(url: str, wait_seconds: float) -> Engine:
    """PostgreSQL: bounded connect and pool waits; inside a request budget, each transaction
    also gets a lock and statement timeout that ends with the budget."""
    connect_args = {"connect_timeout": max(int(wait_seconds), 2)} if url.startswith("postgresql") else {}
    engine = create_engine(url, pool_pre_ping=True, pool_timeout=wait_seconds, connect_args=connect_args)
    if engine.dialect.name != "postgresql":
        return engine

    @event.listens_for(engine, "begin")
    def _bounded_waits(conn) -> None:
        if deadline.active():
            millis = max(int(deadline.remaining(wait_seconds) * 1000), 1)
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {millis}")
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {millis}")
    return engine


def _acquire_writer(in_process: threading.Lock, lock_path: Path, wait: float) -> tuple:
    deadline_at = time.monotonic() + wait
    if not in_process.acquire(timeout=wait):
        raise sqlite3.OperationalError("database is locked: no turn for the writer queue in time")
    handle = open(lock_path, "a+b")  # noqa: SIM115 - closed when the transaction ends
    pause = 0.0005
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle, in_process
        except BlockingIOError:
            if time.monotonic() > deadline_at:
                handle.close()
                in_process.release()
                raise sqlite3.OperationalError("database is locked: another process held the writer "
                                               "queue too long") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.004)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision`; a database made by an older version keeps its rows."""
    config = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
