"""Status-change notifications end to end, on the virtual clock: `python -m ivr import` records
the changes, the worker's pass places the calls through the telephony port (the real twilio
client → the fake REST API → the call simulator → the hotline's signed webhooks), the person
answers, presses 1, passes the identity check and hears only the matters with news; unanswered
calls are tried again, then an SMS with nothing personal; the next call in offers the news
first; 3 stops the calls; two passes or a retried webhook never call twice; a change outside
the call hours waits for them."""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from sqlalchemy import select

from cloud_harness import OPERATOR, OPERATOR_PW, Cloud
from hotline_harness import heard
from ivr.cli import main as cli_main
from ivr.console.waiting import waiting_now
from ivr.db.models import MatterChange, Notification, NotificationOptOut
from ivr.notify.planning import run_pass
from ivr.outbox.sending import drain
from ivr.simulator.rest_api import FakeTwilioApi

ANNA, ANNA_ID = "+8613800000001", "1234#"  # born 1950, five matters
BO, BO_ID = "+8613800000002", "567*#"  # one matter; ID 567X, X keyed as *
DEMO = Path(__file__).resolve().parent.parent / "flows" / "demo_matters.csv"
INTRO = "这里是上海市民办事热线。您办的一件事有新的进展。"
PERSONAL = ("养老金", "社保卡", "公积金", "医保", "办事申请", "取件地点", "2026", "1234", "567")




def reimport(cloud: Cloud, tmp_path: Path, monkeypatch, changes: dict[str, tuple[str, str]]) -> None:
    """The demo matters again with some statuses (and details) changed, through the CLI."""
    rows = list(csv.DictReader(DEMO.open(encoding="utf-8")))
    for row in rows:
        if row["case_no"] in changes:
            row["status"], row["detail"] = changes[row["case_no"]]
            row["updated_at"] = "2026-11-26"
    path = tmp_path / f"matters-{len(list(tmp_path.glob('matters-*.csv')))}.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    settings = cloud.rt.settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HOTLINE_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("ID_HASH_SECRET", "test-secret")
    assert cli_main(["import", str(path)]) == 0


def worker_pass(cloud: Cloud) -> None:
    """What `python -m ivr worker` does each pass, at the virtual clock's time."""
    rt, now = cloud.rt, cloud.now()
    run_pass(rt.sessions, rt.notify_rules, rt.calls.policies, rt.settings, now)
    drain(rt.sessions, cloud.telephony, rt.settings.twilio_number, now)
    cloud.sim.wait_idle()


def console_page(cloud: Cloud) -> str:
    """The operator's "waiting now" page, logged in through the form."""
    import re
    client = cloud.hotline.app.test_client()
    login = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
    client.post("/console/login", data={"csrf_token": token, "username": OPERATOR, "password": OPERATOR_PW})
    return client.get("/console/waiting").get_data(as_text=True)


def notifications(cloud: Cloud, phone: str) -> list[Notification]:
    with cloud.rt.sessions() as db:
        return list(db.execute(select(Notification).where(Notification.phone == phone)
                               .order_by(Notification.id)).scalars())


def calls_to(cloud: Cloud, phone: str):
    return [c for c in cloud.sim.outbound_calls if c.to == phone]


def later(cloud: Cloud, minutes: float) -> None:
    cloud.hotline.clock.advance(minutes * 60)


