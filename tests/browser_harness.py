"""The operator console in a real browser: Debian's Chromium driven by Playwright (sync API).

    (the fixtures are registered in conftest.py, so every module shares one Playwright)

    def test_something(web, hotline):
        add_accounts(hotline, OPERATOR)
        page = web.page(hotline.app, user=OPERATOR)       # a fresh context, logged in
        page.get_by_role("link", name="回电").click()
        expect_flash(page, "已认领")
        screenshot(page, "callbacks")

* ``chromium`` (session): one browser per test session, so one per xdist worker.  It fails,
  never skips, without /usr/bin/chromium: ``./hotline setup`` installs it.
* ``web`` (per test): serves each app it is given on a werkzeug server on 127.0.0.1 (port 0,
  threaded, a daemon thread), opens a fresh browser context per :meth:`WebConsole.page`, and
  collects console errors and page errors of every page; at teardown it closes the contexts,
  stops the servers and fails the test if the browser reported any problem (CSP violations
  appear there) that the test did not :meth:`WebConsole.allow`.
* ``screenshot(page, name)``: a full-page PNG in $SCREENSHOT_DIR (the docs use
  ``SCREENSHOT_DIR=docs/screenshots``), by default in pytest's temporary directory.

Pages are opened as http://127.0.0.1:PORT: the session cookie is ``Secure`` (the hotline's
public URL is https) and Chromium treats loopback addresses as secure, so it keeps the cookie.  Everything the server
does runs on its threads while the test thread is blocked in a Playwright call, so a test that
drives simulated callers while the browser may make REST requests holds ``cloud.sim.lock``
(see tests/cloud_harness.py).
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page, expect, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

import cloud_harness
from hotline_harness import Hotline
from ivr.console.accounts import create_operator

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
NARROW = {"width": 640, "height": 800}  # a 1280 px wide screen at 200 % zoom
TIMEOUT_MS = 10_000  # Playwright's waits (actions and expect): generous for a loaded CI machine
expect.set_options(timeout=TIMEOUT_MS)
_screenshot_dir: Path | None = None


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    role: str = "operator"
    phone: str | None = None


SUPERVISOR = Account("chen", "supervisor password 1", "supervisor", "+8613800001111")
OPERATOR = Account(cloud_harness.OPERATOR, cloud_harness.OPERATOR_PW, "operator", cloud_harness.OPERATOR_PHONE)
OTHER_OPERATOR = Account("li.na", "operator password 2", "operator", "+8613900003333")


def add_accounts(hotline: Hotline, *accounts: Account) -> None:
    with hotline.rt.sessions() as db, db.begin():
        for account in accounts:
            create_operator(db, account.username, account.password, account.role, hotline.clock.now(),
                            phone=account.phone)


# --- the server ------------------------------------------------------------------------------

class LiveServer:
    """A Flask app on a werkzeug server in a daemon thread."""

    def __init__(self, app: Flask) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"live-server-{self.server.server_port}", daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


# --- what the browser complained about -------------------------------------------------------

class Problems:
    """Console errors and uncaught page errors, minus the ones a test expects."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.seen.append(f"page error on {page.url}: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.seen.append(f"console error: {message.text} ({message.location.get('url', '')})")

    def unexpected(self) -> list[str]:
        return [problem for problem in self.seen if not any(p.search(problem) for p in self.allowed)]


# --- the fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Debian's Chromium, once per session (per xdist worker); a missing browser is a failure."""
    global _screenshot_dir
    _screenshot_dir = tmp_path_factory.mktemp("screenshots")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the console's browser tests need Debian's chromium "
                    "(./hotline setup installs it)", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class WebConsole:
    """One test's browser contexts and live servers."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.problems = Problems()
        self.contexts: list[BrowserContext] = []
        self.servers: dict[int, LiveServer] = {}

    def url(self, app: Flask) -> str:
        """The app's base URL, serving it on first use."""
        if id(app) not in self.servers:
            self.servers[id(app)] = LiveServer(app)
        return self.servers[id(app)].url

    def page(self, app: Flask, user: Account | None = None, *, viewport: dict | None = None,
             path: str | None = None) -> Page:
        """A page in a fresh context (own cookies); logged in as `user`, then at `path`."""
        context = self.browser.new_context(base_url=self.url(app), viewport=viewport or VIEWPORT, locale="zh-CN",
                                           timezone_id="Asia/Shanghai")
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = context.new_page()
        self.problems.watch(page)
        if user is not None:
            login(page, user, landing=path or "/console/waiting")
        elif path is not None:
            page.goto(path)
        return page

    def allow(self, pattern: str) -> None:
        """A console error this test provokes on purpose (a 403 page, say)."""
        self.problems.allowed.append(re.compile(pattern))

    def close(self) -> None:
        for context in self.contexts:
            try:
                context.close()
            except Error:
                pass
        for server in self.servers.values():
            server.close()


def watched_console(browser: Browser) -> Iterator[WebConsole]:
    """A WebConsole on `browser`, closed afterwards; fails if the browser reported problems."""
    console = WebConsole(browser)
    try:
        yield console
    finally:
        console.close()
    problems = console.problems.unexpected()
    assert not problems, "the browser reported problems:\n" + "\n".join(problems)


@pytest.fixture()
def web(chromium: Browser, make_hotline) -> Iterator[WebConsole]:  # noqa: ARG001 - make_hotline: see below
    """Depends on make_hotline so it is torn down first: the servers stop before the databases close."""
    yield from watched_console(chromium)


# --- helpers ---------------------------------------------------------------------------------

def login(page: Page, user: Account, *, landing: str = "/console/waiting") -> None:
    """Logs in through the form and lands on `landing` (the login page's ?next=)."""
    page.goto("/console/login" + (f"?next={quote(landing)}" if landing != "/console/waiting" else ""))
    page.get_by_label("用户名").fill(user.username)
    page.get_by_label("密码").fill(user.password)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(re.escape(landing) + r"$"))
    expect(page.locator(".who")).to_contain_text(f"已登录：{user.username}")


def flashes(page: Page) -> list[str]:
    """The flash messages on the page as it is now."""
    return [text.strip() for text in page.locator(".messages .message").all_inner_texts()]


def expect_flash(page: Page, text: str | re.Pattern[str], category: str | None = None) -> None:
    """Waits (auto-retrying) until a flash message containing `text` is shown."""
    selector = ".messages .message" + (f".message-{category}" if category else "")
    expect(page.locator(selector).filter(has_text=text)).to_have_count(1)


def screenshot(page: Page, name: str) -> Path:
    """A full-page PNG named `name`.png in $SCREENSHOT_DIR, or in pytest's temporary directory."""
    directory = Path(os.environ.get("SCREENSHOT_DIR") or _screenshot_dir or Path.cwd() / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_sideways_scrolling(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def focused(page: Page) -> dict:
    """What has keyboard focus: tag, id, class and text."""
    return page.evaluate("""() => { const e = document.activeElement;
        return {tag: e.tagName.toLowerCase(), id: e.id, cls: e.className, text: (e.innerText || e.value || '').trim()}; }""")
