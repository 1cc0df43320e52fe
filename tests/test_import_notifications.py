"""A re-import records the status changes to tell (MatterChange), in chunks of short
transactions; --dry-run reports the same without writing; on SQLite and PostgreSQL."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import Matter, MatterChange
from ivr.db.schema import make_engine, session_factory, upgrade
from ivr.importer import import_matters
from ivr.db.repository import SqlRepository
from ivr.notify.changes import numbers_to_tell
from ivr.notify.rules import load_rules
from postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
HEADER = "case_no,service,status,updated_at,phone,id_last4,birth_year,detail\n"
NOTIFY_ON = load_rules(ROOT / "flows").notify_on  # need_documents, ready_for_pickup, paid, rejected
WANG, LI, LI_NEW, ZHAO, SUN = "+8613800000011", "+8613800000022", "+8613900000022", "+8613800000033", "+862161230044"
# ID last fours that appear nowhere else in the files (no phone, case number or date holds them)
IDS = {"wang": "7315", "li": "864X", "zhao": "5297", "sun": "3968"}


def row(case_no: str, status: str, phone: str, who: str, service: str = "pension", detail: str = "") -> str:
    return f"{case_no},{service},{status},2026-11-20,{phone},{IDS[who]},1950,{detail}\n"


FIRST = HEADER + "".join([
    row("20260001", "in_review", WANG, "wang"),
    row("20260002", "in_review", WANG, "wang", "housing_fund"),
    row("20260003", "received", LI, "li"),
    row("20260004", "paid", ZHAO, "zhao"),
])
# Three changes of two people (one to a status nobody is told about), a new matter, one unchanged;
# Li's number changed with the matter.
SECOND = HEADER + "".join([
    row("20260001", "need_documents", WANG, "wang", detail="要补交收入证明"),
    row("20260002", "approved", WANG, "wang", "housing_fund"),
    row("20260003", "ready_for_pickup", LI_NEW, "li"),
    row("20260004", "paid", ZHAO, "zhao"),
    row("20260005", "need_documents", SUN, "sun"),
])


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    else:
        url = request.getfixturevalue("postgres").create_database()
    engine = make_engine(url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def _sqlite(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    return session_factory(engine)


def _csv(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def _changes(sessions: sessionmaker[Session]) -> list[tuple]:
    with sessions() as db:
        rows = db.execute(select(Matter.case_no, MatterChange.phone, MatterChange.old_status,
                                 MatterChange.new_status, MatterChange.notification_id, MatterChange.told)
                          .join(Matter, Matter.id == MatterChange.matter_id).order_by(MatterChange.id))
        return [tuple(r) for r in rows]


def _import(sessions, tmp_path: Path, name: str, content: str, **options):
    return import_matters(sessions, _csv(tmp_path, name, content), "s", notify_on=NOTIFY_ON, **options)


def test_a_reimport_records_the_changes_to_tell_and_nothing_else(sessions, tmp_path: Path) -> None:
    first = _import(sessions, tmp_path, "a.csv", FIRST)
    assert (first.added, first.changes, first.notify_numbers) == (4, 0, 0)  # an initial load tells no one
    assert _changes(sessions) == []
    before = datetime.utcnow()
    second = _import(sessions, tmp_path, "b.csv", SECOND)
    assert (second.added, second.updated, second.errors) == (1, 4, [])
    assert _changes(sessions) == [
        ("20260001", WANG, "in_review", "need_documents", None, False),
        ("20260003", LI_NEW, "received", "ready_for_pickup", None, False),  # the matter's new number
    ]
    assert (second.changes, second.notify_numbers) == (2, 2)
    assert second.summary() == "1 added, 4 updated, 0 rows skipped, 2 status changes to tell 2 numbers"
    with sessions() as db:
        stamps = db.execute(select(MatterChange.changed_at)).scalars().all()
        assert all(s.tzinfo is None and before - timedelta(seconds=1) <= s <= datetime.utcnow() for s in stamps)
        assert db.execute(select(Matter.status).where(Matter.case_no == "20260001")).scalar_one() == "need_documents"
        assert numbers_to_tell(db) == sorted([WANG, LI_NEW])
    again = _import(sessions, tmp_path, "b.csv", SECOND)  # the same file twice: nothing new
    assert (again.changes, again.notify_numbers, len(_changes(sessions))) == (0, 2, 2)


def test_a_second_change_before_telling_updates_the_waiting_row(sessions, tmp_path: Path) -> None:
    _import(sessions, tmp_path, "a.csv", FIRST)
    _import(sessions, tmp_path, "b.csv", SECOND)
    with sessions() as db:
        waiting_id = db.execute(select(MatterChange.id).join(Matter, Matter.id == MatterChange.matter_id)
                                .where(Matter.case_no == "20260001")).scalar_one()
    third = _import(sessions, tmp_path, "c.csv", SECOND.replace("20260001,pension,need_documents",
                                                                 "20260001,pension,rejected"))
    assert (third.changes, third.notify_numbers) == (1, 2)
    assert _changes(sessions) == [
        ("20260001", WANG, "in_review", "rejected", None, False),  # still what the person last knew → latest
        ("20260003", LI_NEW, "received", "ready_for_pickup", None, False),
    ]
    with sessions() as db:
        assert db.execute(select(MatterChange.id).where(MatterChange.new_status == "rejected")).scalar_one() \
            == waiting_id
    # Back to what the person knew: no longer news, the waiting change goes.
    back = SECOND.replace("20260003,pension,ready_for_pickup", "20260003,pension,received")
    fourth = _import(sessions, tmp_path, "d.csv", back.replace("20260001,pension,need_documents",
                                                               "20260001,pension,rejected"))
    assert (fourth.changes, fourth.withdrawn, fourth.notify_numbers) == (0, 1, 1)
    assert [c[0] for c in _changes(sessions)] == ["20260001"]
    # Once a notification carries the change, news after it is a new row for the next one.
    with sessions() as db, db.begin():
        db.execute(update(MatterChange).values(notification_id=1))
    _import(sessions, tmp_path, "e.csv", back.replace("20260001,pension,need_documents", "20260001,pension,paid"))
    assert [c[2:5] for c in _changes(sessions)] == [("in_review", "rejected", 1), ("rejected", "paid", None)]
    with sessions() as db, db.begin():
        assert numbers_to_tell(db) == [WANG]
        # Heard after an identity check: every untold change of the number is past news.
        assert SqlRepository(db, "import-test-secret").news_heard(WANG, datetime.now(timezone.utc)) == 2
        assert numbers_to_tell(db) == []


def _run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOTLINE_VAR_DIR=str(tmp_path / "var"))
    return subprocess.run([sys.executable, "-m", "ivr", "import", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _snapshot(tmp_path: Path) -> tuple:
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'hotline.sqlite'}")
    with engine.connect() as conn:
        matters = conn.execute(text("SELECT * FROM matters ORDER BY id")).all()
        changes = conn.execute(text("SELECT * FROM matter_changes ORDER BY id")).all()
    engine.dispose()
    return matters, changes


def test_dry_run_writes_nothing_and_lists_the_changes_with_masked_numbers(tmp_path: Path) -> None:
    first, second = _csv(tmp_path, "a.csv", FIRST), _csv(tmp_path, "b.csv", SECOND)
    assert _run_cli(tmp_path, str(first)).returncode == 0
    assert (tmp_path / "var" / "hotline.sqlite").exists()
    before = _snapshot(tmp_path)
    dry = _run_cli(tmp_path, str(second), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _snapshot(tmp_path) == before
    lines = dry.stdout.splitlines()
    assert lines == [
        "  20260001: in_review → need_documents, tell *********0011",
        "  20260003: received → ready_for_pickup, tell *********0022",
        "1 added, 4 updated, 0 rows skipped, 2 status changes to tell 2 numbers (dry run: nothing written)",
    ]
    for phone in (WANG, LI, LI_NEW, SUN, "13800000011"):
        assert phone not in dry.stdout + dry.stderr
    real = _run_cli(tmp_path, str(second))  # the real import finds the same
    assert real.stdout.strip() == "1 added, 4 updated, 0 rows skipped, 2 status changes to tell 2 numbers"
    assert len(_snapshot(tmp_path)[1]) == 2
    for output in (dry, real):
        for digits in IDS.values():
            assert digits not in output.stdout + output.stderr


def test_dry_run_figures_match_the_import_across_chunks(tmp_path: Path) -> None:
    """Duplicates across chunks and changes of changes: the dry run carries what earlier chunks
    would have written."""
    sessions = _sqlite(tmp_path)
    _import(sessions, tmp_path, "a.csv", FIRST)
    _import(sessions, tmp_path, "b.csv", SECOND)
    third = HEADER + "".join([
        row("20260001", "rejected", WANG, "wang"),
        row("20260006", "received", SUN, "sun"),
        row("20260003", "received", LI_NEW, "li"),        # back: withdrawn
        row("20260002", "paid", WANG, "wang"),
        row("20260006", "paid", SUN, "sun"),              # new in this file: still not news
        row("20260002", "ready_for_pickup", ZHAO, "zhao"),  # twice in the file, to another number
    ])
    dry = _import(sessions, tmp_path, "c.csv", third, dry_run=True, chunk_rows=2)
    assert _changes(sessions) == [("20260001", WANG, "in_review", "need_documents", None, False),
                                  ("20260003", LI_NEW, "received", "ready_for_pickup", None, False)]
    real = _import(sessions, tmp_path, "c.csv", third, chunk_rows=2)
    figures = lambda r: (r.added, r.updated, r.changes, r.notify_numbers, r.withdrawn, r.changed)  # noqa: E731
    assert figures(dry) == figures(real)
    assert (real.added, real.changes, real.notify_numbers, real.withdrawn) == (1, 2, 2, 1)
    assert _changes(sessions) == [("20260001", WANG, "in_review", "rejected", None, False),
                                  ("20260002", ZHAO, "approved", "ready_for_pickup", None, False)]


def test_a_bad_row_does_not_lose_the_other_rows_of_its_chunk(tmp_path: Path, caplog) -> None:
    sessions = _sqlite(tmp_path)
    engine = sessions.kw["bind"]
    with engine.begin() as conn:  # the database itself refuses one row
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON matters WHEN NEW.case_no = '20260013' "
                          "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    lines = [row(f"202600{10 + i}", "in_review", WANG, "wang") for i in range(7)]
    lines[1] = lines[1].replace(IDS["wang"], "73Q5")  # not an ID last four
    caplog.set_level(logging.DEBUG)
    report = _import(sessions, tmp_path, "m.csv", HEADER + "".join(lines), chunk_rows=4)
    assert report.errors == ["m.csv: line 3: id_last4 must be 3 digits then a digit or X",
                             "m.csv: line 5: the database refused the row"]
    with sessions() as db:
        assert db.execute(select(Matter.case_no).order_by(Matter.case_no)).scalars().all() == [
            "20260010", "20260012", "20260014", "20260015", "20260016"]
    assert (report.added, report.updated) == (5, 0)
    for digits in (IDS["wang"], "73Q5"):
        assert digits not in " ".join(report.errors) and digits not in caplog.text


def test_each_chunk_is_its_own_transaction_with_one_lookup(tmp_path: Path) -> None:
    sessions = _sqlite(tmp_path)
    engine = sessions.kw["bind"]
    seen: list[str] = []
    event.listen(engine, "begin", lambda conn: seen.append("|"))
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *a: seen.append(statement.split()[0] + (
                     " matters" if "FROM matters" in statement else "")))
    body = "".join(row(f"2026{i:04d}", "in_review", WANG, "wang") for i in range(5))
    _import(sessions, tmp_path, "a.csv", HEADER + body, chunk_rows=2)
    chunks = " ".join(seen).split("|")[1:]
    assert len(chunks) == 4  # three chunks, then the count of numbers to tell
    assert [c.split().count("matters") for c in chunks[:3]] == [1, 1, 1]  # one SELECT … IN a chunk


def test_the_older_calling_convention_stays_in_the_callers_transaction(tmp_path: Path) -> None:
    sessions = _sqlite(tmp_path)
    with sessions() as db:
        with db.begin():
            report = import_matters(db, _csv(tmp_path, "a.csv", FIRST), "s", chunk_rows=2)
            assert report.added == 4
            db.rollback()
    with sessions() as db:
        assert db.execute(select(Matter)).first() is None
    from ivr.config import load_settings
    from ivr.runtime import load_demo_if_empty
    settings = load_settings({"HOTLINE_VAR_DIR": str(tmp_path / "var"),
                              "DEMO_CSV": str(ROOT / "flows" / "demo_matters.csv")}, demo=True)
    load_demo_if_empty(sessions, settings)
    with sessions() as db:
        assert len(db.execute(select(Matter)).all()) == 8
        assert db.execute(select(MatterChange)).first() is None


def test_an_import_that_cannot_get_the_database_stops_and_says_where(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", wait_seconds=0.3)
    upgrade(engine)
    sessions = session_factory(engine)
    body = "".join(row(f"2026{i:04d}", "in_review", WANG, "wang") for i in range(5))
    path = _csv(tmp_path, "m.csv", HEADER + body)
    holder = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}").raw_connection()  # another program's write lock
    holder.execute("BEGIN IMMEDIATE")
    try:
        report = import_matters(sessions, path, "s", notify_on=NOTIFY_ON, chunk_rows=2)
    finally:
        holder.rollback()
        holder.close()
    assert report.interrupted and report.added == 0
    assert report.errors == ["m.csv: line 2: stopped here, the database was busy or unreachable "
                             "(the rows before this line are imported; run the import again)"]
    assert import_matters(sessions, path, "s", notify_on=NOTIFY_ON).added == 5
