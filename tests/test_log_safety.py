"""Log lines from hostile input stay one bounded line; masking spares Twilio sids, not tracebacks.

The output is read from the handler configure_logging installs (its stream swapped for a
StringIO), so what is checked is what an operator would read in the service's stderr.
"""
from __future__ import annotations

import io
import logging
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from hotline_harness import BASE_URL
from ivr.privacy import configure_logging, mask_text

ROOT = Path(__file__).resolve().parent.parent
SID = "CA03b1c692377332276855a44d810aea57"  # the old phone mask rewrote its middle digits
FORGED = "\n2099-01-01 00:00:00,000 CRITICAL ivr.calls forged record"
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
LINE_LIMIT = 12 * 1024  # ivr.logsafe.MAX_LINE, with room: the point is "kilobytes, not megabytes"
MESSAGE_LIMIT = 2 * 1024 + 200  # a message without a traceback, time and level included


@pytest.fixture()
def log_lines() -> Iterator[io.StringIO]:
    """The project's logging as the CLI and app.py configure it, written into a StringIO."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    configure_logging("INFO")
    added = [h for h in root.handlers if h not in before]
    assert len(added) == 1
    output = io.StringIO()
    added[0].setStream(output)
    yield output
    root.removeHandler(added[0])
    root.setLevel(level)


def records(output: io.StringIO) -> list[str]:
    """Physical lines; each must be the start of a record."""
    lines = output.getvalue().splitlines()
    assert all(RECORD_START.match(line) for line in lines), lines
    return lines


def unsigned_voice(hotline, **params: str):
    return hotline.app.test_client().post("/twilio/voice", data=params,
                                          headers={"X-Twilio-Signature": "forged"})


def test_a_newline_in_a_callsid_cannot_forge_a_record(hotline, log_lines) -> None:
    assert unsigned_voice(hotline, CallSid="CA1" + FORGED, From="+8613800000002").status_code == 403
    lines = records(log_lines)
    assert len(lines) == 1
    assert "call CA1\\n2099-01-01 00:00:00,000 CRITICAL ivr.calls forged record)" in lines[0]


def test_a_huge_callsid_adds_a_bounded_line(hotline, log_lines) -> None:
    # Flask refuses forms over 500 KB (413, nothing logged), so 400 KB is the most one request can carry.
    huge = "CA" + "f" * 400_000
    assert unsigned_voice(hotline, CallSid=huge).status_code == 403
    assert unsigned_voice(hotline, CallSid="CA" + "f" * 1_000_000).status_code in (403, 413)
    lines = records(log_lines)
    assert 1 <= len(lines) <= 2
    assert all(len(line) <= MESSAGE_LIMIT for line in lines)
    assert "…[400,002 chars]" in lines[0]


@pytest.mark.parametrize("char, shown", [("\r", "\\r"), ("\n", "\\n"), ("\t", "\\t"), ("\x00", "\\x00"),
                                         ("\x1b", "\\x1b"), ("\x7f", "\\x7f"), ("\x85", "\\x85"),
                                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029"), ("\u202e", "\\u202e")])
def test_control_characters_are_shown_escaped(log_lines, char: str, shown: str) -> None:
    logging.getLogger("ivr.calls").warning("call %s", f"CA1{char}x")
    line, = records(log_lines)
    assert line.endswith(f"call CA1{shown}x")


@pytest.mark.parametrize("name", ["ivr.calls", "werkzeug", "sqlalchemy.engine", "alembic.runtime.migration"])
def test_every_propagating_logger_goes_through_the_same_sanitising(log_lines, name: str) -> None:
    logging.getLogger(name).warning("value %s" + FORGED.replace("\n", "\r\n"), "+8613800000002" + FORGED)
    line, = records(log_lines)
    assert "13800000002" not in line and "value *********0002\\n2099" in line


def test_twilio_sids_are_logged_whole_and_phone_numbers_masked(hotline, log_lines) -> None:
    assert unsigned_voice(hotline, CallSid=SID, From="+8613800000002").status_code == 403
    log = logging.getLogger("ivr.calls")
    account = "AC" + "0123456789" * 3 + "ab"
    log.warning("call %s from %s, account %s", SID, "+8613800000002", account)
    log.warning("来电13800000002号, landline 021-60000000, form From=%2B8613800000002&To=x")
    signature, direct, free = records(log_lines)
    assert f"call {SID})" in signature
    assert direct.endswith(f"call {SID} from *********0002, account {account}")
    assert free.endswith("来电*******0002号, landline 021-****0000, form From=*********0002&To=x")


@pytest.mark.parametrize("text, masked", [
    ("Digits=567*#&To=x", "Digits=#####&To=x"),
    ("{'Digits': '567*#', 'CallSid': 'CA1'}", "{'Digits': '#####', 'CallSid': 'CA1'}"),
    ("ImmutableMultiDict([('Digits', '1111#')])", "ImmutableMultiDict([('Digits', '#####')])"),
    ('{"Digits": "567*#"}', '{"Digits": "#####"}'),
    ("KeysPressed(digits='567*', finished=True)", "KeysPressed(digits='####', finished=True)"),
    ("id 11010519491231002X given", "id ****************** given"),
    ("<Gather num_digits=1 timeout=5>", "<Gather num_digits=1 timeout=5>"),
    ("RE" + "7" * 32 + " QU" + "1" * 32 + " SM" + "8" * 32 + " PN" + "9" * 32,
     "RE" + "7" * 32 + " QU" + "1" * 32 + " SM" + "8" * 32 + " PN" + "9" * 32),
])
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def _fail_with(caller: str, form: dict[str, str]) -> None:
    raise ValueError(f"cannot start a call for {caller}: {form}{FORGED}")


def test_a_traceback_is_masked_and_kept_on_the_record_line(hotline, log_lines, monkeypatch) -> None:
    """A signed call whose start fails: _guarded logs the exception with its traceback."""
    def failing_start(call_sid, caller, called, render):
        _fail_with(caller, {"Digits": "567*#", "From": caller})
    monkeypatch.setattr(hotline.rt.calls, "start", failing_start)
    params = {"CallSid": SID, "From": "+8613800000002", "To": "+862160000000"}
    signature = hotline.sim.sign(BASE_URL + "/twilio/voice", params)
    response = hotline.app.test_client().post("/twilio/voice", data=params,
                                              headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    failed = [line for line in records(log_lines) if "Traceback" in line]
    assert len(failed) == 1
    line = failed[0]
    assert line.count("\n") == 0 and len(line) <= LINE_LIMIT
    assert f"call {SID}: /twilio/voice failed: ValueError | Traceback (most recent call last):\\n" in line
    assert "in _fail_with\\n" in line
    assert "ValueError: cannot start a call for *********0002: {'Digits': '#####', 'From': '*********0002'}" \
           "\\n2099-01-01 00:00:00,000 CRITICAL" in line
    assert "13800000002" not in line and "567*#" not in line


def test_a_huge_traceback_keeps_its_end(log_lines) -> None:
    try:
        raise RuntimeError("x" * 100_000 + " the end")
    except RuntimeError:
        logging.getLogger("ivr.calls").exception("failed")
    line, = records(log_lines)
    assert len(line) <= LINE_LIMIT and line.endswith(" the end") and "Traceback" in line


def test_gunicorn_handlers_set_up_before_the_app_loads_are_made_safe(log_lines) -> None:
    """`gunicorn app:app`: gunicorn configures its loggers first, then app.py configures logging."""
    from gunicorn.config import Config
    from gunicorn.glogging import Logger
    gunicorn_log = Logger(Config())
    output = io.StringIO()
    try:
        handler, = gunicorn_log.error_log.handlers
        handler.setStream(output)
        configure_logging("INFO")
        gunicorn_log.warning("Invalid request from ip=%s: %s", "127.0.0.1", "'/?From=+8613800000002'" + FORGED)
    finally:
        for handler in list(gunicorn_log.error_log.handlers):
            gunicorn_log.error_log.removeHandler(handler)
        gunicorn_log.error_log.propagate = True
    line, = output.getvalue().splitlines()
    assert line.endswith("[WARNING] Invalid request from ip=127.0.0.1: '/?From=*********0002'"
                         "\\n2099-01-01 00:00:00,000 CRITICAL ivr.calls forged record")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(server: subprocess.Popen, base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "server did not become healthy"
        time.sleep(0.2)


def test_gunicorn_error_log_lines_are_masked_and_bounded(tmp_path: Path) -> None:
    """gunicorn logs a malformed request line itself, through its own (non-propagating) logger."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HOTLINE_VAR_DIR=str(tmp_path), TWILIO_AUTH_TOKEN="log-test-token",
               PUBLIC_BASE_URL=base)
    server = subprocess.Popen([sys.executable, "-m", "ivr", "serve", "--port", str(port), "--workers", "1"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_healthy(server, base)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            # No HTTP version: gunicorn answers 400 and warns with the whole request line.
            sock.sendall(b"POST /twilio/voice?From=+8613800000002&pad=" + b"A" * 3000 + b"\r\n\r\n")
            assert b" 400 " in sock.recv(4096)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    invalid = [line for line in err.decode().splitlines() if "Invalid request" in line]
    assert len(invalid) == 1, err.decode()[-2000:]
    line = invalid[0]
    assert "[WARNING] Invalid request from ip=127.0.0.1: Invalid HTTP request line: " in line
    assert "From=*********0002&pad=AAAA" in line and "13800000002" not in line
    assert len(line) <= MESSAGE_LIMIT and "chars]" in line
