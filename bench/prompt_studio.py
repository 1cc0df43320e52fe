#!/usr/bin/env python
"""What the prompt studio costs on this machine: taking in a take, recording a whole language
in one bulk import, and what a call pays for recordings afterwards.

What it does
  1. intake speed — espeak-ng (voice cmn, 150 wpm) says a short and a long Mandarin menu
     line, padded with silence at both ends to 5.0 s and 15.0 s (a person who clicks
     "record", then speaks); tests/studio_audio.py encodes each in every format a phone, a
     recorder or the browser makes (WAV 44.1 kHz stereo, MP3, M4A/AAC, OGG/Opus, WebM/Opus,
     FLAC); ivr.prompts.intake.take_in (decode with PyAV, trim, normalise, warn) takes each
     in, once to warm up and then BENCH_RUNS times (default 5): median wall and CPU seconds
     per take (CPU: this process, all its threads), and the real-time factor (wall seconds per
     second of audio);
  2. a whole language in one bulk import — one file per recordable id of Shanghainese
     (ivr.prompts.kit.recordable_texts(flow, "wuu"): prompts and the pieces prompts with
     values are said with), each text spoken by espeak-ng -v cmn and encoded as MP3 in 2
     processes (the slow part, timed apart), all zipped in one folder; then
     kit.bulk_import of the zip into a fresh SQLite database (a runtime built by
     ivr.runtime.build_runtime on a temporary HOTLINE_VAR_DIR): files, accepted / refused,
     wall and CPU seconds, warnings by code. espeak-ng is no voice talent (it reads Wu
     characters as Mandarin, or spells those it does not know), so the warnings say more
     about it than about the intake;
  3. what calls pay — on that runtime, RecordingIndex.refresh(db) in an open transaction, as
     each call start does (ivr.calls.CallService.start): the first one after the import (every
     take's audio written to the local cache), then 1000 with nothing changed (median, p99),
     refresh() with its own session likewise, and 20 refreshes each after one take changed
     (a new take of main_menu saved); PromptStore.audible() for confirm_booking with a slot
     filled in, once every piece is recorded: the first call (joins the pieces into one file
     under prompts/composed/) and 1000 later ones; against the same prompt on a second fresh
     runtime where nothing is recorded (TTS: a text twin on the first call, a look-up later;
     the first fetch of its URL renders it with espeak-ng, timed too).
Prints Markdown tables and one JSON line. Everything runs in this process (and 2 render
processes) on temporary directories, removed at the end (--keep: kept, path printed).
Takes about 1.5 minutes on 2 cores.

Usage:  .venv/bin/python bench/prompt_studio.py [--keep]
"""
from __future__ import annotations

import io
import json
import logging
import math
import multiprocessing
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import zipfile
from array import array
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from studio_audio import FORMATS, encode, speech_pcm, write_pcm_wav  # noqa: E402

