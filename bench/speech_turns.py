"""Latency from the end of a caller's recording to the next TwiML, and NLU speed.

    .venv/bin/python bench/speech_turns.py [--answers 40] [--callers 1,2]

A whole service runs in this process (Flask app, SQLite, the recogniser pool with the Korean
model packaged on PyPI); the Twilio simulator places calls and answers "네" (yes) by voice at a
confirmation question. The time measured is the simulator's speak(): POST /twilio/heard, the
service fetching the recording from a local stand-in for Twilio's API, decoding, recognising,
understanding, the dialog turn and the TwiML — everything after the caller stops speaking
except Twilio's own silence timeout. Then NLU matches per second on the test corpora.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from hotline_harness import ACCOUNT_SID, BASE_URL, HOTLINE_NUMBER, TOKEN, Hotline  # noqa: E402
from ivr.simulator.transport import WsgiTransport  # noqa: E402
from ivr.simulator.twilio_sim import TwilioSimulator, VirtualClock  # noqa: E402
from ivr.config import SHANGHAI  # noqa: E402
from speech_fixtures.helpers import korean_model_dir, speak_telephone  # noqa: E402
from test_speech_call import korean_grammars  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def run_callers(hotline: Hotline, audio: bytes, answers: int, callers: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def caller(index: int) -> None:
        # One simulator per caller thread: a simulator drives one call at a time, like a phone.
        sim = TwilioSimulator(WsgiTransport(hotline.app), BASE_URL, TOKEN, account_sid=ACCOUNT_SID,
                              clock=VirtualClock(hotline.clock.now()), recording_server=hotline.recordings)
        for number in range(answers // callers):
            phone = f"+86139{index:04d}{number:04d}"
            hotline.remember_language(phone)
            call = sim.place_call(phone, HOTLINE_NUMBER)
            call.press("2")  # book a callback → "we call this number, right?"
            if call.pending_record is None:
                call.silence()
            assert call.pending_record is not None, (hotline.step(call), call.pending_gather, call.texts[-3:])
            started = time.perf_counter()
            call.speak(audio=audio)
            elapsed = time.perf_counter() - started
            assert hotline.step(call) == "choose_slot", hotline.step(call)
            with lock:
                latencies.append(elapsed * 1000)
            call.hangup()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return latencies


def nlu_speed() -> dict[str, float]:
    from ivr.nlu import understand
    texts = []
    for path in sorted((ROOT / "tests" / "nlu_corpus").glob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                texts.append((path.stem, line.split("\t")[0]))
    for context, text in texts[:50]:  # warm the caches
        understand(context, text)
    started = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        for context, text in texts:
            understand(context, text)
    seconds = time.perf_counter() - started
    count = rounds * len(texts)
    return {"utterances": count, "per_second": round(count / seconds), "ms_each": round(1000 * seconds / count, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--answers", type=int, default=40)
    parser.add_argument("--callers", default="1,2")
    args = parser.parse_args()
    model = korean_model_dir()
    root = Path(tempfile.mkdtemp(prefix="speech-bench-"))
    hotline = Hotline(root / "h", root / "prompts", start=datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI),
                      speech=True, SPEECH="vosk", MODELS_DIR=str(model.parent), VOSK_MODEL=model.name,
                      GRAMMARS_DIR=str(korean_grammars(root / "grammars")), RECOGNITION_WORKERS="2",
                      RECOGNITION_TIMEOUT_SECONDS="20")
    audio = speak_telephone("네", root / "audio")
    pool = hotline.rt.hearing.recogniser._get_pool()
    pool.wait_ready(120)
    run_callers(hotline, audio, 4, 1)  # warm-up
    rows = []
    for callers in (int(c) for c in args.callers.split(",")):
        started = time.perf_counter()
        latencies = run_callers(hotline, audio, args.answers, callers)
        wall = time.perf_counter() - started
        rows.append({"callers": callers, "answers": len(latencies), "p50_ms": round(pct(latencies, 50), 1),
                     "p95_ms": round(pct(latencies, 95), 1), "max_ms": round(max(latencies), 1),
                     "mean_ms": round(statistics.mean(latencies), 1), "wall_s": round(wall, 1)})
    speed = nlu_speed()
    pool.close()
    hotline.close()
    print("| concurrent callers | answers | p50 ms | p95 ms | max ms | mean ms |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['callers']} | {row['answers']} | {row['p50_ms']} | {row['p95_ms']} | {row['max_ms']} | {row['mean_ms']} |")
    print(f"\nNLU: {speed['utterances']} utterances, {speed['per_second']}/s, {speed['ms_each']} ms each")
    print(json.dumps({"bench": "speech_turns", "rows": rows, "nlu": speed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
