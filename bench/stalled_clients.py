#!/usr/bin/env python
"""Slow-client bench: stalled connections against gunicorn directly, then behind nginx.

What it does
  1. starts ``python -m ivr serve`` (gunicorn, 2 workers x 8 threads, 127.0.0.1, PROXY_HOPS=1,
     a fresh HOTLINE_VAR_DIR) and nginx running deploy/nginx/hotline.conf as shipped (own
     prefix in a temp dir, loopback port; tests/nginx_server.py);
  2. for each target, gunicorn's port and then nginx's: times ``--probes`` requests with no
     attack, then opens ``--stalled`` connections (half stop inside the headers, half send a
     body shorter than its Content-Length; tests/slow_clients.py) and, while they stay open,
     sends ``--probes`` more (signed POST /twilio/voice and GET /healthz in turn, 8 at a time,
     each given ``--timeout`` seconds), counts the stalled connections still open, closes them
     and waits for the target to answer again;
  3. behind nginx, opens the stalled connections once more and counts how many nginx still
     holds after client_header_timeout/client_body_timeout (10 s) + 1 s;
  4. prints a Markdown table and one JSON line, stops both servers, deletes the temp dirs.

Every phase ends by itself: at most --timeout per probe batch, 11 s for step 3.

Usage:  .venv/bin/python bench/stalled_clients.py [--stalled 200] [--probes 8] [--timeout 12]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from nginx_server import NginxServer, free_port, nginx_binary  # noqa: E402
from serve_process import ServeProcess  # noqa: E402
from slow_clients import Probe, close_all, health, open_stalled, run_probes, still_waiting  # noqa: E402

PUBLIC = "https://hotline.example.test"
TOKEN = "bench-stalled-clients-token"
DROP_AFTER_S = 11.0  # nginx's 10 s header/body deadlines, plus one


def _summary(probes: list[Probe], within: float) -> dict:
    answered = sorted(p.seconds for p in probes if p.status == 200)
    return {"probes": len(probes), "ok_200": len(answered),
            "ok_within_1s": sum(1 for s in answered if s < 1.0),
            "failed": sorted({str(p.status) for p in probes if p.status != 200}),
            "p50_ms": round(answered[len(answered) // 2] * 1000, 1) if answered else None,
            "max_ms": round(max(p.seconds for p in probes) * 1000, 1),
            "timeout_s": within}


def _attack(base_url: str, port: int, stalled: int, probes: int, timeout: float) -> dict:
    socks = open_stalled("127.0.0.1", port, stalled)
    try:
        time.sleep(0.5)
        result = _summary(run_probes(base_url, PUBLIC, TOKEN, probes, timeout, parallel=min(probes, 8)), timeout)
        result["stalled_still_open"] = sum(still_waiting(s) for s in socks)
    finally:
        close_all(socks)
    deadline = time.monotonic() + 15
    while health(base_url, timeout=1).status != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def _dropped_after(port: int, stalled: int) -> int:
    """How many stalled connections nginx still holds DROP_AFTER_S after they stopped sending."""
    socks = open_stalled("127.0.0.1", port, stalled)
    try:
        time.sleep(DROP_AFTER_S)
        return sum(still_waiting(s) for s in socks)
    finally:
        close_all(socks)


def _machine() -> dict:
    return {"cores": os.cpu_count(), "python": platform.python_version(),
            "system": platform.freedesktop_os_release().get("PRETTY_NAME", platform.platform()),
            "nginx": subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True).stderr.strip(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def _print_table(rows: dict[str, dict], stalled: int) -> None:
    print("| setup | attack | answered 200 | within 1 s | failed as | p50 ms | max ms | stalled still open |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        for phase in ("calm", "attacked"):
            r = row[phase]
            p50 = "-" if r["p50_ms"] is None else r["p50_ms"]
            print(f"| {name} | {'none' if phase == 'calm' else stalled} | {r['ok_200']}/{r['probes']} "
                  f"| {r['ok_within_1s']} | {', '.join(r['failed']) or '-'} | {p50} | {r['max_ms']} "
                  f"| {r.get('stalled_still_open', '-')} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stalled", type=int, default=200, choices=range(1, 1001), metavar="N (1-1000)")
    parser.add_argument("--probes", type=int, default=8, choices=range(2, 101), metavar="N (2-100)")
    parser.add_argument("--timeout", type=float, default=12.0, help="seconds per probe (at most 30)")
    args = parser.parse_args()
    timeout = min(max(args.timeout, 0.5), 30.0)
    var_dir = Path(tempfile.mkdtemp(prefix="hotline-bench-stall-"))
    port = free_port()
    env = {"HOTLINE_VAR_DIR": str(var_dir), "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": PUBLIC,
           "PROXY_HOPS": "1", "SPEECH": "off", "LOG_LEVEL": "WARNING"}
    rows: dict[str, dict] = {}
    try:
        with ServeProcess(["-m", "ivr", "serve", "--port", str(port), "--workers", "2"], port, env) as app, \
                NginxServer(port) as nginx:
            for name, url, target_port in (("gunicorn direct", app.base_url, app.port),
                                           ("behind nginx", nginx.base_url, nginx.port)):
                calm = _summary(run_probes(url, PUBLIC, TOKEN, args.probes, timeout, parallel=min(args.probes, 8)),
                                timeout)
                rows[name] = {"calm": calm, "attacked": _attack(url, target_port, args.stalled, args.probes, timeout)}
            rows["behind nginx"]["still_held_after_11s"] = _dropped_after(nginx.port, args.stalled)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    machine = _machine()
    print(f"\n{args.stalled} stalled connections, {args.probes} probes per row (signed POST /twilio/voice and "
          f"GET /healthz, 8 at a time, {timeout:g} s each); {machine['cores']} cores, {machine['system']}, "
          f"{machine['nginx']}, {machine['date']}\n")
    _print_table(rows, args.stalled)
    print(f"\nnginx still held {rows['behind nginx']['still_held_after_11s']} of {args.stalled} stalled connections "
          f"{DROP_AFTER_S:g} s after they stopped sending.\n")
    print(json.dumps({"stalled": args.stalled, "machine": machine, "results": rows}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
