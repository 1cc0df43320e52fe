"""Runs YAML call scenarios (tests/scenarios/*.yaml) against a whole hotline.

A scenario is a list of caller actions and expectations, readable without Python:
  - press: "1"                 keys, as the caller presses them
  - say: 我要查一查             words, as the recogniser would output them (setup: {speech: true})
  - say: {words: [我要, 转人工], pause: 0.7, after: 4}
                               on a stream: stretches of speech with pauses between them,
                               `after` seconds into the prompts (barge-in; default: after them)
  - press_during: {keys: "1", after: 2}   keys while the prompts play (webhooks: a key barges
                               into <Gather> anyway)
  - silence: 2                 let the question time out this many times
  - wait: 40                   stay in the queue this many seconds
  - pause: true                the caller stops keying until the pending key window times out, once
  - bridge: true / end_bridge: 60   an operator takes the call / ends it after 60 s
  - hangup: true
  - call: "+8613800000001"     a new call from this number (later lines apply to it)
  - notification_call: "+8613800000001"   the hotline calls this number with its news (as the
                               worker would: the notification, then Twilio's outbound call)
  - expect_step: main_menu     where the dialog is now
  - expect_heard: 公积金        words heard since the last action (a list = all of them)
  - expect_not_heard: 叉
  - expect_gather: {timeout: 8, num_digits: 1}
  - expect_ended: false
  - expect_language: wuu
  - expect_handoff: {reason: pressed_0, verified: false}   the latest handoff record
  - expect_bookings: {open: 1, replaced: 1}                  this caller's bookings by status
  - expect_cleared: true       on a stream: the service sent `clear` during the last action
  - expect_waited: 8           on a stream: the last silence lasted this long after the prompts
                               had played (± 0.05 s)
  - expect_stream: true        the call is (still) on its Media Stream
  - lose_stream: true          on a stream: the stream process dies under the call
  - replay_upgrade: true       on a stream: someone replays the call's upgrade and `start`
Setup: transports: [stream] runs a scenario on one transport only; setup: {echo: {gain: 0.3,
seconds: 1.5}} puts the caller on a speakerphone whose prompt echo leaks while it adapts;
setup: {news: {"20261110006": ready_for_pickup}} records status changes as an import would;
start: notification begins with the hotline's notification call to `call` instead of a call in.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from hotline_harness import Hotline, heard
from ivr.simulator.media_stream import Echo, StreamLeg

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"


def load_scenarios() -> list[dict[str, Any]]:
    scenarios = []
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        for scenario in yaml.safe_load(path.read_text(encoding="utf-8")):
            scenario["file"] = path.name
            scenarios.append(scenario)
    return scenarios


def build_hotline(make_hotline, scenario: dict[str, Any], transport: str = "webhook") -> Hotline:
    setup = scenario.get("setup", {})
    kwargs: dict[str, Any] = {k: str(v) for k, v in setup.get("env", {}).items()}
    kwargs["transport"] = transport
    if "now" in setup:
        kwargs["start"] = datetime.fromisoformat(str(setup["now"]))
    if setup.get("speech"):
        kwargs["speech"] = True
    if "queue_max_size" in setup:
        kwargs["queue_max_size"] = int(setup["queue_max_size"])
    if "echo" in setup:
        kwargs["echo"] = Echo(**setup["echo"])
    hotline = make_hotline(**kwargs)
    for phone, language in setup.get("language", {}).items():
        hotline.remember_language(phone, language)
    if setup.get("news"):
        _record_news(hotline, {str(k): str(v) for k, v in setup["news"].items()})
    if setup.get("forged_upgrade"):
        hotline.sim.stream_signature = "bm90IFR3aWxpbydzIHNpZ25hdHVyZQ=="
    return hotline


def _record_news(hotline: Hotline, news: dict[str, str]) -> None:
    """Status changes as `python -m ivr import` records them (the importer's own tests cover it)."""
    from sqlalchemy import select
    from ivr.db.models import Matter, MatterChange
    from ivr.timeutil import to_db
    with hotline.rt.sessions() as db, db.begin():
        for case_no, status in news.items():
            matter = db.execute(select(Matter).where(Matter.case_no == case_no)).scalar_one()
            db.add(MatterChange(matter_id=matter.id, phone=matter.phone, old_status=matter.status,
                                new_status=status, changed_at=to_db(hotline.clock.now())))
            matter.status = status


def notification_call(hotline: Hotline, phone: str):
    """The worker's notification for `phone` (ivr.notify.planning), then the call Twilio places
    for it: answered, its TwiML run (the outbox and REST path: tests/test_notifications.py)."""
    from sqlalchemy import select
    from ivr.db.models import Notification
    from ivr.notify.planning import gather
    rt = hotline.rt
    with rt.sessions() as db, db.begin():
        gather(db, rt.notify_rules, hotline.clock.now(), [phone])
        notification = db.execute(select(Notification).where(Notification.phone == phone)
                                  .order_by(Notification.id.desc())).scalars().first()
        assert notification is not None and notification.status == "queued", "no notification to call with"
        notification.status, notification.attempts = "calling", notification.attempts + 1
        number = notification.id
    base = rt.settings.public_base_url
    return hotline.sim.place_outbound_call(phone, rt.settings.callback_from_number,
                                           f"{base}/twilio/notify/answered?n={number}",
                                           status_callback=f"{base}/twilio/notify/status?n={number}")


def run_scenario(hotline: Hotline, scenario: dict[str, Any]) -> None:
    caller = scenario.get("call", "+8613800000002")
    call = notification_call(hotline, caller) if scenario.get("start") == "notification" else hotline.call(caller)
    for number, line in enumerate(scenario["script"], 1):
        (verb, arg), = line.items()
        where = f"{scenario['file']}: {scenario['name']!r} line {number} ({verb}: {arg!r})"
        try:
            call, caller = _do(hotline, call, caller, verb, arg)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}\n--- heard since last input:\n{heard(call)}") from None


