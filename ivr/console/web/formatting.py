"""Template filters shared by console pages: Shanghai times, masked numbers, role names."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint

from ivr.privacy import mask_phone
from ivr.timeutil import from_db

ROLE_NAMES = {"operator": "接线员", "supervisor": "主管"}


def local_time(moment: datetime | None) -> str:
    """A database time (naive UTC) as Shanghai wall-clock time."""
    return from_db(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def key_values(detail: dict | None) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted((detail or {}).items()))


PIECE_KINDS = {"segment": "句子里固定的部分", "word": "数字、日子、钟点用的词", "prompt": "整句"}


def piece_kind(kind: str) -> str:
    return PIECE_KINDS.get(kind, kind)


def role_name(role: str) -> str:
    return ROLE_NAMES.get(role, role)


def register(bp: Blueprint) -> None:
    bp.add_app_template_filter(role_name, "role_name")
    bp.add_app_template_filter(local_time, "local_time")
    bp.add_app_template_filter(mask_phone, "masked_phone")
    bp.add_app_template_filter(key_values, "key_values")
    bp.add_app_template_filter(piece_kind, "piece_kind")
