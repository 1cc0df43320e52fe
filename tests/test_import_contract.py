"""The layers stay apart: the dialog engine and its helpers run without a web framework, Twilio
or a database, the database layer never reaches Twilio's REST client, and the console and the
outbox reach the telephony through the control port only.

Checked over the whole import closure (imports inside functions too), so a layer cannot reach
a forbidden library through another of the project's modules.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from import_closure import forbidden_in, import_closure

ROOT = Path(__file__).resolve().parent.parent

# The engine and what it is built from: testable and reusable without the telephony side.
# ivr.media runs a live call's audio for any transport (Media Streams, SIP), and ivr.hearing
# recognises it: both are engine-side.
ENGINE_PACKAGES = ("ivr.engine", "ivr.flow", "ivr.nlu", "ivr.scheduling", "ivr.media", "ivr.hearing")
NOT_IN_THE_ENGINE = ("flask", "flask_login", "flask_wtf", "werkzeug", "wtforms", "twilio", "sqlalchemy",
                     "alembic", "psycopg", "websockets", "ivr.telephony", "ivr.db", "ivr.web", "ivr.console")
# Writing an outbox row belongs in the booking's transaction; sending it is the worker's job.
NOT_IN_THE_DATABASE_LAYER = ("twilio", "ivr.telephony", "ivr.outbox.sending", "requests")
# Taking a caller, calling back and sending an SMS go through ivr.telephony.control, so another
# telephony can stand behind it; only the composition roots (ivr.web, ivr.cli) pick Twilio's.
CONTROL_PORT_USERS = ("ivr.console", "ivr.outbox")
NOT_IN_THE_PORT_USERS = ("twilio", "ivr.telephony.rest_client", "ivr.telephony.twilio_control")


@pytest.mark.parametrize("package", ENGINE_PACKAGES)
def test_engine_packages_import_no_web_twilio_or_database(package: str) -> None:
    reached = forbidden_in(import_closure(ROOT, package), NOT_IN_THE_ENGINE)
    assert not reached, "\n".join(reached)


def test_database_layer_imports_no_twilio_client() -> None:
    closure = import_closure(ROOT, "ivr.db")
    assert "sqlalchemy" in closure  # the walk did reach the layer's own imports
    reached = forbidden_in(closure, NOT_IN_THE_DATABASE_LAYER)
    assert not reached, "\n".join(reached)


# The call service runs the engine for any transport: webhooks now, a media stream or SIP next.
NOT_IN_THE_CALL_SERVICE = ("flask", "werkzeug", "twilio", "websockets", "ivr.telephony", "ivr.web", "ivr.console")


def test_the_call_service_knows_no_transport() -> None:
    closure = import_closure(ROOT, "ivr.calls")
    assert "ivr.engine.interpreter" in closure
    reached = forbidden_in(closure, NOT_IN_THE_CALL_SERVICE)
    assert not reached, "\n".join(reached)


@pytest.mark.parametrize("package", CONTROL_PORT_USERS)
def test_console_and_outbox_reach_the_telephony_through_the_port_only(package: str) -> None:
    closure = import_closure(ROOT, package)
    assert "ivr.telephony.control" in closure  # the walk did reach the port
    reached = forbidden_in(closure, NOT_IN_THE_PORT_USERS)
    assert not reached, "\n".join(reached)


def test_the_walk_follows_imports_through_other_modules(tmp_path: Path) -> None:
    """A forbidden library two modules away, imported relatively and lazily, is still found."""
    write = lambda rel, text: (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True) or \
        (tmp_path / rel).write_text(text, encoding="utf-8")  # noqa: E731
    write("app/__init__.py", "")
    write("app/core/__init__.py", "")
    write("app/core/rules.py", "from typing import TYPE_CHECKING\nfrom . import helper\n"
                               "if TYPE_CHECKING:\n    import flask\n")
    write("app/core/helper.py", "def later():\n    from ..sender import send\n")
    write("app/sender.py", "from twilio.rest import Client\n")
    chains = forbidden_in(import_closure(tmp_path, "app.core"), ("twilio", "flask"))
    assert "app.core.helper → app.sender → twilio" in chains
    assert not any(chain.endswith("flask") for chain in chains)  # never runs
