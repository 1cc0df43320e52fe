"""Speech recognition in worker processes, so that Vosk can never take a web worker down.

vosk 0.3.45 aborts or segfaults the *whole process* on some inputs (a "[]"
grammar, non-string grammar elements, SetGrammar mid-utterance, feeding 8 kHz
to a model that may not upsample, ...). So recognition runs in a pool of
worker processes, one utterance at a time each, sized to the cores, each
holding its own loaded model:

- a worker that dies mid-utterance costs that utterance only: `recognize`
  returns None (the caller treats it as no input) and a replacement worker is
  started in the background;
- an utterance that takes longer than its `timeout` (including the wait for a
  free worker) returns None too; its worker is killed and replaced;
- `recognize` is thread-safe: web threads queue for the next free worker.

Live calls (`open_stream`, issue 9) do not queue for these workers: each call gets a process of
its own for as long as it lasts, forked from a forker process that loaded the model once
(sessions.py, session_process.py). A crash, a kill or an overrun ends that call's stream only.

Processes are started with the "spawn" context: a fresh interpreter that
inherits no threads, locks, sockets or database connections from the web
process (fork is unsafe in a threaded server), and no process-global state
(forkserver's server and preload list are shared by the whole program).
Its extra start-up cost (≈0.1 s) is small next to the model load (≈1-2 s),
which happens once per worker, not per utterance. Each worker holds its own
copy of the model (≈0.5 GB for the Korean test model): create one pool per
machine's worth of cores, after any fork (not in a gunicorn --preload master),
and mind that N web processes each with their own pool means N x cores copies.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ivr.hearing.grammar import GrammarError
from ivr.hearing.model_process import load_model_or_report
from ivr.hearing.models import ModelError, model_info
from ivr.hearing.sessions import SessionForker, StreamChannel

__all__ = ["Recognition", "RecognizerPool", "PoolError", "GrammarError", "ModelError",
           "StreamChannel", "default_pool_size"]

log = logging.getLogger("ivr.hearing.pool")

_START_FAILURES_BEFORE_BROKEN = 3
_GRAMMAR_CACHE = 256
_MAX_RATE = 192_000


class PoolError(RuntimeError):
    """The pool cannot recognise (closed, or workers cannot start: bad model)."""


@dataclass
class Recognition:
    """One utterance's result.

    text: the recogniser's words, space-separated ("" = nothing recognised).
    confidence: mean word posterior (0-1) over `words`; 0.0 when empty.
    words: [(word, posterior)] from Vosk's MBR decoding (SetWords).
    alternatives: [(text, probability)], best first. With alternatives=N the
        N-best list from SetMaxAlternatives, its log-likelihoods turned into
        probabilities that sum to 1 over the list; otherwise just
        [(text, confidence)] (or [] when text is empty).
    phrase: the grammar phrase the text is, exactly (see grammar.match_phrase),
        else None: chained/repeated phrases and unknown-word output give None.
    """

    text: str
    confidence: float
    words: list[tuple[str, float]] = field(default_factory=list)
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    phrase: str | None = None
    audio_seconds: float = 0.0
    elapsed: float = 0.0  # seconds the worker spent decoding


# --------------------------------------------------------------------------
# Worker process
# --------------------------------------------------------------------------

def _nbest_probabilities(alts: list[dict[str, Any]]) -> list[tuple[str, float]]:
    scored = [(str(a.get("text", "")), float(a.get("confidence", 0.0))) for a in alts]
    if not scored:
        return []
    top = max(s for _, s in scored)
    weights = [math.exp(s - top) for _, s in scored]
    total = sum(weights) or 1.0
    return [(t, w / total) for (t, _), w in zip(scored, weights)]


def _decode(vosk: Any, model: Any, pcm: bytes, rate: int, grammar: str | None,
            max_alternatives: int) -> dict[str, Any]:
    rec = (vosk.KaldiRecognizer(model, rate, grammar) if grammar is not None
           else vosk.KaldiRecognizer(model, rate))
    if max_alternatives:
        rec.SetMaxAlternatives(max_alternatives)
    else:
        rec.SetWords(True)
    rec.AcceptWaveform(pcm)
    return json.loads(rec.FinalResult())


def _worker_main(conn: Any, model_path: str, log_level: int) -> None:
    """Load the model once, then decode requests until told to stop or orphaned."""
    loaded = load_model_or_report(conn, model_path, log_level)
    if loaded is None:
        return
    model, vocab, info = loaded
    import vosk

    from ivr.hearing.audio import to_model_rate
    from ivr.hearing.grammar import compile_grammar, match_phrase

    grammars: OrderedDict[tuple[str, ...], Any] = OrderedDict()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # parent gone
        if msg is None:
            return
        req_id, pcm, rate, phrases, raw_grammar, alternatives = msg
        try:
            t0 = time.perf_counter()
            problems: tuple[str, ...] = ()
            if raw_grammar is not None:  # test-only path: deliberately unchecked
                grammar = raw_grammar
            elif phrases is not None:
                compiled = grammars.get(phrases)
                if compiled is None:
                    try:
                        compiled = compile_grammar(vocab, phrases)
                    except GrammarError as exc:
                        conn.send(("grammar", req_id, str(exc)))
                        continue
                    problems = compiled.problems
                    grammars[phrases] = compiled
                    if len(grammars) > _GRAMMAR_CACHE:
                        grammars.popitem(last=False)
                else:
                    grammars.move_to_end(phrases)
                grammar = compiled.json
            else:
                grammar = None  # full vocabulary: ~20x slower, no [unk] rejection
            if not info.accepts_rate(rate):
                pcm, rate = to_model_rate(pcm, rate, info.sample_rate)
            audio_seconds = len(pcm) / 2 / rate
            res = _decode(vosk, model, pcm, rate, grammar, 0)
            words = [(str(w.get("word", "")), float(w.get("conf", 0.0)))
                     for w in res.get("result", [])]
            text = str(res.get("text", ""))
            confidence = sum(c for _, c in words) / len(words) if words else 0.0
            if alternatives:
                # Vosk gives either word posteriors or an N-best list per recogniser
                # (the formats differ), so the N-best costs a second decode.
                nbest = _decode(vosk, model, pcm, rate, grammar, alternatives)
                alts = _nbest_probabilities(nbest.get("alternatives", []))
            else:
                alts = [(text, confidence)] if text else []
            phrase = match_phrase(text, phrases) if phrases is not None else None
            conn.send(("ok", req_id, {
                "text": text, "confidence": confidence, "words": words,
                "alternatives": alts, "phrase": phrase, "audio_seconds": audio_seconds,
                "elapsed": time.perf_counter() - t0,
            }, problems))
        except Exception as exc:  # noqa: BLE001 - a Python-level failure costs one request
            conn.send(("fail", req_id, f"{type(exc).__name__}: {exc}"))


# --------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------

class _Worker:
    __slots__ = ("process", "conn", "pid", "served")

    def __init__(self, process: Any, conn: Any) -> None:
        self.process = process
        self.conn = conn
        self.pid: int | None = None
        self.served = 0


class _Dispatcher:
    """Hands free workers to waiting callers first come, first served.

    queue.Queue is not fair: a caller arriving just as a worker is released can
    take it before threads already waiting, so under load an unlucky call can
    starve until its deadline. Here a released worker goes straight to the
    oldest waiter.
    """

    class _Ticket:
        __slots__ = ("event", "worker")

        def __init__(self) -> None:
            self.event = threading.Event()
            self.worker: _Worker | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: deque[_Worker] = deque()
        self._waiters: deque[_Dispatcher._Ticket] = deque()
        self._closed = False

    def release(self, worker: _Worker) -> bool:
        """Give a worker back; False if the dispatcher is closed (caller retires it)."""
        with self._lock:
            if self._closed:
                return False
            if self._waiters:
                ticket = self._waiters.popleft()
                ticket.worker = worker
                ticket.event.set()
            else:
                self._idle.append(worker)
            return True

    def acquire(self, deadline: float) -> _Worker | None:
        with self._lock:
            if self._closed:
                return None
            if self._idle and not self._waiters:
                return self._idle.popleft()
            ticket = self._Ticket()
            self._waiters.append(ticket)
        ticket.event.wait(max(0.0, deadline - time.monotonic()))
        with self._lock:
            if ticket.worker is None and ticket in self._waiters:
                self._waiters.remove(ticket)  # timed out
            return ticket.worker

    def close(self) -> list[_Worker]:
        """Wake every waiter empty-handed; return the idle workers."""
        with self._lock:
            self._closed = True
            for ticket in self._waiters:
                ticket.event.set()
            self._waiters.clear()
            idle = list(self._idle)
            self._idle.clear()
            return idle


class RecognizerPool:
    """A pool of recogniser processes sharing one request queue.

    >>> pool = RecognizerPool("models/vosk-model-small-cn-0.22")   # waits for the workers
    >>> r = pool.recognize(pcm, 16000, ["是", "不是", "人工"], timeout=3.0)
    >>> r.phrase if r else None   # None: crash, timeout or no free worker → no input
    """

    def __init__(self, model_path: Path | str, workers: int | None = None, *,
                 wait: bool = True, start_timeout: float = 120.0, log_level: int = -2,
                 streaming: bool = False, max_streams: int | None = None) -> None:
        """streaming: also start the forker of per-call streaming sessions now (else on the
        first open_stream); with wait, block until its model is loaded too.
        max_streams: live calls recognised at once; open_stream refuses more (None: no limit)."""
        self.model_info = model_info(model_path)  # ModelError early, in the caller
        self.size = max(1, int(workers or os.cpu_count() or 1))
        self._start_timeout = start_timeout
        self._log_level = log_level
        self._ctx = mp.get_context("spawn")
        self._dispatch = _Dispatcher()
        self._lock = threading.Condition()
        self._workers: set[_Worker] = set()
        self._ready = 0
        self._closed = False
        self._broken: str | None = None
        self._ever_ready = False
        self._start_failures = 0
        self._ids = itertools.count(1)
        self._warned_problems: set[tuple[str, ...]] = set()
        self.counters = {"started": 0, "ready": 0, "crashes": 0, "timeouts": 0, "no_worker": 0,
                         "failures": 0, "recognitions": 0, "streams": 0, "no_stream": 0}
        self._forker = SessionForker(self._ctx, self.model_info.path, log_level, start_timeout,
                                     max_streams)
        for _ in range(self.size):
            self._spawn()
        forker_start = None
        if streaming:
            forker_start = threading.Thread(target=self._forker.start, name="vosk-forker-start",
                                            daemon=True)
            forker_start.start()
        if wait:
            try:
                self.wait_ready(start_timeout)
                if forker_start is not None:
                    forker_start.join(start_timeout)
            except BaseException:
                self.close()
                raise

    # -- lifecycle --------------------------------------------------------

    def _spawn(self, delay: float = 0.0) -> None:
        threading.Thread(target=self._start_worker, args=(delay,), name="vosk-worker-start",
                         daemon=True).start()

    def _start_worker(self, delay: float) -> None:
        if delay:
            time.sleep(delay)
        with self._lock:
            if self._closed:
                return
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker_main, name="vosk-recognizer", daemon=True,
                                 args=(child_conn, str(self.model_info.path), self._log_level))
        worker = _Worker(proc, parent_conn)
        try:
            proc.start()
        except Exception as exc:  # noqa: BLE001
            parent_conn.close()
            child_conn.close()
            self._start_failed(f"cannot start a worker process: {exc}")
            return
        child_conn.close()
        with self._lock:
            self.counters["started"] += 1
            self._workers.add(worker)
            closed = self._closed
        if closed:  # close() ran while we were starting it
            self._retire(worker)
            return
        reason = None
        load_error = False
        try:
            if parent_conn.poll(self._start_timeout):
                msg = parent_conn.recv()
                if msg[0] == "ready":
                    worker.pid = msg[1]
                else:
                    reason = f"worker could not load the model: {msg[1]}"
                    load_error = True
            else:
                reason = f"worker not ready after {self._start_timeout:.0f} s"
        except (EOFError, OSError):
            proc.join(1)
            reason = f"worker died while loading the model (exit code {proc.exitcode})"
        if reason is not None:
            self._retire(worker)
            self._start_failed(reason, load_error)
            return
        with self._lock:
            if self._closed:
                closed = True
            else:
                closed = False
                self._ever_ready = True
                self._start_failures = 0
                self._ready += 1
                self.counters["ready"] += 1
                self._lock.notify_all()
        if closed or not self._dispatch.release(worker):
            self._retire(worker)

    def _start_failed(self, reason: str, load_error: bool = False) -> None:
        """Retry with back-off; give up after repeated failures, or at once if the very
        first workers report that the model cannot be loaded (it will not get better)."""
        with self._lock:
            if self._closed:
                return
            self._start_failures += 1
            failures = self._start_failures
            hopeless = load_error and not self._ever_ready
            if (hopeless or failures >= _START_FAILURES_BEFORE_BROKEN) and self._broken is None:
                self._broken = reason
                log.error("speech recognition disabled: %s", reason)
            self._lock.notify_all()
            retry = not self._closed and self._broken is None
        if retry:
            log.warning("recogniser worker start failed (%s); retrying", reason)
            self._spawn(delay=min(float(2 ** failures), 30.0))

    def _retire(self, worker: _Worker) -> None:
        """Stop a worker for good (kill if needed) and forget it."""
        with self._lock:
            self._workers.discard(worker)
        try:
            if worker.process.is_alive():
                worker.process.kill()
            worker.process.join(5)
        except Exception:  # noqa: BLE001
            pass
        try:
            worker.conn.close()
        except OSError:
            pass

    def _replace(self, worker: _Worker, why: str) -> None:
        """A worker crashed or overran: drop it and start another in the background."""
        with self._lock:
            self._ready -= 1
            closed = self._closed
        self._retire(worker)
        log.warning("recogniser worker %s %s (exit code %s); replacing it",
                    worker.pid, why, worker.process.exitcode)
        if not closed:
            self._spawn()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every worker has loaded the model; PoolError if they cannot."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._ready < self.size:
                if self._broken:
                    raise PoolError(self._broken)
                if self._closed:
                    raise PoolError("pool is closed")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise PoolError(f"recogniser workers not ready after {timeout} s")
                self._lock.wait(remaining)

    @property
    def ready_workers(self) -> int:
        with self._lock:
            return self._ready

    @property
    def broken(self) -> str | None:
        """Why recognition is off (workers cannot start), else None."""
        return self._broken

    def close(self) -> None:
        """Stop all workers. Calls waiting for a worker return None."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers)
            self._lock.notify_all()
        self._dispatch.close()  # callers waiting for a worker return None
        for w in workers:
            if w.pid is None:  # still loading the model: nothing to finish
                self._retire(w)
                continue
            try:
                w.conn.send(None)  # idle ones exit now, busy ones after their utterance
            except OSError:
                pass
        deadline = time.monotonic() + 3
        for w in workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            self._retire(w)
        self._forker.close()  # open streams go on until their callers close them

    def __enter__(self) -> "RecognizerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- recognition --------------------------------------------------------

    def recognize(self, pcm: bytes, sample_rate: int, phrases: Sequence[str] | None = None,
                  timeout: float = 5.0, *, alternatives: int = 0,
                  _raw_grammar: str | None = None) -> Recognition | None:
        """Recognise one utterance of 16-bit little-endian mono PCM.

        phrases: the grammar (see grammar.compile_grammar; compiled and cached in
            the worker, phrases the model cannot say are left out and logged), or
            None for free recognition over the whole vocabulary (≈20x the CPU).
        timeout: overall seconds, including the wait for a free worker.
        alternatives: N > 0 also returns an N-best list (costs a second decode).
        _raw_grammar: TESTS ONLY: handed to Vosk unchecked (may kill the worker).

        Returns None when the utterance cannot be recognised in time: worker
        crash, timeout, no free worker, pool broken/closed, or an internal error.
        Raises GrammarError if no phrase of `phrases` is usable with this model,
        ValueError for malformed arguments.
        """
        deadline = time.monotonic() + max(0.0, float(timeout))
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise ValueError("pcm must be bytes")
        pcm = bytes(pcm)
        if len(pcm) % 2:
            pcm = pcm[:-1]
        if not isinstance(sample_rate, int) or not 1000 <= sample_rate <= _MAX_RATE:
            raise ValueError(f"implausible sample rate {sample_rate!r}")
        if phrases is not None:
            if isinstance(phrases, str) or not all(isinstance(p, str) for p in phrases):
                raise ValueError("phrases must be a list of strings")
            phrases = tuple(phrases)
        alternatives = max(0, min(int(alternatives), 20))
        if self._closed or self._broken:
            return None

        req_id = next(self._ids)
        while True:
            worker = self._take(deadline)
            if worker is None:
                return None
            try:
                worker.conn.send((req_id, pcm, sample_rate, phrases, _raw_grammar, alternatives))
                break
            except OSError:  # died while idle: not this utterance's fault, try another
                self._count("crashes")
                self._replace(worker, "was found dead")

        try:
            remaining = deadline - time.monotonic()
            if not worker.conn.poll(max(0.0, remaining)):
                self._count("timeouts")
                self._replace(worker, f"overran the {timeout:.1f} s deadline")
                return None
            msg = worker.conn.recv()
        except (EOFError, OSError):
            worker.process.join(1)
            self._count("crashes")
            self._replace(worker, "crashed")
            return None

        kind = msg[0]
        if len(msg) < 3 or msg[1] != req_id:  # cannot happen: one request per worker at a time
            self._count("failures")
            self._replace(worker, "answered out of turn")
            return None
        worker.served += 1
        if not self._dispatch.release(worker):
            self._retire(worker)
        if kind == "ok":
            self._count("recognitions")
            data, problems = msg[2], msg[3]
            if problems and phrases not in self._warned_problems:
                self._warned_problems.add(phrases)
                log.warning("grammar phrases left out (model lacks words): %s", "; ".join(problems))
            return Recognition(
                text=data["text"], confidence=data["confidence"],
                words=[tuple(w) for w in data["words"]],
                alternatives=[tuple(a) for a in data["alternatives"]],
                phrase=data["phrase"], audio_seconds=data["audio_seconds"],
                elapsed=data["elapsed"])
        if kind == "grammar":
            raise GrammarError(msg[2])
        self._count("failures")
        log.warning("recognition failed in worker %s: %s", worker.pid, msg[2])
        return None

    # -- streaming ------------------------------------------------------------

    def open_stream(self, sample_rate: int, timeout: float = 5.0) -> StreamChannel | None:
        """A live recogniser of its own for one call (16-bit PCM frames at ``sample_rate``).

        None when streaming is unavailable (pool closed, model cannot load, ``max_streams``
        calls already open, no process in ``timeout``): the caller answers that call with keys
        only. Close the channel at hang-up: that frees its place.
        """
        if not isinstance(sample_rate, int) or not 1000 <= sample_rate <= _MAX_RATE:
            raise ValueError(f"implausible sample rate {sample_rate!r}")
        if self._closed:
            return None
        channel = self._forker.open(sample_rate, timeout)
        self._count("streams" if channel is not None else "no_stream")
        return channel

    def _take(self, deadline: float) -> _Worker | None:
        while True:
            if deadline - time.monotonic() <= 0:
                self._count("no_worker")
                return None
            worker = self._dispatch.acquire(deadline)
            if worker is None:
                if not self._closed:
                    self._count("no_worker")
                return None
            if worker.process.is_alive():
                return worker
            self._count("crashes")
            self._replace(worker, "was found dead")

    def _count(self, key: str) -> None:
        with self._lock:
            self.counters[key] += 1


def default_pool_size() -> int:
    """One worker per core: a worker decodes one utterance at a time, CPU bound."""
    return max(1, os.cpu_count() or 1)

