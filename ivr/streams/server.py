"""The Media Streams WebSocket server: one live call per socket, in its own asyncio process.

It only translates: Twilio's frames become media-session calls (ivr/media), the session's
commands become frames, and the session's answers go to the call service (in a thread: the
database is synchronous) whose Turns the session plays next.  A turn whose wait leaves the
stream (the queue, a hang-up) closes the socket; Twilio then requests `<Connect action>` and
the webhook adapter goes on from the stored state (/twilio/stream/ended).  The web workers
that answer webhooks never hold a socket.

Accepted: only an upgrade Twilio signed for the `wss://` URL, then a `start` whose token is
this call's (`stream_token`) for a call that has not started yet — a replayed upgrade or a
second stream for one call is closed at once.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ivr.calls import Turns
from ivr.engine.actions import Turn
from ivr.media.clock import MonotonicClock
from ivr.media.commands import Answer, Clear, HandOff, Mark, Output, PlayAudio, PlaySilence, RoundOver
from ivr.media.session import MediaSession
from ivr.runtime import Runtime
from ivr.streams import twilio_protocol as wire
from ivr.streams.audio import prompt_audio
from ivr.streams.upgrade import STREAM_PATH, stream_token, stream_url, upgrade_is_signed

log = logging.getLogger(__name__)
SEND_BYTES = 8000  # one second of μ-law per media message: Twilio buffers and plays in order
SILENCE = b"\xff"  # μ-law zero


class StreamServer:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.url = stream_url(rt.settings.public_base_url)

    def check_upgrade(self, _connection: ServerConnection, request: Request) -> Response | None:
        if request.path != STREAM_PATH or not upgrade_is_signed(self.rt.settings.twilio_auth_token, self.url,
                                                                request.headers):
            log.warning("stream upgrade refused: %s", "wrong path" if request.path != STREAM_PATH
                        else "bad or missing Twilio signature")
            return _connection.respond(HTTPStatus.FORBIDDEN, "forbidden\n")
        return None

    async def serve(self, host: str, port: int) -> Server:
        return await serve(self.handle, host, port, process_request=self.check_upgrade, compression=None,
                           max_size=wire.MAX_FRAME_CHARS * 2, ping_interval=20)

    async def handle(self, ws: ServerConnection) -> None:
        try:
            start = await self._opening(ws)
            if start is None:
                return
            await _Call(self.rt, ws, start).run()
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
    """One call on one socket."""

    def __init__(self, rt: Runtime, ws: ServerConnection, start: wire.Start) -> None:
        self.rt, self.ws, self.start = rt, ws, start
        self.clock = MonotonicClock()
        self.session = MediaSession(rt.store, self.clock)
        self.over = False

    async def run(self) -> None:
        params = self.start.parameters
        turn: Turn = await asyncio.to_thread(self.rt.calls.start, self.start.call_sid, params.get("from", ""),
                                             params.get("to", ""), Turns())
        await self._carry_out(self.session.start(turn))
        while not self.over:
            deadline = self.session.next_deadline()
            timeout = None if deadline is None else max(deadline - self.clock.now(), 0.0)
            try:
                frame = await asyncio.wait_for(self.ws.recv(), timeout)
            except TimeoutError:
                await self._carry_out(self.session.tick())
                continue
            message = wire.parse(frame)
            if isinstance(message, wire.Dtmf):
                await self._carry_out(self.session.key(message.digit))
            elif isinstance(message, wire.MarkEcho):
                await self._carry_out(self.session.mark_played(message.name))
            elif isinstance(message, wire.Media):
                await self._carry_out(self.session.audio_frame(message.audio, self.clock.now()))
            elif isinstance(message, wire.Stop):
                return

    async def _carry_out(self, outputs: list[Output]) -> None:
        sid = self.start.stream_sid
        for output in outputs:
            if isinstance(output, PlayAudio):
                audio = await asyncio.to_thread(prompt_audio, self.rt.store, output.path) \
                    if output.kind == "play" else b""
                await self._send_audio(audio)
            elif isinstance(output, PlaySilence):
                await self._send_audio(SILENCE * int(output.seconds * 8000))
            elif isinstance(output, Mark):
                await self.ws.send(wire.mark(sid, output.name))
            elif isinstance(output, Clear):
                await self.ws.send(wire.clear(sid))
            elif isinstance(output, Answer):
                turn = await asyncio.to_thread(self.rt.calls.handle, self.start.call_sid, output.event, Turns())
                await self._carry_out(self.session.start(turn))
            elif isinstance(output, (HandOff, RoundOver)):
                self.over = True  # the webhook goes on from the stored state
                await self.ws.close()
                return

    async def _send_audio(self, audio: bytes) -> None:
        for frame in wire.frames(audio, SEND_BYTES):
            await self.ws.send(wire.media(self.start.stream_sid, frame))
