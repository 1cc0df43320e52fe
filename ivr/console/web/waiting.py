"""Waiting now: callers in the queue, updated without reloading, and taking one of them."""
from __future__ import annotations

import dataclasses
import hashlib

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from ivr.console.waiting import TakeError, take_caller, taken_by, waiting_now
from ivr.console.web.db import console_now, db_session, runtime
from ivr.console.web.guards import current_operator
from ivr.console.web.telephony import telephony
from ivr.db.models import Operator

POLL_SECONDS = 3


def _lists() -> dict[str, object]:
    with db_session(read_only=True) as db:
        calls, mine = waiting_now(db, console_now()), taken_by(db, current_operator().username)
    # Who is listed and what their cards say, not the waiting times (the browser counts those up)
    # nor the HTML (its CSRF tokens change every second): the browser swaps the list on change only.
    content = [dataclasses.replace(c, waited_seconds=0) for c in calls] + list(mine)
    version = hashlib.sha256(repr(content).encode()).hexdigest()[:16]
    return {"calls": calls, "mine": mine, "version": version}


def waiting() -> str:
    return render_template("console/waiting.html", poll_seconds=POLL_SECONDS, **_lists())


def api_waiting() -> Response:
    """The live part of the page as HTML, with its version."""
    lists = _lists()
    html = render_template("console/_waiting_live.html", **lists)
    return jsonify(count=len(lists["calls"]), version=lists["version"], html=html)


def take() -> Response:
    raw = request.form.get("handoff", "")
    rt = runtime()
    with db_session(read_only=True) as db:
        operator = db.execute(select(Operator).where(Operator.id == current_operator().id)).scalar_one()
        db.expunge(operator)
    try:
        taken = take_caller(rt.sessions, telephony(), rt.settings, rt.policy.queue_name, operator,
                            int(raw) if raw.isdigit() else None, console_now())
    except TakeError as exc:
        flash(f"没有接通：{exc}", "error")
    else:
        flash(f"正在接通尾号 {taken.number[-4:]} 的来电，您的电话马上会响。", "info")
    return redirect(url_for("console.waiting"))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/waiting", "waiting", waiting)
    bp.add_url_rule("/api/waiting", "api_waiting", api_waiting)
    bp.add_url_rule("/waiting/take", "waiting_take", take, methods=["POST"])
