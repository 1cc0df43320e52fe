"""The processes behind streaming recognition: a forker holding the model, one child per call.

Why a process per call: vosk 0.3.45 can abort or segfault its whole process (ivr/hearing/pool.py),
and a live call feeds its recogniser for minutes. If calls shared a process, one caller's crash
would end every call in it, and one slow FinalResult() would hold up the others' frames. So the
forker (spawned once, model loaded once, single-threaded) forks a child per streaming session;
children share the loaded model copy-on-write (≈ 5 MB private each, docs/reference vosk.md), so a
new session costs a fork (milliseconds), not a model load (≈ 1.2 s).

The parent talks to each child over its own socket, handed over by the forker (SCM_RIGHTS), so
frames never pass through the forker and a child's death is seen by its own session only.

Messages, parent → child:   ("start", utt, phrases | None)   ("audio", utt, pcm16)
                            ("finish", utt)   ("sync", utt)   ("peek", utt, from_frame)
                            None (exit)
child → parent:             ("started", utt, problems)       ("grammar", utt, why)
                            ("progress", utt, frames, partial)   ("final", utt, data)
                            ("peeked", utt, frames, text)        ("fail", utt, why)

Why "peek": in grammar mode Vosk's partial (best path) runs ahead of the audio. After "아니요",
with "아니요 상담원" a phrase, the partial became "아니요 상담원" 0.16 s into the silence, a word
nobody said; FinalResult() on the same audio said "아니요". So a partial that looks complete is
checked by a FinalResult() on a fresh recogniser fed the utterance's audio so far (≈ 0.02 CPU s
per audio s), leaving the live recogniser untouched.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from multiprocessing.connection import Connection
from multiprocessing.reduction import send_handle
from typing import Any

from ivr.hearing.model_process import load_model_or_report

# A progress message at least this often (frames) even when the partial did not change, so the
# parent can tell frames waiting in the pipe (backlog) from frames decoded.
PROGRESS_EVERY = 5


def forker_main(conn: Connection, model_path: str, log_level: int) -> None:
    """Load the model once, then fork one session child per ("fork",) request."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    loaded = load_model_or_report(conn, model_path, log_level)
    if loaded is None:
        return
    model, vocab, info = loaded
    import vosk
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # parent gone
        if msg is None:
            return
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the session child
            try:
                conn.close()
                theirs.close()
                _session_main(Connection(ours.detach()), vosk, model, vocab, info)
            finally:
                os._exit(0)
        ours.close()
        try:
            conn.send(("forked", pid))
            send_handle(conn, theirs.fileno(), 0)
        except OSError:
            return
        finally:
            theirs.close()


def _session_main(conn: Connection, vosk: Any, model: Any, vocab: Any, info: Any) -> None:
    """One call: utterances one after another, each with a fresh recogniser and grammar."""
    from ivr.hearing.audio import StreamUpsampler
    from ivr.hearing.grammar import GrammarError, compile_grammar, match_phrase

    rate = int(conn.recv())
    upsample = StreamUpsampler(rate, info.sample_rate)
    feed_rate = upsample.out_rate
    grammars: dict[tuple[str, ...], str] = {}
    grammar: str | None = None
    heard: list[bytes] = []   # the utterance's audio at the recogniser's rate, for "peek"
    rec = None
    utt = None
    phrases: tuple[str, ...] | None = None
    done: list[str] = []      # text Vosk's own endpointer already finalised this utterance
    frames = 0
    last_partial = ""
    t_audio = 0.0
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        kind, m_utt = msg[0], msg[1]
        try:
            if kind == "start":
                phrases = msg[2]
                problems: tuple[str, ...] = ()
                grammar = None
                if phrases is not None:
                    grammar = grammars.get(phrases)
                    if grammar is None:
                        try:
                            compiled = compile_grammar(vocab, phrases)
                        except GrammarError as exc:
                            conn.send(("grammar", m_utt, str(exc)))
                            continue
                        grammar, problems = compiled.json, compiled.problems
                        grammars[phrases] = grammar
                rec = (vosk.KaldiRecognizer(model, feed_rate, grammar) if grammar is not None
                       else vosk.KaldiRecognizer(model, feed_rate))
                rec.SetWords(True)
                utt, done, frames, last_partial, t_audio, heard = m_utt, [], 0, "", 0.0, []
                conn.send(("started", m_utt, problems))
            elif kind == "audio":
                if rec is None or m_utt != utt:
                    continue  # frames of an utterance already finished: drop them
                pcm = upsample(msg[2])
                heard.append(pcm)
                t0 = time.process_time()
                if rec.AcceptWaveform(pcm):
                    text = str(json.loads(rec.Result()).get("text", ""))
                    if text:
                        done.append(text)
                    partial = ""
                else:
                    partial = str(json.loads(rec.PartialResult()).get("partial", ""))
                t_audio += time.process_time() - t0
                frames += 1
                shown = " ".join(done + ([partial] if partial else []))
                if shown != last_partial or frames % PROGRESS_EVERY == 0:
                    last_partial = shown
                    conn.send(("progress", m_utt, frames, shown))
            elif kind == "peek":
                if rec is None or m_utt != utt:
                    continue
                t0 = time.process_time()
                shadow = (vosk.KaldiRecognizer(model, feed_rate, grammar) if grammar is not None
                          else vosk.KaldiRecognizer(model, feed_rate))
                shadow.AcceptWaveform(b"".join(heard[msg[2] if len(msg) > 2 else 0:]))
                text = str(json.loads(shadow.FinalResult()).get("text", ""))
                del shadow
                t_audio += time.process_time() - t0
                conn.send(("peeked", m_utt, frames, text))
            elif kind == "sync":  # the parent wants to know where decoding stands now
                conn.send(("progress", m_utt, frames, last_partial))
            elif kind == "finish":
                if rec is None or m_utt != utt:
                    conn.send(("fail", m_utt, "no utterance was started"))
                    continue
                t0 = time.perf_counter()
                res = json.loads(rec.FinalResult())
                words = [(str(w.get("word", "")), float(w.get("conf", 0.0)))
                         for w in res.get("result", [])]
                tail = str(res.get("text", ""))
                text = " ".join(done + ([tail] if tail else []))
                confidence = sum(c for _, c in words) / len(words) if words else 0.0
                rec, heard = None, []  # a fresh recogniser per prompt keeps memory flat (vosk.md)
                conn.send(("final", m_utt, {
                    "text": text, "confidence": confidence, "words": words,
                    "phrase": match_phrase(text, phrases) if phrases is not None else None,
                    "frames": frames, "final_seconds": time.perf_counter() - t0,
                    "decode_seconds": t_audio,
                }))
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - a Python-level failure costs this utterance
            rec = None
            try:
                conn.send(("fail", m_utt, f"{type(exc).__name__}: {exc}"))
            except OSError:
                return
