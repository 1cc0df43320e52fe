"""Robustness of the Twilio webhooks: signatures, retries, garbage, a dead database, privacy."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from hotline_harness import BASE_URL, TOKEN, heard
from ivr.config import SHANGHAI, ConfigError, load_settings
from ivr.db.models import CallSession
from ivr.flow.loader import load_flow
from ivr.prompts.audio import WAVE_FORMAT_MULAW, read_telephone_wav

ROOT = Path(__file__).resolve().parent.parent
FLOW = load_flow(ROOT / "flows")
# A real SQLite engine whose file cannot be opened: every query fails as with a lost database.
DEAD_DATABASE = create_engine("sqlite:////proc/no/such/dir/hotline.sqlite")
INPUT_STEPS = sorted(s for s, step in FLOW.steps.items() if step.takes_input)


def signed_post(hotline, path: str, params: dict[str, str], signature: str | None = None):
    client = hotline.app.test_client()
    sig = hotline.sim.sign(BASE_URL + path, params) if signature is None else signature
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig})


def base_params(**extra: str) -> dict[str, str]:
    return {"CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": "+8613800000002",
            "To": "+862160000000", "CallStatus": "in-progress", **extra}


def test_requests_without_a_valid_signature_are_refused(hotline, caplog) -> None:
    caplog.set_level(logging.WARNING)
    params = base_params()
    assert signed_post(hotline, "/twilio/voice", params, signature="").status_code == 403
    assert signed_post(hotline, "/twilio/voice", params, signature="bm90IGEgc2lnbmF0dXJl").status_code == 403
    other_url = hotline.sim.sign("https://elsewhere.example/twilio/voice", params)
    assert signed_post(hotline, "/twilio/voice", params, signature=other_url).status_code == 403
    tampered = dict(params, From="+8613800000001")
    sig = hotline.sim.sign(BASE_URL + "/twilio/voice", params)
    assert signed_post(hotline, "/twilio/voice", tampered, signature=sig).status_code == 403
    assert signed_post(hotline, "/twilio/voice", params).status_code == 200
    rejected = [r.getMessage() for r in caplog.records if "bad or missing Twilio signature" in r.getMessage()]
    assert len(rejected) == 4
    assert all("1380000000" not in line and "*******000" in line for line in rejected)


def test_simulated_call_with_tampered_signature_is_refused(hotline) -> None:
    call = hotline.call(tamper_signature=True)
    assert call.requests[0].status == 403


def test_a_retried_webhook_gets_the_same_answer_and_books_once(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    first = call.replay_last_request()
    assert first == call.requests[0].text  # retried /twilio/voice
    call.press("2")
    call.press("1")
    call.press("1")
    call.press("1")  # confirm: the booking happens in this turn
    assert hotline.step(call) == "booked"
    body = [r for r in call.requests if "/twilio/turn" in r.url][-1].text
    replayed = [call.replay_last_request() for _ in range(3)]
    assert len(set(replayed)) == 1
    assert [b.status for b in hotline.bookings()] == ["open"]
    assert replayed[0] == body
    assert hotline.step(call) == "booked"


@pytest.mark.parametrize("digits", ["abc", "1" * 200, "1;DROP TABLE", "１"])
def test_garbage_digits_get_a_spoken_way_forward(hotline, digits: str) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    response = signed_post(hotline, "/twilio/turn?t=1", base_params(CallSid=call.call_sid, Digits=digits))
    assert response.status_code == 200
    assert b"<Gather" in response.data
    assert hotline.step(call) == "main_menu"
    assert hotline.state(call).story[-1]["event"] == "nomatch"


@pytest.mark.parametrize("path", ["/twilio/turn?t=1", "/twilio/queue/done?t=1", "/twilio/heard?t=1",
                                  "/twilio/recover"])
def test_unknown_or_missing_callsid_gets_apology_twiml(hotline, path: str, caplog) -> None:
    for params in (base_params(CallSid="CA" + "9" * 32, Digits="1"), {"Digits": "1"}):
        response = signed_post(hotline, path, params)
        assert response.status_code == 200
        body = response.data.decode()
        assert "/twilio/recover" in body and "<Gather" in body
    twins = [t for t in _texts(hotline, body)]
    assert "对不起，系统出了点问题。" in twins and "重新开始，请按1。转人工，请按0。" in twins
    assert any("CA" + "9" * 32 in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


def _texts(hotline, body: str) -> list[str]:
    import re
    client = hotline.app.test_client()
    return [client.get(url.replace(BASE_URL, "").replace(".wav", ".txt")).data.decode()
            for url in re.findall(r"<Play>([^<]+)</Play>", body)]


def test_fallback_url_apologises_and_offers_a_way_on(hotline) -> None:
    response = signed_post(hotline, "/twilio/fallback", base_params(ErrorCode="11200",
                                                                     ErrorUrl=BASE_URL + "/twilio/turn"))
    assert response.status_code == 200
    assert "对不起，系统出了点问题。" in _texts(hotline, response.data.decode())


def test_database_down_mid_call(make_hotline, tmp_path: Path) -> None:
    hotline = make_hotline()
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    working = hotline.rt.calls.sessions
    hotline.rt.calls.sessions = sessionmaker(DEAD_DATABASE)
    call.press("1")
    assert "对不起，系统出了点问题。" in heard(call)
    assert call.pending_gather is not None and call.pending_gather.action.endswith("/twilio/recover")
    call.press("1")  # start again: the database is still down
    assert "对不起，系统出了点问题。" in heard(call)
    call.press("0")  # a person, without the database: straight into the queue in office hours
    assert "正在为您转接工作人员" in heard(call)
    assert call.state == "queued"
    hotline.rt.calls.sessions = working
    assert not call.ended


def test_database_down_after_hours_still_answers(make_hotline) -> None:
    hotline = make_hotline(start=datetime(2026, 11, 26, 21, 0, tzinfo=SHANGHAI))
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    working = hotline.rt.calls.sessions
    hotline.rt.calls.sessions = sessionmaker(DEAD_DATABASE)
    call.press("0")
    call.press("0")
    assert "会在工作时间给您回电" in heard(call)
    hotline.rt.calls.sessions = working
    call.press("1")  # database back: start again at the main menu
    assert hotline.step(call) == "main_menu"
    assert "查办理进度，请按1" in heard(call)


@pytest.mark.parametrize("step", INPUT_STEPS)
def test_zero_reaches_a_person_from_every_step(hotline, step: str) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    with hotline.rt.sessions() as db, db.begin():
        row = db.get(CallSession, call.call_sid)
        row.state = dict(row.state, step=step)
    call.press("0")
    assert hotline.step(call) == "queue"
    assert call.state == "queued"
    assert hotline.handoffs()[-1].reason == "pressed_0"


def test_handoff_record_tells_the_story_without_id_digits(hotline, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    call.press("1")
    call.press("1111#")
    call.press("567*#")
    call.press("0")
    handoff = hotline.handoffs()[-1]
    assert (handoff.reason, handoff.verified, handoff.language) == ("pressed_0", True, "cmn")
    keys = [e["keys"] for e in handoff.story if e["event"] == "keys"]
    assert keys == ["1", "####", "####", "0"]
    story = str(handoff.story)
    assert "1111" not in story and "567" not in story
    steps = [e["step"] for e in handoff.story if e["event"] == "step"]
    assert steps[:5] == ["start", "welcome_back", "senior_check", "news_check", "main_menu"]
    assert "status_last" in steps
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "567" not in logged and "1111#" not in logged and "13800000002" not in logged


def test_status_callback_closes_the_session(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    call.silence()
    call.hangup()
    with hotline.rt.sessions() as db:
        row = db.get(CallSession, call.call_sid)
        assert row.status == "completed" and row.ended_at is not None
        status_post = [r for r in call.requests if r.url.endswith("/twilio/status")][-1]
        assert row.duration_seconds == int(status_post.params["CallDuration"]) > 0


def test_healthz(hotline) -> None:
    response = hotline.app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "tts": True, "steps": len(FLOW.steps),
                                   "spooled_callbacks": 0}


def test_prompt_audio_is_real_telephone_audio_with_a_text_twin(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    play = next(h for h in call.heard if h.url and "/prompts/tts/" in h.url)
    client = hotline.app.test_client()
    wav = client.get(play.url.replace(BASE_URL, ""))
    assert wav.status_code == 200 and wav.mimetype == "audio/wav"
    assert "immutable" in wav.headers["Cache-Control"]
    path = hotline.settings.prompt_cache_dir / Path(play.url).name
    tag, channels, rate, samples = read_telephone_wav(path)
    assert (tag, channels, rate) == (WAVE_FORMAT_MULAW, 1, 8000)
    twin = client.get(play.url.replace(BASE_URL, "").replace(".wav", ".txt"))
    assert twin.data.decode("utf-8") == play.text
    assert twin.mimetype == "text/plain"
    # ~4 characters a second at the slowed rate: the greeting takes several seconds
    assert 0.15 * len(play.text) < samples / 8000 < 0.6 * len(play.text)
    assert client.get("/prompts/tts/" + "0" * 24 + ".wav").status_code == 404


def _save_take(hotline, language: str, prompt_id: str, seconds: float) -> int:
    """A take as the prompt studio stores it (the studio's own tests make real ones)."""
    from ivr.prompts import library
    from studio_audio import silent_take
    with hotline.rt.sessions() as db, db.begin():
        row = library.save_take(db, language, prompt_id, silent_take(hotline.settings.var_dir, seconds), text="…",
                                source_name="take.wav", actor="sup", now=hotline.clock.now())
        return row.id


def test_recording_replaces_a_prompt_from_the_next_call_and_shanghainese_falls_back_to_mandarin(make_hotline) -> None:
    hotline = make_hotline()
    hotline.remember_language("+8613800000002", "wuu")
    before = hotline.call()
    assert not any("/prompts/rec/" in (h.url or "") for h in before.heard)
    take = _save_take(hotline, "wuu", "main_menu", 1.0)  # saved while the service runs
    call = hotline.call()
    urls = [h.url for h in call.heard if h.url]
    assert BASE_URL + f"/prompts/rec/wuu/{take}/main_menu.wav" in urls
    assert "查办理进度，请按1。预约回电，请按2。听或者取消预约" in heard(call)  # the recording's own words
    assert "您好，这里是上海市民办事热线" in heard(call)  # no recording yet: Mandarin
    assert "main_menu" not in hotline.rt.store.missing_recordings("wuu")
    assert "greeting" in hotline.rt.store.missing_recordings("wuu")
    client = hotline.app.test_client()
    wav = client.get(f"/prompts/rec/wuu/{take}/main_menu.wav")
    assert wav.status_code == 200 and "immutable" in wav.headers["Cache-Control"]
    served = hotline.settings.var_dir / "served.wav"
    served.write_bytes(wav.data)
    assert read_telephone_wav(served)[3] == 8000
    assert client.get(f"/prompts/rec/wuu/{take + 99}/main_menu.wav").status_code == 404


def test_without_a_tts_voice_prompts_use_say(make_hotline) -> None:
    hotline = make_hotline(TTS_VOICE="no-such-voice")
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    says = [h for h in call.heard if h.verb.lower() == "say"]
    assert says and says[0].language == "cmn-CN" and "您好" in says[0].text


def test_service_refuses_to_start_without_an_auth_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        load_settings({"HOTLINE_VAR_DIR": str(tmp_path)})
    demo = load_settings({"HOTLINE_VAR_DIR": str(tmp_path)}, demo=True)
    assert len(demo.twilio_auth_token) >= 32
    assert load_settings({"HOTLINE_VAR_DIR": str(tmp_path)}, demo=True).twilio_auth_token == demo.twilio_auth_token
    env = {k: v for k, v in os.environ.items() if k != "TWILIO_AUTH_TOKEN"}
    env["HOTLINE_VAR_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "ivr", "serve", "--port", "5999"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "TWILIO_AUTH_TOKEN is not set" in result.stderr


def test_last_place_taken_by_another_caller_while_confirming(make_hotline) -> None:
    hotline = make_hotline(SLOT_CAPACITY="1")
    for phone in ("+8613800000002", "+8613900000003"):
        hotline.remember_language(phone)
    first, second = hotline.call("+8613800000002"), hotline.call("+8613900000003")
    for call in (first, second):
        call.press("2")
        call.press("1")
        call.press("1")  # both choose the same slot
    second.press("1")
    assert hotline.step(second) == "booked"
    first.press("1")
    assert "这个时间刚刚约满了" in heard(first)
    assert hotline.step(first) == "choose_slot"
    assert "今天上午，十一点到十二点" not in heard(first)  # the full slot is no longer offered
    assert [b.caller for b in hotline.bookings()] == ["+8613900000003"]


def test_records_gone_between_check_and_readout(hotline) -> None:
    from ivr.db.models import Matter
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    call.press("1")
    call.press("567*#")
    call.press("#")
    with hotline.rt.sessions() as db, db.begin():
        row = db.get(CallSession, call.call_sid)
        row.state = dict(row.state, vars=dict(row.state["vars"], status_pages=[]))
        db.query(Matter).filter(Matter.phone == "+8613800000002").delete()
    call.press("1")
    assert hotline.step(call) == "ask_case_no"  # no readout kept and no records: not registered any more


def test_a_call_parked_on_a_step_that_no_longer_exists_hears_an_apology(hotline) -> None:
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    with hotline.rt.sessions() as db, db.begin():
        row = db.get(CallSession, call.call_sid)
        row.state = dict(row.state, step="renamed_in_a_new_flow_version")
    call.press("1")
    assert "对不起，系统出了点问题。" in heard(call)
    call.press("1")  # start again
    assert hotline.step(call) == "main_menu"


def test_simultaneous_retries_of_the_booking_turn_book_once(hotline) -> None:
    """Twilio may retry while the first request is still being served: both get one answer."""
    from concurrent.futures import ThreadPoolExecutor
    hotline.remember_language("+8613800000002")
    call = hotline.call()
    for key in "211":
        call.press(key)
    assert hotline.step(call) == "confirm_booking"
    with hotline.rt.sessions() as db:
        turn = db.get(CallSession, call.call_sid).turn
    params = base_params(CallSid=call.call_sid, Digits="1")
    path = f"/twilio/turn?t={turn}"
    signature = hotline.sim.sign(BASE_URL + path, params)

    def post(_: int) -> bytes:
        client = hotline.app.test_client()
        return client.post(path, data=params, headers={"X-Twilio-Signature": signature}).data

    with ThreadPoolExecutor(max_workers=6) as pool:
        bodies = list(pool.map(post, range(6)))
    assert len(set(bodies)) == 1 and b"<Gather" in bodies[0]
    assert [b.status for b in hotline.bookings()] == ["open"]
    assert hotline.step(call) == "booked"
