#!/usr/bin/env python
"""Locked-database bench: what callers get while another program holds SQLite's write lock.

What it does
  1. starts ``python -m ivr serve`` (gunicorn, 2 workers x 8 threads, 127.0.0.1, a fresh
     HOTLINE_VAR_DIR, operators at work all day) with the default budgets
     (WEBHOOK_BUDGET_SECONDS 8, DB_WAIT_SECONDS 3);
  2. starts ``--callers`` calls (signed POST /twilio/voice, as Twilio signs them);
  3. holds SQLite's write lock (BEGIN IMMEDIATE) for ``--seconds`` (30) and, until it ends,
     has each caller in turn press 1 at the menu (a turn that needs the database), press 0 at
     the apology, and go round the queue's wait loop; times every answer;
  4. releases the lock, checks the menu works again, prints a Markdown table and one JSON line.

Bounded: the lock is released after --seconds whatever happens; each request has a 15 s
timeout (Twilio's).

Usage:  .venv/bin/python bench/locked_database.py [--callers 4] [--seconds 30]
"""
from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from nginx_server import free_port  # noqa: E402
from serve_process import ServeProcess  # noqa: E402

PUBLIC = "https://hotline.example.test"
TOKEN = "bench-locked-database-token"


class Caller:
    def __init__(self, base_url: str, number: int) -> None:
        self.base_url, self.sid = base_url, f"CA{number:032x}"
        self.turn = 1

    def post(self, path: str, **params: str) -> tuple[float, str]:
        form = {"CallSid": self.sid, "AccountSid": "AC" + "0" * 32, "From": "+8613800000002",
                "To": "+862160000000", "CallStatus": "in-progress", **params}
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, form)
        started = time.monotonic()
        response = requests.post(self.base_url + path, data=form, timeout=15,
                                 headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, response.status_code
        return time.monotonic() - started, response.text


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="locked-db-"))
    port = free_port()
    env = {"HOTLINE_VAR_DIR": str(var), "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC,
           "OPERATOR_HOURS": "00:00-23:59", "SENIOR_AGE": "200", "LOG_LEVEL": "ERROR"}
    times: dict[str, list[float]] = {"turn (menu key)": [], "0 at the apology": [], "queue wait loop": []}
    outcomes = {"apology": 0, "queued": 0, "announced": 0}
    with ServeProcess(["-m", "ivr", "serve", "--port", str(port)], port, env) as server:
        callers = [Caller(server.base_url, n + 1) for n in range(args.callers)]
        for caller in callers:
            caller.post("/twilio/voice")
            caller.post(f"/twilio/turn?t={caller.turn}", Digits="1")  # Mandarin, first call
            caller.turn += 1
        lock = sqlite3.connect(var / "hotline.sqlite", isolation_level=None, check_same_thread=False)
        lock.execute("BEGIN IMMEDIATE")
        release = threading.Timer(args.seconds, lambda: lock.execute("ROLLBACK"))
        release.start()
        ends = time.monotonic() + args.seconds
        try:
            while time.monotonic() < ends - 4:
                for caller in callers:
                    took, body = caller.post(f"/twilio/turn?t={caller.turn}", Digits="1")
                    times["turn (menu key)"].append(took)
                    outcomes["apology"] += "/twilio/recover" in body
                    took, body = caller.post("/twilio/recover", Digits="0")
                    times["0 at the apology"].append(took)
                    outcomes["queued"] += "<Enqueue" in body
                    took, body = caller.post("/twilio/queue/wait", QueuePosition="2", QueueTime="40")
                    times["queue wait loop"].append(took)
                    outcomes["announced"] += "<Gather" in body
        finally:
            release.join()
            lock.close()
        _took, body = callers[0].post("/twilio/recover", Digits="1")
        back = "<Gather" in body and "/twilio/turn" in body
    rows = {kind: {"answers": len(v), "p50_ms": round(_percentile(v, 0.5) * 1000), "max_ms": round(max(v) * 1000)}
            for kind, v in times.items() if v}
    print(f"\nSQLite write lock held {args.seconds:.0f} s by another program, {args.callers} callers\n")
    print("| request | answers | p50 | slowest |\n|---|---|---|---|")
    for kind, row in rows.items():
        print(f"| {kind} | {row['answers']} | {row['p50_ms']} ms | {row['max_ms']} ms |")
    print(f"\napologies {outcomes['apology']}, queued without the database {outcomes['queued']}, "
          f"wait-loop announcements {outcomes['announced']}; menu after the lock: {'ok' if back else 'FAILED'}")
    print(json.dumps({"machine": {"cores": __import__("os").cpu_count(), "python": platform.python_version()},
                      "rows": rows, "outcomes": outcomes, "menu_after": back}))
    return 0 if back else 1


if __name__ == "__main__":
    sys.exit(main())
