"""Prompt studio (supervisors): every prompt per language, what callers hear, recording in the
browser or by upload, takes kept and restorable, a printable recording script and a bulk import.

A saved take is in the database; every process follows it from its next call on
(ivr.prompts.recorded), so nothing here restarts anything.
"""
from __future__ import annotations

import io

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from ivr.console.web.db import console_now, db_session, runtime
from ivr.console.web.guards import current_operator, supervisor_required
from ivr.engine.actions import Prompt
from ivr.prompts import catalog, kit, library
from ivr.prompts.intake import UploadRefused, expected_seconds

LANGUAGES = tuple(catalog.LANGUAGE_NAMES)


def _language(lang: str) -> str:
    if lang not in LANGUAGES or lang not in runtime().flow.prompts:
        abort(404)
    return lang


def _entry(lang: str, prompt_id: str) -> catalog.Entry:
    rt = runtime()
    rt.store.recordings.refresh()
    for entry in catalog.entries(rt.flow, lang, rt.store.recordings, rt.store.renderer) + \
            catalog.piece_entries(rt.flow, lang, rt.store.recordings):
        if entry.prompt_id == prompt_id:
            return entry
    abort(404)


def _tts_path(entry: catalog.Entry) -> str | None:
    """Where the browser can hear the synthesised words (what a caller without a recording hears)."""
    if entry.dynamic or not entry.mandarin:
        return None
    audible = runtime().store.audible(Prompt(entry.prompt_id, "cmn", entry.mandarin, entry.mandarin))
    return audible.path if audible.kind == "play" else None


@supervisor_required
def prompts() -> str:
    rt = runtime()
    lang = _language(request.args.get("lang", "wuu"))
    rt.store.recordings.refresh()
    entries = catalog.entries(rt.flow, lang, rt.store.recordings, rt.store.renderer)
    pieces = catalog.piece_entries(rt.flow, lang, rt.store.recordings)
    groups: dict[str, list[catalog.Entry]] = {}
    for entry in entries:
        groups.setdefault(entry.flow_file, []).append(entry)
    return render_template("console/prompts.html", lang=lang, languages=catalog.LANGUAGE_NAMES, groups=groups,
                           pieces=pieces, coverage=catalog.coverage(rt.flow, rt.store.recordings),
                           piece_coverage=catalog.piece_coverage(rt.flow, lang, rt.store.recordings))


@supervisor_required
def prompt(lang: str, prompt_id: str) -> str:
    _language(lang)
    entry = _entry(lang, prompt_id)
    with db_session(read_only=True) as db:
        takes = library.takes(db, lang, prompt_id)
    words = entry.text or entry.mandarin
    in_use = next((t for t in takes if t.in_use), None)
    stale = in_use.text if in_use is not None and in_use.text != words else ""
    return render_template("console/prompt.html", lang=lang, languages=catalog.LANGUAGE_NAMES, entry=entry,
                           takes=takes, tts_path=_tts_path(entry), expected=expected_seconds(words), stale=stale,
                           pieces=catalog.pieces_of(runtime().flow, lang, entry, runtime().store.recordings))


@supervisor_required
def save_take(lang: str, prompt_id: str) -> Response:
    _language(lang)
    entry = _entry(lang, prompt_id)
    upload = request.files.get("audio")
    if upload is None or not upload.filename:
        flash("没有收到录音文件。请先录音或选择文件。", "error")
        return redirect(url_for("console.prompt", lang=lang, prompt_id=prompt_id))
    try:
        result = kit.take_in_one(runtime().sessions, runtime().flow, lang, prompt_id, upload.read(), upload.filename,
                                 actor=current_operator().username, now=console_now())
    except UploadRefused as exc:
        flash(f"没有保存：{exc}", "error")
        return redirect(url_for("console.prompt", lang=lang, prompt_id=prompt_id))
    flash(f"已保存为第 {result.version} 版，{result.seconds:.1f} 秒。下一通来电起播放。", "info")
    for warning in result.warnings:
        flash(f"请注意：{warning['message']}", "warning")
    return redirect(url_for("console.prompt", lang=lang, prompt_id=entry.prompt_id))


@supervisor_required
def restore_take(lang: str, prompt_id: str) -> Response:
    _language(lang)
    version = request.form.get("version", type=int)
    try:
        with db_session() as db:
            library.restore(db, lang, prompt_id, version or 0, actor=current_operator().username, now=console_now())
    except library.NoSuchTake:
        abort(404)
    flash(f"已改回第 {version} 版。下一通来电起播放。", "info")
    return redirect(url_for("console.prompt", lang=lang, prompt_id=prompt_id))


@supervisor_required
def stop_recording(lang: str, prompt_id: str) -> Response:
    _language(lang)
    with db_session() as db:
        changed = library.stop_using(db, lang, prompt_id, actor=current_operator().username, now=console_now())
    flash("已停用录音，来电人会听到合成语音。录音版本都还保留着。" if changed else "这条提示没有在用的录音。", "info")
    return redirect(url_for("console.prompt", lang=lang, prompt_id=prompt_id))


@supervisor_required
def take_audio(lang: str, prompt_id: str, version: int) -> Response:
    _language(lang)
    with db_session(read_only=True) as db:
        data = library.take_audio(db, lang, prompt_id, version)
    if data is None:
        abort(404)
    return send_file(io.BytesIO(data), mimetype="audio/wav", download_name=f"{prompt_id}-v{version}.wav")


@supervisor_required
def script(lang: str) -> str:
    rt = runtime()
    _language(lang)
    rt.store.recordings.refresh()
    return render_template("console/prompt_script.html", lang=lang, languages=catalog.LANGUAGE_NAMES,
                           lines=kit.script_lines(rt.flow, lang, rt.store.recordings), now=console_now())


@supervisor_required
def bulk_import(lang: str) -> str | tuple[str, int]:
    _language(lang)
    files = [(f.filename or "", f.read()) for f in request.files.getlist("files") if f.filename]
    if not files:
        flash("没有收到文件。请选一个 zip 包或一批录音文件。", "error")
        return render_template("console/prompt_import.html", lang=lang, languages=catalog.LANGUAGE_NAMES,
                               report=None), 400
    report = kit.bulk_import(runtime().sessions, runtime().flow, lang, files, actor=current_operator().username,
                             now=console_now())
    return render_template("console/prompt_import.html", lang=lang, languages=catalog.LANGUAGE_NAMES, report=report)


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/supervisor/prompts", "prompts", prompts)
    bp.add_url_rule("/supervisor/prompts/<lang>/script", "prompt_script", script)
    bp.add_url_rule("/supervisor/prompts/<lang>/import", "prompt_import", bulk_import, methods=["POST"])
    bp.add_url_rule("/supervisor/prompts/<lang>/<prompt_id>", "prompt", prompt)
    bp.add_url_rule("/supervisor/prompts/<lang>/<prompt_id>/takes", "prompt_save", save_take, methods=["POST"])
    bp.add_url_rule("/supervisor/prompts/<lang>/<prompt_id>/restore", "prompt_restore", restore_take,
                    methods=["POST"])
    bp.add_url_rule("/supervisor/prompts/<lang>/<prompt_id>/off", "prompt_off", stop_recording, methods=["POST"])
    bp.add_url_rule("/supervisor/prompts/<lang>/<prompt_id>/takes/<int:version>.wav", "prompt_take_audio",
                    take_audio)
