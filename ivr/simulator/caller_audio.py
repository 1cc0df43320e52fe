"""What a simulated caller sends down the line: speech made by espeak-ng, as 8 kHz μ-law in
20 ms frames (Media Streams' format), without the silence espeak-ng puts around the words."""
from __future__ import annotations

import functools
import io
import shutil
import subprocess
import warnings
import wave

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

FRAME_BYTES = 160
SILENCE = b"\xff" * FRAME_BYTES


@functools.lru_cache(maxsize=256)
def speech_audio(words: str, voice: str = "cmn") -> bytes:
    """`words` spoken by espeak-ng, as 8 kHz μ-law (what a phone line carries)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is needed to speak in a simulated stream (apt-get install espeak-ng)")
    wav = subprocess.run([espeak, "-v", voice, "-s", "160", "--stdout", words], check=True,
                         capture_output=True, timeout=20).stdout
    return _trimmed(mulaw_8k(wav))


def _trimmed(audio: bytes, floor: int = 300) -> bytes:
    """Without the silence espeak-ng puts before and after the words (the caller's speech
    starts and ends with their voice; the silence around it is the call's)."""
    voiced = [i for i in range(0, len(audio), FRAME_BYTES)
              if audioop.rms(audioop.ulaw2lin(audio[i:i + FRAME_BYTES], 2), 2) > floor]
    return audio[voiced[0]:voiced[-1] + FRAME_BYTES] if voiced else audio


def mulaw_8k(wav_bytes: bytes) -> bytes:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        pcm, rate, width, channels = (wav.readframes(wav.getnframes()), wav.getframerate(),
                                      wav.getsampwidth(), wav.getnchannels())
    if channels == 2:
        pcm = audioop.tomono(pcm, width, 0.5, 0.5)
    if width != 2:
        pcm = audioop.lin2lin(pcm, width, 2)
    if rate != 8000:
        pcm, _ = audioop.ratecv(pcm, 2, 1, rate, 8000, None)
    return audioop.lin2ulaw(pcm, 2)


def frames_of(audio: bytes) -> list[bytes]:
    """20 ms frames, the last one padded with silence."""
    pieces = [audio[i:i + FRAME_BYTES] for i in range(0, len(audio), FRAME_BYTES)]
    if pieces and len(pieces[-1]) < FRAME_BYTES:
        pieces[-1] += b"\xff" * (FRAME_BYTES - len(pieces[-1]))
    return pieces
