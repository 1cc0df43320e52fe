"""History: past calls found by the last digits of a number or a case number, and for each
number found its notification calls, which an operator can stop or resume at the person's request."""
from __future__ import annotations

from typing import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ivr.console.history import find_number, notifications_by_number, search_calls
from ivr.console.notifications import resume_notifications, stop_notifications
from ivr.console.web.db import console_now, db_session, runtime
from ivr.console.web.guards import current_operator
from ivr.privacy import mask_phone

QUERY_MAX = 40


def _query(raw: str | None) -> str:
    return (raw or "").strip()[:QUERY_MAX]


def _secret() -> str:
    return runtime().settings.console_secret_key


def history() -> str:
    query = _query(request.args.get("q"))
    with db_session(read_only=True) as db:
        calls = search_calls(db, query)
        numbers, more_numbers = notifications_by_number(db, query, _secret())
    masked = [number.number for number in numbers]
    return render_template("console/history.html", calls=calls, query=query, numbers=numbers,
                           more_numbers=more_numbers, same_ending=len(set(masked)) < len(masked))


def _change(apply: Callable[[Session, str, str], bool], done: str, unchanged: str) -> Response:
    """Find the form's number again through the same search, apply the change, come back."""
    query = _query(request.form.get("q"))
    ref = request.form.get("number", "")
    changed = False
    with db_session() as db:
        phone = find_number(db, query, ref, _secret())
        if phone is not None:
            changed = apply(db, phone, current_operator().username)
    if phone is None:
        flash("没有找到这个号码，没有改动。请重新查找后再操作。", "error")
        return redirect(url_for("console.history", q=query or None))
    ending = mask_phone(phone)[-4:]
    flash((done if changed else unchanged).format(ending=ending), "info")
    return redirect(url_for("console.history", q=query) + f"#number-{ref}")


def stop() -> Response:
    return _change(lambda db, phone, actor: stop_notifications(db, phone, actor, console_now()),
                   "已停止：办件有新进展时，不再打电话通知尾号 {ending}。本人想再接电话时，在这里恢复。",
                   "尾号 {ending} 本来就不接收通知电话，没有改动。")


def resume() -> Response:
    return _change(lambda db, phone, actor: resume_notifications(db, phone, actor, console_now()),
                   "已恢复：办件有新进展时，会再打电话通知尾号 {ending}。",
                   "尾号 {ending} 本来就接收通知电话，没有改动。")


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/history", "history", history)
    bp.add_url_rule("/history/notifications/stop", "history_notifications_stop", stop, methods=["POST"])
    bp.add_url_rule("/history/notifications/resume", "history_notifications_resume", resume, methods=["POST"])
