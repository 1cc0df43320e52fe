"""The media session does what <Gather> does, on virtual time: keys, timers from the mark echo,
barge-in by policy, echo guard, speech answers, and the hand-off for waits outside the stream."""
from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ivr.engine import events as ev
from ivr.engine.actions import Ask, Enqueue, Hangup, Hold, LeaveQueue, Nothing, Pause, Prompt, Turn
from ivr.media.barge_in import BargeInSettings, grammar_word_heard, words
from ivr.media.clock import VirtualClock
from ivr.media.commands import Answer, Clear, HandOff, Mark, Output, PlayAudio, PlaySilence, RoundOver
from ivr.media.session import MediaSession
from ivr.media.speech import SpeechEnded, SpeechPaused, SpeechStarted, WordsSoFar
from ivr.db.schema import make_engine, session_factory, upgrade
from ivr.prompts import library
from ivr.prompts.recorded import RecordingIndex
from ivr.prompts.store import PromptStore
from studio_audio import silent_take

RECORDED = ("menu", "notice", "still", "goodbye")


def wav(prompt_id: str) -> str:
    """The URL path of a recorded prompt: takes are numbered in the order the fixture saves them."""
    return f"/prompts/rec/cmn/{RECORDED.index(prompt_id) + 1}/{prompt_id}.wav"


def txt(prompt_id: str) -> str:
    return wav(prompt_id)[:-4] + ".txt"


MENU, NOTICE = txt("menu"), txt("notice")
GRAMMAR = {"main_menu": frozenset({"人工", "预约", "一"})}
RESULTS = (Answer, HandOff, RoundOver)


@pytest.fixture()
def store(tmp_path: Path) -> PromptStore:
    """A real prompt store whose prompts all have recordings in a real database (no TTS engine needed)."""
    db = make_engine(f"sqlite:///{tmp_path / 'prompts.sqlite'}")
    upgrade(db)
    sessions = session_factory(db)
    take = silent_take(tmp_path, 0.5)
    with sessions() as tx, tx.begin():
        for prompt_id in RECORDED:
            library.save_take(tx, "cmn", prompt_id, take, text=prompt_id, source_name="take.wav", actor="sup",
                              now=datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc))
    recordings = RecordingIndex(tmp_path / "cache", sessions)
    recordings.refresh()
    return PromptStore(None, tmp_path / "cache", {"cmn": {pid: pid for pid in RECORDED}}, recordings)



def say(prompt_id: str) -> Prompt:
    return Prompt(prompt_id, "cmn", prompt_id)


class Call:
    """A session on a virtual clock, keeping every output it returned."""

    def __init__(self, store: PromptStore, **options) -> None:
        self.clock = VirtualClock(100.0)
        self.session = MediaSession(store, self.clock, grammar_words=lambda g: GRAMMAR.get(g, frozenset()),
                                    **options)
        self.out: list[Output] = []

    def _keep(self, outputs: list[Output]) -> list[Output]:
        self.out += outputs
        return outputs

    def start(self, turn: Turn) -> list[Output]:
        return self._keep(self.session.start(turn))

    def keys(self, digits: str) -> list[Output]:
        return self._keep([o for d in digits for o in self.session.key(d)])

    def echo(self, name: str) -> list[Output]:
        return self._keep(self.session.mark_played(name))

    def hear(self, signal) -> list[Output]:
        return self._keep(self.session.heard(signal))

    def wait(self, seconds: float, step: float = 0.01) -> list[Output]:
        """Let time pass, ticking every `step` seconds as a transport's timer would."""
        end = self.clock.now() + seconds
        outputs: list[Output] = []
        while self.clock.now() < end - 1e-9:
            self.clock.advance(min(step, end - self.clock.now()))
            outputs += self.session.tick()
        return self._keep(outputs)

    def results(self) -> list[Output]:
        return [o for o in self.out if isinstance(o, RESULTS)]


def ask(**fields) -> Ask:
    values = {"max_digits": 1, "finish_on_key": "", "timeout": 8} | fields
    return Ask(**values)


# --- playing ---------------------------------------------------------------------------------

