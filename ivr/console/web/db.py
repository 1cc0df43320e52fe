"""The runtime, the clock and the database as a console view sees them."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from flask import current_app
from sqlalchemy.orm import Session

from ivr.config import SHANGHAI
from ivr.runtime import Runtime


def runtime() -> Runtime:
    return current_app.extensions["hotline"]


def console_now() -> datetime:
    """Shanghai time from the runtime's clock, so tests can move time for the console too."""
    return runtime().clock().astimezone(SHANGHAI)


@contextmanager
def db_session(read_only: bool = False) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises.

    read_only=True lets SQLite start a plain BEGIN instead of queueing behind live calls for the
    write lock; use it for pages that only look.
    """
    rt = runtime()
    bind = rt.db.execution_options(read_only=True) if read_only else rt.db
    with rt.sessions(bind=bind) as db, db.begin():
        yield db
