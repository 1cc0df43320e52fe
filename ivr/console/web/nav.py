"""The console's navigation.  An entry appears once a view with its endpoint is registered,
so the pages still being written simply show up when they land."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from flask_login import current_user


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str
    english: str
    supervisor_only: bool = False


NAV = (
    NavItem("console.waiting", "等候中", "Waiting now"),
    NavItem("console.callbacks", "回电", "Callbacks"),
    NavItem("console.follow_up", "跟进", "Follow-up"),
    NavItem("console.history", "通话记录", "History"),
    NavItem("console.glance", "概览", "At a glance"),
    NavItem("console.accounts", "账户", "Accounts", supervisor_only=True),
    NavItem("console.rules", "服务规则", "Service rules", supervisor_only=True),
    NavItem("console.prompts", "提示语录音", "Prompt studio", supervisor_only=True),
    NavItem("console.audit", "审计日志", "Audit log", supervisor_only=True),
)


def visible_nav() -> list[NavItem]:
    if not current_user.is_authenticated:
        return []
    return [item for item in NAV if item.endpoint in current_app.view_functions
            and (current_user.is_supervisor or not item.supervisor_only)]


def template_context() -> dict[str, object]:
    return {"nav": visible_nav()}