def test_an_import_calls_the_people_and_one_hears_the_news_after_the_identity_check(
        cloud: Cloud, api: FakeTwilioApi, tmp_path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.INFO)
    cloud.sim.answers[BO] = "no-answer"
    reimport(cloud, tmp_path, monkeypatch, {
        "20261101001": ("ready_for_pickup", "请带身份证到街道社区事务受理服务中心领取"),  # Anna
        "20260601005": ("rejected", "缺少户口本复印件"),  # Anna
        "20261110006": ("ready_for_pickup", ""),  # Bo
        "20260801004": ("approved", ""),  # Anna, but "approved" is not told (flows/notifications.yaml)
    })
    with cloud.rt.sessions() as db:
        changes = db.execute(select(MatterChange.phone, MatterChange.new_status)).all()
    assert sorted(changes) == [(ANNA, "ready_for_pickup"), (ANNA, "rejected"), (BO, "ready_for_pickup")]

    worker_pass(cloud)  # Thursday 10:00: inside the call hours
    [anna_call] = calls_to(cloud, ANNA)
    assert anna_call.from_ == cloud.rt.settings.callback_from_number
    before_check = heard(anna_call)
    assert before_check.startswith(INTRO)
    assert not any(word in before_check for word in PERSONAL), before_check  # whoever answered
    with cloud.sim.lock:
        anna_call.press("1")
        assert "身份证号码最后四位" in heard(anna_call)
        anna_call.press(ANNA_ID)
    news = heard(anna_call)
    assert "第一件，养老金。办好了，可以去拿了。" in news and "请带身份证到街道社区事务受理服务中心领取" in news
    assert "公积金" not in news and "医保" not in news  # only the matters with news
    with cloud.sim.lock:
        anna_call.press("1")
    assert "第二件，办事申请。没有通过。" in heard(anna_call) and "用短信发给您，请按4" in heard(anna_call)
    with cloud.sim.lock:
        anna_call.press("4")  # the read-out by SMS, to her own registered mobile
        anna_call.hangup()
    cloud.sim.wait_idle()
    drain(cloud.rt.sessions, cloud.telephony, cloud.rt.settings.twilio_number, cloud.now())
    [anna] = notifications(cloud, ANNA)
    assert anna.status == "heard"
    with cloud.rt.sessions() as db:
        assert all(told for (told,) in db.execute(select(MatterChange.told).where(MatterChange.phone == ANNA)))
    [sms] = [m for m in api.messages.values() if m.to == ANNA]
    assert "办好了，可以去拿了" in sms.body and "1234" not in sms.body

    [bo] = notifications(cloud, BO)
    assert (bo.status, bo.attempts, bo.last_result) == ("queued", 1, "no-answer")  # tried again later

    # Anna calls in and asks for a person: the operator sees what the notification told her.
    cloud.call(ANNA, "1")  # 65+: a person first
    with cloud.rt.sessions() as db:
        [waiting] = waiting_now(db, cloud.now())
    assert waiting.news == [f"{cloud.now():%m月%d日} 热线通知办件新进展：接通了，核验后听了新进展"]
    page = console_page(cloud)
    assert "热线通知办件新进展：接通了，核验后听了新进展" in page and ANNA not in page
    for text in caplog.messages:  # no ID characters and no whole numbers in the logs
        assert "1234#" not in text and ANNA not in text and BO not in text


def test_unanswered_calls_are_tried_again_then_an_sms_and_the_next_call_in_offers_the_news(
        cloud: Cloud, api: FakeTwilioApi, tmp_path, monkeypatch) -> None:
    cloud.sim.answers[BO] = "no-answer"
    reimport(cloud, tmp_path, monkeypatch, {"20261110006": ("ready_for_pickup", "")})
    worker_pass(cloud)
    later(cloud, 30)
    worker_pass(cloud)  # too soon for the next try
    assert len(calls_to(cloud, BO)) == 1
    later(cloud, 60)  # 11:30: the morning's call hours are over
    worker_pass(cloud)
    assert len(calls_to(cloud, BO)) == 1
    later(cloud, 180)  # 14:30
    worker_pass(cloud)
    later(cloud, 95)
    worker_pass(cloud)
    assert len(calls_to(cloud, BO)) == 3
    [bo] = notifications(cloud, BO)
    assert bo.status == "not_reached" and bo.sms_sent
    drain(cloud.rt.sessions, cloud.telephony, cloud.rt.settings.twilio_number, cloud.now())
    [sms] = [m for m in api.messages.values() if m.to == BO]
    assert sms.body == cloud.rt.flow.prompts["cmn"]["sms_news_waiting"]  # nothing personal in it
    later(cloud, 24 * 60)
    worker_pass(cloud)
    assert len(calls_to(cloud, BO)) == 3  # the notification is over; the news waits for Bo's call

    call = cloud.call(BO)  # Bo calls the hotline
    assert "您办的一件事有新的进展。要听，请按1" in heard(call)
    with cloud.sim.lock:
        call.press("1")
        call.press(BO_ID)
    assert "第一件，公积金。办好了，可以去拿了。" in heard(call)
    with cloud.rt.sessions() as db:
        assert db.execute(select(MatterChange.told)).scalar_one() is True
    again = cloud.call(BO)
    assert "有新的进展" not in heard(again)  # told: the menu as usual


