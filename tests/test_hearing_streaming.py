"""Live recognition through the real Korean model: espeak-ng words as 20 ms μ-law frames, fed at
virtual pace (no sleeping), each call in its own recogniser process.

The endpointer decides the end of the turn from the audio (counted in frames, so the audio-time
figures below do not depend on how fast this machine runs); FinalResult()'s wall time is
measured as it happens. Killing a process is a real SIGKILL, never pytest's own process.
"""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Iterator

import pytest

from ivr.hearing.endpointer import FRAME_MS, EndpointSettings, Turn
from ivr.hearing.grammar import GrammarError
from ivr.hearing.live_turn import LiveTurn, TurnResult
from ivr.hearing.pool import RecognizerPool
from ivr.hearing.sessions import MAX_BACKLOG_FRAMES
from ivr.hearing.streaming import StreamingSession
from ivr.hearing.understanding import phrase_completeness
from speech_fixtures.helpers import KO_PHRASES, korean_model_dir, require_espeak, spoken_frames

# A step whose only two-word answer starts with a word that is no answer on its own.
TWO_WORDS = ["아니요 상담원", "네", "확인"]


@pytest.fixture(scope="module")
def pool() -> Iterator[RecognizerPool]:
    require_espeak()
    with RecognizerPool(korean_model_dir(), workers=1, streaming=True) as p:
        yield p


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("streaming-audio")


def session(pool: RecognizerPool) -> StreamingSession:
    channel = pool.open_stream(8000, timeout=30)
    assert channel is not None
    return StreamingSession(channel, "mulaw")


def listen(s: StreamingSession, frames: list[bytes], phrases: list[str],
           complete_on: list[str] | None = None) -> TurnResult:
    turn = LiveTurn(s, phrases, phrase_completeness(complete_on or phrases), lockstep=True)
    assert turn.started
    for frame in frames:
        if turn.push(frame) is Turn.ENDED:
            break
    return turn.finish()


def test_words_arrive_as_partials_before_the_turn_ends(pool: RecognizerPool,
                                                       audio_dir: Path) -> None:
    frames, [(_, first_end), (second, _)] = spoken_frames(["아니요", 0.7, "상담원"], audio_dir)
    with session(pool) as s:
        assert s.start(TWO_WORDS)
        for frame in frames:
            s.feed(frame)
            assert s.sync()  # each frame decoded before the next, as at a call's real pace
        result = s.finish()
        seen = [(n * FRAME_MS / 1000, words) for n, words in s.channel.partials]
    assert result is not None and result.text == "아니요 상담원"
    heard_first = [t for t, p in seen if p.startswith("아니요")]
    assert heard_first and first_end < heard_first[0] < second  # in the pause, before word two
    assert any(p == "아니요 상담원" for _, p in seen)


def test_a_0_7_s_pause_inside_an_answer_does_not_split_it(pool: RecognizerPool,
                                                          audio_dir: Path) -> None:
    frames, [_, (_, end)] = spoken_frames(["아니요", 0.7, "상담원"], audio_dir)
    with session(pool) as s:
        turn = listen(s, frames, TWO_WORDS)
    assert turn.result is not None and turn.result.text == "아니요 상담원"
    assert turn.result.phrase == "아니요 상담원"
    assert turn.ended_by == "short"  # the whole answer is complete: the short wait ended it
    assert turn.ended_ms / 1000 - end <= 0.5


def test_a_peek_decodes_from_the_start_of_the_speech_not_of_the_turn(pool: RecognizerPool,
                                                                     audio_dir: Path) -> None:
    """On a live call the turn starts with the prompt, seconds before the caller speaks: the
    peek re-decodes only the speech (and 0.5 s before it), and still earns the short wait."""
    frames, [(start, _), (_, end)] = spoken_frames(["아니요", 0.7, "상담원"], audio_dir, lead=8.0)
    with session(pool) as s:
        peeks: list[tuple] = []
        send = s.channel._send
        s.channel._send = lambda msg: (peeks.append(msg) if msg and msg[0] == "peek" else None, send(msg))[1]
        turn = listen(s, frames, TWO_WORDS)
    assert turn.result is not None and turn.result.text == "아니요 상담원"
    assert turn.ended_by == "short" and turn.ended_ms / 1000 - end <= 0.5
    # The 8 s before the speech were never decoded (only the 0.5 s pre-roll), and a peek
    # decodes from the start of what the recogniser was sent.
    lead_frames = round((start - 0.5) / (FRAME_MS / 1000))
    assert turn.result.frames <= len(frames) - lead_frames + 2
    assert peeks and all(msg[2] == 0 for msg in peeks)


