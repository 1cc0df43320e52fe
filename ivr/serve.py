"""Runs the Flask app under gunicorn (a production WSGI server), one process tree.

gunicorn's threads read each request themselves, so a client that sends its headers or body
slowly holds a thread: 16 such connections (2 workers × 8 threads) stop the service. In production gunicorn listens on
127.0.0.1 only and nginx (deploy/nginx/hotline.conf) reads whole requests before passing them
on; see docs/reliability.md.
"""
from __future__ import annotations

import ipaddress
import logging

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from ivr.config import Settings
from ivr.console.accounts import demo_supervisor
from ivr.flow.loader import FlowError
from ivr.privacy import secure_handlers

log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):
    def __init__(self, app, options: dict) -> None:
        self.application, self.options = app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


class SafeGunicornLogger(GunicornLogger):
    """gunicorn's error (and access) log: its own handlers, formatted like every project log line.

    gunicorn logs request lines and URIs ("Invalid request from ip=…") through loggers that do
    not propagate to the root handler, so their handlers get the safe formatter here, on every
    setup (gunicorn runs it again on a configuration reload). Under `gunicorn app:app`,
    configure_logging in app.py does the same once; `--logger-class ivr.serve.SafeGunicornLogger`
    covers reloads there too.
    """

    def setup(self, cfg) -> None:
        super().setup(cfg)
        secure_handlers(self.error_log, self.access_log)


def _post_fork(_server, worker) -> None:
    # Connections must not be shared across processes: each worker opens its own.
    worker.app.application.extensions["hotline"].db.dispose(close=False)


def _console_line(app: Flask, host: str, port: int) -> str:
    rt = app.extensions["hotline"]
    with rt.sessions() as db, db.begin():
        login = demo_supervisor(db, rt.settings.var_dir, rt.clock())
    where = f"  Operator console: http://{host}:{port}/console/"
    if login is None:
        return where + "  (log in with an account from: python -m ivr operator add)\n"
    return where + f"  user {login[0]}, password {login[1]}\n"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def gunicorn_options(host: str, port: int, workers: int) -> dict:
    """The production options; X-Forwarded-* is left to the app's PROXY_HOPS (ivr/proxy.py)."""
    return {"bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": 8,
            "preload_app": True, "post_fork": _post_fork, "timeout": 30, "accesslog": None,
            "loglevel": "warning", "forwarded_allow_ips": "", "logger_class": SafeGunicornLogger}


def run_gunicorn(app: Flask, host: str, port: int, workers: int) -> None:
    """Serve `app` until gunicorn is told to stop (SIGTERM/SIGINT)."""
    if not _is_loopback(host):
        log.warning("gunicorn listens on %s directly: slow or stalled clients can hold all its threads; "
                    "in production keep it on 127.0.0.1 behind nginx (deploy/nginx/hotline.conf)", host)
    _Gunicorn(app, gunicorn_options(host, port, workers)).run()


def serve(settings: Settings, host: str, port: int, workers: int) -> int:
    from ivr.web import create_app
    try:
        app = create_app(settings)  # checks flows, migrates, loads demo data: once, before forking
    except FlowError as exc:
        for problem in exc.problems:
            log.error("flow error: %s", problem)
        return 1
    if settings.demo:
        print("\n  Demo hotline listening on http://%s:%d (SQLite: %s)\n"
              "  Place a call from another terminal:  .venv/bin/python -m ivr call%s\n"
              "  (keys: 0-9 * #, empty line = silence, h = hang up, ? = help)\n%s"
              % (host, port, settings.database_url,
                 "" if (host, port) == ("127.0.0.1", 5000) else f" --url http://{host}:{port}",
                 _console_line(app, host, port)), flush=True)
    run_gunicorn(app, host, port, workers)
    return 0
