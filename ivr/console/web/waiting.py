"""Placeholder for "waiting now" until its real page (callers in the queue) replaces this file."""
from __future__ import annotations

from flask import Blueprint, render_template


def waiting() -> str:
    return render_template("console/waiting.html", calls=[])


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/waiting", "waiting", waiting)
