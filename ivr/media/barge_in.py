"""When the caller may cut a prompt short, and when speech is strong enough to do it.

Keys interrupt at once (a key is never echo). Speech interrupts only after a minimum of voiced
audio or as soon as a partial result holds a word of the step's grammar, and never in the first
moments of a turn's audio, when a speakerphone's echo canceller has not adapted yet.

Defaults, from docs/reference realtime-voice.md (not measured on our own calls yet):
- min_voiced_seconds 0.5: LiveKit's interruption `min_duration` (0.5 s); jambonz uses 250 ms of
  voice. Older callers backchannel ("嗯", "喂") while a prompt plays; a short sound should not
  throw the menu away, so we take the longer of the two.
- echo_guard_seconds 3.0: LiveKit's `aec_warmup_duration` ("prevent the agent from being
  interrupted by echo"); Twilio callers on speakerphone interrupt bots with the bots' own voice
  (pipecat#1771). The guard runs from the start of a turn's audio, not of each prompt: prompts
  of one turn play back to back, so the phone's echo canceller warms up once per turn. Keys are
  never guarded. Recorded calls must confirm or lower this value.

Backchannel: a caller who says only "嗯", "哦", "喂"… over a prompt is listening, not answering
(Vocode's low interrupt sensitivity ignores such patterns); if that cut the prompt, it plays
again (a false interruption, ivr.media.session). After the prompts the same sounds go to the
understanding like any answer: Shanghainese 嗯 may be 五 (shanghainese.md).

Word counting: Vosk returns words separated by spaces, Chinese included ("我 要 转 人工"), so a
word is a space-separated token; a run of Chinese characters is one word, never one word per
character (so "人" does not match the grammar word "人工"). Unknown-word symbols are no words.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ivr.flow.schema import BARGE_IN_POLICIES
from ivr.hearing.grammar import UNK_WORDS

__all__ = ["BACKCHANNEL", "BARGE_IN_POLICIES", "BargeInSettings", "Utterance", "keys_interrupt",
           "only_backchannel", "voice_interrupts", "words", "grammar_word_heard"]

BACKCHANNEL = frozenset({"嗯", "嗯嗯", "哦", "噢", "啊", "呃", "唔", "喂", "哎", "欸"})


@dataclass(frozen=True)
class BargeInSettings:
    """pause_lag_seconds: how late the detector reports a pause after the voice stopped; the
    minimum must hold that much longer, or a sound just short of it would cut the prompt
    before its pause is known (the stream listener: webrtcvad's ≈ 80 ms hang-over + 100 ms)."""

    min_voiced_seconds: float = 0.5
    echo_guard_seconds: float = 3.0
    pause_lag_seconds: float = 0.0


def keys_interrupt(policy: str) -> bool:
    """Whether a key stops the prompt and counts ("none": keys wait until it has played)."""
    return policy in ("any", "keys")


def voice_interrupts(policy: str) -> bool:
    return policy == "any"


def words(text: str) -> list[str]:
    """The recogniser's words: space-separated tokens, unknown-word symbols left out."""
    return [w for w in text.split() if w not in UNK_WORDS]


def only_backchannel(text: str) -> bool:
    """Whether the words are only listening sounds ("嗯 嗯", "喂")."""
    heard = words(text)
    return bool(heard) and all(w in BACKCHANNEL for w in heard)


def grammar_word_heard(partial: str, grammar_words: Collection[str]) -> bool:
    """Whether a whole word of the grammar is among the partial result's words."""
    return any(w in grammar_words for w in words(partial))


@dataclass
class Utterance:
    """Speech heard while a prompt plays, until it has earned the right to interrupt.

    Only voiced time counts, and only after the echo guard: `voiced` is what was counted
    before the current stretch of voice, `running_since` when that stretch started counting
    (the later of its start and the end of the guard; None while the caller pauses)."""

    started: float
    counts_from: float
    voiced: float = 0.0
    running_since: float | None = None

    @classmethod
    def begin(cls, now: float, guard_ends: float, voiced_before: float = 0.0) -> "Utterance":
        """voiced_before: voice the detector heard before it reported the start (counted
        only if that voice was after the guard)."""
        counted = max(0.0, min(voiced_before, now - guard_ends))
        return cls(started=now, counts_from=max(now, guard_ends), voiced=counted,
                   running_since=max(now, guard_ends))

    def pause(self, at: float) -> None:
        if self.running_since is not None:
            self.voiced += max(0.0, at - self.running_since)
            self.running_since = None

    def resume(self, now: float) -> None:
        if self.running_since is None:
            self.running_since = max(now, self.counts_from)

    def voiced_at(self, now: float) -> float:
        running = max(0.0, now - self.running_since) if self.running_since is not None else 0.0
        return self.voiced + running

    def interrupts_at(self, settings: BargeInSettings) -> float | None:
        """When the voiced time reaches the minimum if the caller goes on (None: paused)."""
        if self.running_since is None:
            return None
        needed = settings.min_voiced_seconds + settings.pause_lag_seconds
        return self.running_since + max(needed - self.voiced, 0.0)

    def long_enough(self, now: float, settings: BargeInSettings) -> bool:
        return self.voiced_at(now) >= settings.min_voiced_seconds + settings.pause_lag_seconds

    def word_interrupts(self, partial: str, now: float, grammar_words: Collection[str]) -> bool:
        return now >= self.counts_from and grammar_word_heard(partial, grammar_words)
