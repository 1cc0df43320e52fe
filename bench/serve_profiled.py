#!/usr/bin/env python
"""`python -m ivr serve`, instrumented for bench/load_calls.py --serve-cmd (profiling only).

Same app, same gunicorn options as ivr/serve.py (gthread, 8 threads, preload), plus:
  * per request, in each worker: total time in the app, time waiting in ``BEGIN IMMEDIATE``
    (the SQLite write lock), time holding it (BEGIN done -> COMMIT/ROLLBACK), time in SQL;
  * with BENCH_CPROFILE=1: cProfile of every request thread, merged per worker;
  * with BENCH_FLOCK=1 (an experiment, not the shipped code): every SQLite connection takes an
    exclusive fcntl.flock on <var>/write.lock just before its BEGIN IMMEDIATE and drops it after
    COMMIT/ROLLBACK, so writers queue in the kernel and wake as soon as the lock is free instead
    of polling in SQLite's busy handler (which sleeps up to 100 ms between tries);
  * BENCH_THREADS=N (an experiment): gunicorn threads per worker instead of 8.
Results go to $BENCH_PROFILE_DIR (default: $HOTLINE_VAR_DIR/profile) when a worker exits:
timings-<pid>.jsonl and profile-<pid>.pstats. Summarise with ``bench/serve_profiled.py --report DIR``.

Usage: .venv/bin/python bench/load_calls.py --calls 50 --keep-db \
           --serve-cmd ".venv/bin/python bench/serve_profiled.py"
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_local = threading.local()
_records: list[tuple] = []
_profiles: list[cProfile.Profile] = []
_profiles_lock = threading.Lock()
PROFILE = os.environ.get("BENCH_CPROFILE") == "1"


def _acc() -> dict:
    acc = getattr(_local, "acc", None)
    if acc is None:
        acc = _local.acc = {"begin_wait": 0.0, "held": 0.0, "sql": 0.0, "n_sql": 0, "tx": 0, "t_begun": None}
    return acc


def instrument_engine(engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        _acc()["t_sql"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        acc = _acc()
        now = time.perf_counter()
        spent = now - acc.get("t_sql", now)
        if statement.startswith("BEGIN IMMEDIATE"):
            acc["begin_wait"] += spent
            acc["t_begun"] = now
            acc["tx"] += 1
        else:
            acc["sql"] += spent
            acc["n_sql"] += 1

    def _end(conn) -> None:  # noqa: ANN001
        acc = _acc()
        if acc["t_begun"] is not None:
            acc["held"] += time.perf_counter() - acc["t_begun"]
            acc["t_begun"] = None

    event.listen(engine, "commit", _end)
    event.listen(engine, "rollback", _end)


class Timing:
    """WSGI middleware: one record per request (the body is built inside the app call)."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    def __call__(self, environ, start_response):  # noqa: ANN001
        _local.acc = None
        acc = _acc()
        prof = None
        if PROFILE:
            prof = getattr(_local, "prof", None)
            if prof is None:
                prof = _local.prof = cProfile.Profile()
                with _profiles_lock:
                    _profiles.append(prof)
            prof.enable()
        start = time.perf_counter()
        try:
            body = list(self.app(environ, start_response))
        finally:
            total = time.perf_counter() - start
            if prof is not None:
                prof.disable()
            _records.append((environ.get("PATH_INFO", ""), round(total * 1000, 3),
                             round(acc["begin_wait"] * 1000, 3), round(acc["held"] * 1000, 3),
                             round(acc["sql"] * 1000, 3), acc["n_sql"], acc["tx"], threading.get_ident()))
        return body


def _out_dir() -> Path:
    base = os.environ.get("BENCH_PROFILE_DIR") or str(Path(os.environ["HOTLINE_VAR_DIR"]) / "profile")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _worker_exit(_server, _worker) -> None:  # noqa: ANN001
    out = _out_dir()
    pid = os.getpid()
    keys = ("path", "total_ms", "begin_wait_ms", "lock_held_ms", "sql_ms", "n_sql", "tx", "thread")
    with open(out / f"timings-{pid}.jsonl", "w") as handle:
        for rec in _records:
            handle.write(json.dumps(dict(zip(keys, rec))) + "\n")
    if _profiles:
        stats = None
        for prof in _profiles:
            try:
                stats = pstats.Stats(prof) if stats is None else (stats.add(prof) or stats)
            except TypeError:          # a thread profile that never ran
                continue
        if stats is not None:
            stats.dump_stats(str(out / f"profile-{pid}.pstats"))


