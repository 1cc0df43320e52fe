"""Error pages for console views: plain words for people, JSON for /console/api/ scripts."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import Forbidden, RequestEntityTooLarge

from ivr.console.web.guards import wants_json


def _page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("console/error.html", title=title, message=message), status


def csrf_failed(error: CSRFError) -> object:
    if wants_json():
        return jsonify(error="csrf", detail=error.description), 400
    return _page(400, "表单已失效", "这个表单已过期或来源不明，没有执行。请回到页面重新操作。")


def forbidden(_error: Forbidden) -> object:
    if wants_json():
        return jsonify(error="forbidden"), 403
    return _page(403, "没有权限", "这个页面只对主管开放。")


def too_large(_error: RequestEntityTooLarge) -> object:
    if wants_json():
        return jsonify(error="too large"), 413
    return _page(413, "文件太大", "上传的文件太大，没有保存。一条录音最多 20 MB；批量导入请分几次上传。")


def register(bp: Blueprint) -> None:
    bp.register_error_handler(RequestEntityTooLarge, too_large)
    bp.register_error_handler(CSRFError, csrf_failed)
    bp.register_error_handler(Forbidden, forbidden)
