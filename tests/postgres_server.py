"""A throwaway PostgreSQL server for the tests: its own cluster in a temp folder, a unix socket,
no TCP port, stopped at the end of the test session."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

BIN_CANDIDATES = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _as_postgres(*cmd: str) -> list[str]:
    """The server refuses to run as root; run it as the postgres system user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return list(cmd)


class PostgresServer:
    def __init__(self) -> None:
        if not BIN_CANDIDATES:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.bin = BIN_CANDIDATES[0]
        self.root = Path(tempfile.mkdtemp(prefix="hotline-pg-"))
        os.chmod(self.root, 0o777)
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.port = 5432

    def start(self) -> "PostgresServer":
        subprocess.run(_as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                                    "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"),
                       check=True, capture_output=True)
        options = f"-k {self.socket_dir} -c listen_addresses='' -p {self.port} -c fsync=off"
        subprocess.run(_as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                                    "-l", str(self.root / "log"), "-w", "start"),
                       check=True, capture_output=True)
        return self

    def create_database(self) -> str:
        name = "hotline_" + uuid.uuid4().hex[:10]
        subprocess.run([str(self.bin / "createdb"), "-h", str(self.socket_dir), "-p", str(self.port),
                        "-U", "postgres", name], check=True, capture_output=True)
        return f"postgresql+psycopg://postgres@/{name}?host={self.socket_dir}&port={self.port}"

    def stop(self) -> None:
        subprocess.run(_as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                    "stop"), capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
