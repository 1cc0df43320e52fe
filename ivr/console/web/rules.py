"""Service rules (supervisors): operator and callback hours, slot capacity, days off."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ivr.console.web.db import console_now, db_session, runtime
from ivr.console.web.guards import current_operator, supervisor_required
from ivr.service_rules import RuleError, current_rules, parse_dates, save_rules

FIELDS = ("operator_hours", "service_hours", "slot_capacity", "days_off", "extra_working_days")


def _page(status: int = 200, form: dict | None = None) -> tuple[str, int]:
    with db_session(read_only=True) as db:
        rules = current_rules(db, runtime().policy)
    return render_template("console/rules.html", rules=rules, form=form or {}), status


@supervisor_required
def rules() -> tuple[str, int] | Response:
    if request.method == "GET":
        return _page()
    form = {name: request.form.get(name, "").strip() for name in FIELDS}
    actor = current_operator().username
    try:
        values: dict[str, object] = {name: form[name] for name in ("operator_hours", "service_hours", "slot_capacity")}
        values["days_off"] = parse_dates(form["days_off"], "休息日")
        values["extra_working_days"] = parse_dates(form["extra_working_days"], "调休上班日")
        with db_session() as db:
            changed = save_rules(db, values, runtime().policy, actor, console_now())
    except RuleError as exc:
        flash(f"没有保存：{exc}", "error")
        return _page(400, form)
    flash("已保存。下一通来电起生效。" if changed else "没有改动。", "info")
    return redirect(url_for("console.rules"))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/supervisor/rules", "rules", rules, methods=["GET", "POST"])