def test_prompts_and_pauses_are_queued_each_with_a_mark_named_by_its_text_twin(store: PromptStore) -> None:
    out = Call(store).start(Turn([say("menu"), Pause(1.5), say("notice")], ask()))
    assert out == [PlayAudio(wav("menu"), "play", "menu"), Mark(MENU),
                   PlaySilence(1.5), Mark("/prompts/silence-500ms.txt"),
                   PlayAudio(wav("notice"), "play", "notice"), Mark(NOTICE)]


def test_words_without_audio_are_passed_on_to_be_spoken(store: PromptStore) -> None:
    out = Call(store).start(Turn([Prompt("unrecorded", "cmn", "您好")], ask()))
    assert out == [PlayAudio("", "say", "您好"), Mark("say")]


# --- keys --------------------------------------------------------------------------------------

def test_a_key_during_a_prompt_clears_it_at_once_and_counts(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask()))
    call.wait(2)
    assert call.keys("2") == [Clear(), Answer(ev.KeysPressed("2", True))]


def test_the_finish_key_ends_the_entry_and_is_not_part_of_it(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask(max_digits=4, finish_on_key="#")))
    out = call.keys("12345#")  # no length cut-off with a finish key, as in webhook mode
    assert out == [Clear(), Answer(ev.KeysPressed("12345", True))]


def test_the_finish_key_alone_is_no_input(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([], ask(max_digits=4, finish_on_key="#")))
    assert call.keys("#") == [Answer(ev.NoInput())]


def test_without_a_finish_key_the_entry_ends_at_its_length(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([], ask(max_digits=3)))
    assert call.keys("12") == []
    assert call.keys("3") == [Answer(ev.KeysPressed("123", True))]
    assert call.keys("4") == [] and call.wait(20) == []  # the turn is over: nothing more


def test_a_pause_between_keys_ends_the_entry_unfinished(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([], ask(max_digits=11, finish_on_key="#")))
    call.keys("13")
    call.wait(5)
    call.keys("8")  # the timer starts again at each key
    assert call.wait(7.99) == []
    assert call.wait(0.01) == [Answer(ev.KeysPressed("138", False))]


def test_unknown_key_names_are_ignored(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([], ask()))
    assert call.keys("A") == [] and call.keys("9") == [Answer(ev.KeysPressed("9", True))]


# --- the no-input timer and marks ---------------------------------------------------------

def test_no_input_timer_starts_when_the_last_prompt_has_played_not_when_it_was_sent(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu"), say("notice")], ask(timeout=8)))
    assert call.wait(25) == []  # a long prompt: sent at once, still playing
    assert call.session.next_deadline() is None  # no timer runs while it plays
    assert call.echo(MENU) == [] and call.wait(10) == []  # the first one only
    call.echo(NOTICE)
    assert call.session.next_deadline() == pytest.approx(call.clock.now() + 8)
    assert call.wait(7.99) == []
    assert call.wait(0.01) == [Answer(ev.NoInput())]


def test_marks_echoed_after_a_clear_count_as_cleared_and_start_no_timer(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu"), say("notice")], ask(max_digits=4, finish_on_key="#")))
    call.keys("1")  # barge-in: Twilio sends both marks back at once
    assert call.out[-1] == Clear()
    call.wait(3)
    call.echo(MENU), call.echo(NOTICE)
    assert call.wait(4.99) == []  # the timer runs from the key, not from the echoes
    assert call.wait(0.01) == [Answer(ev.KeysPressed("1", False))]
    assert call.wait(20) == [] and len(call.results()) == 1


def test_late_echoes_of_a_cleared_turn_do_not_start_the_next_turns_timer(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask()))
    call.keys("1")
    call.start(Turn([say("menu")], ask(timeout=8)))  # the same prompt again, before the old echo
    call.echo(MENU)  # the old, cleared one
    assert call.wait(30) == []
    call.echo(MENU)  # the new one has played
    assert call.wait(8) == [Answer(ev.NoInput())]


def test_a_new_turn_clears_audio_still_queued(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask()))
    out = call.start(Turn([say("notice")], ask()))
    assert out[0] == Clear() and out[1:] == [PlayAudio(wav("notice"), "play", "notice"),
                                             Mark(NOTICE)]


