"""The Media Streams WebSocket server: one live call per socket, in its own asyncio process.

It only translates: Twilio's frames become media-session calls (ivr/media), the session's
commands become frames, and the session's answers go to the call service (in a thread: the
database is synchronous) whose Turns the session plays next.  A turn whose wait leaves the
stream (the queue, a hang-up) closes the socket; Twilio then requests `<Connect action>` and
the webhook adapter goes on from the stored state (/twilio/stream/ended).  The web workers
that answer webhooks never hold a socket.

Time: live calls read the monotonic clock; the simulator gives the server its virtual clock
(`clock=`) and says when it moved (`time_moved()`), and waits for a call to settle
(`progress()`: every frame handled, every speech signal acted on, every frame sent) before it
plays the next moment of the call, so whole calls run on virtual time over a real socket.

Accepted: only an upgrade Twilio signed for the `wss://` URL, then a `start` whose token is
this call's (`stream_token`) for a call that has not started yet — a replayed upgrade or a
second stream for one call is closed at once.
"""
from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
import hmac
import logging
import time
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ivr.calls import Turns
from ivr.engine.actions import Ask, Turn
from ivr.engine.events import SpeechHeard
from ivr.hearing.build import endpoint_settings
from ivr.media.barge_in import BargeInSettings
from ivr.media.clock import Clock, MonotonicClock
from ivr.media.commands import Answer, Clear, HandOff, Mark, Output, PlayAudio, PlaySilence, RoundOver
from ivr.media.session import MediaSession
from ivr.media.speech import SpeechSignal
from ivr.runtime import Runtime
from ivr.streams import twilio_protocol as wire
from ivr.streams.audio import prompt_audio
from ivr.streams.listener import PAUSE_LAG_SECONDS, CallListener
from ivr.streams.upgrade import STREAM_PATH, stream_token, stream_url, upgrade_is_signed

log = logging.getLogger(__name__)
SEND_BYTES = 1600  # 0.2 s of μ-law per media message
LEAD_SECONDS = 1.0  # audio sent ahead of what Twilio is playing: enough against jitter, little to clear
SILENCE = b"\xff"  # μ-law zero
TURN_THREADS = 2
CALLS_PER_BATCHED_FRAME = 10  # caller audio goes to the listener a frame at a time up to 10 live
MAX_FEED_FRAMES = 5  # calls, 2 frames at 20, … up to 100 ms at 50 calls (docs/benchmarks.md)


@functools.lru_cache(maxsize=128)
def grammar_words(grammars_dir: Path, grammar: str) -> frozenset[str]:
    """The words whose hearing lets speech interrupt a prompt at once: the step's phrases, whole
    and by the recogniser's words (Vosk separates Chinese words with spaces)."""
    from ivr.nlu import all_phrases
    if not grammar:
        return frozenset()
    phrases = all_phrases(grammar, grammars_dir)
    return frozenset(phrases) | frozenset(word for phrase in phrases for word in phrase.split())


@dataclass(frozen=True)
class _Frame:
    text: str
    seconds: float = 0.0  # audio it carries
    is_mark: bool = False
    is_clear: bool = False


@dataclass(frozen=True)
class CallProgress:
    """Where one streamed call stands, for a simulator on virtual time."""

    handled_sequence: int  # the last sequenceNumber from Twilio acted on
    frames_sent: int  # frames written to the socket (audio a clear dropped unsent is not among them)
    settled: bool  # nothing in hand: no frame, speech signal, clock move or answer pending
    question: dict | None  # the keys the current question takes (timeout, digits, finish key)
    closed: bool = False  # the service has closed this call's socket
    deadline: float | None = None  # when a timer of the call fires next (clock time)


