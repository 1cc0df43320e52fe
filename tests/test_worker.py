"""`python -m ivr worker --once` as production runs it: a separate process on the same database,
sending through the real twilio client to the loopback fake REST API."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from hotline_harness import ACCOUNT_SID, TOKEN
from ivr.console.callbacks import claim
from ivr.db.models import Booking, OutboxItem
from ivr.runtime import shanghai_now
from ivr.simulator.rest_api import FakeTwilioApi
from ivr.timeutil import to_db

ROOT = Path(__file__).resolve().parent.parent


def run_worker(hotline, api: FakeTwilioApi, **env: str) -> subprocess.CompletedProcess:
    settings = hotline.rt.settings
    full_env = dict(os.environ, DATABASE_URL=settings.database_url, HOTLINE_VAR_DIR=str(settings.var_dir),
                    TWILIO_AUTH_TOKEN=TOKEN, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_API_BASE=api.base_url,
                    TWILIO_NUMBER="+862160000000", ID_HASH_SECRET="test-secret", LOG_LEVEL="INFO", **env)
    return subprocess.run([sys.executable, "-m", "ivr", "worker", "--once"], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_the_worker_sends_confirmations_and_reminders_and_frees_forgotten_claims(hotline) -> None:
    booking = hotline.book()
    with hotline.rt.sessions() as db, db.begin():
        claim(db, booking.id, "zhang", hotline.clock.now(), 20)
        row = db.get(Booking, booking.id)
        now = shanghai_now()  # the worker runs on the real clock: move claim and slot next to it
        row.claimed_at = to_db(now - timedelta(minutes=25))
        row.slot_start, row.slot_end = to_db(now + timedelta(minutes=20)), to_db(now + timedelta(minutes=80))
    with FakeTwilioApi(ACCOUNT_SID, TOKEN) as api:
        result = run_worker(hotline, api, SMS_REMINDER_MINUTES="30")
        assert result.returncode == 0, result.stderr
        bodies = sorted(m.body for m in api.messages.values())
    assert len(bodies) == 2 and "您预约的回电" in bodies[0] and bodies[1].startswith("【上海市民办事热线】提醒")
    assert "2 sent" in result.stderr and "1 stale claims released" in result.stderr
    assert "13800000002" not in result.stderr  # numbers are masked in the log
    with hotline.rt.sessions() as db:
        assert db.get(Booking, booking.id).claimed_by is None
        assert {i.status for i in db.execute(select(OutboxItem)).scalars()} == {"sent"}