def test_the_same_pause_after_a_complete_answer_ends_the_turn(pool: RecognizerPool,
                                                              audio_dir: Path) -> None:
    """The other side of the rule: when the first word already is an answer, 0.7 s ends it."""
    frames, [(_, first_end), (second, _)] = spoken_frames(["아니요", 0.7, "상담원"], audio_dir)
    with session(pool) as s:
        turn = listen(s, frames, KO_PHRASES)
    assert turn.ended_by == "short"
    assert first_end < turn.ended_ms / 1000 < second
    assert turn.result is not None and turn.result.text == "아니요"


def test_an_incomplete_answer_waits_the_long_silence(pool: RecognizerPool,
                                                     audio_dir: Path) -> None:
    frames, [(_, end)] = spoken_frames(["아니요"], audio_dir)
    with session(pool) as s:
        turn = listen(s, frames, TWO_WORDS)
    assert turn.ended_by == "long"
    assert turn.speech_end_ms is not None
    waited = turn.ended_ms - turn.speech_end_ms
    assert EndpointSettings().long_silence_ms <= waited < EndpointSettings().long_silence_ms + 40
    assert turn.ended_ms / 1000 - end <= 0.9  # the target for an incomplete answer
    assert turn.result is not None and turn.result.text == "아니요"


@pytest.mark.parametrize("word", KO_PHRASES)
def test_a_complete_phrase_ends_after_the_short_silence(pool: RecognizerPool, audio_dir: Path,
                                                        word: str) -> None:
    frames, [(_, end)] = spoken_frames([word], audio_dir)
    with session(pool) as s:
        turn = listen(s, frames, KO_PHRASES)
    assert turn.result is not None and turn.result.phrase == word
    assert turn.ended_by == "short"
    assert turn.ended_ms / 1000 - end <= 0.5  # end of speech → decision, audio time
    # end of the decision → final words, wall time: FinalResult() ≈ 10 ms plus the pipe
    assert turn.final_latency < 0.25, turn.final_latency
    assert turn.result.final_seconds < 0.1


def test_one_process_serves_a_whole_call(pool: RecognizerPool, audio_dir: Path) -> None:
    with session(pool) as s:
        pid = s.channel.pid
        for word in ("네", "확인"):
            frames, _ = spoken_frames([word], audio_dir)
            turn = listen(s, frames, KO_PHRASES)
            assert turn.result is not None and turn.result.text == word
        assert s.channel.pid == pid and s.lost is None


def test_silence_is_no_input(pool: RecognizerPool, audio_dir: Path) -> None:
    frames, _ = spoken_frames([], audio_dir, tail=2.0)
    with session(pool) as s:
        turn = LiveTurn(s, KO_PHRASES, phrase_completeness(KO_PHRASES), max_wait_ms=2000,
                        lockstep=True)
        states = [turn.push(f) for f in frames]
        result = turn.finish()
        assert states[-1] is Turn.ENDED and result.ended_by == "max"
        assert result.result is None and s.lost is None


def test_a_killed_process_ends_only_its_own_call(pool: RecognizerPool, audio_dir: Path) -> None:
    frames, _ = spoken_frames(["상담원"], audio_dir)
    victim, other = session(pool), session(pool)
    pcm_other = StreamingSession(other.channel, "pcm16")  # the other call sends 16-bit PCM
    try:
        assert victim.channel.pid != other.channel.pid
        assert victim.start(KO_PHRASES) and pcm_other.start(KO_PHRASES)
        import audioop
        for i, frame in enumerate(frames):
            if i == len(frames) // 3:
                os.kill(victim.channel.pid, signal.SIGKILL)
            victim.feed(frame)
            pcm_other.feed(audioop.ulaw2lin(frame, 2))
        assert victim.finish() is None  # no input for that caller
        assert victim.lost == "died"
        result = pcm_other.finish()
        assert result is not None and result.text == "상담원"
        assert pcm_other.lost is None
    finally:
        victim.close()
        other.close()
    with session(pool) as s:  # new calls still get a recogniser
        assert listen(s, frames, KO_PHRASES).result.text == "상담원"


