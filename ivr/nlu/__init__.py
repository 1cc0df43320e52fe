"""Speech understanding: recognised text → intent, score and slots, per question context.

    from ivr.nlu import understand, Understanding
    understand("confirm", "勿是个", lang="wuu")   # Understanding(intent='no', score=1.0, ...)

See docs/speech-understanding.md and grammars/README.md.
"""
from ivr.nlu.grammar import (CONTEXTS, COMMON_INTENTS, GrammarError, all_phrases, check_grammars,
                             load_grammars)
from ivr.nlu.matcher import Matcher, Thresholds, Understanding, Weights, matcher, understand
from ivr.nlu.normalize import normalize

__all__ = ["CONTEXTS", "COMMON_INTENTS", "GrammarError", "Matcher", "Thresholds", "Understanding",
           "Weights", "all_phrases", "check_grammars", "load_grammars", "matcher", "normalize",
           "understand"]
