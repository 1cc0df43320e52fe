"""Renders the engine's Turn as TwiML with twilio's own builder."""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather, VoiceResponse

from ivr.engine.actions import Ask, Enqueue, Hangup, Hold, LeaveQueue, Speech, Turn
from ivr.prompts.store import SAY_LANGUAGE, SAY_VOICE, PromptStore


@dataclass(frozen=True)
class TurnUrls:
    """Absolute URLs Twilio will call next; `turn` numbers them so retries are recognised."""

    base: str
    turn: int

    @property
    def answer(self) -> str:
        return f"{self.base}/twilio/turn?t={self.turn}"

    def key_window(self, finish_on_key: str) -> str:
        """The one-second key window before a recording: an entry cut off there by a pause
        is continued by the adapter (see render_key_continuation)."""
        return f"{self.answer}&{urlencode({'w': finish_on_key})}"  # query names in order: Twilio sorts them

    def keyed_so_far(self, keyed: str) -> str:
        """Where the continuation's keys go, with those pressed before the pause (the URL is
        signed by Twilio with everything in it, so the keys cannot be altered on the way)."""
        return f"{self.base}/twilio/turn?{urlencode({'keyed': keyed, 't': self.turn})}"

    @property
    def heard(self) -> str:
        return f"{self.base}/twilio/heard?t={self.turn}"

    @property
    def queue_done(self) -> str:
        return f"{self.base}/twilio/queue/done?t={self.turn}"

    @property
    def queue_wait(self) -> str:
        return f"{self.base}/twilio/queue/wait"

    @property
    def queue_key(self) -> str:
        return f"{self.base}/twilio/queue/key"


def add_speech(target: VoiceResponse | Gather, speech: list[Speech], store: PromptStore, base: str) -> None:
    for item in speech:
        audible = store.audible(item)
        if audible.kind == "say":
            target.say(audible.text, language=SAY_LANGUAGE, voice=SAY_VOICE)
        else:
            target.play(base + audible.path)


@dataclass(frozen=True)
class Listening:
    """How speech is captured in webhook mode (see render_listening_ask)."""

    enabled: bool = False
    record_silence: int = 3  # seconds of silence that end a recorded answer
    max_seconds: int = 10  # an answer is short


def _question(response: VoiceResponse, turn: Turn, wait: Ask, store: PromptStore, base: str,
              **gather: object) -> Gather:
    """The prompts and the <Gather> that takes the answer: prompts inside it, so a key
    interrupts them; before it for a step that may not be interrupted (barge_in: none, e.g. a
    legal notice), so keys count only once it has played.  Webhook mode has no voice barge-in
    (speech is recorded after the prompt): "keys" and "any" are the same here."""
    if wait.barge_in == "none":
        add_speech(response, turn.speech, store, base)
        return response.gather(**gather)
    listener = response.gather(**gather)
    add_speech(listener, turn.speech, store, base)
    return listener


def render_listening_ask(response: VoiceResponse, turn: Turn, wait: Ask, store: PromptStore,
                         urls: TurnUrls, listening: Listening) -> None:
    """Prompt (keys barge in), then record the spoken answer, then keep listening for keys.

    Twilio drops a silent recording and goes on with the next verb, so silence falls through to
    a plain key <Gather> that reports no input when it ends: the whole wait stays as long as in
    keys-only mode, and a key still works at every moment.
    """
    num_digits = 1 if not wait.finish_on_key else None
    window = urls.key_window(wait.finish_on_key) if wait.finish_on_key else urls.answer
    _question(response, turn, wait, store, urls.base, input="dtmf", num_digits=num_digits, timeout=1,
              finish_on_key=wait.finish_on_key, action=window, method="POST")
    response.record(action=urls.heard, method="POST", timeout=listening.record_silence,
                    max_length=listening.max_seconds, play_beep=False, finish_on_key="0123456789*#",
                    trim="trim-silence")
    remaining = max(wait.timeout - 1 - listening.record_silence, 2)
    response.gather(input="dtmf", num_digits=num_digits, timeout=remaining, finish_on_key=wait.finish_on_key,
                    action=urls.answer, method="POST", action_on_empty_result=True)


def render_key_continuation(urls: TurnUrls, keyed: str, finish_on_key: str, timeout: int) -> str:
    """A caller keyed part of a number in the key window and paused: keep collecting, without
    a prompt and without recording, as one entry (no database needed: the keys ride in the
    signed action URL)."""
    response = VoiceResponse()
    response.gather(input="dtmf", timeout=timeout, finish_on_key=finish_on_key, action=urls.keyed_so_far(keyed),
                    method="POST", action_on_empty_result=True)
    return str(response.to_xml())


def render_stream_connect(urls: TurnUrls, stream: str, parameters: dict[str, str]) -> str:
    """Hand the call to a media stream; when it ends, Twilio asks `/twilio/stream/ended`."""
    response = VoiceResponse()
    connect = response.connect(action=f"{urls.base}/twilio/stream/ended", method="POST")
    target = connect.stream(url=stream)
    for name, value in parameters.items():
        target.parameter(name=name, value=value)
    return str(response.to_xml())


def render_turn(turn: Turn, store: PromptStore, urls: TurnUrls, listening: Listening = Listening()) -> str:
    response = VoiceResponse()
    wait = turn.wait
    if isinstance(wait, Ask) and listening.enabled and wait.listen:
        render_listening_ask(response, turn, wait, store, urls, listening)
    elif isinstance(wait, Ask):
        # Prompts go inside <Gather> so a key press interrupts them (keys-only barge-in).
        # With a finish key the entry ends on # (a numDigits cut-off would let that # fall into
        # the next question); without one, the entry ends at its length.
        num_digits = None if wait.finish_on_key else wait.max_digits
        _question(response, turn, wait, store, urls.base, input="dtmf", num_digits=num_digits, timeout=wait.timeout,
                  finish_on_key=wait.finish_on_key, action=urls.answer, method="POST", action_on_empty_result=True)
    elif isinstance(wait, Hold):
        gather = response.gather(input="dtmf", num_digits=1, timeout=wait.timeout, action=urls.queue_key,
                                 method="POST", finish_on_key="")
        add_speech(gather, turn.speech, store, urls.base)
    else:
        add_speech(response, turn.speech, store, urls.base)
        if isinstance(wait, Enqueue):
            response.enqueue(wait.queue, wait_url=urls.queue_wait, wait_url_method="POST",
                             action=urls.queue_done, method="POST")
        elif isinstance(wait, LeaveQueue):
            response.leave()
        elif isinstance(wait, Hangup):
            response.hangup()
    return str(response.to_xml())
