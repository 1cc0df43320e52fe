"""`python -m ivr …`: serve, call (the terminal phone), import, flows, prompts, db."""
from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ivr.config import ConfigError, Settings, load_settings
from ivr.privacy import configure_logging

log = logging.getLogger("ivr")
DEMO_CALLER = "+8613800000002"


def _settings(args: argparse.Namespace, demo: bool = False) -> Settings:
    return load_settings(demo=demo or getattr(args, "demo", False))


def cmd_serve(args: argparse.Namespace) -> int:
    from ivr.serve import serve
    settings = _settings(args)
    if settings.demo:
        settings = settings.with_overrides(public_base_url=f"http://{args.host}:{args.port}")
    streams = _demo_streams(settings, args.host, args.port + 1) if settings.demo else None
    try:
        return serve(settings, args.host, args.port, args.workers)
    finally:
        if streams is not None:
            streams.terminate()
            streams.wait(10)


def _demo_streams(settings: Settings, host: str, port: int) -> "subprocess.Popen | None":
    """The demo's Media Streams server beside gunicorn (CALL_AUDIO=stream), on the next port:
    the terminal phone connects there, as Twilio would through nginx's /twilio/stream."""
    if settings.call_audio != "stream":
        return None
    env = {**os.environ, "PUBLIC_BASE_URL": settings.public_base_url}
    process = subprocess.Popen([sys.executable, "-m", "ivr", "streams", "--demo", "--host", host,
                                "--port", str(port)], env=env)
    print(f"  Media streams on ws://{host}:{port}/twilio/stream (CALL_AUDIO=stream)", flush=True)
    return process


def cmd_call(args: argparse.Namespace) -> int:
    from ivr.simulator.terminal import run_terminal_call
    from ivr.simulator.transport import HttpTransport, WsgiTransport
    from ivr.simulator.twilio_sim import TwilioSimulator
    settings = _settings(args, demo=True)
    app = None
    if args.local:
        from ivr.web import create_app
        app = create_app(settings)
        transport = WsgiTransport(app)
        base = settings.public_base_url
    else:
        base = (args.url or settings.public_base_url).rstrip("/")
        transport = HttpTransport()
    from ivr.simulator import RecordingServer
    from ivr.simulator.cloud import SimulatedTwilio
    from ivr.simulator.rest_api import FakeTwilioApi
    # Spoken answers ("say 查一查") become recordings the service fetches, as from Twilio's API;
    # the console's REST requests (take this caller, call back) reach this phone's simulator.
    with RecordingServer(settings.twilio_account_sid, settings.twilio_auth_token) as recordings:
        sim = TwilioSimulator(transport, base, settings.twilio_auth_token,
                              account_sid=settings.twilio_account_sid, recording_server=recordings)
        sim.stream_link = _stream_link(args, settings, app, sim)
        api = FakeTwilioApi(settings.twilio_account_sid, settings.twilio_auth_token,
                            port=_loopback_port(settings.twilio_api_base))
        try:
            api.start()
        except OSError as exc:  # another terminal phone has the port: this call is not reachable by REST
            print(f"(the operator console cannot reach this call: {exc})", file=sys.stderr)
            run_terminal_call(sim, args.caller, settings.twilio_number)
            return 0
        with api:
            run_terminal_call(sim, args.caller, settings.twilio_number, cloud=SimulatedTwilio(sim, api))
    return 0


def _stream_link(args: argparse.Namespace, settings: Settings, app, sim):
    """Where the terminal phone's Media Streams go: the service in this process (--local, on
    the simulator's virtual clock) or a running `python -m ivr streams` (--streams, real pace)."""
    from ivr.simulator.stream_link import InProcessStreams, LoopbackStreams
    if app is not None:
        if settings.call_audio != "stream":
            return None
        link = InProcessStreams(app.extensions["hotline"], sim.clock).start()
        atexit.register(link.stop)
        return link
    return LoopbackStreams(args.streams)


def _loopback_port(api_base: str) -> int:
    """The demo's Twilio REST stand-in listens where the demo service sends REST requests."""
    parts = urlsplit(api_base)
    return (parts.port or 0) if parts.hostname in ("127.0.0.1", "localhost") else 0


def cmd_import(args: argparse.Namespace) -> int:
    from ivr.db.schema import make_engine, session_factory, upgrade
    from ivr.importer import import_matters
    from ivr.notify.rules import RulesError, load_rules
    from ivr.privacy import mask_phone
    settings = _settings(args, demo=True)
    try:  # which status changes are recorded to tell people
        rules = load_rules(settings.flows_dir)
    except RulesError as exc:
        print(f"{exc}\nnot imported: fix the notification rules first", file=sys.stderr)
        return 1
    engine = make_engine(settings.database_url)
    upgrade(engine)
    report = import_matters(session_factory(engine), Path(args.file), settings.id_hash_secret,
                            notify_on=rules.notify_on, dry_run=args.dry_run)
    for error in report.errors:
        print(error, file=sys.stderr)
    if args.dry_run:
        for change in report.changed:
            print(f"  {change.case_no}: {change.old_status} → {change.new_status}, tell {mask_phone(change.phone)}")
    print(report.summary())
    if report.interrupted:
        return 1
    return 0 if report.added + report.updated or not report.errors else 1


