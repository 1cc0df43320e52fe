"""Supervisor pages: operator accounts and the audit log.  The rules live in account_admin."""
from __future__ import annotations

import math
from typing import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from ivr.console import account_admin, throttle
from ivr.console.accounts import AccountError
from ivr.console.web.db import console_now, db_session
from ivr.console.web.forms import AccountChangeForm, NewAccountForm, PasswordResetForm
from ivr.console.web.guards import current_operator, supervisor_required
from ivr.console.web.identity import ConsoleUser, sign_in
from ivr.db.models import AuditEntry, Operator

AUDIT_PAGE_SIZE = 50


def _row_forms(operator: Operator) -> dict[str, object]:
    """Per-account forms get a prefix so every field id on the page is unique."""
    return {"password": PasswordResetForm(prefix=f"pw{operator.id}"),
            "change": AccountChangeForm(prefix=f"ch{operator.id}", role=operator.role)}


def _accounts_page(new_form: NewAccountForm, status: int = 200) -> tuple[str, int]:
    now = console_now()
    with db_session(read_only=True) as db:
        operators = list(db.execute(select(Operator).order_by(Operator.username)).scalars())
        waits = {op.id: throttle.account_wait(db, op.username, now) for op in operators}
    rows = [{"operator": op, "wait": waits[op.id], "forms": _row_forms(op)} for op in operators]
    return render_template("console/accounts.html", rows=rows, new_form=new_form,
                           me=current_operator()), status


@supervisor_required
def accounts() -> tuple[str, int] | Response:
    form = NewAccountForm()
    if not form.validate_on_submit():
        return _accounts_page(form, 400 if form.is_submitted() else 200)
    try:
        with db_session() as db:
            account_admin.add_account(db, current_operator().id, form.username.data.strip(), form.role.data,
                                      form.phone.data.strip(), form.password.data, console_now())
    except AccountError as exc:
        flash(f"没有创建：{exc}", "error")
        return _accounts_page(form, 400)
    flash(f"已创建账户 {form.username.data.strip()}。", "info")
    return redirect(url_for("console.accounts"))


def _change(operator_id: int, apply: Callable[[Session, int], Operator], done: str) -> Response:
    """Run one account change and come back to the list with what happened."""
    me = current_operator()
    try:
        with db_session() as db:
            operator = apply(db, me.id)
            username = operator.username
            refreshed = ConsoleUser.from_operator(operator) if operator.id == me.id else None
    except AccountError as exc:
        flash(f"没有保存：{exc}", "error")
    else:
        if refreshed is not None:  # a new password ends older sessions, but not this one
            sign_in(refreshed)
        flash(done.format(username=username), "info")
    return redirect(url_for("console.accounts") + f"#account-{operator_id}")


@supervisor_required
def disable(operator_id: int) -> Response:
    return _change(operator_id, lambda db, me: account_admin.set_enabled(db, me, operator_id, False, console_now()),
                   "已停用 {username}。")


@supervisor_required
def enable(operator_id: int) -> Response:
    return _change(operator_id, lambda db, me: account_admin.set_enabled(db, me, operator_id, True, console_now()),
                   "已启用 {username}。")


def _refused(operator_id: int, errors: list[str]) -> Response:
    flash(f"没有保存：{'；'.join(errors) or '表单无效'}", "error")
    return redirect(url_for("console.accounts") + f"#account-{operator_id}")


@supervisor_required
def reset_password(operator_id: int) -> Response:
    form = PasswordResetForm(prefix=f"pw{operator_id}")
    if not form.validate():
        return _refused(operator_id, form.password.errors)
    return _change(operator_id, lambda db, me: account_admin.reset_password(
        db, me, operator_id, form.password.data, console_now()), "已重置 {username} 的密码，也解除了锁定。")


@supervisor_required
def change(operator_id: int) -> Response:
    form = AccountChangeForm(prefix=f"ch{operator_id}")
    if not form.validate():
        return _refused(operator_id, form.role.errors + form.phone.errors)
    return _change(operator_id, lambda db, me: account_admin.change_account(
        db, me, operator_id, form.role.data, form.phone.data.strip(), console_now()), "已保存 {username} 的改动。")


@supervisor_required
def audit_log() -> str:
    actor = request.args.get("actor", "").strip()
    action = request.args.get("action", "").strip()
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    query = select(AuditEntry)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    with db_session(read_only=True) as db:
        total = db.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        entries = list(db.execute(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                                  .offset((page - 1) * AUDIT_PAGE_SIZE).limit(AUDIT_PAGE_SIZE)).scalars())
        actions = list(db.execute(select(AuditEntry.action).distinct().order_by(AuditEntry.action)).scalars())
    pages = max(math.ceil(total / AUDIT_PAGE_SIZE), 1)
    return render_template("console/audit.html", entries=entries, actions=actions, actor=actor, action=action,
                           page=page, pages=pages, total=total)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/supervisor/accounts", "accounts", accounts, methods=["GET", "POST"])
    bp.add_url_rule("/supervisor/accounts/<int:operator_id>/disable", "account_disable", disable, methods=["POST"])
    bp.add_url_rule("/supervisor/accounts/<int:operator_id>/enable", "account_enable", enable, methods=["POST"])
    bp.add_url_rule("/supervisor/accounts/<int:operator_id>/password", "account_password", reset_password,
                    methods=["POST"])
    bp.add_url_rule("/supervisor/accounts/<int:operator_id>/change", "account_change", change, methods=["POST"])
    bp.add_url_rule("/supervisor/audit", "audit", audit_log)