def test_an_overrunning_process_is_killed_and_only_its_call_loses(pool: RecognizerPool,
                                                                  audio_dir: Path) -> None:
    frames, _ = spoken_frames(["네"], audio_dir)
    slow, other = session(pool), session(pool)
    try:
        assert slow.start(KO_PHRASES) and other.start(KO_PHRASES)
        os.kill(slow.channel.pid, signal.SIGSTOP)  # a recogniser that stops answering
        for frame in frames:
            slow.feed(frame)
            other.feed(frame)
        t0 = time.monotonic()
        assert slow.finish(timeout=0.5) is None
        assert time.monotonic() - t0 < 1.5
        assert slow.lost and "overran" in slow.lost
        assert other.finish().text == "네"
    finally:
        slow.close()
        other.close()


def test_a_stuck_recogniser_costs_frames_not_the_calls_thread(pool: RecognizerPool,
                                                              audio_dir: Path) -> None:
    frames, _ = spoken_frames(["네"], audio_dir, tail=5.0)
    with session(pool) as s:
        assert s.start(KO_PHRASES)
        os.kill(s.channel.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            for frame in frames:
                s.feed(frame)
            assert time.monotonic() - t0 < 0.5  # feeding never waited for the child
            assert s.channel.frames_sent == MAX_BACKLOG_FRAMES
            assert s.channel.frames_dropped == len(frames) - MAX_BACKLOG_FRAMES
        finally:
            os.kill(s.channel.pid, signal.SIGCONT)
        assert s.finish() is not None  # it caught up: the call goes on


def test_a_full_pool_refuses_new_calls_until_one_hangs_up(pool: RecognizerPool) -> None:
    pool._forker.max_streams = pool._forker.open_streams + 2
    try:
        first, second = pool.open_stream(8000, 30), pool.open_stream(8000, 30)
        assert first is not None and second is not None
        assert pool.open_stream(8000, 30) is None  # this call answers with keys
        first.close()
        third = pool.open_stream(8000, 30)
        assert third is not None
        third.close()
        second.close()
    finally:
        pool._forker.max_streams = None


def test_a_dead_forker_is_replaced_and_running_calls_go_on(pool: RecognizerPool,
                                                           audio_dir: Path) -> None:
    frames, _ = spoken_frames(["확인"], audio_dir)
    running = session(pool)
    try:
        forker = pool._forker.pid
        os.kill(forker, signal.SIGKILL)
        turn = listen(running, frames, KO_PHRASES)  # a call process outlives its forker
        assert turn.result is not None and turn.result.text == "확인"
        with session(pool) as s:  # the next call starts a new forker (a model load)
            assert pool._forker.pid not in (None, forker)
            assert listen(s, frames, KO_PHRASES).result.text == "확인"
    finally:
        running.close()


def test_a_grammar_the_model_cannot_say_is_refused(pool: RecognizerPool) -> None:
    with session(pool) as s:
        with pytest.raises(GrammarError):
            s.start(["zzzq xxyq"])
        assert s.start(KO_PHRASES)  # the call goes on


def test_unknown_encodings_are_refused(pool: RecognizerPool) -> None:
    channel = pool.open_stream(8000, timeout=30)
    try:
        with pytest.raises(ValueError):
            StreamingSession(channel, "opus")  # type: ignore[arg-type]
    finally:
        channel.close()


def test_the_service_recogniser_opens_live_sessions(tmp_path: Path, audio_dir: Path) -> None:
    from ivr.hearing.build import VoskRecogniser
    recogniser = VoskRecogniser(korean_model_dir(), 1, tmp_path, max_live_calls=1)
    try:
        s = recogniser.open_session("mulaw")
        assert s is not None
        assert recogniser.open_session("mulaw") is None  # MAX_LIVE_CALLS reached
        frames, _ = spoken_frames(["확인"], audio_dir)
        assert listen(s, frames, KO_PHRASES).result.text == "확인"
        s.close()
    finally:
        recogniser._get_pool().close()
