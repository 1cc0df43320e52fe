#!/usr/bin/env python
"""Load benchmark: N concurrent simulated keypad calls against the real server.

What it does
  1. starts ``python -m ivr serve`` (gunicorn, gthread) on 127.0.0.1 with a fresh
     HOTLINE_VAR_DIR (SQLite database, secrets, prompt cache) and waits for GET /healthz;
  2. runs one unmeasured warm-up call per caller number (sets each number's language);
  3. runs ``--calls`` threads at once; each thread places ``--rounds`` calls one after the
     other (or until ``--duration`` seconds have passed), every call following a realistic
     mixed keypad path through the Twilio simulator over real HTTP:
       [language 1 / senior offer 2] -> * (repeat) -> 7 (wrong key) -> 1 status ->
       [case number] + ID -> * (repeat the matters) -> # menu -> silence -> 2 callback ->
       1 own number -> slot 1..3 -> 1 confirm -> * (repeat) -> hang up;
  4. times every POST to /twilio/* (one webhook turn; the prompt .txt GETs are not counted)
     and prints a Markdown table and one JSON line;
  5. stops the server (also on Ctrl-C and on errors) and deletes the temp dir (unless
     ``--keep-db``).

Errors counted: a webhook answered non-200, a transport failure (timeout, refused), an
answer that is the service's "system error" TwiML (it never returns 5xx: failures become
an apology whose <Gather> posts to /twilio/recover), a simulator error (SimError /
SimulatorError), or a call that did not hear what the path expects. Server log lines at
ERROR level (e.g. ``database is locked``) are reported verbatim.

Usage:  .venv/bin/python bench/load_calls.py --calls 50
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
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ivr.simulator.transport import HttpResponse, HttpTransport  # noqa: E402
from ivr.simulator.twilio_sim import SimulatorError, TwilioSimulator, VirtualClock  # noqa: E402

HOST = "127.0.0.1"
HOTLINE_NUMBER = "+862160000000"
TOKEN = "bench-token"
REQUEST_TIMEOUT_S = 10.0          # per HTTP request (bounds every wait on the server)
MAX_DOCUMENTS_PER_CALL = 80       # simulator bound: a runaway flow stops quickly
HEALTH_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


# --- callers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Caller:
    number: str
    id_keys: str                  # last 4 ID characters as keyed (X = *)
    case_no: str | None = None    # unregistered numbers identify with a case number first


# From flows/demo_matters.csv: registered numbers (two are over 65 and get the senior offer)
# and unregistered ones, which give case 20261020008 (ID 2468) before the ID check.
CALLERS = [
    Caller("+8613800000002", "567*"),
    Caller("+8613800000001", "1234"),          # senior, five matters (two pages)
    Caller("+862161234567", "4321"),           # senior, landline
    Caller("+8613900000003", "2468"),
] + [Caller(f"+86137000000{i:02d}", "2468", case_no="20261020008") for i in range(8)]

MAIN_MENU = ("查询办理进度，请按1", "查进度按1")


class FlowDeviation(Exception):
    """The call did not hear what the path expects at this point."""


# --- measurement -----------------------------------------------------------------------------

class Recorder:
    """Samples of webhook turns: (start, seconds, path, status, error or None). Thread-safe."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, str, int, str | None]] = []
        self.enabled = True
        self._lock = threading.Lock()

    def add(self, start: float, seconds: float, path: str, status: int, error: str | None) -> None:
        if self.enabled:
            with self._lock:
                self.samples.append((start, seconds, path, status, error))


class TimedHttpTransport(HttpTransport):
    """HttpTransport that times each webhook POST (the prompt .txt GETs are not timed)."""

    def __init__(self, recorder: Recorder, timeout: float = REQUEST_TIMEOUT_S) -> None:
        super().__init__(timeout=timeout)
        self.recorder = recorder

    def post(self, url: str, params: dict[str, str], headers: dict[str, str]) -> HttpResponse:
        path = urlsplit(url).path
        start = time.perf_counter()
        try:
            response = super().post(url, params, headers)
        except Exception as exc:  # noqa: BLE001 - recorded, then handled by the simulator
            self.recorder.add(start, time.perf_counter() - start, path, 0, f"{type(exc).__name__}: {exc}")
            raise
        elapsed = time.perf_counter() - start
        error = None
        if response.status != 200:
            error = f"HTTP {response.status}"
        elif b"/twilio/recover" in response.body:
            error = "system-error TwiML (apology, /twilio/recover)"
        self.recorder.add(start, elapsed, path, response.status, error)
        return response

    def close(self) -> None:
        self._session.close()


