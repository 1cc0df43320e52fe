"""CSV import, hashing of ID digits, and schema upgrades that keep old rows."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic import command
from sqlalchemy import inspect, select, text

from ivr.db.models import Matter
from ivr.db.schema import alembic_config, make_engine, session_factory, upgrade
from ivr.importer import import_matters

ROOT = Path(__file__).resolve().parent.parent
HEADER = "case_no,service,status,updated_at,phone,id_last4,birth_year,detail\n"


def _db(tmp_path: Path, **engine_options):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", **engine_options)
    upgrade(engine)
    return engine, session_factory(engine)


def test_import_reports_bad_rows_by_line_and_loads_good_ones(tmp_path: Path) -> None:
    csv = tmp_path / "matters.csv"
    csv.write_text(HEADER
                   + "20260001,pension,in_review,2026-11-20,+8613800000009,1234,1950,\n"
                   + "20260002,lottery,in_review,2026-11-20,+8613800000009,1234,,\n"
                   + "20260003,pension,in_review,2026-11-20,13800000009,98X7,,\n"
                   + "20260004,housing_fund,paid,2026-11-21T10:30:00,+8613800000009,567X,,发放日期 2026-12-05\n",
                   encoding="utf-8")
    engine, sessions = _db(tmp_path)
    report = import_matters(sessions, csv, "secret")
    assert (report.added, report.updated) == (2, 0)
    assert report.errors[0].startswith("matters.csv: line 3: service 'lottery'")
    assert report.errors[1].startswith("matters.csv: line 4: phone must be in E.164")
    assert "id_last4 must be" in report.errors[1]
    assert "98X7" not in report.errors[1]  # ID characters are never echoed
    with sessions() as db:
        rows = db.execute(select(Matter).order_by(Matter.case_no)).scalars().all()
        assert [r.case_no for r in rows] == ["20260001", "20260004"]
        # Stored as the keyed, salted hash (random hex may contain "1234" by chance: compare whole)
        from ivr.privacy import hash_id_last4
        assert [(r.id_hash, len(r.id_salt)) for r in rows] == [
            (hash_id_last4("secret", last4, r.id_salt)[1], 16) for r, last4 in zip(rows, ("1234", "567X"))]
        assert rows[0].birth_year == 1950 and rows[1].detail == "发放日期 2026-12-05"
    # The database file holds no clear ID digits at all.
    raw = (tmp_path / "db.sqlite").read_bytes()
    assert b"567X" not in raw


def test_reimport_updates_by_case_no(tmp_path: Path) -> None:
    engine, sessions = _db(tmp_path)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(HEADER + "20260001,pension,in_review,2026-11-20,+8613800000009,1234,1950,\n")
    second.write_text(HEADER + "20260001,pension,paid,2026-11-25,+8613800000009,1234,1950,已发放\n")
    import_matters(sessions, first, "s")
    report = import_matters(sessions, second, "s")
    assert (report.added, report.updated) == (0, 1)
    with sessions() as db:
        (row,) = db.execute(select(Matter)).scalars().all()
        assert row.status == "paid" and row.detail == "已发放"


def test_missing_columns_are_reported(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("case_no,service\n1,pension\n")
    _, sessions = _db(tmp_path)
    report = import_matters(sessions, csv, "s")
    assert report.errors == ["bad.csv: line 1: missing columns ['status', 'updated_at', 'phone', "
                             "'id_last4', 'birth_year', 'detail']"]


def test_cli_import(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text(HEADER + "20260001,pension,in_review,2026-11-20,+8613800000009,1234,1950,\n"
                   + "x,pension,in_review,2026-11-20,+8613800000009,1234,1950,\n")
    env = dict(os.environ, HOTLINE_VAR_DIR=str(tmp_path / "var"))
    result = subprocess.run([sys.executable, "-m", "ivr", "import", str(csv)], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert "1 added, 0 updated, 1 rows skipped, 0 status changes to tell 0 numbers" in result.stdout
    assert "m.csv: line 3: case_no must be" in result.stderr


def test_database_from_an_older_version_upgrades_without_losing_rows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(engine, "0001")
    assert "bookings" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO matters (case_no, service, status, updated_at, phone, id_salt, id_hash, imported_at)"
            " VALUES ('20260001', 'pension', 'paid', '2026-11-20 00:00:00', '+8613800000009', 's', 'h',"
            " '2026-11-20 00:00:00')"))
        conn.execute(text(
            "INSERT INTO call_sessions (call_sid, caller, state, turn, last_response, status, started_at,"
            " updated_at) VALUES ('CA1', '+8613800000009', '{}', 3, '<Response/>', 'completed',"
            " '2026-11-20 00:00:00', '2026-11-20 00:00:00')"))
    upgrade(engine)
    inspector = inspect(engine)
    assert {"bookings", "handoffs"} <= set(inspector.get_table_names())
    assert "duration_seconds" in {c["name"] for c in inspector.get_columns("call_sessions")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT case_no FROM matters")).scalar_one() == "20260001"
        assert conn.execute(text("SELECT turn FROM call_sessions WHERE call_sid='CA1'")).scalar_one() == 3
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0008"


def test_console_revision_keeps_waiting_handoffs_and_bookings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO handoffs (call_sid, caller, language, verified, reason, story, status, created_at)"
            " VALUES ('CA1', '+8613800000009', 'cmn', 1, 'asked_for_person', '[]', 'new', '2026-11-20 00:00:00')"))
        conn.execute(text(
            "INSERT INTO bookings (caller, callback_number, slot_start, slot_end, language, status, call_sid,"
            " created_at) VALUES ('+8613800000009', '+8613800000009', '2026-11-20 01:00:00',"
            " '2026-11-20 02:00:00', 'cmn', 'open', 'CA1', '2026-11-20 00:00:00')"))
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status, taken_by FROM handoffs")).one() == ("waiting", None)
        assert conn.execute(text("SELECT status, attempts, claimed_by FROM bookings")).one() == ("open", 0, None)
    config = alembic_config(str(engine.url))
    with engine.begin() as connection:  # and back down: the console's columns and tables go again
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
    assert "callback_attempts" not in inspect(engine).get_table_names()
    assert "taken_by" not in {c["name"] for c in inspect(engine).get_columns("handoffs")}


def test_throttle_revision_keeps_operators_and_goes_back_down(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(engine, "0005")
    with engine.begin() as conn:  # an operator locked out under the old rule
        conn.execute(text(
            "INSERT INTO operators (username, password_hash, role, failed_logins, locked_until, disabled, created_at)"
            " VALUES ('zhang', 'scrypt:x', 'operator', 4, '2026-11-20 01:00:00', 0, '2026-11-20 00:00:00')"))
    upgrade(engine)
    assert "login_throttles" in inspect(engine).get_table_names()
    assert "locked_until" not in {c["name"] for c in inspect(engine).get_columns("operators")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username, role FROM operators")).one() == ("zhang", "operator")
    config = alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    assert "login_throttles" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username, failed_logins, locked_until FROM operators")).one() == (
            "zhang", 0, None)


def test_writers_queue_and_a_dropped_session_does_not_block_them(tmp_path: Path) -> None:
    import gc
    import threading
    engine, sessions = _db(tmp_path)
    sessions().execute(select(Matter)).all()  # a session left to the garbage collector
    gc.collect()
    done = threading.Event()

    def write() -> None:
        with sessions() as db, db.begin():
            db.execute(text("UPDATE matters SET status = status"))
        done.set()

    threading.Thread(target=write, daemon=True).start()
    assert done.wait(5), "a writer waited on a lock nobody holds"
    # and concurrent writers all get through, one at a time
    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(t.is_alive() for t in threads)


def test_a_writer_that_cannot_get_its_turn_fails_instead_of_hanging(tmp_path: Path) -> None:
    import sqlite3
    import threading

    import sqlalchemy.exc
    engine, sessions = _db(tmp_path, wait_seconds=0.5)
    holder = sessions()
    holder.execute(select(Matter)).all()  # holds the writer queue until closed
    outcome: list[str] = []

    def write() -> None:
        try:
            with sessions() as db, db.begin():
                db.execute(text("UPDATE matters SET status = status"))
            outcome.append("written")
        except (sqlalchemy.exc.OperationalError, sqlite3.OperationalError) as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(5)
    assert outcome and "database is locked" in outcome[0]
    holder.close()
    write()
    assert outcome[-1] == "written"
