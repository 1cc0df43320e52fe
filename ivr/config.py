"""Settings read from the environment, with embedded defaults for a one-machine demo.

Every setting is documented in docs/settings.md; keep the two in step.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHANGHAI = ZoneInfo("Asia/Shanghai")
DEMO_TWILIO_API = "http://127.0.0.1:5010"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if not 0 < value < 15:
        raise ConfigError(f"{name} must be more than 0 and less than Twilio's 15 s, got {raw!r}")
    return value


def _positive(env: dict[str, str], name: str, default: int) -> int:
    """For limits where 0 would switch a protection off."""
    value = _int(env, name, default)
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def _count(env: dict[str, str], name: str, default: int) -> int:
    """A whole number of things (0 allowed): a negative one is a typo, not a wish."""
    value = _int(env, name, default)
    if value < 0:
        raise ConfigError(f"{name} must be 0 or more, got {value}")
    return value


def _choice(env: dict[str, str], name: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name) or allowed[0]
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _endpointing(env: dict[str, str]) -> dict[str, int]:
    """End-of-speech settings for live calls; checked here so a typo fails at start-up."""
    short = _positive(env, "ENDPOINT_SHORT_SILENCE_MS", 300)
    long = _positive(env, "ENDPOINT_LONG_SILENCE_MS", 750)
    if long < short:
        raise ConfigError(f"ENDPOINT_LONG_SILENCE_MS ({long}) must not be less than "
                          f"ENDPOINT_SHORT_SILENCE_MS ({short})")
    start = _int(env, "SPEECH_START_MS", 200)
    if start < 20:
        raise ConfigError(f"SPEECH_START_MS must be at least one 20 ms frame, got {start}")
    mode = _int(env, "VAD_MODE", 2)
    if not 0 <= mode <= 3:
        raise ConfigError(f"VAD_MODE must be 0, 1, 2 or 3, got {mode}")
    return {"endpoint_short_silence_ms": short, "endpoint_long_silence_ms": long,
            "speech_start_ms": start, "vad_mode": mode}


@dataclass(frozen=True)
class Settings:
    database_url: str
    var_dir: Path
    flows_dir: Path
    prompt_cache_dir: Path
    public_base_url: str
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_number: str
    callback_from_number: str
    demo: bool = False
    tts_voice: str = "cmn"
    tts_rate_wpm: int = 160  # ≈ 2.9 spoken characters per second, pauses included (docs/benchmarks.md)
    service_hours: str = "09:00-12:00,13:30-17:00"
    operator_hours: str = "09:00-12:00,13:00-17:00"
    calendar_file: Path | None = None
    slot_minutes: int = 60
    slot_capacity: int = 4
    slot_lead_minutes: int = 30
    slot_offer_count: int = 3
    queue_name: str = "operators"
    queue_max_wait_seconds: int = 300
    queue_announce_seconds: int = 30
    senior_age: int = 65
    id_checks_per_call: int = 3
    id_checks_per_day: int = 5
    first_timeout_seconds: int = 8
    later_timeout_seconds: int = 10
    id_hash_secret: str = field(default="", repr=False)
    speech: str = "auto"  # auto | off | vosk | transcript
    models_dir: Path = PROJECT_ROOT / "models"
    vosk_model: str = "vosk-model-small-cn-0.22"
    grammars_dir: Path = PROJECT_ROOT / "grammars"
    recognition_workers: int = 0  # 0: one per core
    record_silence_seconds: int = 3
    record_max_seconds: int = 10
    recording_deadline_seconds: float = 6.0
    recognition_timeout_seconds: float = 4.0
    # Live calls (Media Streams): end of speech, see ivr/hearing/endpointer.py and docs/speech.md
    endpoint_short_silence_ms: int = 300
    endpoint_long_silence_ms: int = 750
    speech_start_ms: int = 200
    vad_mode: int = 2
    max_live_calls: int = 0  # 0: 5 per core (docs/benchmarks.md, live calls on the pool)
    recording_hosts: tuple[str, ...] = ("api.twilio.com",)
    demo_csv: Path | None = None
    log_level: str = "INFO"
    console_secret_key: str = field(default="", repr=False)
    console_session_minutes: int = 30  # idle minutes before an operator must log in again
    console_login_free_tries: int = 3  # failed log-ins per name or address before back-off
    console_login_account_max_wait_seconds: int = 30
    console_login_source_max_wait_seconds: int = 600
    twilio_api_base: str = ""  # empty: Twilio itself; tests and the demo point it at a loopback fake
    twilio_rest_timeout_seconds: float = 5.0
    callback_mode: str = "operator_first"  # operator_first | caller_first
    callback_max_attempts: int = 3
    callback_retry_minutes: int = 30
    callback_claim_minutes: int = 20  # an unfinished claim is released after this long
    callback_ring_seconds: int = 25
    sms_reminder_minutes: int = 0  # 0: no reminder before a callback slot
    webhook_budget_seconds: float = 8.0  # a webhook answers within this, whatever fails
    db_wait_seconds: float = 3.0  # the longest a turn waits for a locked or slow database
    call_audio: str = "webhook"  # webhook | stream (Media Streams, served by `python -m ivr streams`)
    proxy_hops: int = 0  # reverse proxies in front whose X-Forwarded-* headers are believed

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]


def _secret_file(var_dir: Path, name: str) -> str:
    """A random secret kept under var/ (git-ignored) so restarts keep verifying old hashes."""
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def load_settings(env: dict[str, str] | None = None, *, demo: bool = False) -> Settings:
    """Build settings from the environment.

    Outside demo mode the Twilio auth token is required, because without it nobody can tell
    Twilio's requests from forged ones.  Demo mode generates a token for the terminal phone.
    """
    env = dict(os.environ if env is None else env)
    var_dir = Path(env.get("HOTLINE_VAR_DIR") or PROJECT_ROOT / "var").resolve()
    flows_dir = Path(env.get("FLOWS_DIR") or PROJECT_ROOT / "flows").resolve()
    token = env.get("TWILIO_AUTH_TOKEN", "")
    if not token:
        if not demo:
            raise ConfigError(
                "TWILIO_AUTH_TOKEN is not set: refusing to start without a way to check Twilio's "
                "signatures (use `python -m ivr serve --demo` for a local demo)")
        token = _secret_file(var_dir, "demo_auth_token")
    number = env.get("TWILIO_NUMBER", "+862160000000")
    calendar = env.get("CALENDAR_FILE")
    demo_csv = env.get("DEMO_CSV")
    return Settings(
        database_url=env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'hotline.sqlite'}",
        var_dir=var_dir,
        flows_dir=flows_dir,
        prompt_cache_dir=Path(env.get("PROMPT_CACHE_DIR") or var_dir / "prompts").resolve(),
        public_base_url=(env.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or "AC" + "0" * 32,
        twilio_auth_token=token,
        twilio_number=number,
        callback_from_number=env.get("CALLBACK_FROM_NUMBER") or number,
        demo=demo,
        tts_voice=env.get("TTS_VOICE", "cmn"),
        tts_rate_wpm=_int(env, "TTS_RATE_WPM", 160),
        service_hours=env.get("SERVICE_HOURS", "09:00-12:00,13:30-17:00"),
        operator_hours=env.get("OPERATOR_HOURS", "09:00-12:00,13:00-17:00"),
        calendar_file=Path(calendar) if calendar else flows_dir / "calendar.yaml",
        slot_minutes=_int(env, "SLOT_MINUTES", 60),
        slot_capacity=_int(env, "SLOT_CAPACITY", 4),
        slot_lead_minutes=_int(env, "SLOT_LEAD_MINUTES", 30),
        slot_offer_count=_int(env, "SLOT_OFFER_COUNT", 3),
        queue_name=env.get("QUEUE_NAME", "operators"),
        queue_max_wait_seconds=_int(env, "QUEUE_MAX_WAIT_SECONDS", 300),
        queue_announce_seconds=_int(env, "QUEUE_ANNOUNCE_SECONDS", 30),
        senior_age=_int(env, "SENIOR_AGE", 65),
        id_checks_per_call=_int(env, "ID_CHECKS_PER_CALL", 3),
        id_checks_per_day=_int(env, "ID_CHECKS_PER_DAY", 5),
        first_timeout_seconds=_int(env, "FIRST_TIMEOUT_SECONDS", 8),
        later_timeout_seconds=_int(env, "LATER_TIMEOUT_SECONDS", 10),
        id_hash_secret=env.get("ID_HASH_SECRET") or _secret_file(var_dir, "id_hash_secret"),
        speech=env.get("SPEECH", "auto"),
        models_dir=Path(env.get("MODELS_DIR") or PROJECT_ROOT / "models").resolve(),
        vosk_model=env.get("VOSK_MODEL", "vosk-model-small-cn-0.22"),
        grammars_dir=Path(env.get("GRAMMARS_DIR") or PROJECT_ROOT / "grammars").resolve(),
        recognition_workers=_int(env, "RECOGNITION_WORKERS", 0),
        record_silence_seconds=_int(env, "RECORD_SILENCE_SECONDS", 3),
        record_max_seconds=_int(env, "RECORD_MAX_SECONDS", 10),
        recording_deadline_seconds=float(env.get("RECORDING_DEADLINE_SECONDS") or 6.0),
        recognition_timeout_seconds=float(env.get("RECOGNITION_TIMEOUT_SECONDS") or 4.0),
        **_endpointing(env),
        max_live_calls=_count(env, "MAX_LIVE_CALLS", 0),
        # The demo's terminal phone serves recordings from this machine.
        recording_hosts=tuple(h.strip() for h in (env.get("RECORDING_HOSTS") or (
            "api.twilio.com,127.0.0.1" if demo else "api.twilio.com")).split(",") if h.strip()),
        demo_csv=Path(demo_csv) if demo_csv else PROJECT_ROOT / "flows" / "demo_matters.csv",
        log_level=env.get("LOG_LEVEL", "INFO"),
        console_secret_key=env.get("CONSOLE_SECRET_KEY") or _secret_file(var_dir, "console_secret"),
        console_session_minutes=_int(env, "CONSOLE_SESSION_MINUTES", 30),
        console_login_free_tries=_positive(env, "CONSOLE_LOGIN_FREE_TRIES", 3),
        console_login_account_max_wait_seconds=_positive(env, "CONSOLE_LOGIN_ACCOUNT_MAX_WAIT_SECONDS", 30),
        console_login_source_max_wait_seconds=_positive(env, "CONSOLE_LOGIN_SOURCE_MAX_WAIT_SECONDS", 600),
        # The demo's terminal phone serves a stand-in for Twilio's REST API on this port.
        twilio_api_base=(env.get("TWILIO_API_BASE") or (DEMO_TWILIO_API if demo else "")).rstrip("/"),
        twilio_rest_timeout_seconds=float(env.get("TWILIO_REST_TIMEOUT_SECONDS") or 5.0),
        callback_mode=_choice(env, "CALLBACK_MODE", ("operator_first", "caller_first")),
        callback_max_attempts=_int(env, "CALLBACK_MAX_ATTEMPTS", 3),
        callback_retry_minutes=_int(env, "CALLBACK_RETRY_MINUTES", 30),
        callback_claim_minutes=_int(env, "CALLBACK_CLAIM_MINUTES", 20),
        callback_ring_seconds=_int(env, "CALLBACK_RING_SECONDS", 25),
        sms_reminder_minutes=_int(env, "SMS_REMINDER_MINUTES", 0),
        webhook_budget_seconds=_seconds(env, "WEBHOOK_BUDGET_SECONDS", 8.0),
        db_wait_seconds=_seconds(env, "DB_WAIT_SECONDS", 3.0),
        proxy_hops=_count(env, "PROXY_HOPS", 0),
        call_audio=_choice(env, "CALL_AUDIO", ("webhook", "stream")),
    )