# --- one call ------------------------------------------------------------------------------------

def _heard(call) -> str:
    return " ".join(call.heard_since_last_input())


class CallDriver:
    def __init__(self, sim: TwilioSimulator, caller: Caller, slot_key: str, think: tuple[float, float],
                 stop: threading.Event, rng: random.Random) -> None:
        self.sim, self.caller, self.slot_key = sim, caller, slot_key
        self.think, self.stop, self.rng = think, stop, rng
        self.call = None
        self.outcome = "?"

    def _pause(self) -> None:
        low, high = self.think
        if high > 0:
            self.stop.wait(self.rng.uniform(low, high))

    def act(self, keys: str | None, expect: tuple[str, ...], what: str) -> str:
        self._pause()
        if self.stop.is_set():
            raise InterruptedError("stopped")
        call = self.call
        if keys is None:
            call.silence()
        else:
            call.press(keys)
        text = _heard(call)
        if call.ended:
            raise FlowDeviation(f"{what}: call ended ({call.ended_by}); heard {text[-160:]!r}")
        if expect and not any(e in text for e in expect):
            raise FlowDeviation(f"{what}: expected {expect[0]!r}, heard {text[-160:]!r}")
        return text

    def run(self) -> None:
        c = self.caller
        self.call = self.sim.place_call(c.number, HOTLINE_NUMBER)
        text = _heard(self.call)
        if self.call.ended:
            raise FlowDeviation(f"voice: call ended ({self.call.ended_by}); heard {text[-160:]!r}")
        if "说普通话，请按1" in text:                       # first call from this number
            text = self.act("1", (), "choose language")
        if "自己听菜单，请按2" in text:                     # callers aged 65+
            text = self.act("2", MAIN_MENU, "senior offer -> menu")
        if not any(m in text for m in MAIN_MENU):
            raise FlowDeviation(f"start: no main menu, heard {text[-160:]!r}")
        self.act("*", MAIN_MENU, "repeat main menu")
        self.act("7", ("这个键不对",), "wrong key")
        text = self.act("1", ("最后四位", "受理编号"), "status")
        if "受理编号" in text:
            self.act(f"{c.case_no}#", ("最后四位",), "case number")
        self.act(f"{c.id_keys}#", ("核对好了",), "ID check")
        self.act("*", ("第一件",), "repeat matters")
        self.act("#", MAIN_MENU, "back to menu")
        self.act(None, ("没有听到",), "silence at menu")
        self.act("2", ("用这个号码，请按1",), "callback")
        text = self.act("1", ("可以预约的时间有", "都约满了"), "own number")
        self.outcome = "not booked"
        for _attempt in range(3):
            if "可以预约的时间有" not in text:
                self.outcome = "slots full"
                self.act("#", MAIN_MENU, "slots full -> menu")
                break
            key = self.slot_key if f"请按{self.slot_key}" in text else "1"
            self.act(key, ("确认预约，请按1",), "choose slot")
            text = self.act("1", ("预约好了", "刚刚约满了"), "confirm booking")
            if "预约好了" in text:
                self.outcome = "booked"
                self.act("*", ("预约好了",), "repeat booking")
                break
            self.outcome = "slot taken"
        self._pause()
        self.call.hangup()


@dataclass
class CallResult:
    caller: str
    outcome: str
    problem: str | None
    sim_errors: list[str]


def run_one_call(transport: TimedHttpTransport, base_url: str, caller: Caller, slot_key: str,
                 think: tuple[float, float], stop: threading.Event, rng: random.Random,
                 twin_cache: dict) -> CallResult:
    sim = TwilioSimulator(transport, base_url, TOKEN, clock=VirtualClock(),
                          max_documents=MAX_DOCUMENTS_PER_CALL, seed=rng.getrandbits(64))
    sim._twin_cache = twin_cache        # prompt texts are fetched once per run, not once per call
    driver = CallDriver(sim, caller, slot_key, think, stop, rng)
    problem = None
    try:
        driver.run()
    except InterruptedError:
        problem = None
        driver.outcome = "interrupted"
    except FlowDeviation as exc:
        problem = f"flow: {exc}"
    except SimulatorError as exc:
        problem = f"simulator: {str(exc).splitlines()[0]}"
    except Exception as exc:  # noqa: BLE001 - counted as an error, the run goes on
        problem = f"{type(exc).__name__}: {exc}"
    finally:
        call = driver.call
        if call is not None and not call.ended:
            try:
                call.hangup()
            except Exception:  # noqa: BLE001
                pass
    sim_errors = []
    if driver.call is not None:
        sim_errors = [f"{e.kind} {e.error_code} {urlsplit(e.url).path}: {e.detail}" for e in driver.call.errors]
    return CallResult(caller.number, driver.outcome, problem, sim_errors)


