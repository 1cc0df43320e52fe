"""Twilio's end of a bidirectional Media Stream (`<Connect><Stream>`), for the call simulator.

When a call's TwiML says `<Connect><Stream url="wss://…">`, the simulator does what Twilio does:
it opens the WebSocket with the upgrade signed for the `wss://` URL as written, sends `connected`
and `start` (with the `<Parameter>`s), then, moment by moment, sends the caller's audio as 20 ms
`media` frames (silence, speech, or a speakerphone's echo of the prompt), plays what the service
sends — audio in order, each `mark` echoed when the audio before it has played, `clear` dropping
the audio not yet played and echoing its marks at once — and sends keys as `dtmf`.  When the
service closes the socket, `<Connect>` ends and the call goes on with its `action` URL.

Time: on a virtual-time link (`StreamLink.virtual`) each moment costs no real time; the simulator
waits for the service to settle after each step, so calls are exact and repeatable.  On a real
link (a running `python -m ivr streams`) a pump thread lets the moments pass at real pace, as a
phone line does, whatever the caller is doing; the caller's keys and words go out at once (they
barge in) and an action returns when the service's answer has begun to arrive.

The caller's words: `say` speaks real audio (espeak-ng) so the service's VAD hears speech, and
after each stretch of speech one frame carries its words (ivr.hearing.transcript_stream), which
the service's SPEECH=transcript recogniser reports, in place of Vosk.  `audio=` sends any real
recording instead (e.g. Korean speech for the Korean model).
"""
from __future__ import annotations

import math
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Sequence

from ivr.hearing.transcript_stream import words_frame
from ivr.streams import twilio_protocol as wire

from .caller_audio import FRAME_BYTES, SILENCE, frames_of, speech_audio

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

    from ivr.streams.server import CallProgress

    from .twilio_sim import SimCall

FRAME_SECONDS = 0.02
SETTLE_EVERY = 10  # frames between waits for the service while nothing happens (0.2 s)
SETTLE_TIMEOUT = 30.0  # real seconds the service may take to settle (a first prompt render)
MAX_SILENCE = 120.0  # virtual seconds a silent caller waits for the service to act
QUIET_SECONDS = 0.5  # a gap in playback after which a speakerphone's echo canceller re-adapts


class StreamLink(Protocol):
    """How the simulator reaches the service's stream server."""

    virtual: bool

    def connect(self, url: str, headers: dict[str, str]) -> "ClientConnection": ...

    def time_moved(self) -> None: ...

    def progress(self, call_sid: str) -> "CallProgress | None": ...


@dataclass
class Echo:
    """A speakerphone: the prompt comes back at `gain` for the first `seconds` of playback
    after a quiet moment (while the phone's echo canceller adapts), delayed by `delay`."""

    gain: float = 0.1
    seconds: float = 1.5
    delay: float = 0.06


@dataclass
class _Audio:
    data: bytes


@dataclass
class _Marker:
    name: str
    heard: object = None  # the call's Heard entry for the prompt before it


