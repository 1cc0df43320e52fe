"""Database engine creation and schema upgrades (Alembic, run in process)."""
from __future__ import annotations

import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(url: str) -> Engine:
    """SQLite gets WAL and a busy timeout so several web workers can share one file."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no branch
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        lock_path = Path(url.removeprefix("sqlite:///") + ".writers")

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:
            if conn.get_execution_options().get("read_only"):
                conn.exec_driver_sql("BEGIN")
                return
            # Writers queue on a file lock, in arrival order, instead of polling in SQLite's
            # busy handler (which sleeps up to 100 ms a try and lets late turns overtake).
            # BEGIN IMMEDIATE then takes the write lock at once: two workers serving the
            # same call run one after the other instead of failing on a stale snapshot.
            handle = open(lock_path, "a+b")  # noqa: SIM115 - closed in _release
            fcntl.flock(handle, fcntl.LOCK_EX)
            conn.info["writer_lock"] = handle
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        def _release_info(info: dict) -> None:
            handle = info.pop("writer_lock", None)
            if handle is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()

        event.listen(engine, "commit", lambda conn: _release_info(conn.info))
        event.listen(engine, "rollback", lambda conn: _release_info(conn.info))
        # A session dropped without commit or rollback is rolled back by the pool, not by
        # the Connection: release the queue there too, or every later writer would wait.
        event.listen(engine.pool, "checkin", lambda _dbapi, record: _release_info(record.info))
        return engine
    return create_engine(url, pool_pre_ping=True)


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
