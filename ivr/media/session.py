"""One live call's media: what Twilio's <Gather> does in webhook mode, done by us.

The session plays a Turn's prompts, collects keys (finish key, digit count, the timeout between
keys), starts the no-input timer when the last prompt has *played* (its mark echoed, not when it
was sent), decides barge-in by the step's policy, and turns speech signals into the engine's
events. It knows no wire format: a transport (Media Streams WebSocket, later SIP/RTP) calls

    start(turn)            the engine's answer to the last event
    key(digit)             a DTMF key
    mark_played(name)      the echo of a mark (played *or* cleared: the session tells which)
    audio_frame(bytes, at) caller audio, passed to the SpeechDetector if one is installed
    heard(signal)          a speech signal from a detector the transport runs itself
    tick()                 time has passed (the injectable clock is read); see next_deadline()

and carries out the commands each call returns (PlayAudio, PlaySilence, Mark, Clear), while the
call service acts on the results (Answer → engine event, HandOff → close the stream so the
webhook enqueues / leaves the queue / hangs up, RoundOver → the next queue announcement).
Every method returns a list of outputs and never blocks, so asyncio and thread transports can
both drive it. Each turn ends with exactly one result; inputs after it are ignored until the
next start().

Marks are named by the path of the prompt's text twin ("/prompts/tts/<key>.txt"), as the audio
is named in webhook mode; marks are matched by order, so repeated names are fine.

Speech is heard only at questions that listen (Ask.listen: a recogniser is installed). Speech
that starts while a prompt plays and may not interrupt it (policy "keys"/"none", or too short)
is ignored as a whole; speech that starts after the prompts holds the no-input timer until it
ends; an utterance that ends with no words (noise) starts the wait again.  Speech that cut a
prompt short and then turns out to have no words (a cough, a door, the prompt's own echo) or
only listening sounds ("嗯", "喂") is a false interruption: the prompts play again from the one it cut (LiveKit resumes its speech
likewise), so a noise never leaves the caller in silence without the question.  After
FALSE_INTERRUPTIONS of them in one turn (a television, a speakerphone's lasting echo) only keys
cut that turn's prompts; speech after them is still an answer.
"""
from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from ivr.engine import events as ev
from ivr.engine.actions import Ask, Hold, Pause, Speech, Turn
from ivr.media.barge_in import (BargeInSettings, Utterance, keys_interrupt, only_backchannel, voice_interrupts,
                                words)
from ivr.media.clock import Clock
from ivr.media.commands import (Answer, Clear, HandOff, Mark, Output, PlayAudio, PlaySilence, Result,
                                RoundOver)
from ivr.media.keys import DTMF_KEYS, KeyEntry
from ivr.media.playback import Playback
from ivr.media.speech import SpeechDetector, SpeechEnded, SpeechPaused, SpeechSignal, SpeechStarted, WordsSoFar
from ivr.prompts.audible import Audible

# Timers fire up to a microsecond early, so float rounding of clock sums cannot hold a timer
# back by a whole tick of the transport.
EPSILON = 1e-6
FALSE_INTERRUPTIONS = 2
Understand = Callable[[str, "str | None"], "ev.SpeechHeard | None"]


class AudibleSource(Protocol):
    """What PromptStore offers: how a prompt or pause is heard (recording, TTS cache, <Say>)."""

    def audible(self, item: Speech) -> Audible: ...


def mark_name(audible: Audible) -> str:
    """The text twin's path of the audio ("…/x.wav" → "…/x.txt"); "say" for words without
    audio (no TTS engine installed), which a transport must speak some other way."""
    return audible.path.rsplit(".", 1)[0] + ".txt" if audible.path else "say"


def heard_as_is(text: str, grammar: str | None) -> ev.SpeechHeard:
    """Default understanding: the words without an intent (the call service plugs ivr.nlu in)."""
    return ev.SpeechHeard(text=text)


@dataclass
class _TurnState:
    number: int
    turn: Turn
    policy: str  # barge-in policy while its prompts play
    keys: KeyEntry | None  # None: the wait takes no keys
    timeout: float
    listen: bool
    grammar: str | None
    guard_ends: float
    deadline: float | None = None  # no-input or between-keys timer
    utterance: Utterance | None = None  # speech over a prompt, not yet allowed to interrupt
    answering: bool = False  # speech that is the answer is in progress
    resume_from: int | None = None  # the prompt speech cut short, to replay if it had no words
    false_interruptions: int = 0
    ignoring: bool = False  # speech in progress that must not count
    done: bool = False


