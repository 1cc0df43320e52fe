"""WSGI entry point: `gunicorn app:app` (settings from the environment, see docs/settings.md)."""
from ivr.config import load_settings
from ivr.privacy import configure_logging
from ivr.web import create_app

settings = load_settings()
configure_logging(settings.log_level)
app = create_app(settings)
