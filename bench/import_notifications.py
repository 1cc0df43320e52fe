#!/usr/bin/env python
"""Import bench: 100 000 matters, then a re-import with 5 % of them changed, while calls go on.

What it does
  1. builds the service in this process on a fresh SQLite database (HOTLINE_VAR_DIR in a temp
     dir, no demo data, operators at work: Thursday 10:00 in Shanghai);
  2. writes two CSV files: ``--matters`` (100 000) matters of ≈ 50 000 people (mobiles and
     Shanghai landlines, 1–5 matters each, statuses as a service's export has them), then the
     same matters with ``--changed`` (5 %) of them moved on to a next status — some to one
     that flows/notifications.yaml tells (need_documents, ready_for_pickup, paid, rejected),
     the others not (approved, completed, in_review …);
  3. imports the first file in a child process (``import_matters`` with a sessionmaker, as
     ``python -m ivr import`` does) and times it; then times a dry run of the second file
     (``--dry-run``: compared and counted, nothing written);
  4. plays ``--callers`` (4) threads of simulated keypad calls (TwilioSimulator + WsgiTransport,
     signed as Twilio signs) against the service in this process for ``--baseline`` seconds:
     language remembered, 1 status, the ID's last four + #, the matters heard, # back to the
     menu, hang up; times every webhook POST;
  5. the same calls while the second file is imported in a child process; only turns that
     started while the import ran count;
  6. the same calls while the worker's notification pass (ivr.notify.planning.run_pass) runs in
     a child process over the changes: one notification queued per number (calls are placed
     only inside the call hours of flows/notifications.yaml, so at night none);
  7. checks the changes recorded and the notifications queued against those the generator
     made, prints Markdown tables and one JSON line.

Bounded: every phase has a time limit, the child is killed after ``--import-timeout`` (240 s).

Usage:  .venv/bin/python bench/import_notifications.py [--matters 100000] [--changed 0.05]
        [--callers 4] [--baseline 20] [--chunk-rows 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from ivr.config import SHANGHAI, load_settings  # noqa: E402
from ivr.importer import CHUNK_ROWS  # noqa: E402
from ivr.simulator.transport import HttpResponse, WsgiTransport  # noqa: E402

BASE = "https://hotline.example.test"
TOKEN = "bench-import-token"
NUMBER = "+862160000000"
SECRET = "bench-import-secret"
THURSDAY_10AM = datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI)
HEADER = "case_no,service,status,updated_at,phone,id_last4,birth_year,detail\n"
SERVICES = ["application", "social_security_card", "pension", "medical_insurance", "housing_fund"]
# How a service's export is spread over the statuses, and where each status goes next.
SPREAD = {"received": 10, "in_review": 30, "need_documents": 8, "approved": 10, "ready_for_pickup": 7,
          "paid": 15, "rejected": 3, "completed": 17}
NEXT = {"received": ["in_review", "need_documents", "rejected"],
        "in_review": ["need_documents", "approved", "rejected", "paid"],
        "need_documents": ["in_review", "received"],
        "approved": ["ready_for_pickup", "paid", "completed"],
        "ready_for_pickup": ["completed"],
        "paid": ["completed"],
        "rejected": ["received"]}  # completed matters stay completed
DETAILS = ["", "", "", "要补交近半年的收入证明",
           "取件地点：徐汇区社区事务受理服务中心一楼三号窗口",
           "发放日期 2026-12-05", "材料不齐，请带户口本重新申请"]
CALLERS = [(f"+8613500000{i:03d}", f"{1000 + 37 * i:04d}") for i in range(12)]  # number, ID last four
PRESSES = ["1", None, "#"]  # None: the caller's ID last four + #


@dataclass
class Matter:
    case_no: str
    service: str
    status: str
    phone: str
    last4: str
    birth_year: int
    detail: str

    def line(self, status: str | None = None) -> str:
        return (f"{self.case_no},{self.service},{status or self.status},2026-11-{(int(self.case_no) % 25) + 1:02d},"
                f"{self.phone},{self.last4},{self.birth_year},{self.detail}\n")


def _phone(rng: random.Random) -> str:
    if rng.random() < 0.15:  # a Shanghai landline
        return f"+8621{rng.randint(20000000, 69999999)}"
    return f"+861{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}"


def generate(count: int, changed: float, seed: int = 2026) -> tuple[str, str, dict]:
    rng = random.Random(seed)
    statuses, weights = list(SPREAD), list(SPREAD.values())
    matters: list[Matter] = []
    for number, last4 in CALLERS:  # the bench's callers: 1–5 matters each
        for _ in range(rng.randint(1, 5)):
            matters.append(Matter("", rng.choice(SERVICES), rng.choices(statuses, weights)[0], number, last4,
                                  1972, rng.choice(DETAILS)))  # under 65: no offer of a person first
    while len(matters) < count:
        phone, last4, born = _phone(rng), f"{rng.randint(0, 9999):04d}", rng.randint(1930, 1975)
        for _ in range(min(rng.choice([1, 1, 1, 1, 2, 2, 3, 5]), count - len(matters))):
            matters.append(Matter("", rng.choice(SERVICES), rng.choices(statuses, weights)[0], phone, last4,
                                  born, rng.choice(DETAILS)))
    rng.shuffle(matters)
    for index, matter in enumerate(matters):
        matter.case_no = f"2026{index:07d}"
    movable = [m for m in matters if m.status != "completed" and m.phone not in dict(CALLERS)]
    moved = {id(m): rng.choice(NEXT[m.status]) for m in rng.sample(movable, int(count * changed))}
    from ivr.notify.rules import load_rules
    notify_on = load_rules(ROOT / "flows").notify_on
    told = [m for m in matters if moved.get(id(m)) in notify_on]
    expected = {"changed": len(moved), "to_tell": len(told), "numbers": len({m.phone for m in told}),
                "people": len({m.phone for m in matters})}
    first = HEADER + "".join(m.line() for m in matters)
    second = HEADER + "".join(m.line(moved.get(id(m))) for m in matters)
    return first, second, expected


def child_import(csv_path: str, database_url: str, dry_run: bool = False, chunk_rows: int = CHUNK_ROWS) -> int:
    """In the child process: one import as `python -m ivr import` does it, timed."""
    from ivr.db.schema import make_engine, session_factory, upgrade
    from ivr.importer import import_matters
    from ivr.notify.rules import load_rules
    engine = make_engine(database_url)
    upgrade(engine)
    rules = load_rules(ROOT / "flows")
    began, started, cpu = time.time(), time.perf_counter(), time.process_time()
    report = import_matters(session_factory(engine), Path(csv_path), SECRET, notify_on=rules.notify_on,
                            dry_run=dry_run, chunk_rows=chunk_rows)
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "cpu": round(time.process_time() - cpu, 2),
                      "began": began, "ended": time.time(),
                      "added": report.added, "updated": report.updated, "errors": len(report.errors),
                      "changes": report.changes, "notify_numbers": report.notify_numbers,
                      "summary": report.summary()}))
    return 0


def child_notify(database_url: str) -> int:
    """In the child process: the worker's notification pass (ivr.notify.planning.run_pass) over
    the changes the second import recorded: notifications queued, calls placed if in hours."""
    from ivr.config import load_settings as settings_from
    from ivr.db.schema import make_engine, session_factory, upgrade
    from ivr.engine.policy import Policy
    from ivr.notify.planning import run_pass
    from ivr.notify.rules import load_rules
    from ivr.runtime import shanghai_now
    from ivr.service_rules import PolicySource
    engine = make_engine(database_url)
    upgrade(engine)
    settings = settings_from({**os.environ, "DATABASE_URL": database_url})  # the bench's settings
    rules = load_rules(ROOT / "flows")
    began, started, cpu = time.time(), time.perf_counter(), time.process_time()
    queued, placed = run_pass(session_factory(engine), rules, PolicySource(Policy.from_settings(settings)), settings,
                              shanghai_now())
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "cpu": round(time.process_time() - cpu, 2),
                      "began": began, "ended": time.time(), "queued": queued, "placed": placed}))
    return 0


class Samples:
    def __init__(self) -> None:
        self.turns: list[tuple[float, float]] = []  # (start, time.time(); seconds)
        self.errors: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()

    def add(self, start: float, seconds: float, error: str | None) -> None:
        with self._lock:
            self.turns.append((start, seconds))
            if error:
                self.errors.append(error)


class TimedWsgi(WsgiTransport):
    def __init__(self, app, samples: Samples) -> None:
        super().__init__(app)
        self.samples = samples

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> HttpResponse:
        at, start = time.time(), time.perf_counter()
        response = super().post(url, params, headers)
        error = None
        if response.status != 200:
            error = f"HTTP {response.status}"
        elif b"/twilio/recover" in response.body:
            error = "system-error TwiML (apology)"
        self.samples.add(at, time.perf_counter() - start, error)
        return response


def play_calls(app, samples: Samples, stop: threading.Event, index: int, limit_s: float) -> None:
    from ivr.simulator.twilio_sim import TwilioSimulator, VirtualClock
    sim = TwilioSimulator(TimedWsgi(app, samples), BASE, TOKEN, clock=VirtualClock(THURSDAY_10AM), seed=index)
    ends = time.monotonic() + limit_s
    turn = 0
    while not stop.is_set() and time.monotonic() < ends:
        number, last4 = CALLERS[(index + turn) % len(CALLERS)]
        turn += 1
        call = sim.place_call(number, NUMBER)
        for keys in PRESSES:
            if call.ended:
                break
            call.press(keys or last4 + "#")
            heard = " ".join(call.heard_since_last_input())
            if keys is None and "第一件" not in heard:
                samples.errors.append("the matters were not read")
        if not call.ended:
            call.hangup()
        with samples._lock:
            samples.calls += 1


def run_calls(app, samples: Samples, callers: int, stop: threading.Event, limit_s: float) -> list[threading.Thread]:
    threads = [threading.Thread(target=play_calls, args=(app, samples, stop, i, limit_s), daemon=True)
               for i in range(callers)]
    for thread in threads:
        thread.start()
    return threads


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))] if ordered else float("nan")


def figures(samples: list[float]) -> dict:
    ms = [s * 1000 for s in samples]
    return {"turns": len(ms), "p50_ms": round(percentile(ms, 0.5), 1), "p99_ms": round(percentile(ms, 0.99), 1),
            "max_ms": round(max(ms), 1) if ms else None}


def start_child(csv: Path, url: str, env: dict, chunk_rows: int, dry_run: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--child", str(csv), url, "--chunk-rows", str(chunk_rows)]
                            + ["--dry"] * dry_run,
                            env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def child_while_calling(app, samples: Samples, args: argparse.Namespace,
                        start: Callable[[], subprocess.Popen]) -> dict | None:
    """Calls under way, then the child started (`start` launches it), then calls a second after
    it ended; the child's JSON result, or None (its error printed) if it failed."""
    stop = threading.Event()
    threads = run_calls(app, samples, args.callers, stop, args.import_timeout)
    time.sleep(1.0)  # calls under way before the child starts
    child = start()
    try:
        out, err = child.communicate(timeout=args.import_timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
    time.sleep(1.0)  # and after it
    stop.set()
    for thread in threads:
        thread.join(20)
    if child.returncode:
        print(err, file=sys.stderr)
        return None
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--matters", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.05)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--baseline", type=float, default=20.0, help="seconds of calls without an import")
    parser.add_argument("--import-timeout", type=float, default=240.0)
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows per transaction of the import")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--child", nargs=2, metavar=("CSV", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--dry", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-notify", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_notify:
        return child_notify(args.child_notify)
    if args.child:
        return child_import(*args.child, dry_run=args.dry, chunk_rows=args.chunk_rows)

    workdir = Path(tempfile.mkdtemp(prefix="import-bench-"))
    try:
        return bench(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def bench(args: argparse.Namespace, workdir: Path) -> int:
    began = datetime.now().astimezone()
    started = time.perf_counter()
    first, second, expected = generate(args.matters, args.changed)
    (workdir / "first.csv").write_text(first, encoding="utf-8")
    (workdir / "second.csv").write_text(second, encoding="utf-8")
    print(f"generated {args.matters} matters of {expected['people']} numbers, {expected['changed']} moved on "
          f"({expected['to_tell']} to a status told) in {time.perf_counter() - started:.1f} s", flush=True)
    env = {**os.environ, "HOTLINE_VAR_DIR": str(workdir / "var"),
           "PROMPT_CACHE_DIR": str(ROOT / "var" / "bench-prompt-cache"),
           "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": BASE, "TWILIO_NUMBER": NUMBER,
           "ID_HASH_SECRET": SECRET, "SPEECH": "off", "LOG_LEVEL": "WARNING", "DB_WAIT_SECONDS": "3"}
    settings = load_settings({k: v for k, v in env.items()})
    from ivr.web import create_app
    app = create_app(settings, clock=lambda: THURSDAY_10AM)  # no DEMO_CSV: an empty database
    url = settings.database_url

    child = start_child(workdir / "first.csv", url, env, args.chunk_rows)
    out, err = child.communicate(timeout=args.import_timeout)
    if child.returncode:
        print(err, file=sys.stderr)
        return 1
    first_import = json.loads(out.strip().splitlines()[-1])
    print(f"first import: {first_import['summary']} in {first_import['seconds']} s", flush=True)
    child = start_child(workdir / "second.csv", url, env, args.chunk_rows, dry_run=True)
    out, err = child.communicate(timeout=args.import_timeout)
    if child.returncode:
        print(err, file=sys.stderr)
        return 1
    dry_import = json.loads(out.strip().splitlines()[-1])
    print(f"dry run: {dry_import['summary']} in {dry_import['seconds']} s", flush=True)

    from ivr.db.models import CallerPreference
    from ivr.timeutil import to_db
    with app.extensions["hotline"].sessions() as db, db.begin():
        for number, _ in CALLERS:
            db.merge(CallerPreference(phone=number, language="cmn", updated_at=to_db(THURSDAY_10AM)))
    warm = Samples()  # unmeasured: the prompts' first renders
    stop = threading.Event()
    for thread in run_calls(app, warm, 1, stop, 10.0):
        thread.join(15)
    stop.set()

    quiet = Samples()
    stop = threading.Event()
    threads = run_calls(app, quiet, args.callers, stop, args.baseline)
    for thread in threads:
        thread.join(args.baseline + 15)

    busy = Samples()
    second_import = child_while_calling(
        app, busy, args, lambda: start_child(workdir / "second.csv", url, env, args.chunk_rows))
    if second_import is None:
        return 1
    import_began, import_ended = second_import.pop("began"), second_import.pop("ended")
    for result in (first_import, dry_import):
        result.pop("began"), result.pop("ended")
    print(f"second import: {second_import['summary']} in {second_import['seconds']} s", flush=True)
    during = [s for start, s in busy.turns if import_began <= start <= import_ended]
    outside = [s for start, s in busy.turns if not import_began <= start <= import_ended]

    # The worker's pass over those changes, while calls go on (queues the notifications).
    gathering = Samples()
    notify_pass = child_while_calling(app, gathering, args, lambda: subprocess.Popen(
        [sys.executable, __file__, "--child-notify", url], env=env, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    if notify_pass is None:
        return 1
    pass_began, pass_ended = notify_pass.pop("began"), notify_pass.pop("ended")
    during_pass = [s for start, s in gathering.turns if pass_began <= start <= pass_ended]
    print(f"worker pass: {notify_pass['queued']} notifications queued, {notify_pass['placed']} calls placed "
          f"in {notify_pass['seconds']} s", flush=True)

    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        recorded = conn.execute("SELECT count(*), count(DISTINCT phone) FROM matter_changes").fetchone()
        notified = conn.execute("SELECT count(*) FROM notifications").fetchone()[0]
        size_mb = round(os.path.getsize(url.removeprefix("sqlite:///")) / 1e6, 1)
    ok = (recorded[0] == expected["to_tell"] == second_import["changes"] == dry_import["changes"]
          and dry_import["notify_numbers"] == second_import["notify_numbers"]
          and recorded[1] == expected["numbers"] == second_import["notify_numbers"])

    ok = ok and notified == notify_pass["queued"] == recorded[1]
    rows = [("without an import", figures([s for _, s in quiet.turns]), quiet),
            ("during the second import", figures(during), busy),
            ("during the worker's notification pass", figures(during_pass), gathering)]
    print(f"\n{args.matters} matters, {args.changed:.0%} changed, {args.chunk_rows} rows a transaction; "
          f"{args.callers} callers in this process "
          f"(SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, {os.cpu_count()} cores, "
          f"{began:%Y-%m-%d %H:%M %Z})\n")
    print("| import | wall s | CPU s | added / updated | changes recorded | numbers to tell |")
    print("|---|---|---|---|---|---|")
    for name, result in (("first (empty database)", first_import), ("second, --dry-run", dry_import),
                         ("second (5 % changed)", second_import)):
        print(f"| {name} | {result['seconds']} | {result['cpu']} | {result['added']} / {result['updated']} | "
              f"{result['changes']} | {result['notify_numbers']} |")
    print(f"\nexpected: {expected['to_tell']} changes to tell {expected['numbers']} numbers "
          f"({expected['changed'] - expected['to_tell']} moved to statuses not told); in the database: "
          f"{recorded[0]} rows, {recorded[1]} numbers — {'ok' if ok else 'MISMATCH'}; database {size_mb} MB")
    print(f"worker's notification pass: {notify_pass['queued']} notifications queued for {recorded[1]} numbers "
          f"({notified} in the database), {notify_pass['placed']} calls placed, in {notify_pass['seconds']} s "
          f"({notify_pass['cpu']} s CPU)\n")
    print("| call turns | turns | p50 ms | p99 ms | max ms | errors |")
    print("|---|---|---|---|---|---|")
    for name, result, samples in rows:
        print(f"| {name} | {result['turns']} | {result['p50_ms']} | {result['p99_ms']} | {result['max_ms']} | "
              f"{len(samples.errors)} |")
    print(json.dumps({"bench": "import_notifications", "matters": args.matters, "changed": args.changed,
                      "callers": args.callers, "chunk_rows": args.chunk_rows, "first_import": first_import, "dry_run": dry_import,
                      "second_import": second_import,
                      "expected": expected, "recorded": list(recorded), "ok": ok,
                      "turns_quiet": rows[0][1], "turns_during_import": rows[1][1],
                      "notify_pass": notify_pass, "turns_during_notify_pass": rows[2][1],
                      "turns_around_import": figures(outside), "errors": busy.errors[:5] + quiet.errors[:5],
                      "seconds": round(time.perf_counter() - started, 1)}, ensure_ascii=False))
    return 0 if ok and not busy.errors and not quiet.errors and not gathering.errors else 1


if __name__ == "__main__":
    sys.exit(main())
