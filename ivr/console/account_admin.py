"""What a supervisor may do to accounts, with the rules checked here rather than in the web layer.

Every change is audited with the supervisor as actor.  A supervisor cannot disable or demote
themself, so the service always keeps at least one supervisor who can undo mistakes.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from ivr.console import throttle
from ivr.console.accounts import MIN_PASSWORD, ROLES, AccountError, audit, create_operator
from ivr.db.models import Operator
from ivr.phone_numbers import normalise_callback_number
from ivr.privacy import mask_phone


def add_account(db: Session, actor_id: int, username: str, role: str, phone: str, password: str,
                now: datetime) -> Operator:
    """phone may be empty: an operator without a phone cannot take bridged calls yet."""
    actor = _supervisor(db, actor_id)
    return create_operator(db, username, password, role, now, phone=_phone(phone) if phone else None,
                           actor=actor.username)


def set_enabled(db: Session, actor_id: int, operator_id: int, enabled: bool, now: datetime) -> Operator:
    actor = _supervisor(db, actor_id)
    target = _target(db, operator_id)
    if not enabled and target.id == actor.id:
        raise AccountError("不能停用自己的账户")
    if target.disabled == (not enabled):
        raise AccountError("账户已经是这个状态")
    target.disabled = not enabled
    audit(db, actor.username, "account_enabled" if enabled else "account_disabled", now,
          username=target.username)
    return target


def reset_password(db: Session, actor_id: int, operator_id: int, password: str, now: datetime) -> Operator:
    """A new hash also ends the account's open console sessions and clears its log-in back-off."""
    actor = _supervisor(db, actor_id)
    target = _target(db, operator_id)
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少要 {MIN_PASSWORD} 个字符")
    target.password_hash = generate_password_hash(password, method="scrypt")
    throttle.clear(db, target.username)
    audit(db, actor.username, "password_reset", now, username=target.username)
    return target


def change_account(db: Session, actor_id: int, operator_id: int, role: str, phone: str,
                   now: datetime) -> Operator:
    """An empty phone keeps the current one (it is never shown in full, so it cannot be edited)."""
    actor = _supervisor(db, actor_id)
    target = _target(db, operator_id)
    if role not in ROLES:
        raise AccountError("角色无效")
    if target.id == actor.id and role != "supervisor":
        raise AccountError("不能取消自己的主管权限")
    changes: dict[str, object] = {}
    if role != target.role:
        changes.update(role_from=target.role, role_to=role)
        target.role = role
    new_phone = _phone(phone) if phone else target.phone
    if new_phone != target.phone:
        changes["phone"] = mask_phone(new_phone)
        target.phone = new_phone
    if not changes:
        raise AccountError("没有需要保存的改动")
    audit(db, actor.username, "account_changed", now, username=target.username, **changes)
    return target


def _supervisor(db: Session, actor_id: int) -> Operator:
    """Re-checked inside the transaction: the role may have changed since the page was loaded."""
    actor = db.get(Operator, actor_id)
    if actor is None or actor.disabled or actor.role != "supervisor":
        raise AccountError("只有主管可以管理账户")
    return actor


def _target(db: Session, operator_id: int) -> Operator:
    target = db.get(Operator, operator_id)
    if target is None:
        raise AccountError("账户不存在")
    return target


def _phone(raw: str) -> str:
    phone = normalise_callback_number(raw)
    if phone is None:
        raise AccountError("电话号码无效：请填写手机号或上海固定电话")
    return phone
