"""Model install (against a local HTTP server), discovery and inspection."""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import struct
import threading
import time
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

from ivr.hearing import models
from ivr.hearing.models import (
    ModelError,
    ModelInstallError,
    cli_install,
    find_model,
    install_model,
    is_model_dir,
    model_info,
    model_sample_rate,
    read_vocabulary,
    supports_grammar,
)
from speech_fixtures.helpers import fake_model_zip, write_fake_model

NAME = "vosk-model-test-0.1"


class _Server:
    """http.server on 127.0.0.1 (port 0) with scripted misbehaviour per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                mode, body = routes.get(self.path, ("missing", b""))
                if mode == "missing":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                if mode == "good":
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif mode == "cut":  # announces everything, sends half, drops the connection
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                elif mode == "cut-nolength":  # no Content-Length, connection closed early
                    self.end_headers()
                    self.wfile.write(body[:len(body) // 2])
                    self.close_connection = True
                elif mode == "lying-length":  # Content-Length says less than the real file
                    self.send_header("Content-Length", str(len(body) - 1000))
                    self.end_headers()
                    self.wfile.write(body[:-1000])
                elif mode == "stall":
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:1000])
                    self.wfile.flush()
                    time.sleep(1.5)
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def archive() -> bytes:
    return fake_model_zip(NAME)


@pytest.fixture(scope="module")
def server(archive: bytes) -> Iterator[_Server]:
    srv = _Server()
    corrupt = bytearray(archive)
    corrupt[len(corrupt) // 3] ^= 0xFF
    srv.routes.update({
        f"/{NAME}.zip": ("good", archive),
        "/cut.zip": ("cut", archive),
        "/cut-nolength.zip": ("cut-nolength", archive),
        "/lying.zip": ("lying-length", archive),
        "/corrupt.zip": ("good", bytes(corrupt)),
        "/stall.zip": ("stall", archive),
    })
    yield srv
    srv.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_nothing_left(dest: Path) -> None:
    """No model folder, no partial download, no half-unpacked temp folder."""
    leftovers = sorted(p.name for p in dest.iterdir()) if dest.exists() else []
    assert leftovers == []


def test_install_good_download(server: _Server, archive: bytes, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    seen: list[tuple[int, int]] = []
    path = install_model(server.url(f"/{NAME}.zip"), dest, len(archive), sha(archive),
                         progress=lambda done, total: seen.append((done, total)))
    assert path == dest / NAME
    assert is_model_dir(path)
    assert sorted(p.name for p in dest.iterdir()) == [NAME]  # temp files gone
    assert (path / "README").read_text() == "fake model for tests\n"
    assert seen and seen[-1] == (len(archive), len(archive))
    assert find_model(dest, NAME) == path
    # Second install: already there, no download (the server is not even asked).
    assert install_model("http://127.0.0.1:9/never.zip", dest, len(archive), sha(archive),
                         name=NAME) == path


@pytest.mark.parametrize("route, message", [
    ("/cut.zip", "truncated|cut short"),
    ("/cut-nolength.zip", "truncated"),
    ("/lying.zip", "server announces"),
    ("/corrupt.zip", "checksum mismatch"),
    ("/missing.zip", "404"),
])
def test_install_refuses_bad_downloads(server: _Server, archive: bytes, tmp_path: Path,
                                       route: str, message: str) -> None:
    dest = tmp_path / "models"
    with pytest.raises(ModelInstallError, match=message):
        install_model(server.url(route), dest, len(archive), sha(archive), name=NAME)
    assert_nothing_left(dest)


def test_install_refuses_wrong_expected_checksum(server: _Server, archive: bytes,
                                                 tmp_path: Path) -> None:
    dest = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="checksum mismatch"):
        install_model(server.url(f"/{NAME}.zip"), dest, len(archive), "0" * 64)
    assert_nothing_left(dest)


def test_install_times_out_on_a_stalled_server(server: _Server, archive: bytes,
                                               tmp_path: Path) -> None:
    dest = tmp_path / "models"
    t0 = time.monotonic()
    with pytest.raises(ModelInstallError, match="timed out|download failed"):
        install_model(server.url("/stall.zip"), dest, len(archive), sha(archive), timeout=0.3,
                      name=NAME)
    assert time.monotonic() - t0 < 1.4
    assert_nothing_left(dest)


def _zip(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


MODEL_FILES = {f"{NAME}/am/final.mdl": b"x", f"{NAME}/conf/mfcc.conf": b"",
               f"{NAME}/graph/HCLr.fst": b"x", f"{NAME}/graph/Gr.fst": b"x"}


@pytest.mark.parametrize("label, data, message", [
    ("traversal", _zip({**MODEL_FILES, f"{NAME}/../../evil.txt": b"owned"}), "unsafe path"),
    ("absolute", _zip({**MODEL_FILES, "/tmp/evil.txt": b"owned"}), "unsafe path"),
    ("symlink", _zip(MODEL_FILES, symlink=f"{NAME}/graph/words.txt"), "not a plain file"),
    ("not-a-model", _zip({"readme.txt": b"hello"}), "does not contain a Vosk model"),
    ("not-a-zip", b"PK\x03\x04 this is not really a zip file" * 10, "not a valid zip"),
])
def test_install_refuses_unsafe_or_wrong_archives(server: _Server, tmp_path: Path, label: str,
                                                  data: bytes, message: str) -> None:
    server.routes[f"/{label}.zip"] = ("good", data)
    dest = tmp_path / "models"
    with pytest.raises(ModelInstallError, match=message):
        install_model(server.url(f"/{label}.zip"), dest, len(data), sha(data), name=NAME)
    assert_nothing_left(dest)
    assert not (tmp_path / "evil.txt").exists()


def test_install_refuses_a_zip_bomb(server: _Server, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in MODEL_FILES.items():
            zf.writestr(name, data)
        zf.writestr(f"{NAME}/am/padding", b"\0" * 30_000_000)  # compresses ~1000:1
    data = buf.getvalue()
    server.routes["/bomb.zip"] = ("good", data)
    dest = tmp_path / "models"
    with pytest.raises(ModelInstallError, match="zip bomb"):
        install_model(server.url("/bomb.zip"), dest, len(data), sha(data), name=NAME)
    assert_nothing_left(dest)


def test_install_refuses_unsafe_names_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(ModelInstallError, match="safe model folder name"):
        install_model("http://127.0.0.1:9/..%2F..", tmp_path, 10, "0" * 64)
    with pytest.raises(ModelInstallError, match="64 hex"):
        install_model("http://127.0.0.1:9/m.zip", tmp_path, 10, "abc")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "junk").write_text("x")
    with pytest.raises(ModelInstallError, match="not a model folder"):
        install_model("http://127.0.0.1:9/m.zip", tmp_path, 10, "0" * 64)


def test_cli_install(server: _Server, archive: bytes, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The CLI installs the official model; point it at a local "mirror" of a fake one.
    monkeypatch.setattr(models, "CN_MODEL_NAME", NAME)
    monkeypatch.setattr(models, "CN_MODEL_SIZE", len(archive))
    monkeypatch.setattr(models, "CN_MODEL_SHA256", sha(archive))
    dest = tmp_path / "models"
    out = io.StringIO()
    assert cli_install(dest, server.url(f"/{NAME}.zip"), out=out) == 0
    text = out.getvalue()
    assert "100%" in text and f"ok: installed {NAME}" in text and "16000 Hz" in text
    assert is_model_dir(dest / NAME)
    out = io.StringIO()
    assert cli_install(dest, server.url("/never-asked.zip"), out=out) == 0
    assert "already installed" in out.getvalue()

    other = tmp_path / "other"
    out = io.StringIO()
    assert cli_install(other, server.url("/corrupt.zip"), out=out) == 1
    assert "checksum mismatch" in out.getvalue() and "nothing was installed" in out.getvalue()
    assert_nothing_left(other)


def test_official_model_constants() -> None:
    assert models.CN_MODEL_URL == "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip"
    assert models.CN_MODEL_NAME == "vosk-model-small-cn-0.22"
    assert models.CN_MODEL_SIZE == 43_898_754
    assert models.CN_MODEL_SHA256 == (
        "3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba")


# --------------------------------------------------------------------------
# Finding and inspecting model folders
# --------------------------------------------------------------------------

def test_find_model(tmp_path: Path) -> None:
    assert find_model(tmp_path / "absent") is None
    assert find_model(tmp_path) is None
    (tmp_path / ".vosk-model-x.abc.unpack").mkdir()  # an unfinished install is ignored
    write_fake_model(tmp_path / ".vosk-model-x.abc.unpack" / "m")
    write_fake_model(tmp_path / ".hidden")
    assert find_model(tmp_path) is None
    b = write_fake_model(tmp_path / "b-model")
    write_fake_model(tmp_path / "c-model")
    assert find_model(tmp_path) == b
    cn = write_fake_model(tmp_path / models.CN_MODEL_NAME)
    assert find_model(tmp_path) == cn  # the official model wins
    assert find_model(tmp_path, "c-model") == tmp_path / "c-model"
    assert find_model(tmp_path, "nope") is None
    assert find_model(cn) == cn  # a model folder itself


def test_model_info_reads_the_features_config(tmp_path: Path) -> None:
    default = model_info(write_fake_model(tmp_path / "a"))
    assert (default.sample_rate, default.allow_upsample, default.supports_grammar) == (
        16000, False, True)
    eight = model_info(write_fake_model(tmp_path / "b", sample_rate=8000, upsample=True))
    assert (eight.sample_rate, eight.allow_upsample) == (8000, True)
    assert eight.accepts_rate(8000) and eight.accepts_rate(4000) and eight.accepts_rate(16000)
    assert not default.accepts_rate(8000)  # 8 kHz into this model would abort Vosk
    static = write_fake_model(tmp_path / "c", lookahead=False)
    assert is_model_dir(static) and not supports_grammar(static)
    assert model_sample_rate(tmp_path / "missing") == 16000
    with pytest.raises(ModelError, match="not a Vosk model"):
        model_info(tmp_path / "missing")
    # A model with both graphs: Vosk loads HCLG.fst and ignores grammars.
    both = write_fake_model(tmp_path / "d")
    (both / "graph" / "HCLG.fst").write_bytes(b"x")
    assert not supports_grammar(both)


def _fst_with_symbols(words: list[str]) -> bytes:
    """A minimal OpenFst header carrying input and output symbol tables."""
    def s(b: bytes) -> bytes:
        return struct.pack("<i", len(b)) + b

    def table(ws: list[str]) -> bytes:
        out = struct.pack("<i", 2125658996) + s(b"words.txt") + struct.pack("<qq", len(ws), len(ws))
        for i, w in enumerate(ws):
            out += s(w.encode()) + struct.pack("<q", i)
        return out

    head = struct.pack("<i", 2125659606) + s(b"ngram") + s(b"standard")
    head += struct.pack("<ii", 4, 3) + struct.pack("<Qqqq", 0, 0, 1, 0)
    return head + table(["<eps>", "x"]) + table(words) + b"\0" * 64


def test_read_vocabulary(tmp_path: Path) -> None:
    m = write_fake_model(tmp_path / "m")
    assert read_vocabulary(m) is None  # fake Gr.fst, no words.txt
    (m / "graph" / "Gr.fst").write_bytes(_fst_with_symbols(["<eps>", "我", "要", "人工", "[unk]"]))
    assert read_vocabulary(m) == frozenset({"<eps>", "我", "要", "人工", "[unk]"})
    (m / "graph" / "Gr.fst").write_bytes(b"junk")
    (m / "graph" / "words.txt").write_text("<eps> 0\n是 1\n不是 2\n")
    assert read_vocabulary(m) == frozenset({"<eps>", "是", "不是"})


def test_read_vocabulary_of_the_korean_model() -> None:
    from speech_fixtures.helpers import korean_model_dir
    words = read_vocabulary(korean_model_dir())  # Gr.fst symbol table, as Vosk reads it
    assert words is not None and len(words) > 400_000
    assert {"네", "아니요", "상담원", "확인", "<UNK>"} <= words
    assert "[unk]" not in words and "xyz" not in words
    assert os.path.isdir(korean_model_dir() / "graph")
