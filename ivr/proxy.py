"""Believe X-Forwarded-* only from the reverse proxies the deployment says are in front.

Behind nginx every request reaches gunicorn from 127.0.0.1; without this the console would see
one client for everybody (a per-address log-in throttle would lock out all operators at once)
and every request would look like plain HTTP. With PROXY_HOPS=n the last n proxies' headers are
trusted, nothing a client wrote before them: nginx appends the real peer to X-Forwarded-For and
overwrites X-Forwarded-Proto/Host, so a client cannot choose its own address.

The Twilio signature does not depend on any of this: it is checked against PUBLIC_BASE_URL (the
URL Twilio signed) plus the path and query as received, which nginx passes on unchanged.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_proxies(app: Flask, hops: int) -> None:
    """Take client address, scheme and host from the last `hops` proxies (0: from the socket)."""
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,  # type: ignore[method-assign]
                                x_port=0, x_prefix=0)