class StreamServer:
    def __init__(self, rt: Runtime, lead_seconds: float = LEAD_SECONDS, clock: Clock | None = None) -> None:
        """lead_seconds: how far ahead of Twilio's playback audio is sent (tests send at once);
        clock: the simulator's virtual clock (None: the monotonic clock of live calls)."""
        self.rt = rt
        self.lead = lead_seconds
        self.clock = clock or MonotonicClock()
        self.virtual = clock is not None
        self.url = stream_url(rt.settings.public_base_url)
        self.calls: dict[str, _Call] = {}
        self.finished: dict[str, CallProgress] = {}  # the last calls' final progress
        self.loop: asyncio.AbstractEventLoop | None = None

    def time_moved(self) -> None:
        """The virtual clock moved (from any thread): calls re-read it and fire due timers."""
        if self.loop is not None:
            for call in list(self.calls.values()):
                self.loop.call_soon_threadsafe(call.time_moved.set)

    def progress(self, call_sid: str) -> CallProgress | None:
        """A call's progress (None: no stream of it has started); safe from another thread."""
        call = self.calls.get(call_sid)
        return call.progress() if call is not None else self.finished.get(call_sid)

    def check_upgrade(self, _connection: ServerConnection, request: Request) -> Response | None:
        if request.path != STREAM_PATH or not upgrade_is_signed(self.rt.settings.twilio_auth_token, self.url,
                                                                request.headers):
            log.warning("stream upgrade refused: %s", "wrong path" if request.path != STREAM_PATH
                        else "bad or missing Twilio signature")
            return _connection.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
        return None

    async def serve(self, host: str, port: int) -> Server:
        self.loop = asyncio.get_running_loop()
        # Turns and prompt loads run in threads; each holds the GIL while the engine and the
        # ORM work, and the event loop (keys, clears, audio of every call) waits for it. Few
        # threads keep the loop's waits short; turns are a few ms each (docs/benchmarks.md).
        self.loop.set_default_executor(ThreadPoolExecutor(max_workers=TURN_THREADS,
                                                          thread_name_prefix="stream-turns"))
        return await serve(self.handle, host, port, process_request=self.check_upgrade, compression=None,
                           max_size=wire.MAX_FRAME_CHARS * 2, ping_interval=20)

    async def handle(self, ws: ServerConnection) -> None:
        try:
            start = await self._opening(ws)
            if start is None:
                return
            call = _Call(self.rt, ws, start, self.lead, self.clock, self.virtual)
            call.live_calls = lambda: len(self.calls)
            self.calls[start.call_sid] = call
            try:
                await call.run()
            finally:
                await ws.close()
                final = call.progress()
                self.finished[start.call_sid] = CallProgress(final.handled_sequence, final.frames_sent, True,
                                                             None, closed=True)
                while len(self.finished) > 256:
                    self.finished.pop(next(iter(self.finished)))
                self.calls.pop(start.call_sid, None)
        except wire.ProtocolError as exc:
            log.warning("stream closed: %s", exc)
        except ConnectionClosed:
            pass
        finally:
            await ws.close()

    async def _opening(self, ws: ServerConnection) -> wire.Start | None:
        first = wire.parse(await ws.recv())
        start = first if isinstance(first, wire.Start) else wire.parse(await ws.recv())
        if not isinstance(start, wire.Start):
            raise wire.ProtocolError("no start message")
        expected = stream_token(self.rt.settings.id_hash_secret, start.call_sid)
        if not hmac.compare_digest(start.parameters.get("token", ""), expected):
            log.warning("stream for call %s refused: wrong token", start.call_sid)
            return None
        if await asyncio.to_thread(self._started, start.call_sid):
            log.warning("stream for call %s refused: the call already has one", start.call_sid)
            return None
        return start

    def _started(self, call_sid: str) -> bool:
        from ivr.db.models import CallSession
        with self.rt.sessions() as db:
            return db.get(CallSession, call_sid) is not None