class StreamLeg:
    """One call's stream, from `<Connect><Stream>` until the socket closes."""

    def __init__(self, call: "SimCall", url: str, parameters: dict[str, str], link: StreamLink) -> None:
        self.call, self.url, self.parameters, self.link = call, url, dict(parameters), link
        self.stream_sid = call.sim.new_sid("MZ")
        self.ws: ClientConnection | None = None
        self.closed = False
        self.refused: str | None = None
        self.echo: Echo | None = call.sim.stream_echo
        self.received = 0  # frames from the service
        self.prompts_received = 0  # of which marks: prompts queued to play
        self.clears = 0
        self.waited: float | None = None  # the last silence: prompts played → the service acted
        self._playback: deque[_Audio | _Marker] = deque()
        self._segment_played = False  # some audio before the next mark has been heard
        self._sequence = 0
        self._chunk = 0
        self._media_ms = 0
        self._playing_since: float | None = None  # playback start after a quiet moment (echo)
        self._last_played: float | None = None
        self._played: deque[bytes] = deque(maxlen=50)  # the last second of playback, for a delayed echo
        self._lock = threading.RLock()  # real pace: the pump thread and the caller's actions
        self._speech: deque[bytes] = deque()  # real pace: the caller's frames still to go out
        self._pump: threading.Thread | None = None

    # -- opening and closing -----------------------------------------------------------------

    def open(self, signature: str | None = None) -> bool:
        """The signed upgrade, `connected`, `start`; False when the service refused it."""
        sim = self.call.sim
        headers = {"X-Twilio-Signature": signature if signature is not None else sim.sign(self.url, {})}
        try:
            self.ws = self.link.connect(self.url, headers)
        except Exception as exc:  # noqa: BLE001 - refused or unreachable: Twilio's stream error
            self.refused, self.closed = f"{type(exc).__name__}: {exc}", True
            return False
        self._send(wire.connected_message())
        self._sequence = 1
        self._send(wire.start_message(self.stream_sid, self.call.call_sid, sim.account_sid, self.parameters))
        if self.link.virtual:
            self._settle()
        else:
            self._pump = threading.Thread(target=self._run_pump, name="stream-pump", daemon=True)
            self._pump.start()
            self._await_answer(0)
        return not self.closed

    def stop(self) -> None:
        """The call ends (hang-up, REST update): Twilio sends `stop` and closes the socket."""
        if self.closed or self.ws is None:
            self.closed = True
            return
        with self._lock:
            self._next_sequence()
            try:
                self._send(wire.stop_message(self.stream_sid, self._sequence, self.call.sim.account_sid,
                                             self.call.call_sid))
                self.ws.close()
            except Exception:  # noqa: BLE001 - the service closed it first
                pass
            self.closed = True
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(2)

    # -- the caller --------------------------------------------------------------------------

    def hear_out(self) -> None:
        """After the caller's action: while the service's turn asks nothing (it says something,
        then hands the call off), the caller listens until the socket closes."""
        while not self.closed and self.link.virtual:
            progress = self.link.progress(self.call.call_sid)
            if progress is None or progress.question is not None or not self._playback:
                return
            self.listen()
            self._pass(FRAME_SECONDS)

    def listen(self, seconds: float | None = None) -> None:
        """The caller listens: `seconds` of playback, or until what was sent has played."""
        if not self.link.virtual:
            time.sleep(seconds or 0.0)  # the pump plays; keys and words barge in at once
            return
        if seconds is not None:
            self._pass(seconds)
            return
        while not self.closed and self._playback_seconds() > 0:
            self._pass(self._playback_seconds())

    def press(self, keys: str, after: float | None = None) -> None:
        """Keys as `dtmf`, right after the prompts (after=None) or `after` seconds into them."""
        self.listen(after)
        before = self.prompts_received
        for key in keys:
            if self.closed:
                return
            with self._lock:
                self._next_sequence()
                self._send(wire.dtmf_message(self.stream_sid, self._sequence, key))
            self._pass(0.1)  # a key tone lasts about 0.1 s
        if not self.link.virtual:
            self._await_answer(before)

    def silence(self, limit: float = MAX_SILENCE) -> None:
        """The caller says nothing until the service does something (new audio or hand-off);
        `waited` is then how long after the prompts had played it did."""
        if not self.link.virtual:
            self._await_answer(self.prompts_received, limit)
            return
        self.listen()
        received, started = self.received, self._now()
        while not self.closed and self.received == received and self._now() - started < limit:
            step = SETTLE_EVERY * FRAME_SECONDS
            progress = self.link.progress(self.call.call_sid) if self.link.virtual else None
            if progress is not None and progress.deadline is not None:  # straight to the timer
                step = min(step, max(progress.deadline - self._now(), FRAME_SECONDS))
            self._pass(step)
        self.waited = self._now() - started

    def wait(self, seconds: float) -> None:
        self._pass(seconds)

    def say(self, stretches: Sequence[str], pause: float = 0.0, after: float | None = None,
            audio: bytes | None = None, tail: float = 3.0) -> None:
        """The caller speaks: each stretch of words as espeak-ng speech followed by its words'
        frame, `pause` seconds between stretches; then silence until the service answers
        (at most `tail` s). `audio` (8 kHz μ-law) is sent instead of speech and words."""
        self.listen(after)
        frames: list[bytes] = []
        if audio is not None:
            frames = frames_of(audio)
        else:
            for number, words in enumerate(stretches):
                if number and pause:
                    frames += [SILENCE] * round(pause / FRAME_SECONDS)
                frames += frames_of(speech_audio(words.replace(" ", ""))) + [words_frame(words)]
        spoken = self.prompts_received
        if not self.link.virtual:
            with self._lock:
                self._speech.extend(frames)
            while self._speech and not self.closed:
                time.sleep(FRAME_SECONDS)
            self._await_answer(spoken, tail)
            return
        for frame in frames:
            if self.closed:
                return
            self._frame_out(frame)
            self._settle()
        waited = 0.0
        while not self.closed and self.prompts_received == spoken and waited < tail:
            self._frame_out(SILENCE)
            self._settle()
            waited += FRAME_SECONDS
        self.listen(0.0)

    # -- time --------------------------------------------------------------------------------

    def _now(self) -> float:
        return self.call.sim.clock.elapsed

    def _run_pump(self) -> None:
        """Real pace: every 20 ms the caller's frame goes out, 20 ms of audio plays, what the
        service sent is taken in."""
        due = time.monotonic()
        while not self.closed:
            with self._lock:
                if self.closed:
                    return
                self._frame_out(self._speech.popleft() if self._speech else self._caller_frame())
                self._receive(timeout=0.0)
            due += FRAME_SECONDS
            time.sleep(max(due - time.monotonic(), 0.0))

    def _await_answer(self, prompts_before: int, limit: float = 30.0) -> None:
        """Real pace: wait until the service's next prompt has come (its mark follows its audio,
        so about when it has played) or the socket has closed; the rest arrives meanwhile."""
        deadline = time.monotonic() + limit
        while not self.closed and self.prompts_received == prompts_before and time.monotonic() < deadline:
            time.sleep(FRAME_SECONDS)

    def _pass(self, seconds: float) -> None:
        """`seconds` of the call: the caller's frames go out, the service's audio plays."""
        if not self.link.virtual:
            time.sleep(seconds)
            return
        frames = max(math.ceil(seconds / FRAME_SECONDS - 1e-9), 0)
        for number in range(frames):
            if self.closed:
                return
            echoed = self._frame_out(self._caller_frame())
            if not self.link.virtual or echoed or (number + 1) % SETTLE_EVERY == 0 or number == frames - 1:
                self._settle()
        if frames == 0:
            self._settle()

    def _frame_out(self, frame: bytes) -> bool:
        """One 20 ms moment: send the caller's frame, play 20 ms; True if a mark was echoed."""
        self._next_sequence()
        self._chunk += 1
        self._send(wire.inbound_media(self.stream_sid, self._sequence, self._chunk, self._media_ms, frame))
        self._media_ms += 20
        echoed = self._play_frame()
        self.call.sim.clock.advance(FRAME_SECONDS)
        return echoed

    def _caller_frame(self) -> bytes:
        """Silence, or on a speakerphone the prompt's echo while the echo canceller adapts."""
        echo = self.echo
        if echo is None or self._playing_since is None or self._now() - self._playing_since > echo.seconds:
            return SILENCE
        delay = max(round(echo.delay / FRAME_SECONDS), 0)
        source = self._played[-1 - delay] if len(self._played) > delay else SILENCE
        pcm = audioop.mul(audioop.ulaw2lin(source, 2), 2, echo.gain)
        return audioop.lin2ulaw(pcm, 2)

    # -- playback ----------------------------------------------------------------------------

    def _playback_seconds(self) -> float:
        return sum(len(item.data) for item in self._playback if isinstance(item, _Audio)) / 8000

    def _play_frame(self) -> bool:
        """Play 20 ms of what the service sent; echo the marks reached."""
        echoed = self._echo_marks_reached()
        need, played = FRAME_BYTES, b""
        while need and self._playback and isinstance(self._playback[0], _Audio):
            head = self._playback[0]
            piece, head.data = head.data[:need], head.data[need:]
            played += piece
            need -= len(piece)
            if not head.data:
                self._playback.popleft()
        now = self._now()
        if played:
            self._segment_played = True
            if self._last_played is None or now - self._last_played > QUIET_SECONDS:
                self._playing_since = now  # playback starts again after a quiet moment
            self._last_played = now
        self._played.append(played + b"\xff" * (FRAME_BYTES - len(played)))
        return self._echo_marks_reached() or echoed

    def _echo_marks_reached(self) -> bool:
        echoed = False
        while self._playback and isinstance(self._playback[0], _Marker):
            name = self._playback.popleft().name
            self._segment_played = False
            self._echo(name)
            echoed = True
        return echoed

    def _echo(self, name: str) -> None:
        self._next_sequence()
        self._send(wire.mark_echo(self.stream_sid, self._sequence, name))

    def _clear(self) -> None:
        """Twilio drops the audio not played yet and echoes its marks at once; a prompt of which
        the caller heard nothing is no longer among what the call heard."""
        self.clears += 1
        markers = [item for item in self._playback if isinstance(item, _Marker)]
        self._playback.clear()
        for number, marker in enumerate(markers):
            if number or not self._segment_played:
                self.call._unhear(marker.heard)
            self._echo(marker.name)
        self._segment_played = False

    # -- the socket --------------------------------------------------------------------------

    def _next_sequence(self) -> None:
        self._sequence += 1

    def _send(self, text: str) -> None:
        if self.closed or self.ws is None:
            return
        try:
            self.ws.send(text)
        except Exception:  # noqa: BLE001 - closed by the service
            self.closed = True

    def _settle(self) -> None:
        """Let the service act on everything sent so far, and take in all it sent back."""
        if self.ws is None or self.closed:
            return
        if not self.link.virtual:
            self._receive(timeout=0.0)
            return
        self.link.time_moved()
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            progress = self.link.progress(self.call.call_sid)
            if progress is not None and (progress.closed or progress.settled
                                         and progress.handled_sequence >= self._sequence):
                break
            if progress is None:  # the stream has not started (or was refused): watch the socket
                self._receive(timeout=0.001)
                if self.closed:
                    return
            else:
                time.sleep(0.0002)
            if time.monotonic() > deadline:
                raise self.call._error(f"the stream server did not settle within {SETTLE_TIMEOUT:.0f} s")
        if progress.closed:  # the service closed the stream: read what it sent before
            self._receive(timeout=5.0, until_closed=True)
        else:
            while self.received < progress.frames_sent and not self.closed:
                self._receive(timeout=5.0, at_most=progress.frames_sent - self.received)

    def _receive(self, timeout: float, until_closed: bool = False, at_most: int | None = None) -> None:
        """Read frames from the service: those ready (timeout 0), or up to `at_most`, or all
        until it closes the socket."""
        count = 0
        while self.ws is not None and not self.closed and (at_most is None or count < at_most):
            try:
                frame = self.ws.recv(timeout=timeout)
            except TimeoutError:
                if until_closed or at_most is not None:
                    raise self.call._error("the stream server's frames did not arrive "
                                           f"({self.received} received)") from None
                return
            except Exception:  # noqa: BLE001 - the service closed the socket
                self.closed = True
                self.ws.close()
                return
            count += 1
            self._take(frame)
            if at_most is None and not until_closed:
                timeout = 0.0

    def _take(self, frame: str | bytes) -> None:
        self.received += 1
        message = wire.parse_outbound(frame)
        if isinstance(message, wire.PlayMedia):
            if self._playback and isinstance(self._playback[-1], _Audio):
                self._playback[-1].data += message.audio
            else:
                self._playback.append(_Audio(message.audio))
        elif isinstance(message, wire.PlayMark):
            self.prompts_received += 1
            # Heard as it is queued (as the simulator hears a <Play>); taken back if cleared unplayed.
            self._playback.append(_Marker(message.name, self.call._hear_stream_prompt(message.name)))
        else:
            self._clear()