SHORT = ("查办理进度，请按1。", 5.0)
LONG = ("查办理进度，请按1。预约回电，请按2。听或者取消预约，请按3。", 15.0)
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
RENDER_PROCESSES = 2
CALLS = 1000
CHANGES = 20
LANGUAGE = "wuu"
ACTOR = "bench"
FORMAT_LABELS = {"wav": "WAV 44.1 kHz stereo", "mp3": "MP3 44.1 kHz stereo", "m4a": "M4A (AAC) 44.1 kHz stereo",
                 "ogg": "OGG/Opus 48 kHz mono", "webm": "WebM/Opus 48 kHz mono", "flac": "FLAC 44.1 kHz mono"}


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(wall s, CPU s of this process, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def padded_speech(text: str, seconds: float, out: Path) -> Path:
    """espeak-ng's speech of `text`, with equal silence before and after to last `seconds`."""
    speech_pcm(text, out)
    import av
    with av.open(str(out)) as src:
        rate = src.streams.audio[0].rate
    samples = array("h", out.read_bytes()[44:])
    pad = array("h", [0]) * max(0, round((seconds * rate - len(samples)) / 2))
    write_pcm_wav(out, pad + samples + pad, rate)
    return out


# --- 1. intake ------------------------------------------------------------------------------------

def bench_intake(work: Path, texts: dict[str, str]) -> list[dict]:
    from ivr.prompts import kit
    from ivr.prompts.intake import take_in
    others = kit._other_texts(texts, "main_menu")
    rows = []
    for name, (text, seconds) in (("5 s", SHORT), ("15 s", LONG)):
        pcm = padded_speech(text, seconds, work / f"speech-{name.split()[0]}.wav")
        for ext in FORMATS:
            data = encode(pcm, ext)
            take = take_in(data, f"take.{ext}", text=text, other_texts=others)  # warm-up
            walls, cpus = [], []
            for _ in range(RUNS):
                wall, cpu, take = timed(lambda: take_in(data, f"take.{ext}", text=text, other_texts=others))
                walls.append(wall)
                cpus.append(cpu)
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            rows.append({"length": name, "format": ext, "audio_s": round(seconds, 2), "kb": round(len(data) / 1024, 1),
                         "wall_s": round(wall, 4), "cpu_s": round(cpu, 4), "rtf": round(wall / seconds, 4),
                         "kept_s": round(take.seconds, 2), "warnings": [w.code for w in take.warnings]})
    return rows


# --- 2. a whole language --------------------------------------------------------------------------

def _render_take(job: tuple[str, str, str]) -> tuple[str, bytes]:
    prompt_id, text, folder = job
    pcm = Path(folder) / f"{prompt_id}.wav"
    speech_pcm(text, pcm)
    data = encode(pcm, "mp3")
    pcm.unlink()
    return prompt_id, data


def render_kit(texts: dict[str, str], work: Path) -> tuple[bytes, dict]:
    folder = work / "render"
    folder.mkdir()
    jobs = [(pid, text, str(folder)) for pid, text in texts.items()]
    wall = time.perf_counter()
    with ProcessPoolExecutor(RENDER_PROCESSES, mp_context=multiprocessing.get_context("spawn")) as pool:
        takes = list(pool.map(_render_take, jobs, chunksize=4))
    rendered = time.perf_counter() - wall
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for pid, data in takes:
            archive.writestr(f"wuu-takes/{pid}.mp3", data)
    return buffer.getvalue(), {"files": len(takes), "render_s": round(rendered, 1),
                               "mp3_mb": round(sum(len(d) for _, d in takes) / 1048576, 2),
                               "zip_mb": round(len(buffer.getvalue()) / 1048576, 2)}


def make_runtime(var: Path):
    from ivr.config import load_settings
    from ivr.runtime import build_runtime
    settings = load_settings({"HOTLINE_VAR_DIR": str(var), "TWILIO_AUTH_TOKEN": "bench-prompt-studio",
                              "ID_HASH_SECRET": "bench", "SPEECH": "off", "LOG_LEVEL": "WARNING"})
    return build_runtime(settings, load_demo=False)


def bench_import(rt, archive: bytes) -> dict:
    from ivr.prompts import kit
    now = datetime.now(timezone.utc)
    wall, cpu, report = timed(lambda: kit.bulk_import(rt.sessions, rt.flow, LANGUAGE, [("wuu-takes.zip", archive)],
                                                      actor=ACTOR, now=now))
    warnings = Counter(w["code"] for row in report.accepted for w in row.warnings)
    refused = Counter(row.reason for row in report.refused)
    database = Path(rt.settings.database_url.removeprefix("sqlite:///"))
    return {"files": len(report.rows), "accepted": len(report.accepted), "refused": len(report.refused),
            "refused_why": dict(refused), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "per_file_s": round(wall / max(1, len(report.rows)), 3),
            "takes_audio_s": round(sum(r.seconds or 0 for r in report.accepted), 1),
            "takes_with_warnings": sum(1 for r in report.accepted if r.warnings),
            "warnings": dict(warnings.most_common()), "database_mb": round(database.stat().st_size / 1048576, 1)}


# --- 3. what calls pay ----------------------------------------------------------------------------

def series(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 3), "p99_ms": round(nearest_rank(ms, 0.99), 3),
            "max_ms": round(max(ms), 3)}


def refresh_in_call(rt) -> float:
    """One call start's check, in its own first transaction (CallService.start)."""
    with rt.sessions() as db, db.begin():
        start = time.perf_counter()
        rt.store.recordings.refresh(db)
        return time.perf_counter() - start


def bench_refresh(rt, retake) -> dict:
    from ivr.prompts import library
    index = rt.store.recordings
    before = len(index.recorded(LANGUAGE))
    first = refresh_in_call(rt)
    out = {"first_after_import": {"ms": round(first * 1000, 1), "takes_before": before,
                                  "takes_after": len(index.recorded(LANGUAGE))}}
    out["unchanged_in_call"] = series([refresh_in_call(rt) for _ in range(CALLS)])
    own = []
    for _ in range(CALLS):
        start = time.perf_counter()
        index.refresh()
        own.append(time.perf_counter() - start)
    out["unchanged_own_session"] = series(own)
    changed = []
    for _ in range(CHANGES):
        with rt.sessions() as db, db.begin():
            library.save_take(db, LANGUAGE, "main_menu", retake, text=rt.flow.prompts[LANGUAGE]["main_menu"],
                              source_name="retake.mp3", actor=ACTOR, now=datetime.now(timezone.utc))
        changed.append(refresh_in_call(rt))
    out["after_one_take_changed"] = series(changed)
    return out