class _Call:
    """One call on one socket.  Frames go out through a queue drained by a writer task, so the
    reader takes the caller's keys while a long prompt is still being sent, and a barge-in drops
    the audio not yet sent as well as what Twilio holds (`clear`)."""

    def __init__(self, rt: Runtime, ws: ServerConnection, start: wire.Start, lead: float, clock: Clock,
                 virtual: bool = False) -> None:
        """virtual: timers fire when the clock is said to have moved, never on their own."""
        self.rt, self.ws, self.start, self.lead, self.virtual = rt, ws, start, lead, virtual
        self.cleared = asyncio.Event()  # wakes a writer waiting to pace audio that is now dropped
        self.time_moved = asyncio.Event()  # set by StreamServer.time_moved (virtual clocks only)
        self.clock = clock
        # Progress counters, each written by one thread only (see progress()).
        self.handled_sequence = start.sequence
        self.signals_sent = 0  # by the listener thread
        self.signals_handled = 0
        self.frames_queued = 0
        self.frames_done = 0
        self.frames_written = 0
        self.in_hand = 1  # the opening turn
        self.ticked_at = clock.now()
        self.session = MediaSession(rt.store, self.clock, understand=self._understand,
                                    grammar_words=lambda grammar: grammar_words(rt.settings.grammars_dir, grammar),
                                    barge_in=BargeInSettings(pause_lag_seconds=PAUSE_LAG_SECONDS))
        self.language = "cmn"
        self.inbound = bytearray()  # caller audio not yet handed to the listener
        self.live_calls = lambda: 1  # set by the server: how many calls it holds now
        self.signals: asyncio.Queue[SpeechSignal] = asyncio.Queue()
        self.listener = self._listener()
        self.outgoing: asyncio.Queue[_Frame | None] = asyncio.Queue()
        self.playing_until = 0.0  # when the audio sent so far ends playing at Twilio (monotonic)
        self.over = False

    def _listener(self) -> CallListener | None:
        """The call's recogniser, if this service hears callers (a model is installed)."""
        hearing = self.rt.hearing
        recogniser = getattr(hearing, "recogniser", None) if hearing is not None and hearing.enabled else None
        if recogniser is None or not hasattr(recogniser, "open_session"):
            return None
        loop = asyncio.get_running_loop()

        def deliver(signal: SpeechSignal) -> None:
            self.signals_sent += 1
            loop.call_soon_threadsafe(self.signals.put_nowait, signal)

        return CallListener(recogniser, endpoint_settings(self.rt.settings), self.rt.settings.grammars_dir, deliver)

    def progress(self) -> CallProgress:
        """Read in the order work flows (frame → listener → signal → answer → frames out), so
        work moving on while this runs is still seen somewhere downstream."""
        handled = self.handled_sequence
        listener = self.listener
        settled = ((listener is None or listener.idle) and self.signals_handled == self.signals_sent
                   and self.in_hand == 0 and self.frames_done == self.frames_queued
                   and self.ticked_at >= self.clock.now())
        return CallProgress(handled, self.frames_written, settled, self.session.question(),
                            deadline=self.session.next_deadline())

    def _understand(self, text: str, grammar: str | None) -> SpeechHeard:
        understand = self.rt.hearing.understand if self.rt.hearing is not None else None
        if not text.strip() or grammar is None or understand is None:
            return SpeechHeard(text=text)
        understood = understand(grammar, text, self.language)
        return SpeechHeard(text=text, intent=understood.intent, score=understood.score, band=understood.band,
                           slots=dict(understood.slots))

    def _begin(self, turn: Turn) -> list[Output]:
        """Play a turn; a question that listens starts the recogniser on its grammar."""
        wait = turn.wait
        self.language = next((item.language for item in turn.speech if hasattr(item, "language")), self.language)
        if self.listener is not None and isinstance(wait, Ask) and wait.listen:
            if self.inbound:  # audio of the question before belongs before the new one
                self.listener.feed(bytes(self.inbound))
                self.inbound.clear()
            self.listener.begin(wait.grammar, self.language)
        return self.session.start(turn)

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            params = self.start.parameters
            turn: Turn = await asyncio.to_thread(self.rt.calls.start, self.start.call_sid, params.get("from", ""),
                                                 params.get("to", ""), Turns())
            await self._carry_out(self._begin(turn))
            self.in_hand -= 1
            await self._read()
        finally:
            if self.listener is not None:
                self.listener.close()
            self.outgoing.put_nowait(None)
            await writer

    async def _read(self) -> None:
        """Twilio's frames and the listener's speech signals, whichever comes first."""
        receiving = asyncio.ensure_future(self.ws.recv())
        hearing = asyncio.ensure_future(self.signals.get())
        moved = asyncio.ensure_future(self.time_moved.wait())
        try:
            while not self.over:
                deadline = self.session.next_deadline()
                timeout = None if deadline is None or self.virtual else max(deadline - self.clock.now(), 0.0)
                done, _ = await asyncio.wait({receiving, hearing, moved}, timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if not done or moved in done:
                    if moved in done:
                        self.time_moved.clear()
                        moved = asyncio.ensure_future(self.time_moved.wait())
                    now = self.clock.now()
                    await self._carry_out(self.session.tick())
                    self.ticked_at = now
                if hearing in done:
                    await self._carry_out(self.session.heard(hearing.result()))
                    self.signals_handled += 1
                    hearing = asyncio.ensure_future(self.signals.get())
                if receiving in done:
                    if not await self._frame(receiving.result()):
                        return
                    receiving = asyncio.ensure_future(self.ws.recv())
        finally:
            for waiting in (receiving, hearing, moved):
                waiting.cancel()

    async def _frame(self, frame: str | bytes) -> bool:
        """One frame from Twilio; False when the stream stopped."""
        message = wire.parse(frame)
        if isinstance(message, wire.Dtmf):
            await self._carry_out(self.session.key(message.digit))
        elif isinstance(message, wire.MarkEcho):
            await self._carry_out(self.session.mark_played(message.name))
        elif isinstance(message, wire.Media) and self.listener is not None:
            self.inbound += message.audio
            if len(self.inbound) >= self._feed_bytes():  # the listener's signals come back through self.signals
                self.listener.feed(bytes(self.inbound))
                self.inbound.clear()
        self.handled_sequence = max(self.handled_sequence, getattr(message, "sequence", 0))
        return not isinstance(message, wire.Stop)

    async def _write(self) -> None:
        """Send in order, audio paced to stay LEAD_SECONDS ahead of what Twilio plays."""
        while (frame := await self.outgoing.get()) is not None:
            if frame.seconds:
                ahead = self.playing_until - time.monotonic()
                if ahead > self.lead:
                    try:
                        await asyncio.wait_for(self.cleared.wait(), ahead - self.lead)
                    except TimeoutError:
                        pass
                if self.cleared.is_set():
                    self.frames_done += 1
                    continue  # taken from the queue just before a barge-in emptied it
                self.playing_until = max(self.playing_until, time.monotonic()) + frame.seconds
            elif frame.is_clear:
                self.cleared.clear()
            await self.ws.send(frame.text)
            self.frames_written += 1
            self.frames_done += 1
        if self.over:
            await self.ws.close()  # a hand-off: everything before it has been sent

    async def _carry_out(self, outputs: list[Output]) -> None:
        sid = self.start.stream_sid
        for output in outputs:
            if isinstance(output, PlayAudio):
                audio = await asyncio.to_thread(prompt_audio, self.rt.store, output.path) \
                    if output.kind == "play" else b""
                self._queue_audio(audio)
            elif isinstance(output, PlaySilence):
                self._queue_audio(SILENCE * int(output.seconds * 8000))
            elif isinstance(output, Mark):
                self._send(_Frame(wire.mark(sid, output.name), is_mark=True))
            elif isinstance(output, Clear):
                # Audio not sent yet is dropped here, the rest by Twilio; the marks still go out
                # (after the clear, so Twilio echoes them at once) as the session expects them.
                waiting = [self.outgoing.get_nowait() for _ in range(self.outgoing.qsize())]
                self._send(_Frame(wire.clear(sid), is_clear=True))
                self.cleared.set()
                self.playing_until = 0.0
                for frame in waiting:
                    if frame is not None and frame.is_mark:
                        self.outgoing.put_nowait(frame)
                    elif frame is not None:
                        self.frames_done += 1  # dropped unsent: as good as sent and cleared
            elif isinstance(output, Answer):
                self.in_hand += 1
                try:
                    turn = await asyncio.to_thread(self.rt.calls.handle, self.start.call_sid, output.event, Turns())
                    await self._carry_out(self._begin(turn))
                finally:
                    self.in_hand -= 1
            elif isinstance(output, (HandOff, RoundOver)):
                self.over = True  # the webhook goes on from the stored state
                return

    def _feed_bytes(self) -> int:
        """How much caller audio to hand the listener at once: every frame while few calls
        run; with many, a few frames at a time, so their threads wake less often (each wake-up
        waits for the one GIL) at the price of up to 80 ms more before a decision."""
        if self.virtual:
            return wire.FRAME_BYTES
        frames = min(max(self.live_calls() // CALLS_PER_BATCHED_FRAME, 1), MAX_FEED_FRAMES)
        return frames * wire.FRAME_BYTES

    def _queue_audio(self, audio: bytes) -> None:
        for frame in wire.frames(audio, SEND_BYTES):
            self._send(_Frame(wire.media(self.start.stream_sid, frame), len(frame) / 8000))

    def _send(self, frame: _Frame) -> None:
        self.frames_queued += 1
        self.outgoing.put_nowait(frame)
