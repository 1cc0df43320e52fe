"""The start of every recogniser process: load the model once, or tell the parent why not."""
from __future__ import annotations

import os
import signal
from multiprocessing.connection import Connection
from typing import Any


def load_model_or_report(conn: Connection, model_path: str, log_level: int) -> tuple[Any, Any, Any] | None:
    """(model, vocabulary, model info), after sending ("ready", pid); None after sending
    ("error", why).

    Anything may fail in here (a missing or corrupt model, Vosk itself), and the parent must
    learn it rather than wait: so everything is caught and reported.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and closes us
    try:
        import vosk

        from ivr.hearing.grammar import Vocabulary
        from ivr.hearing.models import model_info

        vosk.SetLogLevel(log_level)
        info = model_info(model_path)
        model = vosk.Model(str(info.path))
        vocab = Vocabulary.from_vosk_model(model)
    except BaseException as exc:  # noqa: BLE001 - report anything, then exit
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass
        return None
    conn.send(("ready", os.getpid()))
    return model, vocab, info
