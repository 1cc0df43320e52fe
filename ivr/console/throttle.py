"""Console log-in throttling: exponential back-off per account name and per source address.

Two counters answer every attempt: one for the name typed (hashed, so unknown names are counted
exactly like real ones and the table never says which names exist) and one for the address it
came from.  After `free_tries` failures on a counter, each further failure makes that counter
wait 1 s, 2 s, 4 s … up to its cap.  The account's cap is short, so an attacker cannot keep a
real operator out for long; the source's cap is long, so one address cannot keep guessing.

An attempt is counted when it is let through, before the password is checked, under a row lock
(PostgreSQL) or SQLite's write lock: concurrent attempts cannot all slip through on the same
count.  A success clears both counters.  Rows are forgotten after `forget_after` without an
attempt and the table is capped at MAX_ROWS, so a spray of millions of names stays bounded.
"""
from __future__ import annotations

import hashlib
import ipaddress
import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ivr.config import Settings
from ivr.db.models import LoginThrottle
from ivr.timeutil import to_db

MAX_ROWS = 100_000  # beyond this the rows with the oldest attempts go first
MIN_FORGET = timedelta(hours=1)


@dataclass(frozen=True)
class ThrottlePolicy:
    free_tries: int = 3
    account_max_wait: int = 30  # seconds
    source_max_wait: int = 600  # seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> "ThrottlePolicy":
        return cls(settings.console_login_free_tries, settings.console_login_account_max_wait_seconds,
                   settings.console_login_source_max_wait_seconds)

    @property
    def forget_after(self) -> timedelta:
        """Long enough that waiting out the cap never also wipes the count."""
        return max(MIN_FORGET, timedelta(seconds=4 * max(self.account_max_wait, self.source_max_wait)))

    def wait(self, failures: int, cap: int) -> int:
        """Seconds to wait after `failures` failures: 0 for the free tries, then 1, 2, 4 … cap."""
        if failures < self.free_tries:
            return 0
        return min(cap, 2 ** min(failures - self.free_tries, 30))


@dataclass(frozen=True)
class Verdict:
    """Whether an attempt may check its password, and the wait to show if it fails."""

    allowed: bool
    wait_seconds: int
    blocked_by: str = ""  # "account", "source" or "account+source" when refused
    refused: int = 0  # attempts refused in the current wait, this one included
    failures: int = 0  # the account counter, this attempt included


def normalise_username(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip().casefold()


def account_key(username: str) -> str:
    return "account:" + hashlib.sha256(normalise_username(username).encode()).hexdigest()


def source_key(address: str | None) -> str:
    """IPv6 clients are counted per /64, the block one subscriber usually gets."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        network = "unknown"
    else:
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        network = str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)
    return "source:" + hashlib.sha256(network.encode()).hexdigest()


def _remaining(until: datetime | None, now: datetime) -> int:
    return max(0, math.ceil((until - now).total_seconds())) if until else 0


def _lock_rows(db: Session, keys: list[str], now: datetime, policy: ThrottlePolicy) -> list[LoginThrottle]:
    """The counters for `keys`, locked until the transaction ends.  Missing ones are created only
    when no existing one is waiting, so a refused spray of new names adds no rows."""
    keys = sorted(keys)  # one lock order for everyone: no deadlocks
    postgres = db.get_bind().dialect.name == "postgresql"
    query = select(LoginThrottle).where(LoginThrottle.key.in_(keys)).order_by(LoginThrottle.key)
    query = query.with_for_update() if postgres else query
    rows = list(db.execute(query).scalars())
    if len(rows) < len(keys) and not any(_remaining(row.wait_until, now) for row in rows):
        insert = pg_insert if postgres else sqlite_insert
        added = db.execute(insert(LoginThrottle).values(
            [{"key": k, "failures": 0, "refused": 0, "last_at": now} for k in keys]
        ).on_conflict_do_nothing(index_elements=["key"])).rowcount
        if added:
            _prune(db, keys, now, policy)
        rows = list(db.execute(query.execution_options(populate_existing=True)).scalars())
    for row in rows:
        if row.last_at < now - policy.forget_after:
            row.failures, row.refused, row.wait_until = 0, 0, None
    return rows


def _prune(db: Session, keep: list[str], now: datetime, policy: ThrottlePolicy) -> None:
    """Forget stale counters; past MAX_ROWS drop the least recently used (never `keep`)."""
    db.execute(delete(LoginThrottle).where(LoginThrottle.last_at < now - policy.forget_after,
                                           LoginThrottle.key.not_in(keep)))
    extra = db.execute(select(func.count()).select_from(LoginThrottle)).scalar_one() - MAX_ROWS
    if extra > 0:
        oldest = (select(LoginThrottle.key).where(LoginThrottle.key.not_in(keep))
                  .order_by(LoginThrottle.last_at).limit(extra))
        db.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(oldest.scalar_subquery())))


def admit(db: Session, username: str, source: str | None, now: datetime, policy: ThrottlePolicy) -> Verdict:
    """Let an attempt through and count it as a failure, or refuse it while a wait runs.

    The count is taken before the password is checked (a success clears it afterwards), so
    attempts running at the same time each see the ones before them.
    """
    at = to_db(now)
    rows = {row.key.partition(":")[0]: row
            for row in _lock_rows(db, [account_key(username), source_key(source)], at, policy)}
    blocking = [(kind, row) for kind, row in sorted(rows.items()) if _remaining(row.wait_until, at) > 0]
    if blocking:
        for _, row in blocking:
            row.refused += 1
        return Verdict(False, max(_remaining(row.wait_until, at) for _, row in blocking),
                       "+".join(kind for kind, _ in blocking), max(row.refused for _, row in blocking),
                       rows["account"].failures if "account" in rows else 0)
    account, source_row = rows["account"], rows["source"]
    waits = []
    for row, cap in ((account, policy.account_max_wait), (source_row, policy.source_max_wait)):
        row.failures += 1
        row.refused, row.last_at = 0, at
        wait = policy.wait(row.failures, cap)
        row.wait_until = at + timedelta(seconds=wait) if wait else None
        waits.append(wait)
    return Verdict(True, max(waits), failures=account.failures)


def clear(db: Session, username: str, source: str | None = None) -> None:
    """After a success (both counters) or a password reset by a supervisor (the account's)."""
    keys = [account_key(username)] + ([source_key(source)] if source is not None else [])
    db.execute(update(LoginThrottle).where(LoginThrottle.key.in_(keys))
               .values(failures=0, refused=0, wait_until=None))


def account_wait(db: Session, username: str, now: datetime) -> int:
    """Seconds before the account's next attempt is let through (0: none pending)."""
    until = db.execute(select(LoginThrottle.wait_until)
                       .where(LoginThrottle.key == account_key(username))).scalar_one_or_none()
    return _remaining(until, to_db(now))
