#!/usr/bin/env python
"""Console load: does the operator console's live polling slow callers down, and how fast is the poll?

What it does (everything on 127.0.0.1, every loop bounded in count and in time)
  1. starts ``python -m ivr serve`` (gunicorn, 2 workers) with a fresh HOTLINE_VAR_DIR and
     OPERATOR_HOURS=00:00-23:59, so the queue is open whatever the time (today and tomorrow are
     also forced to be working days in a copy of flows/calendar.yaml if they are not already);
     creates ``--operators`` accounts with ``python -m ivr operator add … --password-stdin``
     against the same HOTLINE_VAR_DIR, and logs each in with its own ``requests.Session``
     (GET /console/login for the CSRF token, then POST; cookie session, as a browser);
  2. puts ``--waiting`` callers into the queue: simulated calls over HTTP that choose the language,
     check a matter's status (case number + ID), go back to the menu and press 0. Their queue wait
     loop is never advanced, so they stay "waiting" in the database for the whole run;
  3. phase A (baseline): ``--calls`` paced callers follow bench/load_calls.py's realistic keypad
     path for ``--duration`` seconds (calls in progress then finish); no console polling;
  4. phase B: the same callers with the same random pacing, while every operator session polls
     GET /console/api/waiting every ``--poll-seconds`` (what the "Waiting now" page does in a
     browser), staggered; the poll is timed and its JSON checked (count must equal --waiting);
  5. prints a Markdown table comparing A and B and one JSON line; hangs up the waiting callers
     (the list must then be empty), stops the server (also on Ctrl-C, SIGTERM, errors) and
     deletes the temp dir unless ``--keep-db``.

Webhook turns are timed and counted as errors exactly as in bench/load_calls.py (whose Server,
transport, caller paths and summary helpers this reuses). A poll is an error if it is not a 200
JSON answer, fails at the transport level (10 s timeout), or reports a count other than --waiting.

Usage:  .venv/bin/python bench/console_load.py                       # 10 operators, 20 waiting, 30 calls
        .venv/bin/python bench/console_load.py --pairs 2 --wait-quiet 60   # A B A B on a quieter machine
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))      # bench/ (for load_calls)

from load_calls import (  # noqa: E402  (load_calls puts the repo root on sys.path)
    CALLERS, HOTLINE_NUMBER, MAIN_MENU, REQUEST_TIMEOUT_S, ROOT, TOKEN, Caller, CallDriver, CallResult, FlowDeviation,
    Recorder, Server, TimedHttpTransport, calibrate, db_summary, free_port, latency_summary, parse_think,
    run_one_call, server_log_errors, system_busy_seconds, wait_until_quiet,
)
from ivr.simulator.twilio_sim import SimulatorError, TwilioSimulator, VirtualClock  # noqa: E402

OPERATOR_HOURS = "00:00-23:59"
OPERATOR_PASSWORD = "bench operator password {i}"
CLI_TIMEOUT_S = 60.0
PHASE_GRACE_S = 300.0             # after --duration: calls in progress finish within this bound
CSRF = re.compile(r'name="(?:[\w-]+-)?csrf_token"[^>]*value="([^"]+)"')


# --- the waiting callers -------------------------------------------------------------------------

def waiting_caller(i: int) -> Caller:
    """Unregistered numbers, distinct from load_calls' callers: case number, then ID 2468."""
    return Caller(f"+86136000001{i:02d}", "2468", case_no="20261020008")


