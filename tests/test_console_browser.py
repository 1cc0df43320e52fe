"""The operator console in real Chromium, against a hotline whose calls run in the simulator.

Each test opens its own hotline, live server and browser contexts (tests/browser_harness.py);
where the console makes Twilio REST requests, they reach the simulator through the fake REST
API (tests/cloud_harness.py).  Screenshots go to $SCREENSHOT_DIR (docs/screenshots for the docs).
"""
from __future__ import annotations

import re
from datetime import timedelta
from playwright.sync_api import Page, expect
from sqlalchemy import select

from browser_harness import (
    NARROW, OPERATOR, OTHER_OPERATOR, SUPERVISOR, WebConsole, add_accounts, expect_flash, focused,
    no_sideways_scrolling, screenshot)
from cloud_harness import CALLER, OPERATOR_PHONE, Cloud
from hotline_harness import HOTLINE_NUMBER, Hotline
from ivr.console.throttle import ThrottlePolicy
from ivr.console.callbacks import claim, record_outcome
from ivr.db.models import AuditEntry, Booking, Notification, NotificationOptOut
from ivr.timeutil import from_db, to_db

OTHER_CALLER = "+8613800000003"
POLL = re.compile(r"/console/api/waiting$")  # waiting.js asks for the live list every 3 s



def book(hotline: Hotline, caller: str = CALLER) -> Booking:
    """A caller books the first slot offered (callback → own number → first slot → confirm)."""
    hotline.remember_language(caller)
    call = hotline.call(caller)
    for key in "2111":
        call.press(key)
    assert hotline.step(call) == "booked", call.transcript()
    call.hangup()
    return hotline.bookings(caller)[-1]


def nav(page: Page, label: str) -> None:
    page.get_by_role("navigation", name="主导航").get_by_role("link", name=re.compile(label)).click()


def notify(hotline: Hotline, phone: str, *statuses: str, opted_out_by: str | None = None) -> None:
    """Notifications to `phone` as the notification calls leave them, one an hour back from now."""
    now = to_db(hotline.clock.now())
    with hotline.rt.sessions() as db, db.begin():
        for hours, status in enumerate(statuses, start=1):
            when = now - timedelta(hours=hours)
            db.add(Notification(phone=phone, language="cmn", status=status,
                                attempts=3 if status == "not_reached" else 1, next_attempt_at=when, sms_sent=status == "not_reached", created_at=when,
                                updated_at=when))
        if opted_out_by:
            db.add(NotificationOptOut(phone=phone, at=now, by=opted_out_by))


def audit_actions(hotline: Hotline, action: str) -> list[tuple[str, dict]]:
    with hotline.rt.sessions() as db:
        return [(e.actor, e.detail) for e in
                db.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).scalars()]


# --- logging in ------------------------------------------------------------------------------

