"""The production setup behind nginx: stalled clients hold no gunicorn thread, signatures still hold.

Real nginx (Debian's, running deploy/nginx/hotline.conf as shipped, on loopback) in front of real
gunicorn (ivr.serve's options and runner, PROXY_HOPS=1). The same attack straight at gunicorn
shows what nginx is for; bench/stalled_clients.py measures both with longer deadlines.
"""
from __future__ import annotations

import http.client
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

from hotline_harness import TOKEN
from ivr.config import ConfigError, load_settings
from nginx_server import NginxServer, free_port
from serve_process import ServeProcess
from slow_clients import Probe, close_all, health, open_stalled, run_probes, signed_voice, still_waiting

PUBLIC = "https://hotline.example.test"  # what Twilio calls, and signs; nginx here is plain HTTP
STALLED = 200


@dataclass(frozen=True)
class Stack:
    nginx: NginxServer
    app: ServeProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    port = free_port()
    env = {"HOTLINE_VAR_DIR": str(tmp_path_factory.mktemp("proxy-var")), "TWILIO_AUTH_TOKEN": TOKEN,
           "PUBLIC_BASE_URL": PUBLIC, "PROXY_HOPS": "1", "SPEECH": "off", "LOG_LEVEL": "WARNING"}
    probe_serve = str(Path(__file__).with_name("probe_serve.py"))
    with ServeProcess([probe_serve, str(port)], port, env) as app, NginxServer(port) as nginx:
        yield Stack(nginx, app)


def _failures(probes: list[Probe], within: float) -> list[Probe]:
    return [p for p in probes if p.status != 200 or p.seconds >= within]


def test_signed_webhook_through_nginx_is_answered_and_forged_ones_are_refused(stack: Stack) -> None:
    url = stack.nginx.base_url
    answered = signed_voice(url, PUBLIC, TOKEN, timeout=5)
    assert answered.status == 200, answered
    assert "<Gather" in answered.body and "/twilio/recover" not in answered.body, answered.body
    assert signed_voice(url, PUBLIC, TOKEN, timeout=5, signature="forged").status == 403
    # Signed over the address nginx listens on instead of PUBLIC_BASE_URL: not what Twilio signs.
    assert signed_voice(url, url, TOKEN, timeout=5).status == 403


def test_the_app_sees_the_client_nginx_saw_not_what_the_client_claims(stack: Stack) -> None:
    # From 127.0.0.2: gunicorn's peer is nginx (127.0.0.1), the app must name the real client.
    conn = http.client.HTTPConnection("127.0.0.1", stack.nginx.port, timeout=5, source_address=("127.0.0.2", 0))
    conn.request("GET", "/_probe/client", headers={"Host": "hotline.example.test", "X-Forwarded-For": "203.0.113.7",
                                                   "X-Forwarded-Proto": "https"})
    response = conn.getresponse()
    seen = json.loads(response.read())
    conn.close()
    assert response.status == 200
    assert seen == {"remote_addr": "127.0.0.2", "scheme": "http", "host": "hotline.example.test"}


def test_prompt_audio_is_cached_by_nginx(stack: Stack) -> None:
    url = stack.nginx.base_url + "/prompts/silence-500ms.wav"
    first, second = requests.get(url, timeout=5), requests.get(url, timeout=5)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content == second.content and first.content[:4] == b"RIFF"
    assert (first.headers["X-Cache-Status"], second.headers["X-Cache-Status"]) == ("MISS", "HIT")


def test_200_stalled_clients_do_not_delay_webhooks_behind_nginx(stack: Stack) -> None:
    stalled = open_stalled("127.0.0.1", stack.nginx.port, STALLED)
    try:
        time.sleep(0.2)  # let nginx take them all in
        probes = run_probes(stack.nginx.base_url, PUBLIC, TOKEN, count=24, timeout=2)
        waiting = sum(still_waiting(sock) for sock in stalled)
    finally:
        close_all(stalled)
    assert not _failures(probes, within=1.0), probes
    assert waiting == STALLED, "the attack must still be going on while the probes were answered"
    assert max(p.seconds for p in probes) < 1.0


def test_the_same_attack_straight_at_gunicorn_stalls_it(stack: Stack) -> None:
    """Why nginx is there: gunicorn's threads wait for the rest of the stalled requests."""
    stalled = open_stalled("127.0.0.1", stack.app.port, STALLED)
    try:
        time.sleep(0.3)
        probes = run_probes(stack.app.base_url, PUBLIC, TOKEN, count=8, timeout=1, parallel=8)
    finally:
        close_all(stalled)
    assert len(_failures(probes, within=1.0)) >= 1, probes
    deadline = time.monotonic() + 10  # the threads are freed when the stalled clients go away
    while health(stack.app.base_url, timeout=1).status != 200:
        assert time.monotonic() < deadline, "gunicorn did not recover once the stalled clients left"


def _client_seen_by(hotline) -> dict:  # noqa: ANN001
    from flask import jsonify, request
    hotline.app.add_url_rule("/_probe/client", "probe_client", lambda: jsonify(
        remote_addr=request.remote_addr, scheme=request.scheme, host=request.host))
    response = hotline.app.test_client().get(
        "/_probe/client", environ_base={"REMOTE_ADDR": "127.0.0.1"},
        headers={"X-Forwarded-For": "203.0.113.7, 198.51.100.2", "X-Forwarded-Proto": "https",
                 "X-Forwarded-Host": "hotline.example.test"})
    return response.get_json()


def test_forwarded_headers_are_believed_for_proxy_hops_only(make_hotline) -> None:
    assert _client_seen_by(make_hotline()) == {"remote_addr": "127.0.0.1", "scheme": "http", "host": "localhost"}
    assert _client_seen_by(make_hotline(PROXY_HOPS="1")) == {
        "remote_addr": "198.51.100.2", "scheme": "https", "host": "hotline.example.test"}


def test_proxy_hops_must_be_a_count(tmp_path: Path) -> None:
    env = {"HOTLINE_VAR_DIR": str(tmp_path), "TWILIO_AUTH_TOKEN": "t"}
    assert load_settings(env).proxy_hops == 0
    with pytest.raises(ConfigError, match="PROXY_HOPS"):
        load_settings({**env, "PROXY_HOPS": "-1"})


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
