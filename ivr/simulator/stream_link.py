"""Where the simulator's Media Streams connect (media_stream.StreamLink).

- InProcessStreams: the service's own stream server on a loopback port, in a thread, on the
  simulator's virtual clock — tests and scenarios (whole calls in no real time, over a real
  WebSocket with the signed upgrade).
- LoopbackStreams: a running `python -m ivr streams` at a ws:// address, at real pace — the
  terminal phone against the demo.

Both map the `wss://` URL of the TwiML (what Twilio signs) to the local address, as the
reverse proxy does in production.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from websockets.sync.client import ClientConnection, connect

if TYPE_CHECKING:
    from ivr.streams.server import CallProgress

    from .twilio_sim import VirtualClock


class _Elapsed:
    """The simulator's virtual clock as the media session reads time (seconds)."""

    def __init__(self, clock: "VirtualClock") -> None:
        self.clock = clock

    def now(self) -> float:
        return self.clock.elapsed


def _connect(address: str, url: str, headers: dict[str, str]) -> ClientConnection:
    """The socket, opened for the leg's lifetime (the leg closes it)."""
    ws = connect(address.rstrip("/") + urlsplit(url).path, additional_headers=headers, open_timeout=10,
                 max_size=None, compression=None)
    return ws.__enter__()


class LoopbackStreams:
    virtual = False

    def __init__(self, address: str) -> None:
        """address: ws://host:port of `python -m ivr streams`."""
        self.address = address

    def connect(self, url: str, headers: dict[str, str]) -> ClientConnection:
        return _connect(self.address, url, headers)

    def time_moved(self) -> None:
        return None

    def progress(self, call_sid: str) -> "CallProgress | None":
        return None


class InProcessStreams:
    virtual = True

    def __init__(self, rt: Any, clock: "VirtualClock") -> None:
        from ivr.streams.server import StreamServer
        self.server: StreamServer = StreamServer(rt, lead_seconds=float("inf"), clock=_Elapsed(clock))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="stream-server", daemon=True)
        self._ready = threading.Event()
        self._listening: Any = None
        self.address = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._listening = self._loop.run_until_complete(self.server.serve("127.0.0.1", 0))
        self.address = f"ws://127.0.0.1:{self._listening.sockets[0].getsockname()[1]}"
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> "InProcessStreams":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the stream server did not start")
        return self

    def stop(self) -> None:
        async def close() -> None:
            self._listening.close()
            await self._listening.wait_closed()
        if self._listening is not None:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def connect(self, url: str, headers: dict[str, str]) -> ClientConnection:
        return _connect(self.address, url, headers)

    def time_moved(self) -> None:
        self.server.time_moved()

    def lose(self, call_sid: str) -> None:
        """The stream process dies under a call: its socket drops without a closing handshake
        and the call's work in the server stops."""
        call = self.server.calls.get(call_sid)
        if call is None:
            return
        self._loop.call_soon_threadsafe(call.ws.transport.abort)
        deadline = time.monotonic() + 10
        while not getattr(self.server.progress(call_sid), "closed", False):
            if time.monotonic() > deadline:
                raise RuntimeError("the stream server did not notice its lost socket")
            time.sleep(0.001)

    def progress(self, call_sid: str) -> "CallProgress | None":
        return self.server.progress(call_sid)
