"""`python -m ivr serve` plus one route that says who the app thinks the client is.

Usage: python tests/probe_serve.py PORT. The same app (create_app, so PROXY_HOPS applies), the
same gunicorn options and runner (ivr.serve.run_gunicorn) as production, on 127.0.0.1; the
extra GET /_probe/client answers request.remote_addr, scheme and host, which no production
route shows but the console's per-address log-in throttle relies on.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import jsonify, request  # noqa: E402

from ivr.config import load_settings  # noqa: E402
from ivr.privacy import configure_logging  # noqa: E402
from ivr.serve import run_gunicorn  # noqa: E402
from ivr.web import create_app  # noqa: E402


def main(port: int) -> None:
    settings = load_settings()
    configure_logging(settings.log_level)
    app = create_app(settings)
    app.add_url_rule("/_probe/client", "probe_client", lambda: jsonify(
        remote_addr=request.remote_addr, scheme=request.scheme, host=request.host))
    run_gunicorn(app, "127.0.0.1", port, 2)


if __name__ == "__main__":
    main(int(sys.argv[1]))