def cmd_flows(args: argparse.Namespace) -> int:
    from ivr.flow.diagram import mermaid
    from ivr.flow.loader import FlowError, load_flow
    settings = _settings(args, demo=True)
    try:
        flow = load_flow(settings.flows_dir)
    except FlowError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    if args.action == "check":
        from ivr.flow.checker import translation_report
        print(f"ok: {len(flow.steps)} steps in {len(set(flow.step_files.values()))} files, "
              f"{len(flow.prompts['cmn'])} prompts")
        for lang in flow.prompts:
            if lang == "cmn":
                continue
            report = translation_report(flow, lang)
            print(report.summary())
            for prompt_id in report.missing:
                print(f"  no {lang} words yet: {prompt_id}")
    else:
        print(mermaid(flow))
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    from ivr.flow.loader import load_flow
    from ivr.prompts.render import PromptRenderer
    from ivr.prompts.store import PromptStore
    settings = _settings(args, demo=True)
    flow = load_flow(settings.flows_dir)
    if args.action == "missing" and args.text:
        from ivr.flow.checker import translation_report
        report = translation_report(flow, args.language)
        for prompt_id in report.missing:
            print(prompt_id)
        print(report.summary(), file=sys.stderr)
        return 0
    if args.action in ("missing", "import"):
        return _recordings_command(args, settings, flow)
    renderer = PromptRenderer(settings.prompt_cache_dir, voice=settings.tts_voice,
                              rate_wpm=settings.tts_rate_wpm)
    store = PromptStore(renderer, settings.prompt_cache_dir, flow.prompts)
    if store.renderer is None:
        print("no TTS engine available (install espeak-ng); prompts will use <Say>", file=sys.stderr)
        return 1
    texts = store.texts_to_build()
    paths = renderer.render_many(texts, workers=args.workers)
    print(f"{len(paths)} prompts rendered into {settings.prompt_cache_dir}")
    return 0


def _recordings_command(args: argparse.Namespace, settings: Settings, flow) -> int:
    """`missing`: prompts with no recording in use; `import`: files or zips named by prompt id,
    as the prompt studio's bulk import (same checks, same report, same audit log)."""
    from ivr.db.schema import make_engine, session_factory, upgrade
    from ivr.prompts import kit
    from ivr.prompts.recorded import RecordingIndex
    from ivr.prompts.store import PromptStore
    from ivr.runtime import shanghai_now
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    if args.action == "missing":
        recordings = RecordingIndex(settings.prompt_cache_dir, sessions)
        recordings.refresh()
        for prompt_id in PromptStore(None, settings.prompt_cache_dir, flow.prompts, recordings) \
                .missing_recordings(args.language):
            print(prompt_id)
        return 0
    files = []
    for name in args.paths:
        path = Path(name)
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        files += [(str(p.relative_to(path) if path.is_dir() else p.name), p.read_bytes()) for p in found]
    report = kit.bulk_import(sessions, flow, args.language, files, actor=args.by, now=shanghai_now())
    for row in report.rows:
        if row.accepted:
            notes = "; ".join(w["message"] for w in row.warnings)
            print(f"ok       {row.prompt_id}  v{row.version}  {row.seconds:.1f} s  {row.name}" + (f"  ({notes})" if notes else ""))
        else:
            print(f"refused  {row.name}: {row.reason}", file=sys.stderr)
    print(f"{len(report.accepted)} imported, {len(report.refused)} refused", file=sys.stderr)
    return 0 if not report.refused else 1


def cmd_db(args: argparse.Namespace) -> int:
    from ivr.db.schema import make_engine, upgrade
    settings = _settings(args, demo=True)
    upgrade(make_engine(settings.database_url), args.revision)
    print(f"database at revision {args.revision}")
    return 0