def test_an_echo_of_a_mark_never_sent_is_ignored(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask()))
    assert call.echo("/prompts/rec/cmn/other.txt") == [] and call.wait(30) == []


def test_playback_tells_played_from_cleared_and_keeps_echo_order() -> None:
    from ivr.media.playback import Playback
    playback = Playback()
    playback.sent("a", 1, last=False), playback.sent("b", 1, last=True)
    first = playback.echo("a")
    assert first is not None and not first.cleared and playback.playing(1)
    assert playback.clear() and not playback.playing(1)
    second = playback.echo("b")
    assert second is not None and second.cleared and second.last
    assert not playback.clear()  # nothing left to clear
    playback.sent("c", 2, last=False), playback.sent("c", 2, last=True)
    assert playback.echo("zzz") is None and playback.playing(2)
    assert playback.echo("c").last is False and playback.echo("c").last is True  # same name, in order


# --- barge-in policies ---------------------------------------------------------------------

def test_keys_only_policy_ignores_speech_over_the_prompt(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu", barge_in="keys")))
    call.wait(4)
    call.hear(SpeechStarted())
    call.wait(2)
    call.hear(WordsSoFar("转 人工"))
    assert call.hear(SpeechEnded("转 人工")) == [] and Clear() not in call.out
    assert call.keys("1") == [Clear(), Answer(ev.KeysPressed("1", True))]  # keys still interrupt


def test_keys_only_policy_hears_speech_once_the_prompt_has_played(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu", barge_in="keys")))
    call.echo(MENU)
    call.hear(SpeechStarted())
    call.wait(12)  # the caller is speaking: no timeout meanwhile
    assert call.hear(SpeechEnded("转 人工")) == [Answer(ev.SpeechHeard("转 人工"))]


def test_policy_none_ignores_keys_until_the_prompt_has_played(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("notice")], ask(barge_in="none")))
    assert call.keys("1") == [] and Clear() not in call.out
    call.echo(NOTICE)
    assert call.keys("1") == [Answer(ev.KeysPressed("1", True))]


def test_policy_none_ignores_speech_over_the_prompt(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("notice")], ask(listen=True, grammar="main_menu", barge_in="none")))
    call.wait(5)
    call.hear(SpeechStarted())
    call.wait(3)
    call.hear(WordsSoFar("人工"))
    call.echo(NOTICE)  # the notice ends while the caller is still talking over it
    assert call.hear(SpeechEnded("人工")) == [] and call.results() == []
    assert call.wait(8) == [Answer(ev.NoInput())]


# --- speech barge-in -------------------------------------------------------------------------

