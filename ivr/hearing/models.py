"""Vosk model folders: install (download + verify + unpack), find, inspect.

Nothing here imports vosk: the web process can find and inspect a model, and
read its vocabulary, without loading the 100-500 MB acoustic model.

A Vosk model folder ("v2" layout, all current models) looks like::

    am/final.mdl              acoustic model
    conf/mfcc.conf            features: --sample-frequency, --allow-upsample ...
    conf/model.conf           decoder beams, endpointing
    graph/HCLG.fst            static graph (big models), or
    graph/HCLr.fst + Gr.fst   lookahead graph: the only kind that honours grammars
    graph/words.txt           optional; else the words are Gr.fst's symbol table
    ivector/...

The old "v1" layout has the same files flat in one folder; both are read.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import shutil
import stat
import struct
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, TextIO

__all__ = [
    "CN_MODEL_NAME",
    "CN_MODEL_URL",
    "CN_MODEL_SIZE",
    "CN_MODEL_SHA256",
    "DEFAULT_SAMPLE_RATE",
    "ModelError",
    "ModelInstallError",
    "ModelInfo",
    "install_model",
    "cli_install",
    "find_model",
    "is_model_dir",
    "model_info",
    "supports_grammar",
    "model_sample_rate",
    "read_vocabulary",
]

# The official Mandarin model (Apache-2.0). alphacephei publishes no checksum;
# size and SHA-256 are those third parties agree on (shared/reference/vosk.md).
CN_MODEL_NAME = "vosk-model-small-cn-0.22"
CN_MODEL_URL = "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip"
CN_MODEL_SIZE = 43_898_754
CN_MODEL_SHA256 = "3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba"

DEFAULT_SAMPLE_RATE = 16000  # Kaldi's default --sample-frequency

# Unpacked-size ceiling relative to the archive, against zip bombs. Vosk
# models compress poorly (FSTs and float matrices): small-cn is ~1.6x.
_MAX_EXPANSION = 20
_CHUNK = 1 << 16
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ModelError(Exception):
    """A model folder is missing or unusable."""


class ModelInstallError(ModelError):
    """A model download or unpack was refused; nothing was installed."""


# --------------------------------------------------------------------------
# Inspecting a model folder
# --------------------------------------------------------------------------

def _layout(model_dir: Path) -> dict[str, Path]:
    """Paths of the files Vosk reads, for the v2 (am/ conf/ graph/) or v1 (flat) layout."""
    d = Path(model_dir)
    if (d / "am" / "final.mdl").is_file():
        return {
            "mdl": d / "am" / "final.mdl",
            "mfcc": d / "conf" / "mfcc.conf",
            "hclg": d / "graph" / "HCLG.fst",
            "hclr": d / "graph" / "HCLr.fst",
            "gr": d / "graph" / "Gr.fst",
            "words": d / "graph" / "words.txt",
        }
    return {
        "mdl": d / "final.mdl",
        "mfcc": d / "mfcc.conf",
        "hclg": d / "HCLG.fst",
        "hclr": d / "HCLr.fst",
        "gr": d / "Gr.fst",
        "words": d / "words.txt",
    }


def is_model_dir(path: Path | str) -> bool:
    """True if `path` holds an acoustic model, features config and a decoding graph."""
    p = Path(path)
    if not p.is_dir():
        return False
    lay = _layout(p)
    has_graph = lay["hclg"].is_file() or (lay["hclr"].is_file() and lay["gr"].is_file())
    return lay["mdl"].is_file() and lay["mfcc"].is_file() and has_graph


def supports_grammar(model_dir: Path | str) -> bool:
    """Only lookahead models (HCLr.fst + Gr.fst, no HCLG.fst) honour runtime grammars.

    Vosk loads HCLG.fst in preference when both exist, and then ignores the grammar.
    """
    lay = _layout(Path(model_dir))
    return (not lay["hclg"].is_file()) and lay["hclr"].is_file() and lay["gr"].is_file()


def _read_kaldi_conf(path: Path) -> dict[str, str]:
    """Parse a Kaldi config file: one `--name=value` per line, `#` comments."""
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line.startswith("--"):
            continue
        name, _, value = line[2:].partition("=")
        out[name.strip().replace("_", "-")] = value.strip() if _ else "true"
    return out


def _conf_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes")


def model_sample_rate(model_dir: Path | str) -> int:
    """The rate the model was trained at (`--sample-frequency`, Kaldi default 16000)."""
    conf = _read_kaldi_conf(_layout(Path(model_dir))["mfcc"])
    try:
        return int(float(conf.get("sample-frequency", DEFAULT_SAMPLE_RATE)))
    except ValueError:
        return DEFAULT_SAMPLE_RATE


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    name: str
    sample_rate: int  # what the model was trained at
    allow_upsample: bool  # may lower-rate audio be fed directly (Kaldi resamples)?
    allow_downsample: bool  # always True in Vosk (it forces it on)
    supports_grammar: bool  # lookahead graph: runtime grammars work
    words_txt: bool  # graph/words.txt present (else words come from Gr.fst / HCLG.fst)

    def accepts_rate(self, rate: int) -> bool:
        """Can audio at `rate` be given to KaldiRecognizer as is?

        Feeding a lower rate to a model without --allow-upsample makes Kaldi throw
        inside the C API, which aborts the process.
        """
        if rate == self.sample_rate:
            return True
        return self.allow_downsample if rate > self.sample_rate else self.allow_upsample


def model_info(model_dir: Path | str) -> ModelInfo:
    """Describe a model folder (raises ModelError if it is not one)."""
    p = Path(model_dir).resolve()
    if not is_model_dir(p):
        raise ModelError(f"{p}: not a Vosk model folder (needs am/final.mdl, conf/mfcc.conf "
                         "and graph/HCLG.fst or graph/HCLr.fst + graph/Gr.fst)")
    lay = _layout(p)
    conf = _read_kaldi_conf(lay["mfcc"])
    return ModelInfo(
        path=p,
        name=p.name,
        sample_rate=model_sample_rate(p),
        allow_upsample=_conf_bool(conf.get("allow-upsample"), False),
        allow_downsample=True,  # vosk's Model::ReadDataFiles sets it unconditionally
        supports_grammar=supports_grammar(p),
        words_txt=lay["words"].is_file(),
    )


def find_model(models_dir: Path | str, name: str | None = None) -> Path | None:
    """Locate an installed model under `models_dir`.

    `name` (default: the official Chinese model) is preferred; otherwise the first
    model folder in name order. `models_dir` may itself be a model folder.
    Unfinished installs (dot-prefixed temp folders) are never returned.
    """
    base = Path(models_dir)
    if not base.is_dir():
        return None
    if is_model_dir(base):
        return base
    wanted = base / (name or CN_MODEL_NAME)
    if is_model_dir(wanted):
        return wanted
    if name is not None:
        return None
    for child in sorted(base.iterdir()):
        if not child.name.startswith(".") and is_model_dir(child):
            return child
    return None


# --------------------------------------------------------------------------
# Vocabulary (without loading the model)
# --------------------------------------------------------------------------

_FST_MAGIC = 2125659606
_SYMTAB_MAGIC = 2125658996
_FST_HAS_ISYMBOLS = 1
_FST_HAS_OSYMBOLS = 2


def _read_exact(f: io.BufferedReader, n: int) -> bytes:
    b = f.read(n)
    if len(b) != n:
        raise ValueError("truncated file")
    return b


def _read_fst_string(f: io.BufferedReader) -> bytes:
    (n,) = struct.unpack("<i", _read_exact(f, 4))
    if not 0 <= n <= 1 << 20:
        raise ValueError(f"bad string length {n}")
    return _read_exact(f, n)


def _read_symbol_table(f: io.BufferedReader, keep: bool) -> list[str] | None:
    (magic,) = struct.unpack("<i", _read_exact(f, 4))
    if magic != _SYMTAB_MAGIC:
        raise ValueError("not an OpenFst symbol table")
    _read_fst_string(f)  # table name
    _available_key, size = struct.unpack("<qq", _read_exact(f, 16))
    if not 0 <= size <= 50_000_000:
        raise ValueError(f"bad symbol table size {size}")
    words: list[str] | None = [] if keep else None
    unpack_len = struct.Struct("<i").unpack
    for _ in range(size):
        (n,) = unpack_len(_read_exact(f, 4))
        sym = _read_exact(f, n + 8)[:n]  # symbol, then its int64 key
        if words is not None:
            words.append(sym.decode("utf-8", errors="replace"))
    return words


def _fst_output_symbols(path: Path) -> list[str] | None:
    """The output symbol table stored in an OpenFst binary file's header, if any."""
    with open(path, "rb") as raw, io.BufferedReader(raw, 1 << 20) as f:
        (magic,) = struct.unpack("<i", _read_exact(f, 4))
        if magic != _FST_MAGIC:
            raise ValueError(f"{path}: not an OpenFst file")
        _read_fst_string(f)  # fst type (vector, const, ngram, olabel_lookahead, ...)
        _read_fst_string(f)  # arc type
        _version, flags = struct.unpack("<ii", _read_exact(f, 8))
        _read_exact(f, 32)  # properties, start, numstates, numarcs
        if flags & _FST_HAS_ISYMBOLS:
            _read_symbol_table(f, keep=False)
        if flags & _FST_HAS_OSYMBOLS:
            return _read_symbol_table(f, keep=True)
    return None


