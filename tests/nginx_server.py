"""A throwaway nginx running the shipped deploy/nginx/hotline.conf, for the tests and bench/.

Its own prefix in a temp folder (top-level config, pid, error log, temp and cache paths), a free
loopback port, and the shipped site file with only its listen address, upstream port and cache
path changed: what is tested is what deployers install.
"""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx" / "hotline.conf"
MAIN_CONF = """\
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 768; }}  # Debian's nginx.conf
http {{
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    include {prefix}/hotline.conf;
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if found is None:
        raise RuntimeError("nginx not found (apt-get install nginx; ./hotline test installs it)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render_site(text: str, port: int, upstream_port: int, cache_dir: Path, stream_port: int = 5001) -> str:
    """The shipped site with loopback addresses and a private cache; each edit must apply once."""
    edits = {"listen 80;": f"listen 127.0.0.1:{port};",
             "server 127.0.0.1:5000;": f"server 127.0.0.1:{upstream_port};",
             "server 127.0.0.1:5001;": f"server 127.0.0.1:{stream_port};",
             "/var/cache/nginx/hotline ": f"{cache_dir} "}
    lines, used = [], dict.fromkeys(edits, 0)
    for line in text.splitlines():
        if not line.lstrip().startswith("#"):
            for old, new in edits.items():
                if old in line:
                    line, used[old] = line.replace(old, new), used[old] + 1
        lines.append(line)
    wrong = [old for old, count in used.items() if count != 1]
    if wrong:
        raise ValueError(f"{SITE} changed shape: expected each of {wrong} once")
    return "\n".join(lines) + "\n"


class NginxServer:
    def __init__(self, upstream_port: int, stream_port: int = 5001) -> None:
        self.upstream_port, self.stream_port = upstream_port, stream_port
        self.port = free_port()
        self.prefix = Path(tempfile.mkdtemp(prefix="hotline-nginx-"))
        self.prefix.chmod(0o755)  # nginx workers run as nobody when started by root
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "NginxServer":
        (self.prefix / "tmp").mkdir()
        (self.prefix / "hotline.conf").write_text(
            render_site(SITE.read_text(), self.port, self.upstream_port, self.prefix / "cache", self.stream_port))
        conf = self.prefix / "nginx.conf"
        conf.write_text(MAIN_CONF.format(prefix=self.prefix))
        self.process = subprocess.Popen([nginx_binary(), "-p", str(self.prefix), "-c", str(conf),
                                         "-g", "daemon off;"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.error_log()
                    self.stop()
                    raise RuntimeError(f"nginx did not start:\n{log}") from None
                time.sleep(0.05)

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown (SIGTERM): open client connections are closed, not waited for."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> "NginxServer":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