def test_speech_interrupts_after_the_minimum_of_voice_not_before(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    call.wait(4)  # past the echo guard
    call.hear(SpeechStarted())
    assert call.session.next_deadline() == pytest.approx(call.clock.now() + 0.5)
    assert call.wait(0.49) == []
    assert call.wait(0.01) == [Clear()]
    call.echo(MENU)  # cleared: no timer
    call.wait(20)
    assert call.hear(SpeechEnded("我 要 预约")) == [Answer(ev.SpeechHeard("我 要 预约"))]


def test_short_speech_over_a_prompt_is_neither_barge_in_nor_answer(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    call.wait(4)
    call.hear(SpeechStarted())
    call.wait(0.3)
    assert call.hear(SpeechEnded("嗯")) == []  # a backchannel: the menu goes on
    call.echo(MENU)
    assert call.wait(8) == [Answer(ev.NoInput())]


def test_a_grammar_word_interrupts_before_the_minimum(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    call.wait(4)
    call.hear(SpeechStarted())
    call.wait(0.1)
    assert call.hear(WordsSoFar("转")) == []  # not a word of the grammar
    assert call.hear(WordsSoFar("转 人工")) == [Clear()]


def test_the_echo_guard_ignores_speech_at_the_start_of_a_turns_audio(store: PromptStore) -> None:
    call = Call(store, barge_in=BargeInSettings(min_voiced_seconds=0.5, echo_guard_seconds=3.0))
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    call.wait(0.5)
    call.hear(SpeechStarted())  # the prompt's own echo on a speakerphone, or the caller
    assert call.hear(WordsSoFar("人工")) == []  # even a grammar word does not count yet
    assert call.wait(2.49) == []  # voice counts only from the end of the guard (3.0 s)...
    assert call.wait(0.01) == []
    assert call.wait(0.49) == []
    assert call.wait(0.01) == [Clear()]  # ...and interrupts 0.5 s after it


def test_speech_without_a_recogniser_is_not_heard(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([], ask(grammar="main_menu")))  # listen=False: keys-only question
    call.hear(SpeechStarted())
    assert call.hear(SpeechEnded("人工")) == []
    assert call.wait(8) == [Answer(ev.NoInput())]


def test_noise_without_words_starts_the_wait_again(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([], ask(listen=True, grammar="main_menu")))
    call.wait(6)
    call.hear(SpeechStarted())
    call.wait(1)
    assert call.hear(SpeechEnded("[unk]")) == []
    assert call.wait(7.99) == [] and call.wait(0.01) == [Answer(ev.NoInput())]


def test_speech_not_understood_is_no_input(store: PromptStore) -> None:
    call = Call(store, understand=lambda text, grammar: None)
    call.start(Turn([], ask(listen=True, grammar="main_menu")))
    call.hear(SpeechStarted())
    assert call.hear(SpeechEnded("天气 很 好")) == [Answer(ev.NoInput())]


def test_a_key_wins_over_speech_in_progress(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([], ask(listen=True, grammar="main_menu")))
    call.hear(SpeechStarted())
    assert call.keys("0") == [Answer(ev.KeysPressed("0", True))]
    assert call.hear(SpeechEnded("人工")) == []


def test_chinese_words_are_counted_as_the_recogniser_separates_them() -> None:
    assert words("我 要 转 人工") == ["我", "要", "转", "人工"]
    assert words("[unk] 人工 <unk>") == ["人工"]
    assert words("我要转人工") == ["我要转人工"]  # one token is one word, not five
    assert grammar_word_heard("我 要 人工", {"人工"})
    assert not grammar_word_heard("人 工", {"人工"})  # characters are not the word
    assert not grammar_word_heard("工人", {"人工"})


# --- queue and hand-off ------------------------------------------------------------------------

def test_hold_collects_the_leave_key_and_interrupts_the_announcement(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("still")], Hold(leave_key="1", timeout=30)))
    assert call.keys("1") == [Clear(), Answer(ev.QueueKeyPressed("1"))]


def test_a_hold_round_ends_its_timeout_after_the_announcement(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("still")], Hold(leave_key="1", timeout=30)))
    call.wait(12)
    call.echo(txt("still"))
    assert call.wait(29.99) == [] and call.wait(0.01) == [RoundOver()]


@pytest.mark.parametrize("wait", [Enqueue("hotline"), Hangup(), LeaveQueue(), Nothing()])
def test_waits_outside_the_stream_hand_off_once_the_prompts_have_played(store: PromptStore, wait) -> None:
    call = Call(store)
    call.start(Turn([say("goodbye")], wait))
    assert call.keys("1") == [] and call.wait(30) == []  # the goodbye is not cut short
    assert call.echo(txt("goodbye")) == [HandOff(wait)]


def test_a_hand_off_without_prompts_is_immediate(store: PromptStore) -> None:
    assert Call(store).start(Turn([], Enqueue("hotline"))) == [HandOff(Enqueue("hotline"))]


# --- any sequence -------------------------------------------------------------------------------