def booking_prompt(rt):
    """confirm_booking for a Wu caller, tomorrow 9:00–10:00, as the engine fills it in."""
    from ivr import speakable
    from ivr.engine.actions import Prompt
    today = date(2026, 12, 1)
    start = datetime.combine(today + timedelta(days=1), clock_time(9))
    end = start + timedelta(hours=1)
    values = {lang: {"chosen_slot_spoken": speakable.say_slot(start, end, today, lang=lang), "replace_note": ""}
              for lang in ("wuu", "cmn")}
    return Prompt("confirm_booking", LANGUAGE, rt.engine.words("confirm_booking", values["wuu"], "wuu"),
                  fallback_text=rt.engine.words("confirm_booking", values["cmn"], "cmn"), static=False)


def audio_seconds(path: Path) -> float:
    from ivr.prompts.audio import read_telephone_wav
    _tag, _channels, rate, samples = read_telephone_wav(path)
    return round(samples / rate, 2)


def bench_audible(rt, path_of: Callable[[str], Path]) -> dict:
    prompt = booking_prompt(rt)
    first, _, heard = timed(lambda: rt.store.audible(prompt))
    later = []
    for _ in range(CALLS):
        start = time.perf_counter()
        again = rt.store.audible(prompt)
        later.append(time.perf_counter() - start)
    assert again.path == heard.path
    out = {"url": heard.path, "words": heard.text, "first_ms": round(first * 1000, 2), "later": series(later)}
    out["audio_s"] = audio_seconds(path_of(heard.path)) if heard.path.startswith("/prompts/composed/") else None
    return out


def bench_calls(rt, tts_rt, retake) -> dict:
    out = {"refresh": bench_refresh(rt, retake)}
    composer = rt.store.composers[LANGUAGE]
    prompt = booking_prompt(rt)
    composition = composer.compose(prompt.text, lambda pid: rt.store.recordings.lookup(LANGUAGE, pid) is not None)
    out["composed"] = bench_audible(rt, lambda url: rt.store.composed_path(url.rsplit("/", 1)[1][:-4], "wav"))
    out["composed"]["pieces"] = [p for p in composition.parts or () if isinstance(p, str)]
    tts_rt.store.recordings.refresh()
    out["tts"] = bench_audible(tts_rt, lambda url: Path())
    renderer = tts_rt.store.renderer
    if renderer is not None and out["tts"]["url"].startswith("/prompts/tts/"):
        wall, _, wav = timed(lambda: renderer.render(out["tts"]["words"]))
        out["tts"]["first_fetch_render_ms"] = round(wall * 1000, 1)
        out["tts"]["audio_s"] = audio_seconds(wav)
    return out


# --- report ---------------------------------------------------------------------------------------

