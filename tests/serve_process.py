"""The production server as a child process: started, waited for (GET /healthz), stopped."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


class ServeProcess:
    """`args` after the Python interpreter, e.g. ["-m", "ivr", "serve", "--port", "5000"]."""

    def __init__(self, args: list[str], port: int, env: dict[str, str]) -> None:
        self.args, self.port, self.env = args, port, env
        self.log = tempfile.TemporaryFile()
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "ServeProcess":
        self.process = subprocess.Popen([sys.executable, *self.args], cwd=ROOT, env={**os.environ, **self.env},
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = self.output()
                self.stop()
                raise RuntimeError(f"server did not become healthy:\n{output}")
            time.sleep(0.1)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self) -> None:
        """gunicorn's quick shutdown (SIGQUIT): nothing here waits for a graceful one."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self.log.close()