def read_vocabulary(model_dir: Path | str) -> frozenset[str] | None:
    """The model's word list, read the way Vosk does, without loading the model.

    Vosk takes the words from HCLG.fst's output symbols, else Gr.fst's, else
    graph/words.txt. Small lookahead models (small-cn-0.22, the Korean test
    model) ship no words.txt: the list lives in Gr.fst's header (reading 500k
    words takes ~1 s). Returns None if no list can be read; then ask a loaded
    model (`vosk_model_find_word`).
    """
    lay = _layout(Path(model_dir))
    for key in ("hclg", "gr"):
        if lay[key].is_file():
            try:
                words = _fst_output_symbols(lay[key])
            except (OSError, ValueError, struct.error):
                words = None
            if words:
                return frozenset(words)
    if lay["words"].is_file():
        words = []
        with open(lay["words"], encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if parts:
                    words.append(parts[0])
        return frozenset(words)
    return None


# --------------------------------------------------------------------------
# Installing
# --------------------------------------------------------------------------

def _model_name_from_url(url: str) -> str:
    base = PurePosixPath(urllib.parse.urlsplit(url).path).name
    name = base[:-4] if base.lower().endswith(".zip") else base
    if not _SAFE_NAME.match(name) or name in (".", ".."):
        raise ModelInstallError(f"cannot derive a safe model folder name from {url!r}")
    return name


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _download(url: str, dest: Path, expected_size: int, expected_sha256: str, timeout: float,
              progress: Callable[[int, int], None] | None) -> None:
    """Stream `url` into the file `dest`, verifying size and SHA-256."""
    digest = hashlib.sha256()
    received = 0
    req = urllib.request.Request(url, headers={"User-Agent": "ivr-model-installer/1"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(dest, "wb") as out:
            length = resp.headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) != expected_size:
                raise ModelInstallError(
                    f"server announces {int(length):,} bytes, expected {expected_size:,}: "
                    "not the expected file")
            while True:
                try:
                    chunk = resp.read(_CHUNK)
                except http.client.IncompleteRead as exc:  # Content-Length not reached
                    raise ModelInstallError(
                        f"download cut short after {received + len(exc.partial):,} of "
                        f"{expected_size:,} bytes") from None
                if not chunk:
                    break
                received += len(chunk)
                if received > expected_size:
                    raise ModelInstallError(
                        f"download is larger than the expected {expected_size:,} bytes")
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(received, expected_size)
            out.flush()
            os.fsync(out.fileno())
    except ModelInstallError:
        raise
    except urllib.error.HTTPError as exc:
        raise ModelInstallError(f"download refused: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelInstallError(f"download failed after {received:,} bytes: {reason}") from exc
    if received != expected_size:
        raise ModelInstallError(
            f"download truncated: got {received:,} of {expected_size:,} bytes")
    got = digest.hexdigest()
    if got != expected_sha256.lower():
        raise ModelInstallError(
            f"checksum mismatch: SHA-256 {got}, expected {expected_sha256.lower()} "
            "(corrupt or tampered download)")


def _safe_members(zf: zipfile.ZipFile, limit: int) -> list[zipfile.ZipInfo]:
    """Reject absolute paths, `..`, drive letters, links and oversize archives."""
    total = 0
    members = zf.infolist()
    if not members:
        raise ModelInstallError("the archive is empty")
    for info in members:
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if (not name or name.startswith(("/", "\\")) or ".." in parts
                or (parts and re.match(r"^[A-Za-z]:", parts[0])) or "\x00" in name):
            raise ModelInstallError(f"unsafe path in archive: {name!r}")
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip records no file type
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise ModelInstallError(f"archive entry is not a plain file or folder: {name!r}")
        total += info.file_size
        if total > limit:
            raise ModelInstallError("the archive unpacks to more than expected (zip bomb?)")
    return members


def _extract(archive: Path, into: Path, limit: int) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in _safe_members(zf, limit):
                rel = PurePosixPath(info.filename.replace("\\", "/"))
                target = into.joinpath(*rel.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                written = 0
                with zf.open(info) as src, open(target, "xb") as dst:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > info.file_size:  # header lied about the size
                            raise ModelInstallError(f"archive entry larger than declared: "
                                                    f"{info.filename!r}")
                        dst.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
        raise ModelInstallError(f"not a valid zip archive: {exc}") from exc
    except FileExistsError as exc:
        raise ModelInstallError(f"duplicate entry in archive: {exc.filename}") from exc


def _model_root(extracted: Path) -> Path:
    """The archive's single top-level folder, or the extraction folder itself."""
    if is_model_dir(extracted):
        return extracted
    children = [c for c in extracted.iterdir() if not c.name.startswith("__MACOSX")]
    if len(children) == 1 and children[0].is_dir() and is_model_dir(children[0]):
        return children[0]
    raise ModelInstallError("the archive does not contain a Vosk model (am/final.mdl, "
                            "conf/mfcc.conf and a decoding graph)")


def install_model(url: str, dest_dir: Path, expected_size: int, expected_sha256: str,
                  timeout: float = 60, *, name: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Download a zipped model, verify it, unpack it as dest_dir/<name>/; return that folder.

    - The archive is streamed to a temp file inside dest_dir and must match
      `expected_size` bytes and `expected_sha256` exactly; otherwise it is
      deleted and ModelInstallError is raised.
    - It is unpacked into a temp folder inside dest_dir (refusing absolute paths,
      `..`, links and zip bombs), checked to be a Vosk model, then renamed into
      place in one step: dest_dir/<name> either is a complete model or absent.
    - An existing dest_dir/<name> model is returned as is (no download).
    - `timeout` bounds the connection and each read (seconds without progress).
    - `name` defaults to the archive's file name without ".zip".
    """
    dest_dir = Path(dest_dir)
    name = name or _model_name_from_url(url)
    if not _SAFE_NAME.match(name):
        raise ModelInstallError(f"unsafe model folder name {name!r}")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", expected_sha256 or ""):
        raise ModelInstallError("expected_sha256 must be 64 hex digits")
    if expected_size <= 0:
        raise ModelInstallError("expected_size must be positive")
    final = dest_dir / name
    if is_model_dir(final):
        return final
    if final.exists():
        raise ModelInstallError(f"{final} exists but is not a model folder; remove it first")
    dest_dir.mkdir(parents=True, exist_ok=True)

    fd, part_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".zip.part")
    os.close(fd)
    part = Path(part_name)
    work: Path | None = None
    try:
        _download(url, part, expected_size, expected_sha256, timeout, progress)
        work = Path(tempfile.mkdtemp(dir=dest_dir, prefix=f".{name}.", suffix=".unpack"))
        _extract(part, work, limit=max(expected_size * _MAX_EXPANSION, 1 << 20))
        root = _model_root(work)
        os.chmod(root, 0o755)  # mkdtemp makes 0700; the service may run as another user
        try:
            os.rename(root, final)  # atomic on one filesystem; fails if final now exists
        except OSError:
            if is_model_dir(final):  # a concurrent install won the race
                return final
            raise
        return final
    except OSError as exc:
        raise ModelInstallError(f"cannot install into {dest_dir}: {exc}") from exc
    finally:
        _unlink_quietly(part)
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def cli_install(models_dir: Path, url: str | None = None, *, out: TextIO | None = None) -> int:
    """`python -m ivr models install`: fetch the official Chinese model into models_dir.

    `url` overrides the download location (a mirror): the file must still be the
    official one, byte for byte (same size and SHA-256). Returns an exit status.
    """
    out = out or sys.stdout
    url = url or CN_MODEL_URL
    models_dir = Path(models_dir)
    existing = models_dir / CN_MODEL_NAME
    if is_model_dir(existing):
        print(f"ok: {CN_MODEL_NAME} is already installed in {existing}", file=out)
        return 0
    print(f"downloading {CN_MODEL_NAME} ({CN_MODEL_SIZE / 1e6:.1f} MB) from {url}", file=out)
    state = {"shown": -1, "t0": time.monotonic()}

    def progress(done: int, total: int) -> None:
        pct = done * 100 // total
        if pct // 10 != state["shown"] // 10 or done == total:
            state["shown"] = pct
            rate = done / max(time.monotonic() - state["t0"], 1e-6) / 1e6
            print(f"  {pct:3d}%  {done / 1e6:6.1f} MB  {rate:5.1f} MB/s", file=out, flush=True)

    try:
        path = install_model(url, models_dir, CN_MODEL_SIZE, CN_MODEL_SHA256,
                             name=CN_MODEL_NAME, progress=progress)
    except ModelInstallError as exc:
        print(f"error: {exc}; nothing was installed", file=out)
        return 1
    info = model_info(path)
    print(f"ok: installed {info.name} in {path} (size and SHA-256 verified; "
          f"{info.sample_rate} Hz, grammars {'supported' if info.supports_grammar else 'NOT supported'})",
          file=out)
    return 0