# --- server --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


class Server:
    def __init__(self, port: int, workers: int, var_dir: Path, serve_cmd: list[str] | None) -> None:
        self.port, self.workers, self.var_dir = port, workers, var_dir
        self.base_url = f"http://{HOST}:{port}"
        self.log_path = var_dir / "server.log"
        self.cmd = (serve_cmd or [sys.executable, "-m", "ivr", "serve"]) + [
            "--host", HOST, "--port", str(port), "--workers", str(workers)]
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if port_in_use(self.port):
            raise RuntimeError(f"port {self.port} is already in use on {HOST}")
        env = dict(os.environ)
        env.update({
            "HOTLINE_VAR_DIR": str(self.var_dir),
            "TWILIO_AUTH_TOKEN": TOKEN,
            "PUBLIC_BASE_URL": self.base_url,
            "TWILIO_NUMBER": HOTLINE_NUMBER,
            "PYTHONPATH": str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        })
        for name in ("DATABASE_URL", "PROMPT_CACHE_DIR"):     # never touch a configured database
            env.pop(name, None)
        self._log = open(self.log_path, "wb")
        # Own session: the bench ends the whole gunicorn process group it started, by its id.
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        import requests
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                response = requests.get(self.base_url + "/healthz", timeout=1)
                if response.status_code == 200:
                    self.health = response.json()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"no healthy /healthz within {HEALTH_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def pids(self) -> list[int]:
        """The gunicorn master and its workers."""
        if self.proc is None:
            return []
        pids = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            pids += [int(p) for p in children]
        except OSError:
            pass
        return pids

    @staticmethod
    def cpu_times(pid: int) -> tuple[float, float]:
        """(user, system) CPU seconds of one process."""
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            tick = os.sysconf("SC_CLK_TCK")
            return int(fields[11]) / tick, int(fields[12]) / tick
        except (OSError, IndexError, ValueError):
            return 0.0, 0.0

    @staticmethod
    def cpu_seconds(pid: int) -> float:
        return sum(Server.cpu_times(pid))

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=STOP_TIMEOUT_S)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        finally:
            self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def system_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores; /proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# --- statistics and report ------------------------------------------------------------------------

def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-q * len(sorted_values) // 100)))   # ceil(q/100 * n)
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    values = sorted(seconds)
    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    return {"p50_ms": ms(percentile(values, 50)), "p95_ms": ms(percentile(values, 95)),
            "p99_ms": ms(percentile(values, 99)), "max_ms": ms(values[-1]) if values else float("nan"),
            "mean_ms": ms(sum(values) / len(values)) if values else float("nan")}


_LOG_ERROR = re.compile(r"\b(ERROR|CRITICAL|Traceback|OperationalError|database is locked)\b")


def server_log_errors(text: str) -> tuple[int, Counter]:
    lines = [line for line in text.splitlines() if _LOG_ERROR.search(line)]
    shapes = Counter(re.sub(r"CA[0-9a-f]{32}", "CA…", re.sub(r"^\S+ \S+ ", "", line)) for line in lines)
    return len(lines), shapes


def db_summary(db_path: Path) -> dict:
    if not db_path.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    try:
        bookings = dict(con.execute("SELECT status, count(*) FROM bookings GROUP BY status").fetchall())
        per_slot = con.execute("SELECT slot_start, count(*) FROM bookings WHERE status='open' "
                               "GROUP BY slot_start ORDER BY slot_start").fetchall()
        sessions = con.execute("SELECT count(*) FROM call_sessions").fetchone()[0]
        return {"call_sessions": sessions, "bookings": bookings,
                "open_per_slot": {str(s): n for s, n in per_slot}}
    except sqlite3.Error as exc:
        return {"error": str(exc)}
    finally:
        con.close()


