"""Notification calls as operators see them: the day's figures, the story in words, a number's
notifications on the history page, and stopping or resuming them at the person's request.

The calls themselves are another part of the hotline: these tests write their rows directly
(notifications, opt-outs, the call's session with its story) on the harness's SQLite database.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from hotline_harness import THURSDAY_10AM, Hotline
from ivr.config import SHANGHAI
from ivr.console.stats import day_figures
from ivr.console.story import story_lines
from ivr.db.models import CallSession, Handoff, Matter, MatterChange, Notification, NotificationOptOut
from ivr.timeutil import to_db
from test_console_web import (  # noqa: F401 - console is a fixture
    OPERATOR, OPERATOR_PW, SUPERVISOR, SUPERVISOR_PW, audit_rows, chart, console, is_login_redirect, logged_in,
    post, text, token)

PHONE = "+8613800000002"
SAME_ENDING = "+8613900000002"  # masked alike: *********0002
OTHER = "+8613800000007"
ID_KEYS = "4821"  # what a caller keyed at the identity check; must appear nowhere

# A notification call that reached the person, who heard two matters and then asked to stop.
HEARD_AND_STOPPED = [
    {"step": "start", "event": "notification_call", "notification": 1},
    {"step": "notify_intro", "event": "step"},
    {"step": "notify_ask_id", "event": "step"},
    {"step": "notify_ask_id", "event": "keys", "keys": "####"},
    {"step": "notify_ask_id", "event": "result", "action": "news_verify", "result": "ok"},
    {"step": "notify_news", "event": "step"},
    {"step": "notify_news", "event": "news_heard", "count": 2},
    {"step": "notify_stop_confirm", "event": "step"},
    {"step": "notify_stop_confirm", "event": "keys", "keys": "1"},
    {"step": "notify_stopped", "event": "step"},
    {"step": "notify_stopped", "event": "notifications_stopped"},
]


def at(hours: float, day: datetime = THURSDAY_10AM) -> datetime:
    """A naive UTC database time, `hours` after 00:00 Shanghai on `day`."""
    midnight = day.astimezone(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    return to_db(midnight + timedelta(hours=hours))


def add_notification(hotline: Hotline, phone: str, status: str, created: datetime, updated: datetime | None = None,
                     *, attempts: int = 1, sms_sent: bool = False, matters: int = 0,
                     call_sid: str | None = None) -> int:
    with hotline.rt.sessions() as db, db.begin():
        row = Notification(phone=phone, language="cmn", status=status, attempts=attempts, next_attempt_at=created,
                           call_sid=call_sid, sms_sent=sms_sent, created_at=created, updated_at=updated or created)
        db.add(row)
        db.flush()
        for n in range(matters):
            matter = Matter(case_no=f"N{row.id:04d}{n}", service="pension", status="paid", updated_at=created,
                            phone=phone, id_salt="s", id_hash="h", imported_at=created)
            db.add(matter)
            db.flush()
            db.add(MatterChange(matter_id=matter.id, phone=phone, old_status="in_review", new_status="paid",
                                changed_at=created, notification_id=row.id, told=status == "heard"))
        return row.id


def add_call(hotline: Hotline, call_sid: str, phone: str, story: list[dict], started: datetime,
             status: str = "completed") -> None:
    with hotline.rt.sessions() as db, db.begin():
        db.add(CallSession(call_sid=call_sid, caller=phone, state={"step": story[-1]["step"], "story": story},
                           turn=len(story), last_response="", status=status, started_at=started,
                           updated_at=started + timedelta(minutes=2),
                           ended_at=started + timedelta(minutes=2) if status == "completed" else None,
                           duration_seconds=120 if status == "completed" else None))


def opt_outs(hotline: Hotline) -> dict[str, str]:
    with hotline.rt.sessions() as db:
        return {row.phone: row.by for row in db.execute(select(NotificationOptOut)).scalars()}


def number_refs(html: str) -> list[str]:
    return re.findall(r'name="number" value="([0-9a-f]+)"', html)


# --- the story -----------------------------------------------------------------------------

def test_a_notification_call_reads_as_one_for_operators() -> None:
    assert story_lines(HEARD_AND_STOPPED) == [
        "热线打电话通知了办件新进展",
        "通知来电",
        "身份核验：按键 ####，核验通过",
        "听新进展：核验后听了 2 件新进展",
        "确认不再通知：按键 1",
        "已停止通知：不再接收通知电话",
    ]


def test_a_notification_that_went_by_sms_and_news_offered_to_a_caller() -> None:
    unreached = [{"step": "start", "event": "notification_call", "notification": 4},
                 {"step": "notify_intro", "event": "step"},
                 {"step": "notify_check", "event": "step"},
                 {"step": "notify_check", "event": "result", "action": "news_verify", "result": "wrong"},
                 {"step": "notify_id_wrong", "event": "step"},
                 {"step": "notify_sms", "event": "step"},
                 {"step": "notify_sms", "event": "result", "action": "send_news_sms", "result": "not_mobile"}]
    assert story_lines(unreached) == ["热线打电话通知了办件新进展", "通知来电", "身份核验：核验不对", "身份核验未通过",
                                      "短信发送：不是手机号，没有发短信"]
    sms = [{"step": "notify_sms", "event": "step"},
           {"step": "notify_sms", "event": "result", "action": "send_news_sms", "result": "sent"}]
    assert story_lines(sms) == ["短信发送：已用短信发送"]
    called_in = [{"step": "start", "event": "step"}, {"step": "news_offer", "event": "step"},
                 {"step": "news_offer", "event": "news_offered"}, {"step": "notify_last", "event": "step"}]
    assert story_lines(called_in) == ["接通", "有新进展：来电时提示有新进展", "听新进展"]


def test_the_waiting_list_shows_that_the_hotline_called_with_news(console: Hotline) -> None:
    started = to_db(console.clock.now())
    story = HEARD_AND_STOPPED[:7] + [{"step": "person", "event": "step"},
                                     {"step": "person", "event": "handoff", "reason": "pressed_0"}]
    add_call(console, "CA" + "1" * 32, PHONE, story, started, status="in-progress")
    with console.rt.sessions() as db, db.begin():
        db.add(Handoff(call_sid="CA" + "1" * 32, caller=PHONE, language="cmn", verified=True, reason="pressed_0",
                       story=story, status="waiting", created_at=started))
    page = text(logged_in(console, OPERATOR, OPERATOR_PW).get("/console/waiting"))
    for words in ("热线打电话通知了办件新进展", "听新进展：核验后听了 2 件新进展", "转人工：按 0 要人工"):
        assert words in page, words
    assert PHONE not in page and PHONE[1:] not in page


# --- at a glance ---------------------------------------------------------------------------

def notifications_of_a_thursday(hotline: Hotline) -> None:
    """Queued on Thursday 26 November (Shanghai) unless said; what became of them, and when."""
    wednesday = THURSDAY_10AM - timedelta(days=1)
    add_notification(hotline, PHONE, "heard", at(-0.5), at(10))  # queued 23:30 Wednesday, heard Thursday
    add_notification(hotline, OTHER, "reached", at(9), at(10.5))
    add_notification(hotline, "+8613800000008", "opted_out", at(9), at(11))
    add_notification(hotline, "+8613800000009", "not_reached", at(9), at(17), attempts=3, sms_sent=True)
    add_notification(hotline, "+862160001234", "not_reached", at(9), at(17), attempts=3)  # a landline: no SMS
    add_notification(hotline, "+8613800000010", "queued", at(12))
    add_notification(hotline, "+8613800000011", "cancelled", at(9))
    add_notification(hotline, "+8613800000012", "calling", at(23.5), at(23.9))
    add_notification(hotline, "+8613800000013", "heard", at(8, wednesday), at(15, wednesday))  # all Wednesday
    add_notification(hotline, "+8613800000014", "heard", at(10), at(24.5))  # heard at 00:30 Friday


def test_day_figures_count_notifications_by_shanghai_day(hotline: Hotline) -> None:
    notifications_of_a_thursday(hotline)
    with hotline.rt.sessions() as db:
        thursday = day_figures(db, THURSDAY_10AM.date())
        wednesday = day_figures(db, THURSDAY_10AM.date() - timedelta(days=1))
    assert (thursday.notifications_queued, thursday.notifications_reached, thursday.notifications_heard,
            thursday.notifications_not_reached, thursday.notifications_sms, thursday.notifications_opted_out) == \
        (8, 3, 1, 2, 1, 1)
    assert (wednesday.notifications_queued, wednesday.notifications_reached, wednesday.notifications_heard) == (2, 1, 1)


def test_glance_draws_the_notifications(console: Hotline) -> None:
    notifications_of_a_thursday(console)
    html = text(logged_in(console, OPERATOR, OPERATOR_PW).get("/console/glance?day=2026-11-26"))
    assert chart(html, "notifications") == [
        ("新排上的通知", "400.0", "8"), ("接通了", "150.0", "3"), ("核验后听了新进展", "50.0", "1"),
        ("没打通", "100.0", "2"), ("没打通，发了短信", "50.0", "1"), ("接通后不再接收通知", "50.0", "1")]
    assert "新排上的通知：8；接通了：3；核验后听了新进展：1；没打通：2；没打通，发了短信：1；接通后不再接收通知：1" in html
    assert re.search(r"<dt>通知电话接通</dt><dd>3</dd>", html)
    quiet = text(logged_in(console).get("/console/glance?day=2026-11-20"))
    assert [shown for _, _, shown in chart(quiet, "notifications")] == ["0"] * 6


# --- the history page ----------------------------------------------------------------------

def a_number_with_notifications(hotline: Hotline) -> None:
    """PHONE was called on Thursday (heard 2 matters, then stopped the calls); an earlier
    notification did not reach it and went by SMS; another number ends in 7."""
    add_notification(hotline, PHONE, "not_reached", at(-24 + 9), at(-24 + 17), attempts=3, sms_sent=True, matters=1)
    add_notification(hotline, PHONE, "opted_out", at(9), at(10), matters=2, call_sid="CA" + "2" * 32)
    story = [*HEARD_AND_STOPPED]
    story.insert(3, {"step": "notify_ask_id", "event": "speech", "intent": "digits", "masked": True})
    add_call(hotline, "CA" + "2" * 32, PHONE, story, at(10))
    with hotline.rt.sessions() as db, db.begin():
        db.add(NotificationOptOut(phone=PHONE, at=at(10), by="caller"))
    add_notification(hotline, OTHER, "heard", at(9), at(11), matters=1)


def test_history_lists_a_numbers_notifications_in_words(console: Hotline) -> None:
    a_number_with_notifications(console)
    page = text(logged_in(console, OPERATOR, OPERATOR_PW).get("/console/history?q=0002"))
    section = re.search(r'<section aria-labelledby="notify-heading".*?</section>\s*</section>', page, re.S).group(0)
    assert "*********0002 · 不接收通知电话" in section
    assert "2026-11-26 10:00 本人在通知电话里按 3 停止。" in section
    rows = re.findall(r'<td data-label="日期">([^<]*)</td>\s*<td data-label="结果">([^<]*)</td>\s*'
                      r'<td data-label="办件">([^<]*)</td>\s*<td data-label="拨打次数">([^<]*)</td>', section)
    assert rows == [("2026-11-26", "接通了，本人按 3 不再接收通知", "2 件", "1"),
                    ("2026-11-25", "没打通，已发短信", "1 件", "3")]
    assert "恢复电话通知 尾号0002" in section and "停止电话通知" not in section
    assert "0007" not in section  # only the number searched for
    # The call itself, with its story: nobody asks the person to repeat what they heard.
    assert "2026-11-26 10:00 · *********0002 · 热线打出的通知电话" in page
    for words in ("热线打电话通知了办件新进展", "身份核验：说话：（内容已隐藏），按键 ####，核验通过",
                  "听新进展：核验后听了 2 件新进展", "已停止通知：不再接收通知电话"):
        assert words in page, words
    assert PHONE not in page and PHONE[1:] not in page and ID_KEYS not in page
    assert page.count('<li class="panel">') == 1  # the call cards as before


def test_history_without_a_search_or_with_a_case_number(console: Hotline) -> None:
    a_number_with_notifications(console)
    client = logged_in(console, OPERATOR, OPERATOR_PW)
    assert 'id="notify-heading"' not in text(client.get("/console/history"))  # the latest calls only
    by_case = text(client.get("/console/history?q=N00010"))  # a case number of PHONE's matters
    assert "*********0002 · 不接收通知电话" in by_case and "*********0007" not in by_case
    fresh = text(client.get("/console/history?q=0007"))
    assert "*********0007 · 接收通知电话" in fresh and "接通了，核验后听了新进展" in fresh
    assert "停止电话通知 尾号0007" in fresh and "没有找到“0007”的通话。" in fresh
    assert "号码至少输入后四位" in text(client.get("/console/history?q=12"))


def test_numbers_with_the_same_ending_are_told_apart_by_more_digits(console: Hotline) -> None:
    add_notification(console, PHONE, "heard", at(9), at(10))
    add_notification(console, SAME_ENDING, "queued", at(9))
    client = logged_in(console, OPERATOR, OPERATOR_PW)
    both = text(client.get("/console/history?q=0002"))
    assert both.count("*********0002 · 接收通知电话") == 2 and "有几个号码尾号相同" in both
    one = text(client.get("/console/history?q=3800000002"))
    assert one.count("*********0002 · 接收通知电话") == 1 and "有几个号码尾号相同" not in one
    assert "接通了，核验后听了新进展" in one and "等待拨打" not in one


# --- stopping and resuming -----------------------------------------------------------------

def test_an_operator_stops_and_a_supervisor_resumes_notification_calls(console: Hotline) -> None:
    add_notification(console, PHONE, "heard", at(9), at(10), matters=1)
    operator = logged_in(console, OPERATOR, OPERATOR_PW)
    (ref,) = number_refs(text(operator.get("/console/history?q=0002")))
    stopped = post(operator, "/console/history/notifications/stop", q="0002", number=ref)
    assert stopped.status_code == 302 and stopped.headers["Location"] == f"/console/history?q=0002#number-{ref}"
    assert opt_outs(console) == {PHONE: OPERATOR}
    page = text(operator.get(stopped.headers["Location"]))
    assert "已停止：办件有新进展时，不再打电话通知尾号 0002。" in page
    assert "*********0002 · 不接收通知电话" in page and f"本人请坐席 {OPERATOR} 停止" in page
    assert "恢复电话通知 尾号0002" in page

    again = post(operator, "/console/history/notifications/stop", q="0002", number=ref)
    assert "尾号 0002 本来就不接收通知电话，没有改动。" in text(operator.get(again.headers["Location"]))
    assert opt_outs(console) == {PHONE: OPERATOR}

    supervisor = logged_in(console, SUPERVISOR, SUPERVISOR_PW)
    resumed = post(supervisor, "/console/history/notifications/resume", q="0002", number=ref)
    assert "已恢复：办件有新进展时，会再打电话通知尾号 0002。" in text(supervisor.get(resumed.headers["Location"]))
    assert opt_outs(console) == {}
    post(supervisor, "/console/history/notifications/resume", q="0002", number=ref)
    assert "尾号 0002 本来就接收通知电话，没有改动。" in text(supervisor.get("/console/history?q=0002"))

    changes = [row for row in audit_rows(console) if row[1].startswith("notifications_")]
    assert changes == [(OPERATOR, "notifications_stopped", {"number": "*********0002"}),
                       (SUPERVISOR, "notifications_resumed", {"number": "*********0002", "stopped_by": OPERATOR})]
    log = text(supervisor.get("/console/supervisor/audit"))
    assert "number=*********0002" in log and PHONE[1:] not in log


def test_a_number_that_pressed_3_is_resumed_by_an_operator(console: Hotline) -> None:
    a_number_with_notifications(console)
    operator = logged_in(console, OPERATOR, OPERATOR_PW)
    (ref,) = number_refs(text(operator.get("/console/history?q=0002")))
    post(operator, "/console/history/notifications/resume", q="0002", number=ref)
    assert PHONE not in opt_outs(console)
    assert audit_rows(console)[-1] == (OPERATOR, "notifications_resumed",
                                       {"number": "*********0002", "stopped_by": "caller"})


def test_a_form_only_acts_on_a_number_its_search_still_finds(console: Hotline) -> None:
    add_notification(console, PHONE, "heard", at(9), at(10))
    add_notification(console, OTHER, "heard", at(9), at(10))
    client = logged_in(console, OPERATOR, OPERATOR_PW)
    (ref,) = number_refs(text(client.get("/console/history?q=0002")))
    for query, number in (("0007", ref), ("0002", "0" * 24), ("0002", ""), ("", ref), ("12", ref)):
        refused = post(client, "/console/history/notifications/stop", q=query, number=number)
        assert refused.status_code == 302, (query, number)
        assert "没有找到这个号码，没有改动" in text(client.get(refused.headers["Location"]))
    assert opt_outs(console) == {}
    assert not [row for row in audit_rows(console) if row[1].startswith("notifications_")]


@pytest.mark.parametrize("action", ["stop", "resume"])
def test_anonymous_and_csrf_less_posts_change_nothing(console: Hotline, action: str) -> None:
    add_notification(console, PHONE, "heard", at(9), at(10))
    if action == "resume":
        with console.rt.sessions() as db, db.begin():
            db.add(NotificationOptOut(phone=PHONE, at=at(10), by="caller"))
    before = opt_outs(console)
    client = logged_in(console, OPERATOR, OPERATOR_PW)
    (ref,) = number_refs(text(client.get("/console/history?q=0002")))
    url = f"/console/history/notifications/{action}"

    anonymous = console.app.test_client()
    assert is_login_redirect(anonymous.post(url, data={"csrf_token": token(anonymous), "q": "0002", "number": ref}))
    assert is_login_redirect(anonymous.get("/console/history?q=0002"))
    refused = client.post(url, data={"q": "0002", "number": ref})
    assert refused.status_code == 400 and "表单已失效" in text(refused)
    assert client.post(url, data={"csrf_token": "forged", "q": "0002", "number": ref}).status_code == 400
    assert opt_outs(console) == before
    assert not [row for row in audit_rows(console) if row[1].startswith("notifications_")]