def test_random_sequences_never_raise_and_end_each_turn_with_exactly_one_result(store: PromptStore) -> None:
    """Keys, time, echoes (in order, early or late) and speech in any order: each turn ends with
    one result once its audio has come back and the caller has stopped."""
    speech = [SpeechStarted(), WordsSoFar("人工"), WordsSoFar("嗯"), SpeechEnded(""),
              SpeechEnded("我 要 预约")]
    for seed in range(300):
        rng = random.Random(seed)
        call = Call(store, barge_in=BargeInSettings(echo_guard_seconds=rng.choice([0.0, 1.0, 3.0])))
        for _turn in range(3):
            wait = rng.choice([ask(max_digits=rng.randint(1, 4), finish_on_key=rng.choice(["", "#"]),
                                   listen=rng.random() < 0.5, grammar="main_menu",
                                   barge_in=rng.choice(["any", "keys", "none"])),
                               Hold("1", 30), Enqueue("q"), Hangup()])
            prompts = [rng.choice([say("menu"), say("notice"), Pause(0.5)]) for _ in range(rng.randint(0, 3))]
            before, sent_from = len(call.results()), len(call.out)
            unechoed = [o.name for o in call.start(Turn(prompts, wait)) if isinstance(o, Mark)]
            echoed = 0
            for _ in range(rng.randint(0, 25)):
                action = rng.random()
                if action < 0.3:
                    call.keys(rng.choice("0123456789*#"))
                elif action < 0.5:
                    call.wait(rng.choice([0.05, 0.3, 1.0, 4.0]), step=0.05)
                elif action < 0.7 and unechoed:
                    call.echo(unechoed.pop(0))
                    echoed += 1
                elif action < 0.8:
                    call.echo("/prompts/rec/cmn/other.txt")
                else:
                    call.hear(rng.choice(speech))
            call.hear(SpeechEnded(""))
            # every mark still out, those of prompts replayed after a false interruption too
            for name in [o.name for o in call.out[sent_from:] if isinstance(o, Mark)][echoed:]:
                call.echo(name)
            call.wait(40, step=0.5)
            assert len(call.results()) - before == 1, (seed, wait, prompts, call.out)


# --- audio frames through a detector ----------------------------------------------------------

def tone(seconds: float, dbfs: float) -> list[bytes]:
    """20 ms μ-law frames of a 440 Hz tone at `dbfs`, as Media Streams would carry a voice."""
    import audioop
    import math
    import struct
    amplitude = 32767 * 10 ** (dbfs / 20) * math.sqrt(2)
    frames = []
    for f in range(round(seconds / 0.02)):
        pcm = b"".join(struct.pack("<h", int(amplitude * math.sin(2 * math.pi * 440 * (f * 160 + i) / 8000)))
                       for i in range(160))
        frames.append(audioop.lin2ulaw(pcm, 2))
    return frames


def feed(call: Call, frames: list[bytes]) -> list[tuple[float, Output]]:
    timed = []
    for frame in frames:
        call.clock.advance(0.02)
        timed += [(call.clock.now(), o) for o in call._keep(call.session.audio_frame(frame, call.clock.now()))]
    return timed


def test_loud_audio_interrupts_a_prompt_through_the_detector_and_quiet_audio_does_not(store: PromptStore) -> None:
    from ivr.media.energy import EnergyDetector, mulaw_dbfs
    assert mulaw_dbfs(tone(0.02, -20)[0]) == pytest.approx(-20, abs=0.5)
    call = Call(store, detector=EnergyDetector(), barge_in=BargeInSettings(echo_guard_seconds=0.0))
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    assert feed(call, tone(2.0, -60)) == []  # line noise
    began = call.clock.now()
    timed = feed(call, tone(1.0, -20))
    assert [o for _, o in timed] == [Clear()]
    assert timed[0][0] - began == pytest.approx(0.2 + 0.5)  # detector's start delay + min voice
    assert feed(call, tone(0.78, -60)) == []
    # The sound that cut the menu ended with no words: a false interruption, the menu again
    menu = [PlayAudio(wav("menu"), "play", "menu"), Mark(txt("menu"))]
    assert [o for _, o in feed(call, tone(0.02, -60))] == menu
    assert call.wait(8) == []  # the no-input timer waits for the replayed menu to play
    call.echo(txt("menu"))  # the cleared mark of the first menu
    call.echo(txt("menu"))  # the replay has played
    assert call.wait(8) == [Answer(ev.NoInput())]


def test_a_noise_that_cut_the_second_prompt_replays_from_that_prompt(store: PromptStore) -> None:
    call = Call(store, barge_in=BargeInSettings(echo_guard_seconds=0.0))
    call.start(Turn([say("notice"), say("menu")], ask(listen=True, grammar="main_menu")))
    call.echo(txt("notice"))  # the notice has played, the menu is playing
    call.hear(SpeechStarted())
    assert call.wait(0.6) == [Clear()]
    assert call.hear(SpeechEnded("")) == [PlayAudio(wav("menu"), "play", "menu"),
                                          Mark(txt("menu"))]