_last_action: dict[str, Any] = {}  # the stream before the last caller action, and its clears


def _do(hotline: Hotline, call, caller: str, verb: str, arg: Any):
    if verb in ("press", "say", "silence", "press_during"):
        _last_action.update(leg=call.stream, clears=call.stream.clears if call.stream else 0)
    if verb == "press":
        call.press(str(arg))
    elif verb == "silence":
        for _ in range(int(arg)):
            hotline.silence(call)
    elif verb == "pause":
        call.silence()
    elif verb == "say" and isinstance(arg, dict):
        call.speak_stream([str(w) for w in arg["words"]], pause=float(arg.get("pause", 0)), after=arg.get("after"))
    elif verb == "say":
        hotline.say(call, str(arg))
    elif verb == "press_during":
        call.press_during(str(arg["keys"]), float(arg["after"]))
    elif verb == "wait":
        call.wait(float(arg))
    elif verb == "bridge":
        call.bridge()
    elif verb == "end_bridge":
        call.end_bridge(float(arg))
    elif verb == "hangup":
        call.hangup()
    elif verb == "call":
        caller = str(arg)
        call = hotline.call(caller)
    elif verb == "notification_call":
        caller = str(arg)
        call = notification_call(hotline, caller)
    elif verb == "expect_cleared":
        leg = _last_action.get("leg")
        assert leg is not None, "the last action was not on a stream"
        cleared = leg.clears > _last_action["clears"]
        assert cleared == bool(arg), f"clear sent: {cleared}"
    elif verb == "expect_waited":
        assert call.stream is not None, "the call is not on a stream"
        assert call.stream.waited is not None and abs(call.stream.waited - float(arg)) <= 0.05, \
            f"the service waited {call.stream.waited}"
    elif verb == "expect_stream":
        assert (call.stream is not None) == bool(arg), f"on a stream: {call.stream is not None}"
    elif verb == "lose_stream":
        hotline.streams.lose(call.call_sid)
        call.stream.listen(0.0)
        call._stream_step()
    elif verb == "replay_upgrade":
        replay = StreamLeg(call, call.stream.url, call.stream.parameters, hotline.streams)
        assert not replay.open() and replay.received == 0, "a replayed upgrade was served"
    elif verb == "expect_step":
        assert hotline.step(call) == arg, f"step is {hotline.step(call)!r}"
    elif verb == "expect_heard":
        text = heard(call)
        for words in arg if isinstance(arg, list) else [arg]:
            assert str(words) in text, f"did not hear {words!r}"
    elif verb == "expect_not_heard":
        for words in arg if isinstance(arg, list) else [arg]:
            assert str(words) not in heard(call), f"heard {words!r}"
    elif verb == "expect_gather":
        gather = call.pending_gather
        assert gather is not None, "no question is waiting for keys"
        for key, value in arg.items():
            assert getattr(gather, key) == value, f"gather {key} is {getattr(gather, key)!r}"
    elif verb == "expect_language":
        assert hotline.state(call).language == arg, f"language is {hotline.state(call).language!r}"
    elif verb == "expect_ended":
        assert call.ended == bool(arg), f"call ended: {call.ended} ({call.ended_by})"
    elif verb == "expect_handoff":
        handoffs = hotline.handoffs()
        assert handoffs, "no handoff record"
        for key, value in arg.items():
            assert getattr(handoffs[-1], key) == value, f"handoff {key} is {getattr(handoffs[-1], key)!r}"
    elif verb == "expect_bookings":
        counts = Counter(b.status for b in hotline.bookings(caller))
        assert dict(counts) == arg, f"bookings are {dict(counts)}"
    else:
        raise AssertionError(f"unknown scenario verb {verb!r}")
    return call, caller
