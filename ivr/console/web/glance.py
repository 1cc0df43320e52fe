"""The "at a glance" page: one day's figures as server-drawn bar charts."""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, flash, render_template, request

from ivr.console.stats import DayFigures, day_figures
from ivr.console.story import STEP_NAMES, reason_words
from ivr.console.web.charts import BarChart, bar_chart
from ivr.console.web.db import console_now, db_session


def _percent(value: float) -> str:
    return f"{value:.0f}%"


def charts(figures: DayFigures) -> list[BarChart]:
    """The page's charts in order; figures may carry more than DayFigures (see callbacks)."""
    made = [
        bar_chart("calls", "来电 Calls", [("来电", figures.calls), ("已结束", figures.finished),
                                        ("自助完成（无需人工）", figures.contained)]),
        bar_chart("containment", "自助完成率 Containment",
                  [(f"已结束的 {figures.finished} 通中", figures.containment * 100)],
                  scale_max=100, shown=_percent),
        bar_chart("handoffs", "转人工原因 Handoffs by reason",
                  [(reason_words(reason), n) for reason, n in figures.handoffs_by_reason.most_common()]),
        bar_chart("bookings", "回电预约 Bookings", [("新预约", figures.bookings_made),
                                                ("已取消", figures.bookings_cancelled)]),
        bar_chart("dropoff", "挂断时所在步骤 Drop-off steps",
                  [(f"{STEP_NAMES.get(step, step)}（{step}）", n) for step, n in figures.drop_off_steps.most_common()]),
    ]
    made.append(bar_chart("callbacks", "回电结果 Callbacks", [("打通了", figures.callbacks_kept),
                                                          ("转人工跟进", figures.callbacks_missed)]))
    made.append(notification_chart(figures))
    return made


def notification_chart(figures: DayFigures) -> BarChart:
    """Calls the hotline made to tell people their matter moved on: queued that day, then what
    became of the ones that finished that day."""
    return bar_chart("notifications", "电话通知 Notifications", [
        ("新排上的通知", figures.notifications_queued),
        ("接通了", figures.notifications_reached),
        ("核验后听了新进展", figures.notifications_heard),
        ("没打通", figures.notifications_not_reached),
        ("没打通，发了短信", figures.notifications_sms),
        ("接通后不再接收通知", figures.notifications_opted_out),
    ])


def _day(raw: str | None, today: date) -> date:
    if not raw:
        return today
    try:
        return date.fromisoformat(raw)
    except ValueError:
        flash("日期格式应为 YYYY-MM-DD，已显示今天。", "error")
        return today


def glance() -> str:
    today = console_now().date()
    day = _day(request.args.get("day"), today)
    with db_session(read_only=True) as db:
        figures = day_figures(db, day)
    return render_template("console/glance.html", day=day, today=today, figures=figures, charts=charts(figures),
                           previous=day - timedelta(days=1), following=day + timedelta(days=1))


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/glance", "glance", glance)
