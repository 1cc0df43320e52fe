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
        # Its own process group: stop() can then reach workers the master leaves behind.
        self.process = subprocess.Popen([sys.executable, *self.args], cwd=ROOT, env={**os.environ, **self.env},
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
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
        """gunicorn's quick shutdown (SIGQUIT); whatever of the group is left after 10 s is killed."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # a worker stuck in its exit, or the master
        except ProcessLookupError:
            pass
        self.process.wait(5)

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self.log.close()