def cmd_handoffs(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from ivr.db.models import Handoff
    from ivr.db.schema import make_engine, session_factory, upgrade
    from ivr.privacy import mask_phone
    settings = _settings(args, demo=True)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with session_factory(engine)() as db:
        rows = db.execute(select(Handoff).order_by(Handoff.id.desc()).limit(args.limit)).scalars()
        for row in rows:
            print(json.dumps({"id": row.id, "caller": mask_phone(row.caller), "reason": row.reason,
                              "language": row.language, "verified": row.verified,
                              "created_at": row.created_at.isoformat(), "story": row.story},
                             ensure_ascii=False))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ivr.hearing.models import cli_install
    settings = _settings(args, demo=True)
    return cli_install(settings.models_dir, args.url)


def cmd_grammars(args: argparse.Namespace) -> int:
    """Check the grammar files, then (with a model installed) every phrase against its vocabulary."""
    from ivr.nlu import CONTEXTS, all_phrases, check_grammars
    from ivr.hearing.grammar import check_phrases
    from ivr.hearing.models import find_model
    settings = _settings(args, demo=True)
    problems = list(check_grammars(settings.grammars_dir))
    model = find_model(settings.models_dir, settings.vosk_model)
    if model is None:
        print(f"no recognition model in {settings.models_dir}: checked the grammar files only")
    elif not problems:
        for context in sorted(CONTEXTS):
            problems += [f"{context}: {p}" for p in check_phrases(model, all_phrases(context, settings.grammars_dir))]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: {len(CONTEXTS)} contexts" + (f", every phrase known to {model.name}" if model else ""))
    return 1 if problems else 0


def cmd_operator(args: argparse.Namespace) -> int:
    """Create an operator account from the shell (the first supervisor)."""
    import getpass

    from ivr.console.accounts import AccountError, create_operator
    from ivr.db.schema import make_engine, session_factory, upgrade
    from ivr.runtime import shanghai_now
    settings = _settings(args, demo=True)
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
    engine = make_engine(settings.database_url)
    upgrade(engine)
    try:
        with session_factory(engine)() as db, db.begin():
            create_operator(db, args.username, password, args.role, shanghai_now(), phone=args.phone)
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.role} {args.username} created")
    return 0


def cmd_streams(args: argparse.Namespace) -> int:
    """Serve Twilio Media Streams (CALL_AUDIO=stream) beside `serve`, on the same database."""
    import asyncio

    from ivr.runtime import build_runtime
    from ivr.streams.server import StreamServer
    server = StreamServer(build_runtime(streams_settings(_settings(args)), load_demo=False))  # serve loads demo data

    async def forever() -> None:
        async with await server.serve(args.host, args.port):
            log.info("media streams on ws://%s:%d%s (Twilio connects to %s)", args.host, args.port,
                     "/twilio/stream", server.url)
            await asyncio.Future()
    try:
        asyncio.run(forever())
    except KeyboardInterrupt:
        pass
    return 0


def streams_settings(settings: Settings) -> Settings:
    """The stream process hears live calls in per-call processes; batch workers, each with its
    own copy of the model, serve only webhook recordings: one is enough there (unless set)."""
    if settings.recognition_workers == 0:
        return settings.with_overrides(recognition_workers=1)
    return settings


def cmd_worker(args: argparse.Namespace) -> int:
    """Send what the outbox holds (SMS, callback calls), queue reminders, free forgotten claims,
    call people whose matters changed (ivr.notify)."""
    import time

    from ivr.db.schema import make_engine, session_factory, upgrade
    from ivr.flow.loader import load_flow
    from ivr.runtime import callback_spool
    from ivr.telephony.twilio_control import TwilioControl
    settings = _settings(args)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    if args.timeout:
        settings = settings.with_overrides(twilio_rest_timeout_seconds=args.timeout)
    telephony = TwilioControl.from_settings(settings)
    reminder = load_flow(settings.flows_dir).prompts["cmn"]["sms_callback_reminder"]
    spool = callback_spool(settings)
    from ivr.engine.policy import Policy
    from ivr.notify.rules import load_rules
    from ivr.service_rules import PolicySource
    notify = (load_rules(settings.flows_dir), PolicySource(Policy.from_settings(settings)))
    while True:
        try:
            _worker_pass(sessions, settings, telephony, reminder, spool, notify)
        except Exception as exc:  # noqa: BLE001 - a database outage must not stop the worker
            log.error("worker pass failed (%s); trying again in %.0f s", type(exc).__name__, args.interval)
            if args.once:
                return 1
        if args.once:
            return 0
        time.sleep(args.interval)