def install_flock(lock_path: Path) -> None:
    """Patch sqlite3.connect (this process only) so transactions queue on a file lock."""
    import fcntl
    import sqlite3
    from sqlite3 import dbapi2

    class LockingCursor(sqlite3.Cursor):
        def execute(self, sql, *args):  # noqa: ANN001, ANN002
            if isinstance(sql, str) and sql.startswith("BEGIN IMMEDIATE"):
                self.connection._bench_lock()
                try:
                    return super().execute(sql, *args)
                except BaseException:
                    self.connection._bench_unlock()
                    raise
            return super().execute(sql, *args)

    class LockingConnection(sqlite3.Connection):
        def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
            super().__init__(*args, **kwargs)
            self._bench_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._bench_held = False

        def cursor(self, factory=LockingCursor):  # noqa: ANN001
            return super().cursor(factory)

        def _bench_lock(self) -> None:
            fcntl.flock(self._bench_fd, fcntl.LOCK_EX)      # blocks without holding the GIL
            self._bench_held = True

        def _bench_unlock(self) -> None:
            if self._bench_held:
                self._bench_held = False
                fcntl.flock(self._bench_fd, fcntl.LOCK_UN)

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._bench_unlock()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._bench_unlock()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._bench_unlock()
                os.close(self._bench_fd)

    original = dbapi2.connect

    def connect(*args, **kwargs):  # noqa: ANN002, ANN003
        kwargs.setdefault("factory", LockingConnection)
        return original(*args, **kwargs)

    dbapi2.connect = connect
    sqlite3.connect = connect


def serve(host: str, port: int, workers: int) -> int:
    from ivr.config import load_settings
    from ivr.privacy import configure_logging
    from ivr.serve import _Gunicorn, _post_fork
    from ivr.web import create_app

    configure_logging("INFO")
    settings = load_settings()
    if os.environ.get("BENCH_FLOCK") == "1":
        install_flock(settings.var_dir / "write.lock")
    app = create_app(settings)
    instrument_engine(app.extensions["hotline"].db)
    app.wsgi_app = Timing(app.wsgi_app)
    # The options of ivr/serve.py, plus a worker_exit hook that writes the measurements.
    threads = int(os.environ.get("BENCH_THREADS", "8"))      # experiment knob; ivr/serve.py uses 8
    options = {"bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": threads,
               "preload_app": True, "post_fork": _post_fork, "timeout": 30, "accesslog": None,
               "loglevel": "warning", "worker_exit": _worker_exit}
    _Gunicorn(app, options).run()
    return 0


def report(directory: Path) -> None:
    rows = []
    for path in sorted(directory.glob("timings-*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line]
    rows = [r for r in rows if r["path"].startswith("/twilio/")]
    if not rows:
        print("no timings")
        return

    def pct(values: list[float], q: float) -> float:
        values = sorted(values)
        return values[max(0, min(len(values) - 1, int(-(-q * len(values) // 100)) - 1))]

    print(f"{len(rows)} webhook requests, server side (ms):")
    print("| measure | mean | p50 | p95 | p99 | max |")
    print("|---|---|---|---|---|---|")
    for key, label in (("total_ms", "in the app (WSGI call)"), ("begin_wait_ms", "waiting for BEGIN IMMEDIATE"),
                       ("lock_held_ms", "holding the write lock"), ("sql_ms", "executing SQL")):
        values = [r[key] for r in rows]
        print(f"| {label} | {sum(values) / len(values):.2f} | {pct(values, 50):.2f} | {pct(values, 95):.2f} "
              f"| {pct(values, 99):.2f} | {max(values):.2f} |")
    other = [r["total_ms"] - r["begin_wait_ms"] - r["lock_held_ms"] for r in rows]
    print(f"| outside the transaction (total - wait - held) | {sum(other) / len(other):.2f} | "
          f"{pct(other, 50):.2f} | {pct(other, 95):.2f} | {pct(other, 99):.2f} | {max(other):.2f} |")
    print(f"mean SQL statements per request: {sum(r['n_sql'] for r in rows) / len(rows):.1f}; "
          f"transactions per request: {sum(r['tx'] for r in rows) / len(rows):.2f}")
    slow = sorted(rows, key=lambda r: r["total_ms"], reverse=True)[:5]
    print("slowest:", json.dumps(slow))
    for path in sorted(directory.glob("profile-*.pstats")):
        print(f"\n== {path.name} (cumulative, top 35) ==")
        pstats.Stats(str(path)).sort_stats("cumulative").print_stats(35)
        print(f"\n== {path.name} (tottime, top 25) ==")
        pstats.Stats(str(path)).sort_stats("tottime").print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("serve", nargs="?")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", type=Path, default=None, help="summarise a profile directory and exit")
    args = parser.parse_args()
    if args.report:
        report(args.report)
        return 0
    return serve(args.host, args.port, args.workers)


if __name__ == "__main__":
    sys.exit(main())
