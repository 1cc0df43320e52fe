"""Every console URL, found from the app's own URL map (so a new page is covered the day it
lands): anonymous users refused, operators kept out of supervisor pages, CSRF-less posts
refused, and no page or API response showing ID characters a caller keyed."""
from __future__ import annotations

import re

import pytest

from test_console_web import OPERATOR, OPERATOR_PW, console, is_login_redirect, logged_in, text  # noqa: F401

ID_LAST4 = "9731"  # keyed by the caller below, wrong on purpose, so it is in no matter record
SAMPLE_ARGS = {"booking_id": 1, "operator_id": 1, "lang": "wuu", "prompt_id": "main_menu", "version": 1}


def console_rules(app, method: str) -> list[str]:
    urls = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/console") and method in rule.methods and rule.endpoint != "console.static":
            urls.append(rule.build({k: SAMPLE_ARGS[k] for k in rule.arguments}, append_unknown=False)[1])
    return sorted(set(urls))


def busy_day(hotline) -> None:
    """A caller who fails an ID check and waits for a person, and one who books a callback."""
    hotline.remember_language("+8613800000002")
    caller = hotline.call()
    caller.press("1")
    caller.press(ID_LAST4 + "#")
    caller.press("0#")
    hotline.book("+8613800000003")


def test_the_map_has_every_page(console) -> None:  # noqa: F811
    gets = console_rules(console.app, "GET")
    for page in ("/console/waiting", "/console/api/waiting", "/console/callbacks", "/console/follow-up",
                 "/console/history", "/console/glance", "/console/supervisor/rules",
                 "/console/supervisor/accounts", "/console/supervisor/audit", "/console/supervisor/prompts",
                 "/console/supervisor/prompts/wuu/main_menu", "/console/supervisor/prompts/wuu/script"):
        assert page in gets


def test_anonymous_users_get_nothing(console) -> None:  # noqa: F811
    client = console.app.test_client()
    for url in console_rules(console.app, "GET"):
        response = client.get(url)
        if url.startswith("/console/api/"):
            assert response.status_code == 401, url
        elif url != "/console/login":
            assert is_login_redirect(response), url
    for url in console_rules(console.app, "POST"):
        if url != "/console/login":
            assert client.post(url).status_code in (302, 400), url


def test_operators_are_kept_out_of_supervisor_pages(console) -> None:  # noqa: F811
    client = logged_in(console, OPERATOR, OPERATOR_PW)
    for url in console_rules(console.app, "GET"):
        status = client.get(url).status_code
        expected = 403 if url.startswith("/console/supervisor/") else 302 if url in ("/console/", "/console/login") \
            else 200
        assert status == expected, url


def test_every_post_without_a_csrf_token_is_refused(console) -> None:  # noqa: F811
    busy_day(console)
    client = logged_in(console)
    for url in console_rules(console.app, "POST"):
        response = client.post(url, data={"outcome": "resolved", "note": "x", "slot_capacity": "1"})
        assert response.status_code == 400, url


def test_no_page_shows_the_id_characters_a_caller_keyed(console) -> None:  # noqa: F811
    busy_day(console)
    client = logged_in(console)
    assert "尾号 0002" in text(client.get("/console/waiting"))
    for url in console_rules(console.app, "GET") + ["/console/history?q=0002", "/console/history?q=0003"]:
        body = re.sub(r'(csrf_token"[^>]*value|name="csrf-token" content)="[^"]*"', "", text(client.get(url)))
        assert ID_LAST4 not in body, url


@pytest.mark.parametrize("query, found", [("", 2), ("0002", 1), ("+8613800000002", 1), ("20261110006", 1), ("20261020008", 0),
                                          ("12", 0)])
def test_history_search_finds_calls_by_masked_number(console, query: str, found: int) -> None:  # noqa: F811
    busy_day(console)
    body = text(logged_in(console).get("/console/history", query_string={"q": query}))
    assert body.count('<li class="panel">') == found
    assert "+8613800000003" not in body and ("*********0002" in body) == (query != "20261020008" and found > 0)
