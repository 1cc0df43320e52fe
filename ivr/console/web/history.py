"""History: past calls found by the last digits of a number or a case number."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from ivr.console.history import search_calls
from ivr.console.web.db import db_session


def history() -> str:
    query = request.args.get("q", "").strip()[:40]
    with db_session(read_only=True) as db:
        calls = search_calls(db, query)
    return render_template("console/history.html", calls=calls, query=query)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/history", "history", history)