def queue_one(sim: TwilioSimulator, caller: Caller, stop: threading.Event):
    """Status check, back to the menu, then 0: the call ends up parked in the queue's wait loop."""
    driver = CallDriver(sim, caller, "1", (0.0, 0.0), stop, random.Random(0))
    driver.call = call = sim.place_call(caller.number, HOTLINE_NUMBER)
    text = " ".join(call.heard_since_last_input())
    if "说普通话，请按1" in text:
        text = driver.act("1", (), "choose language")
    if not any(m in text for m in MAIN_MENU):
        raise FlowDeviation(f"start: no main menu, heard {text[-160:]!r}")
    text = driver.act("1", ("最后四位", "受理编号"), "status")
    if "受理编号" in text:
        driver.act(f"{caller.case_no}#", ("最后四位",), "case number")
    driver.act(f"{caller.id_keys}#", ("核对好了",), "ID check")
    driver.act("#", MAIN_MENU, "back to menu")
    call.press("0")
    heard = " ".join(call.heard_since_last_input())
    if call.ended or call.state != "queued":
        raise FlowDeviation(f"pressed 0 but the call is {call.state!r} (ended by {call.ended_by}); heard "
                            f"{heard[-160:]!r} — is the queue closed (operator hours / calendar)?")
    return call


# --- operators -----------------------------------------------------------------------------------

