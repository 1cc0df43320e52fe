"""Callbacks: the worklist by slot (claim, call now, outcome) and the manual follow-up list."""
from __future__ import annotations

from itertools import groupby
from typing import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ivr.console import callbacks as service
from ivr.console.web.db import console_now, db_session, runtime
from ivr.console.web.guards import current_operator
from ivr.console.web.telephony import telephony
from ivr.db.models import CallbackAttempt, Operator, OutboxItem
from ivr.outbox.sending import DrainReport, send_item

ATTEMPT_WORDS = {"placing": "正在拨出", "queued": "已拨出", "initiated": "已拨出", "ringing": "正在响铃",
                 "in-progress": "通话中", "completed": "通话结束", "no-answer": "无人接听", "busy": "占线",
                 "failed": "拨打失败", "canceled": "已取消", "error": "没有拨出"}


def _back(booking_id: int) -> Response:
    return redirect(url_for("console.callbacks") + f"#booking-{booking_id}")


def worklist() -> str:
    now = console_now()
    with db_session(read_only=True) as db:
        items = service.worklist(db, now)
    groups = [(day, list(day_items)) for day, day_items in groupby(items, key=lambda i: i.slot_start.date())]
    return render_template("console/callbacks.html", groups=groups, now=now, me=current_operator().username,
                           outcomes=service.OUTCOMES, attempt_words=ATTEMPT_WORDS,
                           max_attempts=runtime().settings.callback_max_attempts)


def _act(booking_id: int, action: Callable[[Session], None], done: str) -> Response:
    try:
        with db_session() as db:
            action(db)
    except service.CallbackError as exc:
        flash(str(exc), "error")
    else:
        flash(done, "info")
    return _back(booking_id)


def claim(booking_id: int) -> Response:
    settings = runtime().settings
    return _act(booking_id, lambda db: service.claim(db, booking_id, current_operator().username, console_now(),
                                                     settings.callback_claim_minutes), "已认领。")


def release(booking_id: int) -> Response:
    return _act(booking_id, lambda db: service.release(db, booking_id, current_operator().username, console_now()),
                "已放弃认领，别人可以接手。")


def call_now(booking_id: int) -> Response:
    """Write the call into the outbox, then send it at once; a Twilio failure is shown, and the
    worker keeps retrying it for a few minutes."""
    rt = runtime()
    now = console_now()
    try:
        with db_session() as db:
            operator = db.execute(select(Operator).where(Operator.id == current_operator().id)).scalar_one()
            item = service.start_call(db, booking_id, operator, rt.settings, now)
            item_id, attempt_id = item.id, item.payload["attempt_id"]
    except service.CallbackError as exc:
        flash(str(exc), "error")
        return _back(booking_id)
    send_item(rt.sessions, item_id, telephony(), rt.settings.twilio_number, now, DrainReport())
    with db_session(read_only=True) as db:
        attempt = db.get(CallbackAttempt, attempt_id)
        status, error = attempt.status, attempt.error
    if status == "error":
        flash(f"没有拨出：{error}", "error")
    elif error:
        flash(f"暂时没有拨出（{error}），系统会自动重试。", "error")
    else:
        first = "您的电话" if rt.settings.callback_mode == "operator_first" else "来电人的电话"
        flash(f"已拨出：{first}马上会响。通话后请记录结果。", "info")
    return _back(booking_id)


def outcome(booking_id: int) -> Response:
    chosen = request.form.get("outcome", "")
    note = request.form.get("note", "")
    settings = runtime().settings
    try:
        with db_session() as db:
            status = service.record_outcome(db, booking_id, current_operator().username, chosen, note,
                                            console_now(), settings)
    except service.CallbackError as exc:
        flash(str(exc), "error")
        return _back(booking_id)
    words = {"done": "已完成。", "followup": "已转到“跟进”列表。",
             "open": f"已记录无人接听，{settings.callback_retry_minutes} 分钟后会回到列表再拨。"}
    flash(f"{service.OUTCOMES[chosen]}：{words[status]}", "info")
    return redirect(url_for("console.callbacks"))


def follow_up() -> str:
    with db_session(read_only=True) as db:
        items = service.followups(db)
        problems = list(db.execute(select(OutboxItem).where(
            (OutboxItem.status == "failed") | ((OutboxItem.status == "pending") & OutboxItem.last_error.is_not(None)))
            .order_by(OutboxItem.id.desc()).limit(50)).scalars())
    return render_template("console/follow_up.html", items=items, problems=problems, outcomes=service.OUTCOMES)


def close_follow_up(booking_id: int) -> Response:
    try:
        with db_session() as db:
            service.close_followup(db, booking_id, current_operator().username, request.form.get("note", ""),
                                   console_now())
    except service.CallbackError as exc:
        flash(str(exc), "error")
    else:
        flash("已处理完，移出跟进列表。", "info")
    return redirect(url_for("console.follow_up"))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/callbacks", "callbacks", worklist)
    bp.add_url_rule("/callbacks/<int:booking_id>/claim", "callback_claim", claim, methods=["POST"])
    bp.add_url_rule("/callbacks/<int:booking_id>/release", "callback_release", release, methods=["POST"])
    bp.add_url_rule("/callbacks/<int:booking_id>/call", "callback_call", call_now, methods=["POST"])
    bp.add_url_rule("/callbacks/<int:booking_id>/outcome", "callback_outcome", outcome, methods=["POST"])
    bp.add_url_rule("/follow-up", "follow_up", follow_up)
    bp.add_url_rule("/follow-up/<int:booking_id>/close", "follow_up_close", close_follow_up, methods=["POST"])
