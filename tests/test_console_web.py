"""The operator console's web shell: login, sessions, guards, CSRF, accounts, audit log and charts.

CSRF protection stays on as in production, so every POST here carries the token from a page.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from hotline_harness import Hotline
from ivr.console.accounts import audit, create_operator
from ivr.console.callbacks import claim, record_outcome
from ivr.db.models import AuditEntry, Operator

SUPERVISOR, SUPERVISOR_PW = "chen", "supervisor password 1"
OPERATOR, OPERATOR_PW = "zhang", "operator password 1"
WRONG = "用户名或密码错误"
CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'")


@pytest.fixture()
def console(hotline: Hotline) -> Hotline:
    with hotline.rt.sessions() as db, db.begin():
        create_operator(db, SUPERVISOR, SUPERVISOR_PW, "supervisor", hotline.clock.now(), phone="+8613800001111")
        create_operator(db, OPERATOR, OPERATOR_PW, "operator", hotline.clock.now(), phone="+8613900002222")
    return hotline


def csrf_token(html: str) -> str:
    found = re.search(r'name="(?:[\w-]+-)?csrf_token"[^>]*value="([^"]+)"', html)
    assert found, "no csrf_token in the page"
    return found.group(1)


def token(client: FlaskClient, page: str = "/console/login") -> str:
    return csrf_token(client.get(page).get_data(as_text=True))


def login(client: FlaskClient, username: str, password: str, next_url: str | None = None) -> TestResponse:
    url = "/console/login" + (f"?next={next_url}" if next_url else "")
    return client.post(url, data={"csrf_token": token(client), "username": username, "password": password})


def logged_in(hotline: Hotline, username: str = SUPERVISOR, password: str = SUPERVISOR_PW) -> FlaskClient:
    client = hotline.app.test_client()
    assert login(client, username, password).status_code == 302
    return client


def post(client: FlaskClient, url: str, **data: str) -> TestResponse:
    return client.post(url, data={"csrf_token": token(client, "/console/waiting"), **data})


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def audit_rows(hotline: Hotline) -> list[tuple[str, str, dict]]:
    with hotline.rt.sessions() as db:
        return [(e.actor, e.action, e.detail) for e in db.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]


def operator_id(hotline: Hotline, username: str) -> int:
    with hotline.rt.sessions() as db:
        return db.execute(select(Operator.id).where(Operator.username == username)).scalar_one()


def is_login_redirect(response: TestResponse) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/console/login")


# --- login, throttling, logout------------------------------------------------------------

def test_login_lands_on_waiting_and_is_audited(console: Hotline) -> None:
    client = console.app.test_client()
    response = login(client, OPERATOR, OPERATOR_PW)
    assert response.status_code == 302 and response.headers["Location"] == "/console/"
    page = client.get("/console/", follow_redirects=True)
    assert page.request.path == "/console/waiting" and "Waiting now" in text(page)
    assert f"已登录：{OPERATOR}" in text(page)
    assert (OPERATOR, "login", {"source": "127.0.0.1"}) in audit_rows(console)
    assert client.get("/console/login").headers["Location"] == "/console/"  # already logged in


def client_at(hotline: Hotline, address: str) -> FlaskClient:
    """A browser at another address (request.remote_addr; ProxyFix sets it behind nginx)."""
    client = hotline.app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def as_seen_by_client(response: TestResponse, username: str) -> tuple:
    """Everything a client gets, minus the session cookie, the CSRF token and the name it typed."""
    headers = sorted((k, v) for k, v in response.headers.items() if k not in ("Set-Cookie", "Content-Length"))
    body = text(response).replace(csrf_token(text(response)), "TOKEN").replace(f'value="{username}"', 'value="NAME"')
    return response.status_code, headers, body


def test_unknown_disabled_and_real_users_get_byte_identical_answers(console: Hotline) -> None:
    with console.rt.sessions() as db, db.begin():
        db.execute(select(Operator).where(Operator.username == SUPERVISOR)).scalar_one().disabled = True
    tries = {"wrong password": (OPERATOR, "not the password"), "unknown user": ("zhanq", "not the password"),
             "disabled": (SUPERVISOR, SUPERVISOR_PW)}
    seen = {}
    for n, (kind, (username, password)) in enumerate(tries.items()):
        client = client_at(console, f"192.0.2.{n + 1}")
        seen[kind] = [as_seen_by_client(login(client, username, password), username) for _ in range(5)]
    assert seen["unknown user"] == seen["wrong password"] == seen["disabled"]
    bodies = [body for _, _, body in seen["wrong password"]]
    assert [WRONG in body for body in bodies] == [True] * 5
    assert [("请 1 秒后再试" in body) for body in bodies] == [False, False, True, True, True]  # 3 free tries
    reasons = [detail.get("reason") for _, action, detail in audit_rows(console) if action == "login_failed"]
    assert reasons == ["wrong password"] * 3 + ["unknown user"] * 3 + ["disabled"] * 3


def test_an_attacker_elsewhere_cannot_lock_the_operator_out(console: Hotline) -> None:
    attacker = client_at(console, "203.0.113.66")
    for _ in range(40):  # a guess a second
        login(attacker, OPERATOR, "a guess")
        console.clock.advance(1)
    office = client_at(console, "198.51.100.7")
    refused = text(login(office, OPERATOR, OPERATOR_PW))
    wait = int(re.search(r"请 (\d+) 秒后再试", refused).group(1))  # the account's short wait, not a lock-out
    assert 0 < wait <= console.settings.console_login_account_max_wait_seconds
    assert "尝试次数过多" in text(login(attacker, OPERATOR, OPERATOR_PW))  # right or wrong, no answer yet
    assert "登录暂缓" in text(logged_in(console).get("/console/supervisor/accounts"))
    console.clock.advance(wait)
    assert login(office, OPERATOR, OPERATOR_PW).status_code == 302
    assert "尝试次数过多" in text(login(attacker, OPERATOR, OPERATOR_PW))  # the attacker's address still waits
    actions = {action for _, action, _ in audit_rows(console)}
    assert {"login_failed", "login_throttled", "login"} <= actions
    sources = {detail.get("source") for _, action, detail in audit_rows(console) if action.startswith("login")}
    assert {"203.0.113.66", "198.51.100.7"} <= sources


def test_disabled_user_is_refused(console: Hotline) -> None:
    with console.rt.sessions() as db, db.begin():
        db.execute(select(Operator).where(Operator.username == OPERATOR)).scalar_one().disabled = True
    response = login(console.app.test_client(), OPERATOR, OPERATOR_PW)
    assert response.status_code == 200 and WRONG in text(response) and "停用" not in text(response)
    assert audit_rows(console)[-1] == (OPERATOR, "login_failed", {"reason": "disabled", "source": "127.0.0.1",
                                                                  "failures": 1, "wait_seconds": 0})


def test_logout_ends_the_session_and_is_audited(console: Hotline) -> None:
    client = logged_in(console, OPERATOR, OPERATOR_PW)
    response = post(client, "/console/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/console/login"
    assert "已退出登录" in text(client.get("/console/login"))
    assert is_login_redirect(client.get("/console/waiting"))
    assert audit_rows(console)[-1][:2] == (OPERATOR, "logout")


@pytest.mark.parametrize("target", ["https://evil.example", "//evil.example", "/\\evil.example",
                                    "javascript:alert(1)", "/console/../../evil", "/elsewhere"])
def test_next_cannot_leave_the_console(console: Hotline, target: str) -> None:
    response = login(console.app.test_client(), OPERATOR, OPERATOR_PW, next_url=target)
    assert response.headers["Location"] == "/console/"


def test_next_returns_to_the_page_asked_for(console: Hotline) -> None:
    client = console.app.test_client()
    first = client.get("/console/glance?day=2026-11-25")
    assert first.headers["Location"] == "/console/login?next=/console/glance?day%3D2026-11-25"
    response = client.post(first.headers["Location"], data={
        "csrf_token": token(client), "username": OPERATOR, "password": OPERATOR_PW})
    assert response.headers["Location"] == "/console/glance?day=2026-11-25"


# --- sessions ------------------------------------------------------------------------------

def test_session_expires_after_the_idle_minutes(console: Hotline) -> None:
    minutes = console.settings.console_session_minutes
    client = logged_in(console, OPERATOR, OPERATOR_PW)
    for _ in range(3):  # activity keeps the session alive well past the limit
        console.clock.advance((minutes - 1) * 60)
        assert client.get("/console/waiting").status_code == 200
    console.clock.advance((minutes + 1) * 60)
    expired = client.get("/console/waiting")
    assert expired.headers["Location"] == "/console/login?next=/console/waiting"
    assert "长时间未操作" in text(client.get(expired.headers["Location"]))
    assert is_login_redirect(client.get("/console/waiting"))


def test_disabling_or_a_password_reset_ends_open_sessions(console: Hotline) -> None:
    operator = logged_in(console, OPERATOR, OPERATOR_PW)
    supervisor = logged_in(console)
    target = operator_id(console, OPERATOR)
    post(supervisor, f"/console/supervisor/accounts/{target}/password", **{f"pw{target}-password": "a new password 2"})
    assert is_login_redirect(operator.get("/console/waiting"))
    assert "登录已失效" in text(operator.get("/console/login"))
    operator = logged_in(console, OPERATOR, "a new password 2")
    post(supervisor, f"/console/supervisor/accounts/{target}/disable")
    assert is_login_redirect(operator.get("/console/waiting"))
    assert supervisor.get("/console/waiting").status_code == 200


def test_cookie_and_security_headers(console: Hotline) -> None:
    client = console.app.test_client()
    page = client.get("/console/login")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie  # the harness is https
    client = logged_in(console)
    for url in ("/console/login", "/console/glance", "/console/supervisor/accounts", "/console/nowhere"):
        headers = client.get(url).headers
        assert headers["Content-Security-Policy"] == CSP, url
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "same-origin"
        assert headers["Cache-Control"] == "no-store"
    assert client.get("/console/static/console.css").status_code == 200
    assert "Content-Security-Policy" not in client.get("/healthz").headers


def test_pages_need_no_inline_script_or_style(console: Hotline) -> None:
    client = logged_in(console)
    assert "/console/login" in text(console.app.test_client().get("/console/login"))
    for url in ("/console/waiting", "/console/glance", "/console/supervisor/accounts",
                "/console/supervisor/audit"):
        html = text(client.get(url))
        assert '<html lang="zh-Hans">' in html, url
        assert "style=" not in html and "<style" not in html, url
        assert not re.search(r"<script(?![^>]*\bsrc=)", html) and not re.search(r"\son\w+=", html), url
        assert 'class="skip-link" href="#main"' in html and 'role="status"' in html, url


# --- guards --------------------------------------------------------------------------------

CONSOLE_PAGES = ["/console/", "/console/waiting", "/console/glance", "/console/glance?day=2026-11-26",
                 "/console/supervisor/accounts", "/console/supervisor/audit", "/console/not-a-page"]


@pytest.mark.parametrize("url", CONSOLE_PAGES)
def test_anonymous_users_are_sent_to_login(console: Hotline, url: str) -> None:
    response = console.app.test_client().get(url)
    assert is_login_redirect(response)


@pytest.mark.parametrize("url", ["/console/logout", "/console/supervisor/accounts",
                                 "/console/supervisor/accounts/1/disable", "/console/supervisor/accounts/1/enable",
                                 "/console/supervisor/accounts/1/password", "/console/supervisor/accounts/1/change"])
def test_anonymous_posts_do_nothing(console: Hotline, url: str) -> None:
    client = console.app.test_client()
    response = client.post(url, data={"csrf_token": token(client), "username": "mallory", "role": "supervisor",
                                      "password": "long enough password"})
    assert response.status_code == 302 and response.headers["Location"] == "/console/login"
    assert [action for _, action, _ in audit_rows(console)] == ["account_created"] * 2


def test_api_answers_401_json_to_anonymous_users(console: Hotline) -> None:
    response = console.app.test_client().get("/console/api/waiting")
    assert response.status_code == 401 and response.get_json() == {"error": "login required"}


def test_operators_get_403_on_supervisor_pages(console: Hotline) -> None:
    client = logged_in(console, OPERATOR, OPERATOR_PW)
    for url in ("/console/supervisor/accounts", "/console/supervisor/audit"):
        response = client.get(url)
        assert response.status_code == 403 and "没有权限" in text(response)
    target = operator_id(console, SUPERVISOR)
    assert post(client, f"/console/supervisor/accounts/{target}/disable").status_code == 403
    assert post(client, "/console/supervisor/accounts", username="mallory", role="supervisor",
                password="long enough password").status_code == 403
    nav = text(client.get("/console/waiting"))
    assert "/console/glance" in nav and "/console/supervisor/" not in nav


def test_a_post_without_csrf_token_is_refused(console: Hotline) -> None:
    assert console.app.config.get("WTF_CSRF_ENABLED", True)
    client = logged_in(console)
    refused = client.post("/console/logout")
    assert refused.status_code == 400 and "表单已失效" in text(refused)
    target = operator_id(console, OPERATOR)
    assert client.post(f"/console/supervisor/accounts/{target}/disable").status_code == 400
    assert client.post(f"/console/supervisor/accounts/{target}/disable", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/console/waiting").status_code == 200  # still logged in
    assert "account_disabled" not in [action for _, action, _ in audit_rows(console)]


# --- supervisor pages ----------------------------------------------------------------------

def test_supervisor_creates_disables_and_resets_an_operator(console: Hotline) -> None:
    client = logged_in(console)
    created = post(client, "/console/supervisor/accounts", username="li.na", role="operator",
                   phone="138 0000 5678", password="temporary password")
    assert created.status_code == 302
    accounts = text(client.get("/console/supervisor/accounts"))
    assert "已创建账户 li.na" in accounts and "*******5678" in accounts and "13800005678" not in accounts
    new_id = operator_id(console, "li.na")

    assert post(client, f"/console/supervisor/accounts/{new_id}/disable").status_code == 302
    assert WRONG in text(login(console.app.test_client(), "li.na", "temporary password"))  # no hint
    post(client, f"/console/supervisor/accounts/{new_id}/enable")
    post(client, f"/console/supervisor/accounts/{new_id}/password", **{f"pw{new_id}-password": "another password"})
    assert WRONG in text(login(console.app.test_client(), "li.na", "temporary password"))
    assert login(console.app.test_client(), "li.na", "another password").status_code == 302
    post(client, f"/console/supervisor/accounts/{new_id}/change",
         **{f"ch{new_id}-role": "supervisor", f"ch{new_id}-phone": "021 6000 1234"})

    log = text(client.get("/console/supervisor/audit"))
    for action, detail in [("account_created", "phone=*********5678, role=operator, username=li.na"),
                           ("account_disabled", "username=li.na"), ("account_enabled", "username=li.na"),
                           ("password_reset", "username=li.na"),
                           ("account_changed", "phone=********1234, role_from=operator, role_to=supervisor, "
                                               "username=li.na")]:
        assert re.search(rf"<td[^>]*>{SUPERVISOR}</td>\s*<td[^>]*>{action}</td>\s*<td[^>]*>{re.escape(detail)}</td>",
                         log), action
    assert "60001234" not in log and "temporary password" not in log


def test_account_rules_are_explained(console: Hotline) -> None:
    client = logged_in(console)
    me = operator_id(console, SUPERVISOR)
    post(client, f"/console/supervisor/accounts/{me}/disable")
    assert "不能停用自己的账户" in text(client.get("/console/supervisor/accounts"))
    post(client, f"/console/supervisor/accounts/{me}/change", **{f"ch{me}-role": "operator", f"ch{me}-phone": ""})
    assert "不能取消自己的主管权限" in text(client.get("/console/supervisor/accounts"))
    refused = post(client, "/console/supervisor/accounts", username=OPERATOR, role="operator", phone="12345",
                   password="temporary password")
    assert refused.status_code == 400 and "电话号码无效" in text(refused)
    short = post(client, "/console/supervisor/accounts", username="wu", role="operator", password="short")
    assert short.status_code == 400 and "至少 10 个字符" in text(short)
    with console.rt.sessions() as db:
        assert db.execute(select(Operator).where(Operator.username == SUPERVISOR)).scalar_one().role == "supervisor"
        assert db.execute(select(Operator).where(Operator.username == "wu")).scalar_one_or_none() is None


def test_a_supervisor_who_resets_their_own_password_stays_logged_in(console: Hotline) -> None:
    client = logged_in(console)
    me = operator_id(console, SUPERVISOR)
    post(client, f"/console/supervisor/accounts/{me}/password", **{f"pw{me}-password": "my new password"})
    assert client.get("/console/supervisor/accounts").status_code == 200


def test_audit_log_is_newest_first_paginated_and_filtered(console: Hotline) -> None:
    with console.rt.sessions() as db, db.begin():
        for n in range(60):
            audit(db, "robot", "note", console.clock.now() + timedelta(seconds=n), n=n)
    client = logged_in(console)
    rows = lambda html: re.findall(r'data-label="详情" class="detail">([^<]*)<', html)  # noqa: E731
    first = text(client.get("/console/supervisor/audit?action=note"))
    assert "共 60 条，第 1 / 2 页" in first
    assert rows(first)[:2] == ["n=59", "n=58"] and len(rows(first)) == 50
    assert 'href="/console/supervisor/audit?action=note&amp;page=2"' in first
    second = text(client.get("/console/supervisor/audit?action=note&page=2"))
    assert rows(second) == [f"n={n}" for n in range(9, -1, -1)]
    everything = text(client.get("/console/supervisor/audit"))
    assert "共 63 条" in everything and rows(everything)[0] == "n=59"
    by_actor = text(client.get(f"/console/supervisor/audit?actor={SUPERVISOR}"))
    assert "共 1 条" in by_actor and ">login<" in by_actor


# --- at a glance ---------------------------------------------------------------------------

def chart(html: str, chart_id: str) -> list[tuple[str, str, str]]:
    """(label, bar width, number) for each bar of one chart."""
    section = re.search(rf'<section class="chart" aria-labelledby="{chart_id}-heading">(.*?)</section>', html, re.S)
    assert section, chart_id
    return re.findall(r'<text[^>]*>([^<]*)</text>\s*<rect[^>]*width="([\d.]+)"[^>]*></rect>\s*<text[^>]*>([^<]*)</text>',
                      section.group(1))


def test_glance_draws_the_day_as_svg_bar_charts(console: Hotline) -> None:
    console.a_day_of_calls()

    html = text(logged_in(console, OPERATOR, OPERATOR_PW).get("/console/glance"))
    assert 'role="img"' in html
    assert chart(html, "calls") == [("来电", "400.0", "4"), ("已结束", "400.0", "4"),
                                    ("自助完成（无需人工）", "300.0", "3")]
    assert chart(html, "containment") == [("已结束的 4 通中", "300.0", "75%")]
    assert chart(html, "handoffs") == [("按 0 要人工", "400.0", "1")]
    assert chart(html, "bookings") == [("新预约", "400.0", "1"), ("已取消", "0.0", "0")]
    assert chart(html, "dropoff") == [("确认回电号码（confirm_own_number）", "400.0", "1")]
    assert "来电：4；已结束：4；自助完成（无需人工）：3" in html  # the chart in words


def test_glance_for_another_day_and_a_bad_day(console: Hotline) -> None:
    client = logged_in(console)
    quiet = text(client.get("/console/glance?day=2026-11-20"))
    assert "概览 <span lang=\"en\" class=\"en\">At a glance</span>：2026-11-20" in quiet
    assert chart(quiet, "calls") == [("来电", "0.0", "0"), ("已结束", "0.0", "0"), ("自助完成（无需人工）", "0.0", "0")]
    assert quiet.count("这一天没有数据") == 2  # handoffs and drop-off have no bars at all
    bad = text(client.get("/console/glance?day=next-week"))
    assert "日期格式应为 YYYY-MM-DD" in bad and "2026-11-26" in bad


def test_glance_counts_callbacks_kept_and_sent_to_follow_up(console: Hotline) -> None:
    now = console.clock.now()
    for caller, outcome in (("+8613800000002", "reached"), ("+8613800000003", "wrong_number"),
                            ("+8613800000004", "resolved")):
        booking = console.book(caller)
        with console.rt.sessions() as db, db.begin():
            claim(db, booking.id, OPERATOR, now, 20)
            record_outcome(db, booking.id, OPERATOR, outcome, "", now, console.settings)
    html = text(logged_in(console).get("/console/glance"))
    assert chart(html, "callbacks") == [("打通了", "400.0", "2"), ("转人工跟进", "200.0", "1")]


# The pages in a real browser (reflow at 640 px, keyboard, CSP): tests/test_console_browser.py.