def test_logging_in_with_the_keyboard_only(web: WebConsole, hotline: Hotline) -> None:
    add_accounts(hotline, OPERATOR)
    page = web.page(hotline.app, path="/console/login")
    screenshot(page, "login")
    page.keyboard.press("Tab")
    assert focused(page)["cls"] == "skip-link"
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "username"
    page.keyboard.type(OPERATOR.username)
    page.keyboard.press("Tab")
    assert focused(page)["id"] == "password"
    page.keyboard.type(OPERATOR.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/waiting$"))
    expect(page.locator(".who")).to_contain_text(f"已登录：{OPERATOR.username}（接线员）")
    expect(page.get_by_role("heading", level=1)).to_contain_text("等候中")


def test_wrong_passwords_make_the_next_try_wait_a_few_seconds(web: WebConsole, hotline: Hotline) -> None:
    add_accounts(hotline, OPERATOR)
    page = web.page(hotline.app, path="/console/login")

    def try_password(password: str) -> None:
        page.get_by_label("用户名", exact=True).fill(OPERATOR.username)
        page.get_by_label("密码", exact=True).fill(password)
        with page.expect_navigation():
            page.keyboard.press("Enter")

    try_password("not the password")
    expect_flash(page, "用户名或密码错误。", "error")
    for _ in range(ThrottlePolicy().free_tries - 1):
        try_password("not the password")
    expect_flash(page, "用户名或密码错误，或尝试次数过多。请 1 秒后再试。", "error")
    screenshot(page, "login-wait")
    try_password(OPERATOR.password)  # the right password, but within the wait: the same answer
    expect_flash(page, "请 1 秒后再试", "error")
    expect(page.locator(".who")).to_have_count(0)
    hotline.clock.advance(1)  # the wait is over: no 15-minute lock-out
    try_password(OPERATOR.password)
    expect(page).to_have_url(re.compile(r"/console/waiting$"))
    expect(page.locator(".who")).to_contain_text(f"已登录：{OPERATOR.username}")


# --- waiting now -----------------------------------------------------------------------------

def test_an_escalated_caller_appears_in_waiting_now_without_a_reload(web: WebConsole, hotline: Hotline) -> None:
    add_accounts(hotline, OPERATOR)
    page = web.page(hotline.app, OPERATOR)
    with page.expect_response(POLL):  # the list's first poll is done
        page.goto("/console/waiting")
    expect(page.locator("#waiting-live")).to_contain_text("现在没有来电在等候")
    page.evaluate("window.openedBeforeTheCall = true")  # gone if the page were reloaded

    hotline.remember_language(CALLER)
    call = hotline.call(CALLER)
    for keys in ("1", "1234#", "0#"):  # status → ID check (wrong digits) → 0 for a person
        call.press(keys)
    assert call.state == "queued", call.transcript()

    card = page.locator(".waiting-call")
    expect(card).to_have_count(1, timeout=10_000)
    expect(card).to_be_visible()
    assert page.evaluate("window.openedBeforeTheCall") is True
    expect(card.get_by_role("heading")).to_contain_text("尾号 0002")
    for fact in ("*********0002", "普通话", "未核验", "按 0 要人工"):
        expect(card.locator(".facts")).to_contain_text(fact)
    expect(page).to_have_title(re.compile(r"^\(1\) 等候中"))
    card.locator(".story summary").click()
    story = card.locator(".story")
    expect(story).to_have_attribute("open", "")
    expect(story).to_contain_text("主菜单：按键 1")
    expect(story).to_contain_text("身份核验：按键 ####")
    text = page.evaluate("document.body.textContent")
    assert "1234" not in text and "13800000002" not in text
    screenshot(page, "waiting-now")


def test_keyboard_focus_stays_on_a_story_while_the_list_refreshes(web: WebConsole, hotline: Hotline) -> None:
    add_accounts(hotline, OPERATOR)
    hotline.remember_language(CALLER)
    hotline.call(CALLER).press("0")
    page = web.page(hotline.app, OPERATOR)
    with page.expect_response(POLL):
        page.goto("/console/waiting")
    summary = page.locator(".waiting-call .story summary")
    summary.focus()
    expect(summary).to_be_focused()
    page.evaluate("document.title = 'before the poll'")
    with page.expect_response(POLL):  # the next poll, 3 s later: nothing changed for the operator
        pass
    expect(page).to_have_title(re.compile(r"^\(1\) 等候中"))  # waiting.js has handled that poll
    assert focused(page)["tag"] == "summary"


def test_a_caller_who_hangs_up_before_the_first_poll_leaves_the_list(web: WebConsole, hotline: Hotline) -> None:
    add_accounts(hotline, OPERATOR)
    hotline.remember_language(CALLER)
    call = hotline.call(CALLER)
    call.press("0")
    page = web.page(hotline.app, OPERATOR)
    page.clock.install()  # the poll timer runs only when the test says so
    held: list = []  # the first poll's request, kept back until the caller has hung up
    page.route(POLL, lambda route: route.continue_() if held else held.append(route))
    page.goto("/console/waiting")
    expect(page.locator(".waiting-call")).to_have_count(1)
    while not held:  # the first poll has left the page and waits here
        page.wait_for_timeout(20)
    call.hangup()
    with page.expect_response(POLL):
        held[0].continue_()
    for _ in range(2):
        with page.expect_response(POLL):
            page.clock.run_for(3_000)
    expect(page.locator(".waiting-call")).to_have_count(0, timeout=1_000)


def test_taking_the_next_caller_rings_the_operators_phone(web: WebConsole, make_hotline, api) -> None:
    cloud = Cloud(make_hotline, api)
    caller = cloud.waiting_caller()
    page = web.page(cloud.hotline.app, OPERATOR)
    expect(page.locator(".waiting-call")).to_have_count(1)
    page.get_by_role("button", name=re.compile("接听下一位（尾号 0002）")).click()
    expect_flash(page, "正在接通尾号 0002 的来电，您的电话马上会响。", "info")
    expect(page.locator(".waiting-call")).to_have_count(0)
    expect(page.locator("#waiting-live")).to_contain_text("现在没有来电在等候")
    with cloud.sim.lock:
        (dial,) = caller.dials
        assert (dial.targets, dial.caller_id, dial.status) == ([OPERATOR_PHONE], HOTLINE_NUMBER, "completed")
    handoff = cloud.handoff()
    assert (handoff.taken_by, handoff.status) == (OPERATOR.username, "done")
    screenshot(page, "taking-a-call")


# --- callbacks -------------------------------------------------------------------------------

def test_a_booking_is_called_back_until_the_attempts_are_used_then_closed_in_follow_up(
        web: WebConsole, make_hotline, api) -> None:
    cloud = Cloud(make_hotline, api, CALLBACK_MAX_ATTEMPTS="2")
    booking = cloud.booking()
    cloud.hotline.sim.dial_outcomes[CALLER] = "no-answer"
    slot = f"{from_db(booking.slot_start):%H:%M}–{from_db(booking.slot_end):%H:%M}"
    page = web.page(cloud.hotline.app, OPERATOR, path="/console/callbacks")
    card = page.locator(f"#booking-{booking.id}")
    expect(card.get_by_role("heading")).to_have_text(f"{slot} · 尾号 0002")
    expect(card.locator(".facts")).to_contain_text("*********0002")

    for attempt in (1, 2):
        card.get_by_role("button", name="认领 尾号0002").click()
        expect_flash(page, "已认领。", "info")
        expect(card.locator(".claim")).to_have_text(OPERATOR.username)
        card.get_by_role("button", name="立即回电 尾号0002").click()
        expect_flash(page, "已拨出：您的电话马上会响。通话后请记录结果。", "info")
        cloud.sim.wait_idle()
        calls = cloud.sim.outbound_calls
        assert len(calls) == attempt
        assert (calls[-1].to, calls[-1].from_) == (OPERATOR_PHONE, HOTLINE_NUMBER)  # the operator first
        (dial,) = calls[-1].dials
        assert (dial.targets, dial.caller_id, dial.status) == ([CALLER], HOTLINE_NUMBER, "no-answer")
        page.reload()
        expect(card.locator(".attempt-status")).to_contain_text("对方：无人接听")
        if attempt == 1:
            screenshot(page, "callbacks")
        card.get_by_label("无人接听").check()
        card.get_by_label("备注（可不填）").fill(f"第 {attempt} 次没人接")
        card.get_by_role("button", name="保存结果").click()
        if attempt == 1:
            expect_flash(page, "无人接听：已记录无人接听，30 分钟后会回到列表再拨。", "info")
            expect(card.locator(".facts")).to_contain_text("1 / 2")
            expect(card.locator(".claim")).to_have_text("未认领")
    expect_flash(page, "无人接听：已转到“跟进”列表。", "info")
    expect(card).to_have_count(0)
    assert [a.dial_status for a in cloud.attempts(booking.id)] == ["no-answer", "no-answer"]

    nav(page, "跟进")
    item = page.locator(f"#followup-{booking.id}")
    expect(item.get_by_role("heading")).to_contain_text("尾号 0002")
    for fact in ("*********0002", "已拨次数2", "无人接听", "第 2 次没人接"):
        expect(item.locator(".facts")).to_contain_text(fact)
    screenshot(page, "follow-up")
    item.get_by_label("怎么处理的").fill("社区志愿者上门，已转告。")
    item.get_by_role("button", name="处理完，关闭 尾号0002").click()
    expect_flash(page, "已处理完，移出跟进列表。", "info")
    expect(item).to_have_count(0)
    closed = cloud.get(Booking, booking.id)
    assert (closed.status, closed.attempts) == ("done", 2)
    assert closed.outcome_note == "第 2 次没人接\n社区志愿者上门，已转告。"


def test_two_operators_claim_one_booking_and_only_one_gets_it(web: WebConsole, hotline: Hotline) -> None:
    add_accounts(hotline, OPERATOR, OTHER_OPERATOR)
    booking = book(hotline)
    first = web.page(hotline.app, OPERATOR, path="/console/callbacks")
    second = web.page(hotline.app, OTHER_OPERATOR, path="/console/callbacks")
    for page in (first, second):
        expect(page.get_by_role("button", name="认领 尾号0002")).to_be_visible()
    first.get_by_role("button", name="认领 尾号0002").click()
    expect_flash(first, "已认领。", "info")
    second.get_by_role("button", name="认领 尾号0002").click()  # on a page that still offers it
    expect_flash(second, f"这条预约已由 {OPERATOR.username} 认领", "error")
    expect(second.locator(f"#booking-{booking.id} .claim")).to_have_text(OPERATOR.username)
    expect(second.get_by_role("button", name=re.compile("立即回电"))).to_have_count(0)
    assert hotline.bookings()[0].claimed_by == OPERATOR.username
    assert audit_actions(hotline, "callback_claimed") == [(OPERATOR.username, {"booking": booking.id})]


# --- supervisor pages ------------------------------------------------------------------------

def test_a_supervisor_limits_slot_capacity_and_the_next_caller_gets_another_slot(
        web: WebConsole, hotline: Hotline) -> None:
    add_accounts(hotline, SUPERVISOR, OPERATOR)
    page = web.page(hotline.app, SUPERVISOR)
    nav(page, "服务规则")
    capacity = page.get_by_label("每个时段最多回电数")
    assert int(capacity.input_value()) > 1  # by default two callers could share the first slot
    capacity.fill("1")
    page.get_by_role("button", name="保存规则").click()
    expect_flash(page, "已保存。下一通来电起生效。", "info")
    expect(capacity).to_have_value("1")
    screenshot(page, "rules")
    first, second = book(hotline, CALLER), book(hotline, OTHER_CALLER)
    assert first.slot_start != second.slot_start
    changes = [(actor, detail["new"]) for actor, detail in audit_actions(hotline, "rule_changed")
               if detail["rule"] == "slot_capacity"]
    assert changes == [(SUPERVISOR.username, 1)]

    operator = web.page(hotline.app, OPERATOR)
    expect(operator.get_by_role("link", name=re.compile("服务规则"))).to_have_count(0)
    web.allow(r"status of 403 .*/console/supervisor/rules")  # Chromium logs every 4xx page load
    response = operator.goto("/console/supervisor/rules")
    assert response is not None and response.status == 403
    expect(operator.get_by_role("heading", level=1)).to_have_text("没有权限")


def test_history_finds_calls_by_the_last_four_digits_and_glance_draws_charts(
        web: WebConsole, hotline: Hotline) -> None:
    add_accounts(hotline, OPERATOR)
    hotline.remember_language(CALLER)
    served = hotline.call(CALLER)  # case status by keys, no person needed
    for keys in ("1", "567*#"):
        served.press(keys)
    served.hangup()
    book(hotline, CALLER)
    hotline.remember_language(OTHER_CALLER)
    person = hotline.call(OTHER_CALLER)
    person.press("0")
    person.hangup()

    page = web.page(hotline.app, OPERATOR)
    nav(page, "通话记录")
    page.get_by_label(re.compile("号码后四位")).fill("0002")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/history\?q=0002$"))
    expect(page.get_by_role("heading", level=2, name=re.compile("的通话"))).to_have_text("“0002”的通话（2）")
    cards = page.locator("main li.panel")
    expect(cards).to_have_count(2)
    for index in range(2):
        expect(cards.nth(index).get_by_role("heading")).to_contain_text("*********0002")
    expect(cards.filter(has_text="待回电")).to_have_count(1)  # one of them made the booking
    screenshot(page, "history")

    nav(page, "概览")
    for chart in ("calls", "containment", "handoffs", "bookings", "notifications"):  # drawn as SVG on the server
        svg = page.locator(f"section.chart[aria-labelledby='{chart}-heading'] svg[role=img]")
        expect(svg).to_be_visible()
        assert svg.bounding_box()["height"] > 30, chart
    expect(page.locator("#calls-desc")).to_have_text("来电：3；已结束：3；自助完成（无需人工）：2")
    screenshot(page, "glance")


def test_history_stops_and_resumes_notification_calls_for_a_caller_who_asks(web: WebConsole, hotline: Hotline) -> None:
    add_accounts(hotline, OPERATOR)
    hotline.remember_language(CALLER)
    hotline.call(CALLER).press("0")  # the person is on the line with an operator
    notify(hotline, CALLER, "heard", "not_reached")
    page = web.page(hotline.app, OPERATOR, path="/console/history?q=0002")
    card = page.locator("section.notify-number")
    expect(card.get_by_role("heading")).to_have_text("*********0002 · 接收通知电话")
    rows = card.get_by_role("table", name=re.compile("尾号 0002 最近的通知电话")).locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("接通了，核验后听了新进展")
    expect(rows.nth(1)).to_contain_text("没打通，已发短信")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    card.get_by_role("button", name="停止电话通知 尾号0002").click()
    expect_flash(page, "已停止：办件有新进展时，不再打电话通知尾号 0002。", "info")
    assert asked and "尾号 0002" in asked[0]
    expect(card.get_by_role("heading")).to_have_text("*********0002 · 不接收通知电话")
    expect(card.locator(".opt-out")).to_contain_text(f"本人请坐席 {OPERATOR.username} 停止")
    screenshot(page, "history-notifications")
    card.get_by_role("button", name="恢复电话通知 尾号0002").click()
    expect_flash(page, "已恢复：办件有新进展时，会再打电话通知尾号 0002。", "info")
    expect(card.get_by_role("heading")).to_have_text("*********0002 · 接收通知电话")
    assert [actor for actor, _ in audit_actions(hotline, "notifications_stopped")] == [OPERATOR.username]
    assert audit_actions(hotline, "notifications_resumed") == [
        (OPERATOR.username, {"number": "*********0002", "stopped_by": OPERATOR.username})]
    assert "13800000002" not in page.evaluate("document.documentElement.outerHTML")


# --- accessibility ---------------------------------------------------------------------------

CONSOLE_PAGES = ["/console/waiting", "/console/callbacks", "/console/follow-up", "/console/history",
                 "/console/history?q=0002", "/console/history?q=0004", "/console/glance",
                 "/console/supervisor/accounts", "/console/supervisor/rules", "/console/supervisor/audit", "/console/supervisor/prompts",
                 "/console/supervisor/prompts?lang=cmn", "/console/supervisor/prompts/wuu/main_menu",
                 "/console/supervisor/prompts/wuu/confirm_booking", "/console/supervisor/prompts/wuu/script"]


def test_every_page_reflows_at_640_px_and_works_by_keyboard(web: WebConsole, hotline: Hotline) -> None:
    """640 CSS px is a 1280 px screen at 200 % zoom: no sideways scrolling; the first Tab stop is the
    skip link; a booking can be claimed with Tab and Enter.  No CSP or script errors (the fixture)."""
    add_accounts(hotline, SUPERVISOR)
    hotline.remember_language(CALLER)
    waiting = hotline.call(CALLER)
    for keys in ("1", "1234#", "0#"):
        waiting.press(keys)
    followup = book(hotline, "+8613800000004")
    with hotline.rt.sessions() as db, db.begin():
        claim(db, followup.id, SUPERVISOR.username, hotline.clock.now(), 20)
        record_outcome(db, followup.id, SUPERVISOR.username, "needs_followup", "请社区上门看看，老人耳朵不太好",
                       hotline.clock.now(), hotline.settings)
    booking = book(hotline, OTHER_CALLER)
    notify(hotline, CALLER, "heard", "not_reached", "reached")  # history?q=0002: the number's notifications
    notify(hotline, "+8613800000004", "opted_out", opted_out_by="caller")  # history?q=0004: one that said stop

    page = web.page(hotline.app, viewport=NARROW, path="/console/login")
    assert no_sideways_scrolling(page), "/console/login"
    page.keyboard.press("Tab")
    assert focused(page)["cls"] == "skip-link", "/console/login"
    page.get_by_label("用户名", exact=True).fill(SUPERVISOR.username)
    page.get_by_label("密码", exact=True).fill(SUPERVISOR.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/waiting$"))
    for url in CONSOLE_PAGES:
        page.goto(url)
        page.keyboard.press("Tab")
        assert focused(page)["cls"] == "skip-link", url
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")  # stories too
        assert no_sideways_scrolling(page), url
    page.keyboard.press("Enter")  # the skip link takes the keyboard to the main content
    assert focused(page)["id"] == "main"

    page.goto("/console/callbacks")
    for _ in range(40):
        page.keyboard.press("Tab")
        if focused(page)["text"].startswith("认领"):
            break
    assert focused(page)["text"] == "认领 尾号0003", focused(page)
    page.keyboard.press("Enter")
    expect_flash(page, "已认领。", "info")
    expect(page.locator(f"#booking-{booking.id} .claim")).to_have_text(SUPERVISOR.username)
    assert no_sideways_scrolling(page), "/console/callbacks with the outcome form"
