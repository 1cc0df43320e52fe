#!/usr/bin/env python
"""How long a task takes, as a caller hears it: simulated calls on the virtual clock, each
<Play> lasting as long as its real rendered audio (espeak-ng, from the prompt cache).

What it does
  1. builds the service in this process on a fresh SQLite database (HOTLINE_VAR_DIR in a temp
     dir; prompts cached in var/bench-prompt-cache so later runs reuse them) with one caller
     registered for two matters (+8613700000001, ID last four 2580, born 1975 — not offered
     a person first), at a Thursday 10:00 in Shanghai (operators at work);
  2. plays each task for each kind of caller, first call from the number (the language
     question comes first) and a returning caller (language remembered):
       status   — hears the first matter read out ("第一件"),
       booking  — a callback booked for their own number (the confirmation heard),
       person   — 0 at the first question until "connecting" is heard;
     callers who answer at once (right after each prompt), slowly (4 s before each answer),
     after silence (the first question times out once), after a wrong key (7 at the first
     menu);
  3. prints a Markdown table of the seconds from the call's start, and one JSON line.

Usage:  .venv/bin/python bench/call_times.py
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from ivr.config import SHANGHAI, load_settings  # noqa: E402
from ivr.db.models import CallerPreference  # noqa: E402
from ivr.simulator.transport import WsgiTransport  # noqa: E402
from ivr.simulator.twilio_sim import SimCall, TwilioSimulator, VirtualClock  # noqa: E402
from ivr.timeutil import to_db  # noqa: E402
from ivr.web import create_app  # noqa: E402

BASE = "https://hotline.example.test"
TOKEN = "bench-call-times-token"
NUMBER = "+862160000000"
CALLER = "+8613700000001"
ID_KEYS = "2580#"
THURSDAY_10AM = datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI)
MATTERS = ("case_no,service,status,updated_at,phone,id_last4,birth_year,detail\n"
           "20261120101,housing_fund,need_documents,2026-11-24,+8613700000001,2580,1975,\n"
           "20261101102,social_security_card,ready_for_pickup,2026-11-20,+8613700000001,2580,1975,"
           "取件地点：徐汇区社区事务受理服务中心一楼三号窗口\n")
TASKS = {  # keys after the language question; the words whose prompt ends the task
    "status": (["1", ID_KEYS], "第一件"),
    "booking": (["2", "1", "1", "1"], "预约好了"),
    "person": (["0"], "正在为您转接工作人员"),
}
SLOW_SECONDS = 4.0
RATE = int(os.environ.get("TTS_RATE_WPM", "0")) or None  # None: the service's default
USED_RATE = [0]


class Caller:
    def __init__(self, call: SimCall, clock: VirtualClock, kind: str) -> None:
        self.call, self.clock, self.kind = call, clock, kind
        self.first, self.first_menu = True, True

    def answer(self, keys: str, menu: bool = False) -> None:
        """menu: this is the main menu (where the wrong key is pressed)."""
        if self.kind == "slowly":
            self.clock.advance(SLOW_SECONDS)
        if self.first and self.kind == "after silence":
            self.call.silence()
        if menu and self.first_menu and self.kind == "after a wrong key":
            self.call.press("7")
        self.first = False
        self.first_menu = self.first_menu and not menu
        self.call.press(keys)


PACE: dict[str, tuple[int, float]] = {}  # prompt URL → (spoken characters, seconds of audio)


def note_pace(call: SimCall) -> None:
    from ivr.prompts.pace import spoken_units
    for item in call.heard:
        if item.url and item.text and item.url in call.sim._duration_cache:
            seconds = call.sim._duration_cache[item.url]
            if seconds and spoken_units(item.text):
                PACE[item.url] = (spoken_units(item.text), seconds)


def heard_at(call: SimCall, words: str) -> float | None:
    return next((h.at for h in call.heard if h.text and words in h.text), None)


def run(kind: str, task: str, returning: bool, make: Callable[[], tuple]) -> float | None:
    sim, clock, remember = make()
    if returning:
        remember()
    call = sim.place_call(CALLER, NUMBER)
    caller = Caller(call, clock, kind)
    if not returning:
        caller.answer("1")  # 普通话
    keys, words = TASKS[task]
    for number, key in enumerate(keys):
        caller.answer(key, menu=number == 0)
        if heard_at(call, words) is not None:
            break
    at = heard_at(call, words)
    note_pace(call)
    if not call.ended:
        call.hangup()
    return at


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="call-times-"))
    cache = ROOT / "var" / "bench-prompt-cache"
    cache.mkdir(parents=True, exist_ok=True)
    csv = workdir / "matters.csv"
    csv.write_text(MATTERS, encoding="utf-8")
    counter = iter(range(10_000))

    def make() -> tuple:
        clock = VirtualClock(THURSDAY_10AM)
        var = workdir / f"v{next(counter)}"
        settings = load_settings({"HOTLINE_VAR_DIR": str(var), "PROMPT_CACHE_DIR": str(cache),
                                  "TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": BASE, "TWILIO_NUMBER": NUMBER,
                                  "ID_HASH_SECRET": "bench", "SPEECH": "off", "DEMO_CSV": str(csv),
                                  "LOG_LEVEL": "WARNING", **({"TTS_RATE_WPM": str(RATE)} if RATE else {})})
        USED_RATE[0] = settings.tts_rate_wpm
        app = create_app(settings, clock=clock.now)
        rt = app.extensions["hotline"]  # an empty database loads DEMO_CSV: the two matters

        def remember() -> None:
            with rt.sessions() as db, db.begin():
                db.merge(CallerPreference(phone=CALLER, language="cmn", updated_at=to_db(clock.now())))
        sim = TwilioSimulator(WsgiTransport(app), BASE, TOKEN, clock=clock, audio_durations=True, seed=1)
        return sim, clock, remember

    kinds = ["at once", "slowly", "after silence", "after a wrong key"]
    rows = []
    for returning in (False, True):
        for kind in kinds:
            row = {"caller": ("returning, " if returning else "first call, ") + kind}
            for task in TASKS:
                at = run(kind, task, returning, make)
                row[task] = None if at is None else round(at, 1)
            rows.append(row)
    print(f"\nSeconds from the start of the call (real prompt audio; {platform.node()}, "
          f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z})\n")
    print("| caller | hears the first matter | callback booked | 0 → connecting to a person |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['caller']} | " + " | ".join("—" if row[t] is None else f"{row[t]:.1f}" for t in TASKS) + " |")
    units = sum(u for u, _ in PACE.values())
    seconds = sum(t for _, t in PACE.values())
    rates = sorted(u / t for u, t in PACE.values())
    pace = {"prompts": len(PACE), "chars_per_s_overall": round(units / seconds, 2),
            "chars_per_s_median": round(rates[len(rates) // 2], 2), "tts_rate_wpm": USED_RATE[0]}
    print(f"\nPace of the prompts heard ({pace['prompts']} prompts, TTS_RATE_WPM {USED_RATE[0]}): "
          f"{pace['chars_per_s_overall']} spoken characters per second overall, "
          f"{pace['chars_per_s_median']} per prompt (median), pauses included")
    print(json.dumps({"bench": "call_times", "python": platform.python_version(), "rows": rows, "pace": pace},
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
