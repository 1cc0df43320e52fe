"""Concurrent live calls on the recogniser pool, at real-time pace.

    .venv/bin/python bench/streaming_recognition.py [--streams 10,30,50] [--turns 3] [--json]

Each simulated call opens its own recogniser process (RecognizerPool.open_stream) and, in its
own thread, plays turns of espeak-ng Korean through 8 kHz μ-law in 20 ms frames, sent when
they are due (as Twilio Media Streams deliver them), with the endpointer deciding the end of
each turn (no lockstep: partials and peeks arrive when the child gets to them). Per turn:

- end of speech → final words: wall time from the moment the frame holding the last of the
  voice was sent to the moment FinalResult()'s words were back (what a caller waits for,
  before the next prompt's first audio);
- how the turn ended (short or long silence) and whether the words were right;
- frames lost: dropped at the backlog cap, or sent late (> 40 ms behind their due time).

CPU per stream is the child processes' user+system time (/proc) per audio second; the
parent's own CPU (threads feeding frames, VAD, matching) is reported separately.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from ivr.hearing.endpointer import FRAME_MS, Turn  # noqa: E402
from ivr.hearing.live_turn import LiveTurn  # noqa: E402
from ivr.hearing.pool import RecognizerPool  # noqa: E402
from ivr.hearing.streaming import StreamingSession  # noqa: E402
from ivr.hearing.understanding import phrase_completeness  # noqa: E402
from speech_fixtures.helpers import KO_PHRASES, korean_model_dir, spoken_frames  # noqa: E402

# (words and pauses, grammar, expected text, expected ending)
TURNS = [
    (["상담원"], KO_PHRASES, "상담원", "short"),
    (["아니요", 0.7, "상담원"], ["아니요 상담원", "네", "확인"], "아니요 상담원", "short"),
    (["아니요"], ["아니요 상담원", "네", "확인"], "아니요", "long"),
]
LATE = 0.040


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _call(pool: RecognizerPool, clips: list, turns: int, start_at: float, out: list,
          lock: threading.Lock) -> None:
    channel = pool.open_stream(8000, timeout=30)
    if channel is None:
        with lock:
            out.append({"error": "no stream"})
        return
    session = StreamingSession(channel, "mulaw")
    rows = []
    audio = 0.0
    cpu = 0.0
    try:
        due = start_at
        for n in range(turns):
            frames, spans, phrases, expected, ending = clips[n % len(clips)]
            speech_end_frame = int(spans[-1][1] * 1000 // FRAME_MS)
            turn = LiveTurn(session, phrases, phrase_completeness(phrases))
            late = 0
            t_speech_end = None
            for i, frame in enumerate(frames):
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif -delay > LATE:
                    late += 1
                due += FRAME_MS / 1000
                state = turn.push(frame)
                if i == speech_end_frame:
                    t_speech_end = time.monotonic()
                if state is Turn.ENDED:
                    break
            audio += (i + 1) * FRAME_MS / 1000
            result = turn.finish()
            t_final = time.monotonic()
            text = result.result.text if result.result else None
            rows.append({"turn": n % len(clips), "text": text,
                         "latency": t_final - t_speech_end if t_speech_end else None,
                         "ended_by": result.ended_by, "expected_end": ending,
                         "correct": text == expected, "late": late,
                         "dropped": session.channel.frames_dropped,
                         "frames": i + 1, "peeks": turn.peeks})
            due = time.monotonic() + 0.3  # the next prompt starts; the caller answers again
        cpu = _cpu_seconds(channel.pid)
    finally:
        session.close()
    with lock:
        out.append({"rows": rows, "audio": audio, "cpu": cpu})


def run(pool: RecognizerPool, clips: list, streams: int, turns: int) -> dict:
    out: list = []
    lock = threading.Lock()
    start_at = time.monotonic() + 1.0 + streams * 0.02  # every call opened before audio flows
    parent0 = time.process_time()
    threads = [threading.Thread(target=_call, args=(pool, clips, turns,
                                                    start_at + (i % 50) * 0.0004, out, lock))
               for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    parent_cpu = time.process_time() - parent0
    if os.environ.get("BENCH_ROWS"):
        for c in out:
            for r in c.get("rows", []):
                print(r, file=sys.stderr)
    calls = [c for c in out if "rows" in c]
    rows = [r for c in calls for r in c["rows"]]
    lat = sorted(r["latency"] for r in rows if r["latency"] is not None)
    short = [r for r in rows if r["expected_end"] == "short"]
    long_ = [r for r in rows if r["expected_end"] == "long"]
    audio = sum(c["audio"] for c in calls)

    def pct(values: list[float], q: float) -> float | None:
        return values[min(len(values) - 1, int(q * len(values)))] if values else None

    def by(kind: str) -> list[float]:
        return sorted(r["latency"] for r in rows if r["expected_end"] == kind and r["latency"])

    return {
        "streams": streams, "calls_ok": len(calls), "turns": len(rows),
        "p50_short_ms": 1000 * (statistics.median(by("short")) if by("short") else 0),
        "p95_short_ms": 1000 * (pct(by("short"), 0.95) or 0),
        "p50_long_ms": 1000 * (statistics.median(by("long")) if by("long") else 0),
        "p95_long_ms": 1000 * (pct(by("long"), 0.95) or 0),
        "p95_all_ms": 1000 * (pct(lat, 0.95) or 0),
        "short_as_expected": sum(r["ended_by"] == "short" for r in short) / max(1, len(short)),
        "long_as_expected": sum(r["ended_by"] == "long" for r in long_) / max(1, len(long_)),
        "correct": sum(r["correct"] for r in rows) / max(1, len(rows)),
        "frames": sum(r["frames"] for r in rows),
        "late_frames": sum(r["late"] for r in rows),
        "dropped_frames": sum(r["dropped"] for r in rows),
        "child_cpu_per_audio_s": sum(c["cpu"] for c in calls) / max(audio, 1e-9),
        "parent_cpu_per_audio_s": parent_cpu / max(audio, 1e-9),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", default="10,30,50")
    ap.add_argument("--turns", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    work = Path("/tmp") / f"streaming-bench-{os.getpid()}"
    clips = []
    for parts, phrases, expected, ending in TURNS:
        frames, spans = spoken_frames(parts, work, tail=1.2)
        clips.append((frames, spans, phrases, expected, ending))
    with RecognizerPool(korean_model_dir(), workers=1, streaming=True) as pool:
        results = [run(pool, clips, int(n), args.turns) for n in args.streams.split(",")]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("| streams | turns | end of speech → words p50/p95, complete phrase (ms) | "
          "incomplete (ms) | ended as expected short/long | words right | frames late / "
          "dropped / all | CPU s per audio s: per stream / parent |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['streams']} | {r['turns']} | {r['p50_short_ms']:.0f} / {r['p95_short_ms']:.0f}"
              f" | {r['p50_long_ms']:.0f} / {r['p95_long_ms']:.0f}"
              f" | {r['short_as_expected']:.0%} / {r['long_as_expected']:.0%}"
              f" | {r['correct']:.0%} | {r['late_frames']} / {r['dropped_frames']} / {r['frames']}"
              f" | {r['child_cpu_per_audio_s']:.3f} / {r['parent_cpu_per_audio_s']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