def markdown_table(result: dict) -> str:
    head = ("| calls | workers | think s | calls done | turns | wall s | turns/s | p50 ms | p95 ms "
            "| p99 ms | max ms | errors (turns/calls) | CPU calib ms |")
    sep = "|" + "---|" * 13
    r = result
    row = (f"| {r['calls']} | {r['workers']} | {r['think_s']} | {r['calls_done']} | {r['turns']} "
           f"| {r['wall_s']} | {r['turns_per_s']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} "
           f"| {r['max_ms']} | {r['failed_turns']}/{r['failed_calls']} "
           f"| {r['calibration_ms'][0]}/{r['calibration_ms'][1]} |")
    lines = [head, sep, row, "", "| endpoint | turns | p50 ms | p95 ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for path, s in r["by_endpoint"].items():
        lines.append(f"| {path} | {s['turns']} | {s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} | {s['max_ms']} |")
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------

def parse_think(raw: str) -> tuple[float, float]:
    parts = [float(p) for p in raw.split(":")]
    low, high = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    if low < 0 or high < low or high > 30:
        raise argparse.ArgumentTypeError("--think wants SECONDS or MIN:MAX with 0 <= MIN <= MAX <= 30")
    return low, high


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=50, help="concurrent calls (threads), default 50")
    p.add_argument("--rounds", type=int, default=None,
                   help="calls placed one after another by each thread (default 3; with --duration: 1000)")
    p.add_argument("--duration", type=float, default=None,
                   help="keep placing new calls for this many seconds (max 600); calls in progress finish")
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as on a 2-core box)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--think", type=parse_think, default=(0.0, 0.0),
                   help="real seconds a caller waits before each key press, SECONDS or MIN:MAX "
                        "(default 0: back to back, the worst case)")
    p.add_argument("--ramp", type=float, default=0.0,
                   help="spread the first call of each thread evenly over this many seconds (default 0: "
                        "all at once)")
    p.add_argument("--warmup", type=int, default=1, help="unmeasured calls per caller number before the run")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="first wait up to SECONDS for the machine to be idle (<15%% CPU busy over 2 s), "
                        "useful on a shared box (default 0: do not wait)")
    p.add_argument("--keep-db", action="store_true", help="keep the temp var dir (database, server log)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--serve-cmd", default=None,
                   help="alternative server command (for profiling), e.g. "
                        "'.venv/bin/python bench/serve_profiled.py'; host/port/workers are appended")
    p.add_argument("--json-out", type=Path, default=None, help="also write the JSON result here")
    return p


def wait_until_quiet(limit_s: float) -> float:
    """Wait (bounded) until the machine is mostly idle; returns the last busy fraction seen."""
    deadline = time.monotonic() + limit_s
    cpus = os.cpu_count() or 1
    fraction = 1.0
    while True:
        before = system_busy_seconds()
        time.sleep(2.0)
        fraction = (system_busy_seconds() - before) / (2.0 * cpus)
        if fraction < 0.15 or time.monotonic() >= deadline:
            return fraction
        print(f"machine busy ({100 * fraction:.0f}% CPU): waiting for quiet…", file=sys.stderr, flush=True)


def calibrate() -> float:
    """Milliseconds of CPU for a fixed slice of the simulator's own work (sign + parse TwiML).

    On a shared or virtual machine the CPU speed can drift (this box measured 190 to 400 ms
    within minutes while idle); comparing this figure tells whether two runs saw the same CPU.
    """
    import xml.etree.ElementTree as ET

    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    doc = (b'<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="http://h/twilio/turn?t=3" '
           b'actionOnEmptyResult="true" finishOnKey="" input="dtmf" method="POST" numDigits="1" timeout="10">'
           b"<Play>http://h/prompts/tts/a.wav</Play><Play>http://h/prompts/tts/b.wav</Play></Gather></Response>")
    start = time.process_time()
    for i in range(5000):
        validator.compute_signature("http://127.0.0.1:5000/twilio/turn?t=3",
                                    {"CallSid": f"CA{i}", "Digits": "1", "From": "+8613800000002"})
        ET.fromstring(doc)
        ET.fromstring(doc)
    return round((time.process_time() - start) * 1000, 1)


