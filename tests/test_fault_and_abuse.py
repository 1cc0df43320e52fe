"""Fault and abuse, as a hostile or broken world would bring them.

- 10 000 fuzzed webhooks, every one correctly signed (what Twilio could send, and what an
  attacker holding the token could): no 5xx, only well-formed TwiML, nothing caught by the
  guard, and every log line one line and bounded.
- The database locked for 30 s while calls go on: every answer within the budget, a person
  reachable, and the calls carry on once it is back.
"""
from __future__ import annotations

import io
import logging
import random
import sqlite3
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode

from hotline_harness import BASE_URL, heard
from ivr.privacy import safe_formatter
from ivr.telephony.webhook_guard import GUARD_CATCHES

FUZZED_REQUESTS = 10_000
# TwiML verbs and the nouns they may hold, as Twilio's voice documentation defines them.
VERBS = {"Response": {"Say", "Play", "Pause", "Gather", "Record", "Enqueue", "Leave", "Hangup", "Redirect",
                      "Dial", "Reject"},
         "Gather": {"Say", "Play", "Pause"}, "Dial": {"Number", "Client", "Queue", "Sip", "Conference"},
         "Say": set(), "Play": set(), "Pause": set(), "Record": set(), "Enqueue": set(), "Leave": set(),
         "Hangup": set(), "Redirect": set(), "Number": set(), "Reject": set()}
URL_ATTRIBUTES = ("action", "waitUrl", "url", "statusCallback")

HOSTILE = ["", " ", "\n", "\r\n2099-01-01 00:00:00,000 CRITICAL ivr.calls forged", "\x00", "\x1b[31m", "²", "①",
           "１２", "-1", "9" * 40, "1e9", "NaN", "None", "' OR 1=1 --", "<Response/>", "&amp;", "%00", "../../",
           "\u2028", "😀", "A" * 2000, "+8613800000002", "hangup", "*", "#", "0", "1", "12*#", "567*#"]
KEYS = ["0", "1", "2", "3", "9", "*", "#", "12", "567*#", "20261020008#", "13800000002"]
QUEUE_RESULTS = ["bridged", "queue-full", "leave", "hangup", "error", "system-error", "redirected", ""]
STATUSES = ["completed", "busy", "no-answer", "failed", "canceled", "in-progress", "ringing"]


def _value(rng: random.Random, usual: list[str]) -> str:
    return rng.choice(usual) if rng.random() < 0.6 else rng.choice(HOSTILE)


def _query(rng: random.Random, path: str) -> str:
    if rng.random() < 0.15:
        return path
    name = {"turn": "t", "heard": "t", "done": "t", "connect": "handoff", "connected": "handoff"}.get(
        path.rsplit("/", 1)[-1], "attempt")
    value = rng.choice([str(rng.randint(0, 12)), rng.choice(HOSTILE)])
    return f"{path}?{urlencode({name: value})}"


def _check_twiml(body: str) -> None:
    root = ET.fromstring(body)
    assert root.tag == "Response", body[:200]

    def walk(node: ET.Element) -> None:
        allowed = VERBS[node.tag]
        for child in node:
            assert child.tag in allowed, f"<{child.tag}> inside <{node.tag}>: {body[:300]}"
            walk(child)
        for name in URL_ATTRIBUTES:
            if name in node.attrib:
                assert node.attrib[name].startswith(BASE_URL + "/twilio/"), node.attrib[name]
        if node.tag == "Play":
            assert (node.text or "").startswith(BASE_URL + "/prompts/"), node.text
    walk(root)


