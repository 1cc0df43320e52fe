"""The Flask application: Twilio webhooks, prompt audio and its text twins, the operator console, health."""
from __future__ import annotations

import logging

from flask import Flask, Response, abort, jsonify, send_file

from ivr.config import Settings
from ivr.console.web import create_console_blueprint, init_console
from ivr.db.availability import check_writable
from ivr.proxy import trust_proxies
from ivr.runtime import Clock, Runtime, build_runtime
from ivr.telephony.control import TelephonyControl
from ivr.telephony.twilio_control import TwilioControl
from ivr.telephony.twilio_webhooks import create_blueprint

log = logging.getLogger(__name__)
MAX_REQUEST_BYTES = 256 * 1024 * 1024  # the prompt studio's bulk import (a zip of a whole language)
AUDIO_CACHE = "public, max-age=31536000, immutable"  # content-addressed: a new text is a new URL


def create_app(settings: Settings, clock: Clock | None = None, runtime: Runtime | None = None,
               telephony: TelephonyControl | None = None) -> Flask:
    """`telephony` takes callers and calls back for the console: Twilio's REST API by default."""
    rt = runtime or build_runtime(settings, clock)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.extensions["hotline"] = rt
    trust_proxies(app, rt.settings.proxy_hops)
    app.register_blueprint(create_blueprint())
    init_console(app, rt, telephony or TwilioControl.from_settings(rt.settings))
    app.register_blueprint(create_console_blueprint())

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        """Ok only if a turn could write now: reading alone says "ok" while every turn fails."""
        database = check_writable(rt.db, rt.settings.db_wait_seconds)
        body = {"status": "ok" if database == "ok" else "degraded", "database": database,
                "tts": rt.store.renderer is not None, "steps": len(rt.flow.steps),
                "spooled_callbacks": rt.spool.pending()}
        return jsonify(body), 200 if database == "ok" else 503

    @app.get("/prompts/tts/<key>.<ext>")
    def tts_prompt(key: str, ext: str) -> Response:
        found = rt.store.lookup(key)
        if found is None or ext not in ("wav", "txt"):
            abort(404)
        renderer, words = found
        if ext == "txt":
            return _text(words)
        response = send_file(renderer.render(words), mimetype="audio/wav", conditional=True)
        response.headers["Cache-Control"] = AUDIO_CACHE
        return response

    @app.get("/prompts/rec/<lang>/<int:recording_id>/<prompt_id>.<ext>")
    def recorded_prompt(lang: str, recording_id: int, prompt_id: str, ext: str) -> Response:
        path = rt.store.recording_path(recording_id)
        if path is None:  # saved since this process last looked (a stream process started the call)
            rt.store.recordings.refresh()
            path = rt.store.recording_path(recording_id)
        if path is None or ext not in ("wav", "txt"):
            abort(404)
        if ext == "txt":
            texts = rt.flow.prompts.get(lang, {})
            return _text(texts.get(prompt_id) or rt.flow.prompts["cmn"].get(prompt_id, ""))
        response = send_file(path, mimetype="audio/wav", conditional=True)
        response.headers["Cache-Control"] = AUDIO_CACHE
        return response

    @app.get("/prompts/composed/<key>.<ext>")
    def composed_prompt(key: str, ext: str) -> Response:
        """A sentence joined from recorded pieces (named by the takes it joins: immutable)."""
        path = rt.store.composed_path(key, ext) if ext in ("wav", "txt") else None
        if path is None:
            abort(404)
        if ext == "txt":
            return _text(path.read_text("utf-8"))
        response = send_file(path, mimetype="audio/wav", conditional=True)
        response.headers["Cache-Control"] = AUDIO_CACHE
        return response

    @app.get("/prompts/silence-500ms.<ext>")
    def silence(ext: str) -> Response:
        if ext == "txt":
            return _text("")
        response = send_file(rt.store.silence_path, mimetype="audio/wav", conditional=True)
        response.headers["Cache-Control"] = AUDIO_CACHE
        return response

    return app


def _text(words: str) -> Response:
    response = Response(words, mimetype="text/plain; charset=utf-8")
    response.headers["Cache-Control"] = AUDIO_CACHE
    return response