def _sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.rounds is None:
        args.rounds = 1000 if args.duration else 3
    if not 0 <= args.ramp <= 300:
        raise SystemExit("--ramp must be 0..300 seconds")
    if not 0 <= args.warmup <= 10:
        raise SystemExit("--warmup must be 0..10")
    if not 1 <= args.workers <= 16:
        raise SystemExit("--workers must be 1..16")
    if not 1 <= args.calls <= 500:
        raise SystemExit("--calls must be 1..500")
    if not 1 <= args.rounds <= 1000:
        raise SystemExit("--rounds must be 1..1000")
    if args.duration is not None and not 0 < args.duration <= 600:
        raise SystemExit("--duration must be in (0, 600]")
    port = args.port or free_port()
    var_dir = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    server = Server(port, args.workers, var_dir, args.serve_cmd.split() if args.serve_cmd else None)

    # SIGTERM behaves like Ctrl-C: the finally block below stops the server.
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started with SIGINT ignored
    stop = threading.Event()
    recorder = Recorder()
    results: list[CallResult] = []
    results_lock = threading.Lock()
    twin_cache: dict = {}
    interrupted = False
    try:
        if args.wait_quiet:
            fraction = wait_until_quiet(min(args.wait_quiet, 600))
            print(f"machine busy before start: {100 * fraction:.0f}% CPU", file=sys.stderr, flush=True)
        calib_before = calibrate()
        print(f"starting server: {' '.join(server.cmd)}  (var dir {var_dir})", file=sys.stderr, flush=True)
        server.start()
        print(f"server healthy: {server.health}", file=sys.stderr, flush=True)

        # Warm-up: unmeasured, one call per number at a time (sets languages, warms workers).
        recorder.enabled = False
        warm_rng = random.Random(args.seed)
        warm_transports = [TimedHttpTransport(recorder) for _ in range(args.workers)]
        for i in range(args.warmup):
            for j, caller in enumerate(CALLERS):
                res = run_one_call(warm_transports[j % len(warm_transports)], server.base_url, caller, "1",
                                   (0.0, 0.0), stop, warm_rng, twin_cache)
                if res.problem or res.sim_errors:
                    print(f"warm-up call from {caller.number}: {res.problem} {res.sim_errors}", file=sys.stderr)
        for t in warm_transports:
            t.close()
        recorder.enabled = True

        cpu_before = {pid: Server.cpu_seconds(pid) for pid in server.pids()}
        sys_before = sum(Server.cpu_times(pid)[1] for pid in server.pids())
        busy_before = system_busy_seconds()
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        barrier = threading.Barrier(args.calls + 1)
        run_deadline = [float("inf")]

        def worker(index: int) -> None:
            rng = random.Random(args.seed * 100003 + index)
            transport = TimedHttpTransport(recorder)
            try:
                barrier.wait(timeout=60)
                if args.ramp:
                    stop.wait(args.ramp * index / args.calls)
                for rnd in range(args.rounds):
                    if stop.is_set() or time.monotonic() >= run_deadline[0]:
                        break
                    caller = CALLERS[(index + rnd * 5) % len(CALLERS)]
                    slot_key = str((index + rnd) % 3 + 1)
                    res = run_one_call(transport, server.base_url, caller, slot_key, args.think, stop, rng,
                                       twin_cache)
                    with results_lock:
                        results.append(res)
            except threading.BrokenBarrierError:
                pass
            finally:
                transport.close()

        threads = [threading.Thread(target=worker, args=(i,), name=f"call-{i}", daemon=True)
                   for i in range(args.calls)]
        for t in threads:
            t.start()
        barrier.wait(timeout=60)
        started = time.perf_counter()
        if args.duration:
            run_deadline[0] = time.monotonic() + args.duration
        # Hard bound on the whole run: rounds x (turns x (timeout + think)) is far above this.
        hard_deadline = time.monotonic() + (args.duration or 0) + 900
        try:
            for t in threads:
                while t.is_alive():
                    t.join(timeout=0.5)
                    if time.monotonic() > hard_deadline:
                        stop.set()
                        raise RuntimeError("run exceeded its hard time bound")
        except KeyboardInterrupt:
            interrupted = True
            stop.set()
            print("interrupted: waiting for calls in flight (bounded)…", file=sys.stderr, flush=True)
            end = time.monotonic() + REQUEST_TIMEOUT_S + 5
            for t in threads:
                t.join(timeout=max(0.0, end - time.monotonic()))
        wall = time.perf_counter() - started
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu_after = {pid: Server.cpu_seconds(pid) for pid in server.pids()}
        sys_after = sum(Server.cpu_times(pid)[1] for pid in server.pids())
        busy_after = system_busy_seconds()
        recorder.enabled = False
        server_alive = server.proc is not None and server.proc.poll() is None
        calib_after = calibrate()
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        server.stop()
        log_text = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        db_info = db_summary(var_dir / "hotline.sqlite") if server.proc else {}
        if not args.keep_db:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            print(f"kept {var_dir} (hotline.sqlite, server.log)", file=sys.stderr)

    # --- report --------------------------------------------------------------------------
    samples = list(recorder.samples)
    latencies = [s[1] for s in samples]
    turn_errors = Counter(s[4] for s in samples if s[4])
    flow_problems = Counter(r.problem for r in results if r.problem)
    sim_errors = Counter(e for r in results for e in r.sim_errors)
    log_error_lines, log_shapes = server_log_errors(log_text)
    by_path: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        by_path[s[2]].append(s[1])
    calls_with_problem = sum(1 for r in results if r.problem or r.sim_errors)
    summary = latency_summary(latencies)
    server_cpu = {pid: round(cpu_after.get(pid, 0.0) - cpu_before.get(pid, 0.0), 2) for pid in cpu_after}
    client_cpu = (self_after.ru_utime - self_before.ru_utime) + (self_after.ru_stime - self_before.ru_stime)
    result = {
        "bench": "load_calls", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(), "python": platform.python_version(),
        "calls": args.calls, "rounds": args.rounds, "duration_s": args.duration, "ramp_s": args.ramp,
        "workers": args.workers,
        "threads_per_worker_in_ivr_serve": 8, "think_s": f"{args.think[0]:g}-{args.think[1]:g}" if args.think[1] else "0",
        "calls_done": len(results), "turns": len(samples), "wall_s": round(wall, 2),
        "turns_per_s": round(len(samples) / wall, 1) if wall > 0 else 0.0,
        **summary,
        "errors": len([s for s in samples if s[4]]) + calls_with_problem,
        "failed_turns": len([s for s in samples if s[4]]), "failed_calls": calls_with_problem,
        "turn_errors": dict(turn_errors), "call_problems": dict(flow_problems), "sim_errors": dict(sim_errors),
        "server_log_error_lines": log_error_lines,
        "server_log_errors": dict(log_shapes.most_common(10)),
        "outcomes": dict(Counter(r.outcome for r in results)),
        "by_endpoint": {p: {"turns": len(v), **latency_summary(v)} for p, v in sorted(by_path.items())},
        "cpu_s": {"client": round(client_cpu, 2), "server_by_pid": server_cpu,
                  "server_total": round(sum(server_cpu.values()), 2),
                  "server_system": round(sys_after - sys_before, 2),
                  "client_system": round(self_after.ru_stime - self_before.ru_stime, 2),
                  # everything else on the machine during the run (other tests, builds…)
                  "other": round(max(0.0, busy_after - busy_before - client_cpu - sum(server_cpu.values())), 2),
                  "capacity": round(wall * (os.cpu_count() or 1), 2)},
        "calibration_ms": [calib_before, calib_after],
        "db": db_info, "interrupted": interrupted, "server_alive_at_end": server_alive,
    }
    print()
    print(markdown_table(result))
    print()
    cpu = result["cpu_s"]
    print(f"outcomes: {result['outcomes']}; CPU s: client {cpu['client']}, server {cpu['server_total']} "
          f"{server_cpu}, other processes {cpu['other']} (of {cpu['capacity']} available)")
    if cpu["other"] > max(1.0, 0.1 * cpu["capacity"]):
        print(f"WARNING: other processes used {cpu['other']} CPU s during the run "
              f"({100 * cpu['other'] / cpu['capacity']:.0f}% of the machine): latencies are not clean",
              flush=True)
    if db_info:
        print(f"database: {db_info}")
    if not server_alive:
        print("SERVER DIED during the run; last log lines:\n" + "\n".join(log_text.splitlines()[-20:]))
    for title, counter in (("turn errors", turn_errors), ("call problems", flow_problems),
                           ("simulator errors", sim_errors), ("server log errors", log_shapes)):
        if counter:
            print(f"{title}:")
            for text, count in counter.most_common(10):
                print(f"  {count} x {text}")
    print(json.dumps(result, ensure_ascii=False))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    return 1 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