def test_ten_thousand_fuzzed_signed_webhooks(make_hotline) -> None:
    hotline = make_hotline()
    rng = random.Random(20261201)
    client = hotline.app.test_client()
    paths = sorted(rule.rule for rule in hotline.app.url_map.iter_rules() if rule.rule.startswith("/twilio/"))
    callers = ["+8613800000002", "+8613800000001", "+8613900000003"]
    for phone in callers:
        hotline.remember_language(phone)
    sids = [hotline.call(phone).call_sid for phone in callers] + ["CA" + "e" * 32]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(safe_formatter())  # the service's own log format, as configure_logging sets it
    root = logging.getLogger()
    root.addHandler(handler)
    before = sum(GUARD_CATCHES.values())
    statuses: dict[int, int] = {}
    try:
        for n in range(FUZZED_REQUESTS):
            path = _query(rng, rng.choice(paths))
            params = {"CallSid": _value(rng, sids), "AccountSid": "AC" + "5" * 32,
                      "From": _value(rng, callers), "To": "+862160000000",
                      "CallStatus": _value(rng, STATUSES)}
            for name, usual in (("Digits", KEYS), ("QueueResult", QUEUE_RESULTS), ("QueuePosition", ["1", "3"]),
                                ("QueueTime", ["0", "45", "400"]), ("CallDuration", ["0", "61"]),
                                ("DialCallStatus", STATUSES), ("FinishedOnKey", ["", "#"]),
                                ("ErrorCode", ["11200"]), ("RecordingUrl", ["https://api.twilio.com/x"])):
                if rng.random() < 0.4:
                    params[name] = _value(rng, usual)
            if rng.random() < 0.02:  # a call that really starts, so turns keep finding live calls
                params["CallSid"] = f"CA{n:032x}"
                path = "/twilio/voice"
            signature = hotline.sim.sign(BASE_URL + path, params)
            response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code == 200, (path, params, response.status_code)
            _check_twiml(response.data.decode())
    finally:
        root.removeHandler(handler)
    assert sum(GUARD_CATCHES.values()) - before == 0, dict(GUARD_CATCHES)
    assert statuses == {200: FUZZED_REQUESTS}
    lines = stream.getvalue().splitlines()
    assert lines, "the fuzz run logged nothing: the check below would prove nothing"
    assert max(len(line) for line in lines) <= 4096
    assert not any(line.startswith("2099-01-01") for line in lines)


def test_thirty_seconds_of_a_locked_database(make_hotline) -> None:
    """Calls go on while another program holds SQLite's write lock for 30 s."""
    # The default budgets (DB_WAIT_SECONDS 3, WEBHOOK_BUDGET_SECONDS 8); a queue long enough
    # for the whole outage (the wait loop advances 35 virtual seconds a round).
    hotline = make_hotline(QUEUE_MAX_WAIT_SECONDS="3600")
    budget = hotline.settings.webhook_budget_seconds
    for phone in ("+8613800000002", "+8613800000001"):
        hotline.remember_language(phone)
    waiting = hotline.call("+8613800000002")
    asking = hotline.call("+8613800000001")
    locked = threading.Event()
    released = threading.Event()

    def hold_lock() -> None:
        other = sqlite3.connect(Path(hotline.settings.database_url.removeprefix("sqlite:///")), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(30)
        other.execute("ROLLBACK")
        other.close()
        released.set()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    locked.wait()
    answers: list[float] = []

    def timed(action) -> None:
        started = time.monotonic()
        action()
        answers.append(time.monotonic() - started)

    try:
        timed(lambda: waiting.press("1"))
        assert "对不起，系统出了点问题" in heard(waiting)
        timed(lambda: waiting.press("0"))
        assert "正在为您转接工作人员" in heard(waiting) and waiting.state == "queued"
        while not released.is_set():
            timed(lambda: waiting.wait(35))  # the wait loop, announcing without the database
            assert "请稍等" in heard(waiting)
            timed(lambda: asking.press("1"))  # a menu choice, then "start again": each one waits
            if not released.is_set():  # the whole turn ran under the lock
                assert "对不起，系统出了点问题" in heard(asking)
    finally:
        holder.join()
    assert max(answers) < budget, answers
    assert len(answers) >= 10
    if asking.pending_gather.action.endswith("/twilio/recover"):
        asking.press("1")  # the database is back: start again at the main menu
    assert hotline.step(asking) == "main_menu"
    asking.press("1")  # which works as ever
    assert hotline.step(asking) == "ask_id"
    waiting.press("1")  # leaves the queue it joined without a record: a kept callback
    assert "我们已经记下您的来电" in heard(waiting)
    assert hotline.rt.spool.drain(hotline.rt.sessions) == 1
    assert [b.caller for b in hotline.bookings()] == ["+8613800000002"]
