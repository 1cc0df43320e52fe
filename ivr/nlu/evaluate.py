"""Measure the matcher on a corpus of recognised text: accuracy and false accepts per context
and language, and time per utterance.

    PYTHONPATH=. .venv/bin/python -m ivr.nlu.evaluate [CORPUS_DIR] [--failures] [--timing]

CORPUS_DIR (default tests/nlu_corpus) holds one ``<context>.tsv`` per question context, each
line ``lang<TAB>text<TAB>expected<TAB>tags`` (see tests/nlu_corpus/README.md).  Use it to tune
grammars and thresholds from transcripts of recorded calls (docs/speech-understanding.md).
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ivr.nlu.matcher import Understanding, understand

CORPUS_DIR = Path(__file__).resolve().parents[2] / "tests" / "nlu_corpus"
HELDOUT_DIR = CORPUS_DIR / "heldout"


@dataclass(frozen=True)
class Case:
    context: str
    lang: str
    text: str
    intent: str | None
    slots: dict
    tags: frozenset
    line: int

    def where(self) -> str:
        return f"{self.context}.tsv:{self.line}"


def load_corpus(directory: str | Path = CORPUS_DIR) -> list[Case]:
    cases = []
    for path in sorted(Path(directory).glob("*.tsv")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) < 3 or cols[0] not in ("cmn", "wuu") or not cols[2].strip():
                raise ValueError(f"{path.name}:{n}: expected lang<TAB>text<TAB>expected[<TAB>tags]")
            lang, text, expected = cols[:3]
            tags = frozenset(t.strip() for t in (cols[3] if len(cols) > 3 else "").split(",")
                             if t.strip())
            parts = expected.split()
            intent = None if parts[0] == "-" else parts[0]
            slots = dict(p.split("=", 1) for p in parts[1:])
            cases.append(Case(path.stem, lang, text, intent, slots, tags, n))
    return cases


@dataclass
class Row:
    n: int = 0
    in_domain: int = 0              # cases that expect an intent
    correct: int = 0                # right intent and slots (a null expectation: rejected)
    accepted: int = 0               # in-domain cases accepted with the right answer
    false_accepts: int = 0          # accept band with a wrong intent or slots
    traps: int = 0                  # negation / uncertain cases
    trap_yes: int = 0               # … that came out as yes, in any band
    ood: int = 0                    # out-of-domain chatter
    ood_accepts: int = 0            # … accepted as anything
    failures: list = field(default_factory=list)

    def add(self, other: "Row") -> None:
        for name in ("n", "in_domain", "correct", "accepted", "false_accepts", "traps", "trap_yes",
                     "ood", "ood_accepts"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def is_correct(case: Case, got: Understanding) -> bool:
    return got.intent == case.intent and (case.intent is None or got.slots == case.slots)


def evaluate(cases: list[Case],
             understand_fn: Callable[[str, str, str], Understanding] = understand
             ) -> dict[tuple[str, str], Row]:
    table: dict[tuple[str, str], Row] = {}
    for case in cases:
        got = understand_fn(case.context, case.text, case.lang)
        row = table.setdefault((case.context, case.lang), Row())
        ok = is_correct(case, got)
        row.n += 1
        row.in_domain += case.intent is not None
        row.correct += ok
        row.accepted += ok and case.intent is not None and got.band == "accept"
        row.false_accepts += not ok and got.band == "accept"
        if case.tags & {"negation", "uncertain"}:
            row.traps += 1
            row.trap_yes += got.intent == "yes"
        if "ood" in case.tags:
            row.ood += 1
            row.ood_accepts += got.band == "accept"
        if not ok:
            row.failures.append((case, got))
    return table


def _pct(a: int, b: int) -> str:
    return f"{a / b:.0%}" if b else "–"


def markdown(table: dict[tuple[str, str], Row]) -> str:
    lines = ["| context | lang | cases | correct | in-domain accepted | false accepts | "
             "negation/uncertain → yes | out-of-domain accepted |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    total = Row()
    for (ctx, lang), r in sorted(table.items()):
        total.add(r)
        lines.append(f"| {ctx} | {lang} | {r.n} | {_pct(r.correct, r.n)} | "
                     f"{_pct(r.accepted, r.in_domain)} | {r.false_accepts} | {r.trap_yes}/{r.traps} | "
                     f"{r.ood_accepts}/{r.ood} |")
    r = total
    lines.append(f"| **all** | | {r.n} | {_pct(r.correct, r.n)} | {_pct(r.accepted, r.in_domain)} | "
                 f"{r.false_accepts} | {r.trap_yes}/{r.traps} | {r.ood_accepts}/{r.ood} |")
    return "\n".join(lines)


def timing(cases: list[Case], rounds: int = 20) -> dict[str, float]:
    """Milliseconds per utterance over ``rounds`` passes (the first, warm-up pass not counted;
    the matcher's small pinyin cache is cleared before each pass so repeats are not free)."""
    from ivr.nlu.phonetics import encode
    for c in cases:
        understand(c.context, c.text, c.lang)
    samples = []
    for _ in range(rounds):
        encode.cache_clear()
        for c in cases:
            t0 = time.perf_counter()
            understand(c.context, c.text, c.lang)
            samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return {"mean": statistics.fmean(samples), "median": samples[len(samples) // 2],
            "p99": samples[int(len(samples) * 0.99)], "max": samples[-1], "n": len(samples)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.nlu.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", default=str(CORPUS_DIR))
    parser.add_argument("--failures", action="store_true", help="list every wrong answer")
    parser.add_argument("--timing", action="store_true", help="measure ms per utterance")
    args = parser.parse_args(argv)
    cases = load_corpus(args.corpus)
    table = evaluate(cases)
    print(markdown(table))
    if args.failures:
        for _, row in sorted(table.items()):
            for case, got in row.failures:
                print(f"{case.where()} [{case.lang}] {case.text!r}: expected {case.intent} "
                      f"{case.slots or ''}, got {got.intent} {got.slots or ''} score {got.score} "
                      f"{got.band} {got.note}")
    if args.timing:
        t = timing(cases)
        print(f"\n{t['n']} utterances: mean {t['mean']:.3f} ms, median {t['median']:.3f} ms, "
              f"p99 {t['p99']:.3f} ms, max {t['max']:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