class MediaSession:
    def __init__(self, prompts: AudibleSource, clock: Clock, *, detector: SpeechDetector | None = None,
                 understand: Understand = heard_as_is,
                 grammar_words: Callable[[str], Collection[str]] = lambda grammar: (),
                 barge_in: BargeInSettings = BargeInSettings()) -> None:
        self.prompts = prompts
        self.clock = clock
        self.detector = detector
        self.understand = understand
        self.grammar_words = grammar_words
        self.settings = barge_in
        self.playback = Playback()
        self._count = 0
        self._state: _TurnState | None = None

    # --- inputs ------------------------------------------------------------------------------

    def start(self, turn: Turn) -> list[Output]:
        """Play the turn's speech and wait as it says; an unfinished earlier turn is dropped."""
        now = self.clock.now()
        self._count += 1
        out: list[Output] = [Clear()] if self.playback.clear() else []
        wait = turn.wait
        if isinstance(wait, Ask):
            state = _TurnState(self._count, turn, wait.barge_in, KeyEntry(wait.max_digits, wait.finish_on_key),
                               wait.timeout, wait.listen, wait.grammar, now + self.settings.echo_guard_seconds)
        elif isinstance(wait, Hold):  # the queue loop: any key interrupts, one key is the answer
            state = _TurnState(self._count, turn, "keys", KeyEntry(1, ""), wait.timeout, False, None, now)
        else:
            state = _TurnState(self._count, turn, "none", None, 0, False, None, now)
        self._state = state
        out += self._play(state, 0)
        if isinstance(wait, Ask) and self.detector is not None and wait.listen:
            self.detector.begin(wait.grammar)
        if not turn.speech:
            out += self._prompts_played(state, now)
        return out

    def key(self, digit: str) -> list[Output]:
        out = self._fire_due()
        state, now = self._state, self.clock.now()
        if state is None or state.done or state.keys is None or digit not in DTMF_KEYS:
            return out
        if self._playing(state):
            if not keys_interrupt(state.policy):
                return out  # e.g. a legal notice: keys count only once it has played
            out += self._interrupt(state)
        if state.answering or state.utterance is not None:
            state.ignoring, state.answering, state.utterance = True, False, None  # the key wins
        result = state.keys.press(digit)
        if result is None:
            state.deadline = now + state.timeout  # Gather's timeout also runs between keys
            return out
        if isinstance(state.turn.wait, Hold):
            return out + self._finish(state, Answer(ev.QueueKeyPressed(digit)))
        return out + self._finish(state, Answer(result))

    def mark_played(self, name: str) -> list[Output]:
        """A mark came back: the end of that prompt, unless Clear dropped it."""
        out = self._fire_due()
        mark = self.playback.echo(name)
        state = self._state
        if mark is None or mark.cleared or not mark.last or state is None or mark.turn != state.number \
                or state.done:
            return out
        return out + self._prompts_played(state, self.clock.now())

    def heard(self, signal: SpeechSignal) -> list[Output]:
        out = self._fire_due()
        state, now = self._state, self.clock.now()
        if state is None or state.done or not state.listen or (state.keys and state.keys.digits):
            return out
        if isinstance(signal, SpeechStarted):
            if state.utterance is not None:
                state.utterance.resume(now)  # voice again after a pause between words
            elif not (state.answering or state.ignoring):
                self._speech_started(state, now, signal.voiced_seconds)
        elif isinstance(signal, SpeechPaused):
            if state.utterance is not None:
                state.utterance.pause(now - signal.silent_seconds)
        elif isinstance(signal, WordsSoFar):
            if not (state.utterance or state.answering or state.ignoring):
                self._speech_started(state, now)  # a detector that reports words first
            if state.utterance is not None and state.utterance.word_interrupts(
                    signal.text, now + EPSILON, self.grammar_words(state.grammar or "")):
                out += self._interrupt(state)
        elif isinstance(signal, SpeechEnded):
            out += self._speech_ended(state, signal.text, now)
        return out

    def audio_frame(self, frame: bytes, at: float) -> list[Output]:
        """Caller audio; `at` is media time (Media Streams' timestamp), handed to the detector."""
        out = self._fire_due()
        if self.detector is not None:
            for signal in self.detector.feed(frame, at):
                out += self.heard(signal)
        return out

    def tick(self) -> list[Output]:
        return self._fire_due()

    # --- for transports --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When tick() may next have something to do (clock time), or None: wait for input."""
        state = self._state
        if state is None or state.done:
            return None
        times = [state.deadline] if state.deadline is not None else []
        if state.utterance is not None and self._playing(state):
            at = state.utterance.interrupts_at(self.settings)
            if at is not None:
                times.append(at)
        return min(times, default=None)

    def question(self) -> dict | None:
        """The keys the current wait takes, as <Gather> would say it (None: it takes none)."""
        state = self._state
        if state is None or state.done or state.keys is None:
            return None
        return {"timeout": state.timeout, "num_digits": state.keys.max_digits,
                "finish_on_key": state.keys.finish_on_key, "digits": state.keys.digits}

    @property
    def turn_over(self) -> bool:
        return self._state is None or self._state.done

    # --- internals ---------------------------------------------------------------------------------

    def _play(self, state: _TurnState, first: int) -> list[Output]:
        """The turn's speech from prompt `first` on, each prompt followed by its mark."""
        out: list[Output] = []
        speech = state.turn.speech
        for index in range(first, len(speech)):
            item = speech[index]
            audible = self.prompts.audible(item)
            out.append(PlaySilence(item.seconds) if isinstance(item, Pause)
                       else PlayAudio(audible.path, audible.kind, audible.text))
            name = mark_name(audible)
            self.playback.sent(name, state.number, last=index == len(speech) - 1, index=index)
            out.append(Mark(name))
        return out

    def _playing(self, state: _TurnState) -> bool:
        return self.playback.playing(state.number)

    def _interrupt(self, state: _TurnState) -> list[Output]:
        """Barge-in: drop the queued audio; an utterance that did it becomes the answer."""
        if state.utterance is not None:
            state.utterance, state.answering = None, True
            state.resume_from = self.playback.unplayed_from(state.number)
        return [Clear()] if self.playback.clear() else []

    def _prompts_played(self, state: _TurnState, now: float) -> list[Output]:
        wait = state.turn.wait
        if state.keys is None:
            return self._finish(state, HandOff(wait))  # type: ignore[arg-type]
        if state.utterance is not None:  # speech over the prompt's end is the answer
            state.utterance, state.answering = None, True
        if not state.answering and not state.keys.digits and state.deadline is None:
            state.deadline = now + state.timeout
        return []

    def _speech_started(self, state: _TurnState, now: float, voiced_before: float = 0.0) -> None:
        state.ignoring = False
        if not self._playing(state):
            state.answering, state.deadline = True, None  # the caller is answering: hold the timer
        elif voice_interrupts(state.policy):
            state.utterance = Utterance.begin(now, state.guard_ends, voiced_before)
        else:
            state.ignoring = True

    def _speech_ended(self, state: _TurnState, text: str, now: float) -> list[Output]:
        out: list[Output] = []
        if state.utterance is not None:
            if not state.utterance.word_interrupts(text, now, self.grammar_words(state.grammar or "")):
                state.utterance = None  # too short to count: the prompt goes on
                return out
            out += self._interrupt(state)
        if state.ignoring or not state.answering:
            state.ignoring = False
            return out
        state.answering = False
        if not words(text) or state.resume_from is not None and only_backchannel(text):
            if state.resume_from is not None:  # a false interruption: the question again
                first, state.resume_from = state.resume_from, None
                state.false_interruptions += 1
                if state.false_interruptions >= FALSE_INTERRUPTIONS and state.policy == "any":
                    state.policy = "keys"  # a noisy line: only keys cut the prompts now
                state.guard_ends = now + self.settings.echo_guard_seconds
                return out + self._play(state, first)
            state.deadline = now + state.timeout  # noise, no words: wait again
            return out
        event = self.understand(text, state.grammar)
        return out + self._finish(state, Answer(event if event is not None else ev.NoInput()))

    def _fire_due(self) -> list[Output]:
        state, now = self._state, self.clock.now()
        if state is None or state.done:
            return []
        out: list[Output] = []
        utterance = state.utterance
        if utterance is not None and self._playing(state) and utterance.long_enough(now + EPSILON, self.settings):
            out += self._interrupt(state)
        if state.deadline is not None and now + EPSILON >= state.deadline and state.keys is not None:
            if isinstance(state.turn.wait, Hold):
                return out + self._finish(state, RoundOver())
            return out + self._finish(state, Answer(state.keys.timed_out()))
        return out

    def _finish(self, state: _TurnState, result: Result) -> list[Output]:
        state.done, state.deadline, state.utterance = True, None, None
        out: list[Output] = [Clear()] if self.playback.clear() else []
        return out + [result]
