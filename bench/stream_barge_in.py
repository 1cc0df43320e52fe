#!/usr/bin/env python
"""Key barge-in over Media Streams: how fast `clear` follows a `dtmf`, with many calls at once.

What it does
  1. starts ``python -m ivr serve`` and ``python -m ivr streams`` (CALL_AUDIO=stream, a fresh
     HOTLINE_VAR_DIR, 127.0.0.1) and places one unmeasured call to fill the prompt cache;
  2. runs ``--calls`` calls at once, each as Twilio would: a signed POST /twilio/voice, the
     signed WebSocket upgrade, `connected` and `start` with the TwiML's parameters; while the
     menu is still "playing" (its marks not echoed) the caller presses 1 after a random
     0.2–1.5 s (once all audio sent so far has been read); the time from sending that `dtmf` to receiving `clear` is measured, then the
     marks are echoed and the time until the first media frame of the next prompt;
  3. prints a Markdown table and one JSON line, stops both servers, deletes the temp dir.

Bounded: each call has a 30 s budget; the whole run ends within --calls × 0 + 60 s.

Usage:  .venv/bin/python bench/stream_barge_in.py [--calls 50]
"""
from __future__ import annotations

import argparse
import asyncio
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
import time
from pathlib import Path

import requests
import websockets
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from nginx_server import free_port  # noqa: E402
from serve_process import ServeProcess  # noqa: E402
from ivr.streams import twilio_protocol as wire  # noqa: E402

PUBLIC = "https://hotline.example.test"
TOKEN = "bench-stream-barge-in-token"
STREAM_URL = "wss://hotline.example.test/twilio/stream"


def _voice(base_url: str, call_sid: str) -> dict[str, str]:
    form = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": "+8613800000002",
            "To": "+862160000000", "CallStatus": "in-progress"}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/voice", form)
    twiml = requests.post(base_url + "/twilio/voice", data=form, timeout=15,
                          headers={"X-Twilio-Signature": signature}).text
    return dict(re.findall(r'<Parameter name="([a-z]+)" value="([^"]*)"', twiml))


async def _call(base_url: str, stream_address: str, number: int, press_after: float) -> dict:
    call_sid = f"CA{number:032x}"
    parameters = await asyncio.to_thread(_voice, base_url, call_sid)
    signature = RequestValidator(TOKEN).compute_signature(STREAM_URL, {})
    sid = f"MZ{number:032x}"
    async with websockets.connect(stream_address, additional_headers={"X-Twilio-Signature": signature},
                                  open_timeout=10, max_size=None) as ws:
        await ws.send(wire.connected_message())
        await ws.send(wire.start_message(sid, call_sid, "AC" + "0" * 32, parameters))
        marks: list[str] = []
        started = time.monotonic()
        quiet_since = time.monotonic()
        # The menu "plays" (its marks are not echoed); before the key, take in all that was sent,
        # so that what follows the dtmf is the server's answer, not audio queued in the socket.
        while time.monotonic() - started < press_after or not marks or time.monotonic() - quiet_since < 0.1:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), 0.05))
            except TimeoutError:
                continue
            quiet_since = time.monotonic()
            if message["event"] == "mark":
                marks.append(message["mark"]["name"])
        await ws.send(wire.dtmf_message(sid, 2, "1"))
        pressed = time.monotonic()
        clear_s = next_s = None
        while next_s is None and time.monotonic() - pressed < 30:
            message = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if message["event"] == "clear":
                clear_s = time.monotonic() - pressed
                for number, name in enumerate(marks, 3):
                    await ws.send(wire.mark_echo(sid, number, name))
            elif message["event"] == "mark" and clear_s is None:
                marks.append(message["mark"]["name"])
            elif message["event"] == "media" and clear_s is not None:
                next_s = time.monotonic() - pressed
        return {"clear_s": clear_s, "next_prompt_s": next_s}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def _run(base_url: str, stream_address: str, calls: int) -> list[dict]:
    rng = random.Random(7)
    return await asyncio.gather(*(_call(base_url, stream_address, n + 2, rng.uniform(0.2, 1.5))
                                  for n in range(calls)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    web_port, stream_port = free_port(), free_port()
    env = {"HOTLINE_VAR_DIR": str(var), "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC,
           "CALL_AUDIO": "stream", "SENIOR_AGE": "200", "LOG_LEVEL": "WARNING"}
    try:
        with ServeProcess(["-m", "ivr", "serve", "--port", str(web_port)], web_port, env) as web:
            log = open(var / "streams.log", "wb")  # noqa: SIM115 - closed with the temp dir
            proc = subprocess.Popen([sys.executable, "-m", "ivr", "streams", "--port", str(stream_port)], cwd=ROOT,
                                    env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
            try:
                address = f"ws://127.0.0.1:{stream_port}/twilio/stream"
                for _ in range(100):
                    try:
                        socket.create_connection(("127.0.0.1", stream_port), 0.2).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                asyncio.run(_call(web.base_url, address, 1, 0.5))  # warm-up: renders the prompts once
                cpu_before = _cpu(proc.pid)
                wall = time.monotonic()
                results = asyncio.run(_run(web.base_url, address, args.calls))
                wall = time.monotonic() - wall
                cpu = _cpu(proc.pid) - cpu_before
            finally:
                proc.terminate()
                proc.wait(10)
                if os.environ.get("BENCH_SHOW_LOG"):
                    print((var / "streams.log").read_text(errors="replace")[-3000:])
    finally:
        shutil.rmtree(var, ignore_errors=True)
    clears = [r["clear_s"] for r in results if r["clear_s"] is not None]
    nexts = [r["next_prompt_s"] for r in results if r["next_prompt_s"] is not None]
    row = {"calls": args.calls, "cleared": len(clears), "clear_p50_ms": round(_pct(clears, 0.5) * 1000, 1),
           "clear_p99_ms": round(_pct(clears, 0.99) * 1000, 1), "clear_max_ms": round(max(clears) * 1000, 1),
           "next_prompt_p50_ms": round(_pct(nexts, 0.5) * 1000, 1),
           "next_prompt_p99_ms": round(_pct(nexts, 0.99) * 1000, 1),
           "streams_cpu_s": round(cpu, 2), "wall_s": round(wall, 1)}
    print(f"\n{args.calls} streamed calls at once, key pressed while the menu plays\n")
    print("| calls | cleared | dtmf → clear p50 | p99 | max | dtmf → next prompt p50 | p99 | streams CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {row['calls']} | {row['cleared']} | {row['clear_p50_ms']} ms | {row['clear_p99_ms']} ms | "
          f"{row['clear_max_ms']} ms | {row['next_prompt_p50_ms']} ms | {row['next_prompt_p99_ms']} ms | "
          f"{row['streams_cpu_s']} |")
    print(json.dumps({"bench": "stream_barge_in", "cores": os.cpu_count(), "python": platform.python_version(),
                      **row}))
    return 0 if len(clears) == args.calls else 1


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