def test_a_short_grammar_word_over_a_prompt_interrupts_and_answers(store: PromptStore) -> None:
    call = Call(store)
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    call.wait(4)
    call.hear(SpeechStarted())
    call.wait(0.3)  # shorter than the minimum, but a word of the grammar
    assert call.hear(SpeechEnded("人工")) == [Clear(), Answer(ev.SpeechHeard("人工"))]


def test_a_noisy_line_stops_cutting_the_prompts_after_two_false_interruptions(store: PromptStore) -> None:
    call = Call(store, barge_in=BargeInSettings(echo_guard_seconds=0.0))
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    for _ in range(2):
        call.hear(SpeechStarted())
        assert call.wait(0.6) == [Clear()]
        call.hear(SpeechEnded(""))  # no words: the menu again
    call.hear(SpeechStarted())
    assert call.wait(2.0) == []  # noise no longer cuts it
    call.hear(SpeechEnded(""))
    assert call.keys("1")[0] == Clear()  # keys still do


def test_a_listening_sound_that_cut_a_prompt_replays_it_but_after_the_prompt_it_is_heard(store: PromptStore) -> None:
    call = Call(store, barge_in=BargeInSettings(echo_guard_seconds=0.0))
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    call.hear(SpeechStarted())
    assert call.wait(0.6) == [Clear()]
    assert call.hear(SpeechEnded("嗯")) == [PlayAudio(wav("menu"), "play", "menu"),
                                           Mark(txt("menu"))]
    call.echo(txt("menu"))
    call.echo(txt("menu"))
    call.hear(SpeechStarted())
    assert call.hear(SpeechEnded("嗯")) == [Answer(ev.SpeechHeard("嗯"))]  # 嗯 may be 五 in Shanghainese


def test_only_voiced_time_counts_towards_barge_in(store: PromptStore) -> None:
    """A 0.34 s sound is reported after 0.2 s of voice; its pause comes 0.1 s after it stops:
    0.34 s of voice is short of the 0.5 s minimum however long the endpointer then waits."""
    call = Call(store, barge_in=BargeInSettings(echo_guard_seconds=0.0))
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    call.wait(2)
    call.hear(SpeechStarted(voiced_seconds=0.2))
    call.wait(0.24)
    assert call.hear(SpeechPaused(silent_seconds=0.1)) == []
    assert call.wait(0.7) == []  # the long wait for an incomplete answer: still no clear
    assert call.hear(SpeechEnded("네")) == []  # not a word of the grammar: the menu goes on
    call.hear(SpeechStarted(voiced_seconds=0.2))  # a real answer: 0.2 + 0.3 s of voice
    assert call.wait(0.35) == [Clear()]


def test_voice_after_a_pause_goes_on_counting(store: PromptStore) -> None:
    call = Call(store, barge_in=BargeInSettings(echo_guard_seconds=0.0))
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    call.wait(1)
    call.hear(SpeechStarted(voiced_seconds=0.2))
    call.wait(0.2)
    call.hear(SpeechPaused(silent_seconds=0.1))  # 0.3 s voiced so far
    call.wait(0.5)
    call.hear(SpeechStarted())
    assert call.wait(0.15) == []
    assert call.wait(0.1) == [Clear()]  # 0.3 + 0.2 s


def test_a_sound_just_short_of_the_minimum_waits_for_its_pause(store: PromptStore) -> None:
    """With the detector's pause lag, 0.45 s of voice whose pause arrives 0.18 s late is no barge-in."""
    call = Call(store, barge_in=BargeInSettings(echo_guard_seconds=0.0, pause_lag_seconds=0.18))
    call.start(Turn([say("menu")], ask(listen=True, grammar="main_menu")))
    call.wait(1)
    call.hear(SpeechStarted(voiced_seconds=0.2))
    assert call.wait(0.43) == []  # 0.63 s after the voice began, 0.45 s of it voiced
    assert call.hear(SpeechPaused(silent_seconds=0.18)) == []
    assert call.wait(1.0) == []
    call.hear(SpeechStarted())
    assert call.wait(0.2) == []
    assert call.wait(0.05) == [Clear()]  # 0.45 + 0.23 ≥ 0.5 + 0.18