def cli_env(var_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HOTLINE_VAR_DIR": str(var_dir), "TWILIO_AUTH_TOKEN": TOKEN,
                "PYTHONPATH": str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")})
    for name in ("DATABASE_URL", "PROMPT_CACHE_DIR"):     # the server's database, never a configured one
        env.pop(name, None)
    return env


def create_operators(n: int, var_dir: Path) -> list[tuple[str, str]]:
    accounts = []
    env = cli_env(var_dir)
    for i in range(1, n + 1):
        username, password = f"operator{i:02d}", OPERATOR_PASSWORD.format(i=i)
        cmd = [sys.executable, "-m", "ivr", "operator", "add", username, "--role", "operator",
               "--phone", f"+861390000{i:04d}", "--password-stdin"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, input=password + "\n", capture_output=True, text=True,
                              timeout=CLI_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
        accounts.append((username, password))
    return accounts


def log_in(base_url: str, username: str, password: str):
    import requests
    session = requests.Session()
    page = session.get(base_url + "/console/login", timeout=REQUEST_TIMEOUT_S)
    found = CSRF.search(page.text)
    if page.status_code != 200 or not found:
        raise RuntimeError(f"login page: HTTP {page.status_code}, CSRF token {'found' if found else 'missing'}")
    answer = session.post(base_url + "/console/login", timeout=REQUEST_TIMEOUT_S, allow_redirects=False,
                          data={"csrf_token": found.group(1), "username": username, "password": password})
    if answer.status_code != 302 or answer.headers.get("Location") != "/console/":
        raise RuntimeError(f"login of {username}: HTTP {answer.status_code} {answer.headers.get('Location')!r}")
    return session


class PollRecorder:
    """Samples of polls: (start, seconds, status, count or None, html bytes, error or None). Thread-safe."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, int, int | None, int, str | None]] = []
        self._lock = threading.Lock()

    def add(self, *sample) -> None:
        with self._lock:
            self.samples.append(sample)


def poll_once(session, base_url: str, expected: int | None) -> tuple[float, int, int | None, int, str | None]:
    start = time.perf_counter()
    try:
        response = session.get(base_url + "/console/api/waiting", headers={"Accept": "application/json"},
                               timeout=REQUEST_TIMEOUT_S, allow_redirects=False)
        body = response.content
    except Exception as exc:  # noqa: BLE001 - a transport failure is a counted poll error
        return time.perf_counter() - start, 0, None, 0, f"{type(exc).__name__}: {str(exc)[:120]}"
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        return elapsed, response.status_code, None, len(body), f"HTTP {response.status_code}"
    try:
        data = json.loads(body)
        count = int(data["count"])
        html_bytes = len(data["html"].encode())
        if not data.get("version"):
            raise KeyError("version")
    except (ValueError, KeyError, TypeError) as exc:
        return elapsed, 200, None, len(body), f"bad JSON: {type(exc).__name__}: {exc}"
    error = None if expected is None or count == expected else f"count {count}, expected {expected}"
    return elapsed, 200, count, html_bytes, error


# --- one phase -------------------------------------------------------------------------------------

def server_cpu(server: Server) -> dict[int, float]:
    return {pid: Server.cpu_seconds(pid) for pid in server.pids()}


def run_phase(name: str, phase_no: int, args, server: Server, sessions: list, stop: threading.Event,
              twin_cache: dict) -> dict:
    """Paced callers for --duration seconds; with sessions, each also polls every --poll-seconds."""
    recorder, polls = Recorder(), PollRecorder()
    results: list[CallResult] = []
    results_lock = threading.Lock()
    polls_over = threading.Event()
    barrier = threading.Barrier(args.calls + len(sessions) + 1)
    run_deadline = [float("inf")]
    max_polls = int((args.duration + PHASE_GRACE_S) / args.poll_seconds) + 2

    def caller_thread(index: int) -> None:
        # A new seed in each phase: the simulator's CallSids come from it, and a CallSid the
        # server has seen before would continue that (finished) call instead of starting one.
        rng = random.Random((args.seed * 1009 + phase_no) * 100003 + index)
        transport = TimedHttpTransport(recorder)
        try:
            barrier.wait(timeout=60)
            if args.ramp:
                stop.wait(args.ramp * index / args.calls)
            for rnd in range(1000):
                if stop.is_set() or time.monotonic() >= run_deadline[0]:
                    break
                caller = CALLERS[(index + rnd * 5) % len(CALLERS)]
                res = run_one_call(transport, server.base_url, caller, str((index + rnd) % 3 + 1), args.think,
                                   stop, rng, twin_cache)
                with results_lock:
                    results.append(res)
        except threading.BrokenBarrierError:
            pass
        finally:
            transport.close()

    def poll_thread(index: int, session) -> None:
        try:
            barrier.wait(timeout=60)
        except threading.BrokenBarrierError:
            return
        # Browsers are not in step: the sessions' first polls are spread over one period.
        due = time.monotonic() + args.poll_seconds * index / max(1, len(sessions))
        for _ in range(max_polls):
            if polls_over.wait(max(0.0, due - time.monotonic())) or stop.is_set():
                return
            t0 = time.perf_counter()
            polls.add(t0, *poll_once(session, server.base_url, args.waiting))
            due += args.poll_seconds
            if due < time.monotonic():          # a poll slower than the period: start again from now
                due = time.monotonic()

    threads = [threading.Thread(target=caller_thread, args=(i,), name=f"{name}-call-{i}", daemon=True)
               for i in range(args.calls)]
    threads += [threading.Thread(target=poll_thread, args=(i, s), name=f"{name}-poll-{i}", daemon=True)
                for i, s in enumerate(sessions)]
    calib_before = calibrate()
    cpu_before, busy_before = server_cpu(server), system_busy_seconds()
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    for t in threads:
        t.start()
    barrier.wait(timeout=60)
    started = time.perf_counter()
    run_deadline[0] = time.monotonic() + args.duration
    hard_deadline = time.monotonic() + args.duration + PHASE_GRACE_S
    try:
        for t in threads[:args.calls]:
            while t.is_alive():
                t.join(timeout=0.5)
                if time.monotonic() > hard_deadline:
                    raise RuntimeError(f"phase {name} exceeded its hard time bound")
    except BaseException:             # Ctrl-C, SIGTERM, the hard bound: calls stop at their next key
        stop.set()
        raise
    finally:
        polls_over.set()
        end = time.monotonic() + REQUEST_TIMEOUT_S + 5
        for t in threads:
            t.join(timeout=max(0.0, end - time.monotonic()))
    wall = time.perf_counter() - started
    cpu_after, busy_after = server_cpu(server), system_busy_seconds()
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    calib_after = calibrate()

    samples = list(recorder.samples)
    poll_samples = list(polls.samples)
    by_path: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        by_path[s[2]].append(s[1])
    calls_with_problem = sum(1 for r in results if r.problem or r.sim_errors)
    server_cpu_s = sum(cpu_after.get(pid, 0.0) - cpu_before.get(pid, 0.0) for pid in cpu_after)
    client_cpu_s = (self_after.ru_utime - self_before.ru_utime) + (self_after.ru_stime - self_before.ru_stime)
    poll_ok = [p for p in poll_samples if p[5] is None]
    return {
        "phase": name, "operators_polling": len(sessions), "wall_s": round(wall, 2),
        "calls_done": len(results), "turns": len(samples),
        "turns_per_s": round(len(samples) / wall, 1) if wall > 0 else 0.0,
        **latency_summary([s[1] for s in samples]),
        "failed_turns": sum(1 for s in samples if s[4]), "failed_calls": calls_with_problem,
        "turn_errors": dict(Counter(s[4] for s in samples if s[4])),
        "call_problems": dict(Counter(r.problem for r in results if r.problem)),
        "sim_errors": dict(Counter(e for r in results for e in r.sim_errors)),
        "outcomes": dict(Counter(r.outcome for r in results)),
        "by_endpoint": {p: {"turns": len(v), **latency_summary(v)} for p, v in sorted(by_path.items())},
        "polls": len(poll_samples),
        "polls_per_s": round(len(poll_samples) / wall, 2) if wall > 0 else 0.0,
        "poll": latency_summary([p[1] for p in poll_samples]) if poll_samples else {},
        "poll_errors": sum(1 for p in poll_samples if p[5]),
        "poll_error_kinds": dict(Counter(p[5] for p in poll_samples if p[5])),
        "waiting_seen": dict(Counter(str(p[3]) for p in poll_samples)),
        "poll_html_bytes": round(sum(p[4] for p in poll_ok) / len(poll_ok)) if poll_ok else 0,
        "server_cpu_s": round(server_cpu_s, 2),
        "client_cpu_s": round(client_cpu_s, 2),
        # everything else on the machine during the phase (other people's tests, builds…)
        "other_cpu_s": round(max(0.0, busy_after - busy_before - server_cpu_s - client_cpu_s), 2),
        "capacity_cpu_s": round(wall * (os.cpu_count() or 1), 2),
        "calibration_ms": [calib_before, calib_after],
        "_turn_s": [s[1] for s in samples], "_poll_s": [p[1] for p in poll_samples],   # for pooled rows
    }


# --- report -------------------------------------------------------------------------------------

def markdown_table(result: dict) -> str:
    head = ("| phase | operators polling | calls done | turns | turns/s | turn p50 ms | turn p95 ms | turn p99 ms "
            "| turn max ms | turn errors (turns/calls) | polls | poll p50 ms | poll p95 ms | poll p99 ms "
            "| poll max ms | poll errors | waiting seen | server CPU s | CPU calib ms |")
    lines = [head, "|" + "---|" * 19]
    for r in result["phases"]:
        p = r["poll"] or {}
        seen = ", ".join(f"{k}×{v}" for k, v in sorted(r["waiting_seen"].items())) or "–"
        lines.append(
            f"| {r['phase']} | {r['operators_polling']} | {r['calls_done']} | {r['turns']} | {r['turns_per_s']} "
            f"| {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['max_ms']} "
            f"| {r['failed_turns']}/{r['failed_calls']} | {r['polls'] or '–'} | {p.get('p50_ms', '–')} "
            f"| {p.get('p95_ms', '–')} | {p.get('p99_ms', '–')} | {p.get('max_ms', '–')} "
            f"| {r['poll_errors'] if r['polls'] else '–'} | {seen} | {r['server_cpu_s']} "
            f"| {r['calibration_ms'][0]}/{r['calibration_ms'][1]} |")
    return "\n".join(lines)


def pooled(phases: list[dict], name: str) -> dict:
    """One row for all phases of a kind (A or B) when the pair is repeated: the samples together."""
    rows = [r for r in phases if r["phase"].startswith(name)]
    turns = [v for r in rows for v in r["_turn_s"]]
    polls = [v for r in rows for v in r["_poll_s"]]
    seen: Counter = Counter()
    for r in rows:
        seen.update(r["waiting_seen"])
    total = lambda key: sum(r[key] for r in rows)  # noqa: E731
    wall = total("wall_s")
    return {
        "phase": f"{name} (all {len(rows)})", "operators_polling": rows[0]["operators_polling"],
        "wall_s": round(wall, 2), "calls_done": total("calls_done"), "turns": len(turns),
        "turns_per_s": round(len(turns) / wall, 1) if wall else 0.0, **latency_summary(turns),
        "failed_turns": total("failed_turns"), "failed_calls": total("failed_calls"),
        "polls": len(polls), "poll": latency_summary(polls) if polls else {}, "poll_errors": total("poll_errors"),
        "waiting_seen": dict(seen), "server_cpu_s": round(total("server_cpu_s"), 2),
        "other_cpu_s": round(total("other_cpu_s"), 2),
        "calibration_ms": [min(min(r["calibration_ms"]) for r in rows), max(max(r["calibration_ms"]) for r in rows)],
    }


def handoff_summary(db_path: Path) -> dict:
    if not db_path.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            return dict(con.execute("SELECT status, count(*) FROM handoffs GROUP BY status").fetchall())
        finally:
            con.close()
    except sqlite3.Error as exc:
        return {"error": str(exc)}


# --- main -----------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--operators", type=int, default=10, help="operator sessions polling in phase B (default 10)")
    p.add_argument("--waiting", type=int, default=20, help="callers kept waiting in the queue (default 20)")
    p.add_argument("--calls", type=int, default=30, help="concurrent paced callers in each phase (default 30)")
    p.add_argument("--duration", type=float, default=40.0,
                   help="seconds each phase keeps starting calls (default 40); calls in progress finish")
    p.add_argument("--poll-seconds", type=float, default=3.0,
                   help="poll period per operator (default 3, as the page)")
    p.add_argument("--think", type=parse_think, default=(0.5, 1.5),
                   help="seconds before each key press, SECONDS or MIN:MAX (default 0.5:1.5: paced)")
    p.add_argument("--ramp", type=float, default=5.0,
                   help="spread the callers' first calls over this many seconds (default 5)")
    p.add_argument("--pairs", type=int, default=1, help="repeat the A, B pair this many times (default 1)")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to SECONDS for the machine to be idle (default 0: do not wait)")
    p.add_argument("--keep-db", action="store_true", help="keep the temp var dir (database, server log)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--serve-cmd", default=None, help="alternative server command, as in load_calls.py")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON result here")
    return p


def check_args(args) -> None:
    bounds = {"operators": (1, 50), "waiting": (0, 100), "calls": (1, 200), "duration": (1, 600),
              "poll_seconds": (0.5, 60), "ramp": (0, 300), "pairs": (1, 5), "workers": (1, 16)}
    for name, (low, high) in bounds.items():
        if not low <= getattr(args, name) <= high:
            raise SystemExit(f"--{name.replace('_', '-')} must be within {low}..{high}")


def calendar_file(var_dir: Path) -> Path:
    """flows/calendar.yaml, plus today and tomorrow (Shanghai) as working days if they are not."""
    import yaml

    from ivr.config import SHANGHAI
    from ivr.scheduling.calendar import WorkCalendar
    source = ROOT / "flows" / "calendar.yaml"
    data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    holidays = [d for d in (data.get("holidays") or [])]
    working = list(data.get("working_days") or [])
    calendar = WorkCalendar.from_file(source)
    today = datetime.now(SHANGHAI).date()
    for day in (today, today + timedelta(days=1)):
        if not calendar.is_working_day(day):
            holidays = [d for d in holidays if str(d) != day.isoformat()]
            working.append(day)
    path = var_dir / "calendar.yaml"
    path.write_text(yaml.safe_dump({"holidays": holidays, "working_days": working}), encoding="utf-8")
    return path


def _sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_args(args)
    port = args.port or free_port()
    var_dir = Path(tempfile.mkdtemp(prefix="hotline-console-bench-"))
    server = Server(port, args.workers, var_dir, args.serve_cmd.split() if args.serve_cmd else None)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = threading.Event()
    twin_cache: dict = {}
    sessions: list = []
    queued: list = []
    phases: list[dict] = []
    setup: dict = {}
    after: dict = {}
    interrupted = False
    server_alive = False
    try:
        # The server (and the CLI) inherit these from this process's environment.
        os.environ["OPERATOR_HOURS"] = OPERATOR_HOURS
        os.environ["CALENDAR_FILE"] = str(calendar_file(var_dir))
        if args.wait_quiet:
            fraction = wait_until_quiet(min(args.wait_quiet, 600))
            print(f"machine busy before start: {100 * fraction:.0f}% CPU", file=sys.stderr, flush=True)
        print(f"starting server: {' '.join(server.cmd)}  (var dir {var_dir})", file=sys.stderr, flush=True)
        server.start()
        print(f"server healthy: {server.health}", file=sys.stderr, flush=True)

        t0 = time.perf_counter()
        accounts = create_operators(args.operators, var_dir)
        setup["create_operators_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        sessions = [log_in(server.base_url, u, p) for u, p in accounts]
        setup["logins_s"] = round(time.perf_counter() - t0, 2)
        print(f"{len(accounts)} operators created ({setup['create_operators_s']} s) and logged in "
              f"({setup['logins_s']} s)", file=sys.stderr, flush=True)

        # Warm-up as in load_calls: one unmeasured call per number (sets languages, warms workers).
        silent = Recorder()
        silent.enabled = False
        warm = TimedHttpTransport(silent)
        warm_rng = random.Random(args.seed)
        for caller in CALLERS:
            res = run_one_call(warm, server.base_url, caller, "1", (0.0, 0.0), stop, warm_rng, twin_cache)
            if res.problem or res.sim_errors:
                print(f"warm-up call from {caller.number}: {res.problem} {res.sim_errors}", file=sys.stderr)
        # The waiting callers: one simulator (one in-memory queue), calls parked in the wait loop.
        queue_transport = TimedHttpTransport(silent)
        queue_sim = TwilioSimulator(queue_transport, server.base_url, TOKEN, clock=VirtualClock(),
                                    max_documents=80, seed=args.seed)
        queue_sim._twin_cache = twin_cache
        t0 = time.perf_counter()
        for i in range(args.waiting):
            queued.append(queue_one(queue_sim, waiting_caller(i), stop))
        setup["queue_callers_s"] = round(time.perf_counter() - t0, 2)
        elapsed, status, count, html_bytes, error = poll_once(sessions[0], server.base_url, args.waiting)
        setup["first_poll"] = {"ms": round(elapsed * 1000, 1), "status": status, "count": count,
                               "html_bytes": html_bytes, "error": error}
        if error:
            raise RuntimeError(f"before the phases the console shows {count} waiting, not {args.waiting}: {error}")
        print(f"{args.waiting} callers waiting (queued in {setup['queue_callers_s']} s); first poll "
              f"{setup['first_poll']['ms']} ms, {html_bytes} bytes of HTML", file=sys.stderr, flush=True)

        for n in range(1, args.pairs + 1):
            for name, polling in (("A", []), ("B", sessions)):
                label = name if args.pairs == 1 else f"{name}{n}"
                print(f"phase {label}: {args.calls} paced callers for {args.duration:g} s"
                      + (f", {len(polling)} operators polling every {args.poll_seconds:g} s" if polling else
                         ", no polling"), file=sys.stderr, flush=True)
                phases.append(run_phase(label, len(phases) + 1, args, server, polling, stop, twin_cache))

        # The waiting callers hang up: the list must then be empty.
        for call in queued:
            if not call.ended:
                call.hangup()
        elapsed, status, count, _bytes, error = poll_once(sessions[0], server.base_url, 0)
        after = {"count_after_hangup": count, "error": error}
        after["queue_calls_with_sim_errors"] = sum(1 for c in queued if c.errors)
        queue_transport.close()
        warm.close()
        server_alive = server.proc is not None and server.proc.poll() is None
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        print("interrupted", file=sys.stderr)
        return 130
    except (RuntimeError, FlowDeviation, SimulatorError, subprocess.TimeoutExpired) as exc:
        stop.set()
        print(f"error: {exc}\nlast server log lines:\n{server.log_tail(15)}", file=sys.stderr)
        return 1
    finally:
        stop.set()
        for s in sessions:
            s.close()
        server.stop()
        log_text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        db_info = db_summary(var_dir / "hotline.sqlite") if server.proc else {}
        handoffs = handoff_summary(var_dir / "hotline.sqlite") if server.proc else {}
        if not args.keep_db:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            print(f"kept {var_dir} (hotline.sqlite, server.log)", file=sys.stderr)

    log_lines, log_shapes = server_log_errors(log_text)
    if args.pairs > 1 and len(phases) == 2 * args.pairs:
        phases += [pooled(phases, "A"), pooled(phases, "B")]
    for r in phases:
        r.pop("_turn_s", None)
        r.pop("_poll_s", None)
    result = {
        "bench": "console_load", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(), "python": platform.python_version(),
        "operators": args.operators, "waiting": args.waiting, "calls": args.calls, "duration_s": args.duration,
        "poll_seconds": args.poll_seconds, "think_s": f"{args.think[0]:g}-{args.think[1]:g}", "ramp_s": args.ramp,
        "workers": args.workers, "setup": setup, "phases": phases, "after": after,
        "server_log_error_lines": log_lines, "server_log_errors": dict(log_shapes.most_common(10)),
        "handoffs": handoffs, "db": db_info, "interrupted": interrupted, "server_alive_at_end": server_alive,
    }
    print()
    print(markdown_table(result))
    print()
    for r in phases:
        if "outcomes" not in r:
            continue          # a pooled row
        print(f"phase {r['phase']}: outcomes {r['outcomes']}; wall {r['wall_s']} s; "
              f"server CPU {r['server_cpu_s']} s, "
              f"client {r['client_cpu_s']} s, other processes {r['other_cpu_s']} s (of {r['capacity_cpu_s']})"
              + (f"; {r['polls_per_s']} polls/s, {r['poll_html_bytes']} bytes of HTML per poll"
                 if r["polls"] else ""))
        if r["other_cpu_s"] > max(1.0, 0.1 * r["capacity_cpu_s"]):
            print(f"  WARNING: other processes used {r['other_cpu_s']} CPU s during phase {r['phase']} "
                  f"({100 * r['other_cpu_s'] / r['capacity_cpu_s']:.0f}% of the machine): latencies are not clean")
        for title, kinds in (("turn errors", r["turn_errors"]), ("call problems", r["call_problems"]),
                             ("simulator errors", r["sim_errors"]), ("poll errors", r["poll_error_kinds"])):
            for text, count in Counter(kinds).most_common(10):
                print(f"  {title}: {count} x {text}")
    print(f"after hang-up the console shows {after.get('count_after_hangup')} waiting; handoffs {handoffs}")
    if not server_alive:
        print("SERVER DIED during the run; last log lines:\n" + "\n".join(log_text.splitlines()[-20:]))
    for text, count in log_shapes.most_common(10):
        print(f"  server log: {count} x {text}")
    print(json.dumps(result, ensure_ascii=False))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    errors = sum(r["failed_turns"] + r["failed_calls"] + r["poll_errors"] for r in phases if "outcomes" in r)
    return 1 if errors or after.get("error") or not server_alive else 0


if __name__ == "__main__":
    sys.exit(main())