def test_three_stops_the_calls_and_the_next_change_calls_nobody(cloud: Cloud, tmp_path, monkeypatch) -> None:
    reimport(cloud, tmp_path, monkeypatch, {"20261110006": ("ready_for_pickup", "")})
    worker_pass(cloud)
    [call] = calls_to(cloud, BO)
    with cloud.sim.lock:
        call.press("3")
        assert "以后不再打电话告诉您办件的新进展。确认，请按1" in heard(call)
        call.press("1")
    assert "以后不再打电话通知您" in heard(call)
    cloud.sim.wait_idle()
    with cloud.rt.sessions() as db:
        assert db.get(NotificationOptOut, BO).by == "caller"
    assert notifications(cloud, BO)[0].status == "opted_out"
    later(cloud, 24 * 60)  # Friday: another change
    reimport(cloud, tmp_path, monkeypatch, {"20261110006": ("paid", "")})
    worker_pass(cloud)
    assert len(calls_to(cloud, BO)) == 1
    assert notifications(cloud, BO)[-1].status == "cancelled"


def test_two_passes_and_a_retried_status_webhook_never_call_twice(cloud: Cloud, api, tmp_path, monkeypatch) -> None:
    cloud.sim.answers[BO] = "busy"
    reimport(cloud, tmp_path, monkeypatch, {"20261110006": ("ready_for_pickup", "")})
    rt, now = cloud.rt, cloud.now()
    for _ in range(2):  # two workers, or a pass that ran again
        run_pass(rt.sessions, rt.notify_rules, rt.calls.policies, rt.settings, now)
        drain(rt.sessions, cloud.telephony, rt.settings.twilio_number, now)
    cloud.sim.wait_idle()
    assert len(calls_to(cloud, BO)) == 1
    [bo] = notifications(cloud, BO)
    assert bo.attempts == 1 and bo.status == "queued"
    # Twilio delivers the final status callback again: still one try counted, no second call
    [call] = calls_to(cloud, BO)
    assert call.requests[-1].kind == "status_callback" and call.requests[-1].params["CallStatus"] == "busy"
    with cloud.sim.lock:
        call.replay_last_request()
    again = notifications(cloud, BO)[0]
    assert (again.attempts, again.status, again.next_attempt_at) == (bo.attempts, bo.status, bo.next_attempt_at)
    assert len([c for c in api.calls.values() if c.to == BO]) == 1


def test_a_change_outside_the_call_hours_waits_for_them(cloud: Cloud, tmp_path, monkeypatch) -> None:
    later(cloud, 100)  # Thursday 11:40
    reimport(cloud, tmp_path, monkeypatch, {"20261110006": ("ready_for_pickup", "")})
    worker_pass(cloud)
    assert calls_to(cloud, BO) == []
    later(cloud, 170)  # 14:30
    worker_pass(cloud)
    assert len(calls_to(cloud, BO)) == 1


def test_a_day_off_set_by_a_supervisor_calls_nobody(cloud: Cloud, tmp_path, monkeypatch) -> None:
    from ivr.service_rules import save_rule
    with cloud.rt.sessions() as db, db.begin():
        save_rule(db, "days_off", [cloud.now().date().isoformat()], "chen", cloud.now())  # the console's rules page
    reimport(cloud, tmp_path, monkeypatch, {"20261110006": ("ready_for_pickup", "")})
    worker_pass(cloud)
    assert calls_to(cloud, BO) == [] and notifications(cloud, BO)[0].status == "queued"
    later(cloud, 24 * 60)  # Friday, a working day
    worker_pass(cloud)
    assert len(calls_to(cloud, BO)) == 1
