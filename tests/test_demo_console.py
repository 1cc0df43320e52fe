"""The demo: a console login is made and shown once, and the terminal phone's call can be taken
from the console through the phone's stand-in for Twilio's REST API."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from hotline_harness import ACCOUNT_SID, HOTLINE_NUMBER, TOKEN
from ivr.cli import _loopback_port
from ivr.console.accounts import DEMO_OPERATOR_PHONE, authenticate, create_operator, demo_supervisor
from ivr.console.waiting import take_caller
from ivr.db.models import Operator
from ivr.simulator.cloud import SimulatedTwilio
from ivr.simulator.rest_api import FakeTwilioApi
from ivr.simulator.terminal import run_terminal_call
from ivr.telephony.twilio_control import TwilioControl


def test_the_demo_login_is_made_once_and_kept(hotline, tmp_path: Path) -> None:
    now = hotline.clock.now()
    with hotline.rt.sessions() as db, db.begin():
        user, password = demo_supervisor(db, tmp_path, now)
    with hotline.rt.sessions() as db, db.begin():
        assert demo_supervisor(db, tmp_path, now) == (user, password)
    assert authenticate(hotline.rt.sessions, user, password, "127.0.0.1", now).reason == "ok"
    assert (tmp_path / "demo_console_password").stat().st_mode & 0o777 == 0o600


def test_no_demo_login_next_to_real_accounts(hotline, tmp_path: Path) -> None:
    with hotline.rt.sessions() as db, db.begin():
        create_operator(db, "chen", "a long password", "supervisor", hotline.clock.now())
        assert demo_supervisor(db, tmp_path, hotline.clock.now()) is None
    assert not (tmp_path / "demo_console_password").exists()


def test_the_demo_sends_rest_requests_to_the_terminal_phone() -> None:
    assert _loopback_port("http://127.0.0.1:5010") == 5010
    assert _loopback_port("https://api.twilio.com") == 0


def test_the_console_takes_the_terminal_phones_call(make_hotline, tmp_path: Path) -> None:
    with FakeTwilioApi(ACCOUNT_SID, TOKEN) as api:
        hotline = make_hotline(TWILIO_API_BASE=api.base_url)
        with hotline.rt.sessions() as db, db.begin():
            demo_supervisor(db, tmp_path, hotline.clock.now())
        hotline.remember_language("+8613800000002")
        cloud = SimulatedTwilio(hotline.sim, api)
        printed: list[str] = []
        lines = iter(["0", "TAKE", "h"])

        def phone_input(_prompt: str) -> str:
            line = next(lines)
            if line == "TAKE":  # meanwhile, in the console…
                with hotline.rt.sessions() as db:
                    operator = db.execute(select(Operator)).scalar_one()
                take_caller(hotline.rt.sessions, TwilioControl.from_settings(hotline.rt.settings), hotline.rt.settings,
                            "operators", operator, None, hotline.clock.now())
                return ""
            return line

        run_terminal_call(hotline.sim, "+8613800000002", HOTLINE_NUMBER, input_fn=phone_input,
                          print_fn=lambda *a: printed.append(" ".join(map(str, a))), plain=True, cloud=cloud)
    text = "\n".join(printed)
    assert f"> dialing {DEMO_OPERATOR_PHONE}" in text
    assert "感谢您的耐心" in text  # back in the dialog after the operator hung up