def _worker_pass(sessions, settings, telephony, reminder: str, spool, notify) -> None:
    from ivr.console.callbacks import release_stale_claims
    from ivr.console.reminders import queue_reminders
    from ivr.notify.planning import run_pass
    from ivr.outbox.sending import drain
    from ivr.runtime import shanghai_now
    now = shanghai_now()
    started, placed = run_pass(sessions, *notify, settings, now)
    booked = spool.drain(sessions, settings.slot_minutes)
    with sessions() as db, db.begin():
        reminders = queue_reminders(db, now, settings.sms_reminder_minutes, reminder,
                                    settings.callback_from_number)
        released = release_stale_claims(db, now, settings.callback_claim_minutes)
    report = drain(sessions, telephony, settings.twilio_number, now)
    if report.sent or report.retried or report.failed or released or booked or started or placed:
        log.info("outbox: %d sent, %d to retry, %d failed; %d reminders due; %d stale claims released; "
                 "%d spooled callbacks booked; %d notifications started, %d calls placed", report.sent,
                 report.retried, report.failed, reminders, released, booked, started, placed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ivr", description="Voice hotline for older callers")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the webhooks with a production WSGI server")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: in production nginx is in front, "
                            "see deploy/nginx/hotline.conf)")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--demo", action="store_true",
                       help="local demo: generate an auth token for the terminal phone, load demo data")
    serve.set_defaults(func=cmd_serve)

    call = sub.add_parser("call", help="the terminal phone: place a call and answer with keys")
    call.add_argument("--url", help="base URL of a running service (default: PUBLIC_BASE_URL)")
    call.add_argument("--local", action="store_true", help="run the service in this process instead")
    call.add_argument("--caller", default=DEMO_CALLER, help=f"calling number (default {DEMO_CALLER})")
    call.add_argument("--streams", default="ws://127.0.0.1:5001",
                      help="where Media Streams connect when the service answers with <Connect><Stream> "
                           "(CALL_AUDIO=stream; default: the demo's stream server)")
    call.set_defaults(func=cmd_call)

    imp = sub.add_parser("import", help="load matters from a CSV file")
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true",
                     help="compare with the database and report (and list the status changes to tell) "
                          "without writing anything")
    imp.set_defaults(func=cmd_import)

    flows = sub.add_parser("flows", help="check the flows or print them as a Mermaid diagram")
    flows.add_argument("action", choices=["check", "diagram"])
    flows.set_defaults(func=cmd_flows)

    prompts = sub.add_parser("prompts", help="render prompts ahead, list missing recordings, import recordings")
    prompts.add_argument("action", choices=["build", "missing", "import"])
    prompts.add_argument("paths", nargs="*", help="with 'import': files, folders or zips named <prompt id>.<ext>")
    prompts.add_argument("--by", default="import", help="with 'import': who recorded them (for the audit log)")
    prompts.add_argument("--language", default="wuu")
    prompts.add_argument("--text", action="store_true",
                         help="with 'missing': list prompts with no words in the language (not recordings)")
    prompts.add_argument("--workers", type=int, default=2)
    prompts.set_defaults(func=cmd_prompts)

    db = sub.add_parser("db", help="upgrade the database schema")
    db.add_argument("action", choices=["upgrade"])
    db.add_argument("--revision", default="head")
    db.set_defaults(func=cmd_db)

    from ivr.nlu.cli import add_arguments as add_nlu_arguments
    nlu = sub.add_parser("nlu", help="understand recognised text: prints {intent, score, slots} as JSON")
    add_nlu_arguments(nlu)

    models = sub.add_parser("models", help="install the Chinese speech model (size and SHA-256 checked)")
    models.add_argument("action", choices=["install"])
    models.add_argument("--url", help="a mirror of the official file (still checked)")
    models.set_defaults(func=cmd_models)

    grammars = sub.add_parser("grammars", help="check grammars, and phrases against the model's words")
    grammars.add_argument("action", choices=["check"])
    grammars.set_defaults(func=cmd_grammars)

    operator = sub.add_parser("operator", help="create an operator or supervisor account")
    operator.add_argument("action", choices=["add"])
    operator.add_argument("username")
    operator.add_argument("--role", choices=["operator", "supervisor"], default="operator")
    operator.add_argument("--phone", help="the operator's phone, E.164 (calls are bridged to it)")
    operator.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    operator.set_defaults(func=cmd_operator)

    streams = sub.add_parser("streams", help="serve Twilio Media Streams (CALL_AUDIO=stream), beside serve")
    streams.add_argument("--host", default="127.0.0.1")
    streams.add_argument("--port", type=int, default=5001)
    streams.add_argument("--demo", action="store_true", help="beside `serve --demo` (its token and data)")
    streams.set_defaults(func=cmd_streams)
    worker = sub.add_parser("worker", help="send queued SMS and callback calls through Twilio, with retries")
    worker.add_argument("--once", action="store_true", help="one pass, then exit")
    worker.add_argument("--interval", type=float, default=5.0, help="seconds between passes")
    worker.add_argument("--timeout", type=float, default=None,
                        help="seconds for each Twilio request (default: TWILIO_REST_TIMEOUT_SECONDS)")
    worker.set_defaults(func=cmd_worker)

    handoffs = sub.add_parser("handoffs", help="print the latest handoff records (what operators see)")
    handoffs.add_argument("--limit", type=int, default=10)
    handoffs.set_defaults(func=cmd_handoffs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("WARNING" if args.command in ("call", "flows", "nlu", "grammars") else "INFO")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