def print_report(intake: list[dict], kit_info: dict, imported: dict, calls: dict) -> None:
    print(f"\nPrompt studio on {platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}), {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n")
    print(f"Intake of one take (take_in: decode, trim, normalise, warn), median of {RUNS} runs; "
          "RTF = wall s per s of audio\n")
    print("| format | 5 s: wall ms | CPU ms | RTF | 15 s: wall ms | CPU ms | RTF | size 5 s / 15 s |")
    print("|---|---|---|---|---|---|---|---|")
    for ext in FORMATS:
        short, long_ = (next(r for r in intake if r["format"] == ext and r["length"] == n) for n in ("5 s", "15 s"))
        print(f"| {FORMAT_LABELS[ext]} | {short['wall_s'] * 1000:.0f} | {short['cpu_s'] * 1000:.0f} | "
              f"{short['rtf']:.3f} | {long_['wall_s'] * 1000:.0f} | {long_['cpu_s'] * 1000:.0f} | {long_['rtf']:.3f} | "
              f"{short['kb']:.0f} / {long_['kb']:.0f} kB |")
    warned = sorted({f"{r['format']} {r['length']}: {', '.join(r['warnings'])}" for r in intake if r["warnings"]})
    print(f"\nKept after trimming: {intake[0]['kept_s']} s of 5 s, {intake[-1]['kept_s']} s of 15 s"
          + (f"; warnings: {'; '.join(warned)}" if warned else "; no warnings"))
    print(f"\nA whole language (wuu) in one bulk import: {kit_info['files']} takes spoken by espeak-ng and MP3-encoded "
          f"in {kit_info['render_s']} s ({RENDER_PROCESSES} processes), {kit_info['mp3_mb']} MB, zip {kit_info['zip_mb']} MB\n")
    print("| files | accepted | refused | bulk_import wall s | CPU s | per file s | audio kept s | takes with warnings |"
          " warnings by code | database MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    codes = ", ".join(f"{code} {n}" for code, n in imported["warnings"].items()) or "none"
    print(f"| {imported['files']} | {imported['accepted']} | {imported['refused']} | {imported['wall_s']} | "
          f"{imported['cpu_s']} | {imported['per_file_s']} | {imported['takes_audio_s']} | "
          f"{imported['takes_with_warnings']} | {codes} | {imported['database_mb']} |")
    for reason, n in imported["refused_why"].items():
        print(f"- refused ×{n}: {reason}")
    refresh, composed, tts = calls["refresh"], calls["composed"], calls["tts"]
    print(f"\nWhat a call pays (SQLite; {CALLS} calls unless said)\n")
    print("| what | median ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    first = refresh["first_after_import"]
    print(f"| RecordingIndex.refresh(db), first call start after the import ({first['takes_after']} takes to the "
          f"local cache) | {first['ms']} | | |")
    for key, label in (("unchanged_in_call", "refresh(db) in the call's transaction, nothing changed"),
                       ("unchanged_own_session", "refresh() with its own session, nothing changed"),
                       ("after_one_take_changed", f"refresh(db) after one take changed ({CHANGES} times)")):
        s = refresh[key]
        p99 = s["p99_ms"] if s["n"] >= 100 else ""  # of 20, the p99 is the max
        print(f"| {label} | {s['median_ms']} | {p99} | {s['max_ms']} |")
    print(f"| audible(), composed from {len(composed['pieces'])} recorded pieces: first call (joins the file) | "
          f"{composed['first_ms']} | | |")
    s = composed["later"]
    print(f"| audible(), composed: later calls | {s['median_ms']} | {s['p99_ms']} | {s['max_ms']} |")
    print(f"| audible(), same prompt as TTS (nothing recorded): first call (text twin) | {tts['first_ms']} | | |")
    s = tts["later"]
    print(f"| audible(), TTS: later calls | {s['median_ms']} | {s['p99_ms']} | {s['max_ms']} |")
    if "first_fetch_render_ms" in tts:
        print(f"| TTS: first fetch of its URL renders it (espeak-ng worker) | {tts['first_fetch_render_ms']} | | |")
    print(f"\nComposed: {composed['url']} ({composed['audio_s']} s; pieces {' + '.join(composed['pieces'])}); "
          f"TTS: {tts['url']} ({tts.get('audio_s')} s, Mandarin: {tts['words']})")


def main() -> int:
    logging.getLogger("ivr").setLevel(logging.ERROR)  # the runtime warns of the missing Wu recordings
    keep = "--keep" in sys.argv[1:]
    work = Path(tempfile.mkdtemp(prefix="prompt-studio-"))
    started = time.perf_counter()
    try:
        from ivr.flow.loader import load_flow
        from ivr.prompts import kit
        from ivr.prompts.intake import take_in
        texts = kit.recordable_texts(load_flow(ROOT / "flows"), LANGUAGE)
        archive, kit_info = render_kit(texts, work)  # first: the render processes start from a quiet parent
        intake = bench_intake(work, texts)
        rt = make_runtime(work / "var")
        imported = bench_import(rt, archive)
        menu = padded_speech(rt.flow.prompts["cmn"]["main_menu"], 14.0, work / "retake.wav")
        retake = take_in(encode(menu, "mp3"), "retake.mp3")
        tts_rt = make_runtime(work / "var-tts")
        calls = bench_calls(rt, tts_rt, retake)
        print_report(intake, kit_info, imported, calls)
        total = round(time.perf_counter() - started, 1)
        print(f"\nWhole bench: {total} s")
        print(json.dumps({"bench": "prompt_studio", "python": platform.python_version(), "cpus": os.cpu_count(),
                          "sqlite": sqlite3.sqlite_version, "runs": RUNS, "intake": intake, "kit": kit_info,
                          "bulk_import": imported, "calls": calls, "total_s": total}, ensure_ascii=False))
    finally:
        if keep:
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
