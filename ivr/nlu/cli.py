"""`python -m ivr nlu --context CONTEXT [--lang cmn|wuu] [TEXT]`: understand recognised text.

Prints one JSON object ``{"intent": ..., "score": ..., "slots": {...}}`` (intent null when nothing
matches).  Without TEXT, reads one utterance per line from standard input and prints one JSON
object per line, in order.  Wire it into a parent parser with::

    nlu = sub.add_parser("nlu", help="understand recognised text")
    add_arguments(nlu)            # also sets func=run
"""
from __future__ import annotations

import argparse
import json
import sys

from ivr.nlu.grammar import CONTEXTS, GrammarError
from ivr.nlu.matcher import LANGS, matcher


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--context", required=True, choices=sorted(CONTEXTS),
                        help="the question being answered")
    parser.add_argument("--lang", default="cmn", choices=LANGS,
                        help="the caller's language (default cmn)")
    parser.add_argument("--grammars", metavar="DIR",
                        help="grammar directory (default: the project's grammars/)")
    parser.add_argument("--explain", action="store_true",
                        help="also print band and note (not part of the contract)")
    parser.add_argument("text", nargs="*",
                        help="recognised text; several words are joined with spaces "
                             "(default: one utterance per line on stdin)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        m = matcher(args.grammars)
    except GrammarError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    text = " ".join(args.text) if isinstance(args.text, list) else args.text
    lines = [text] if text else (line.rstrip("\r\n") for line in sys.stdin)
    for line in lines:
        result = m.understand(args.context, line, args.lang)
        out = result.to_json()
        if args.explain:
            out = {**out, "band": result.band, "note": result.note}
        print(json.dumps(out, ensure_ascii=False), flush=not text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.nlu", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
