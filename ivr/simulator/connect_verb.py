"""<Connect><Stream>, for the call simulator's SimCall: the verb, and the call's way through it.

A call on a Media Stream is run by its StreamLeg (media_stream.py); this mixin is what SimCall
adds around it: parsing `<Connect action><Stream url><Parameter/>`, the caller's actions while
on the stream, and — once the service closes the socket — `<Connect action>` (or the next verb),
as Twilio does. It uses SimCall's own request and TwiML machinery (`_goto`, `_run`, `_hear`).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urljoin

from .media_stream import StreamLeg


class ConnectVerb:
    _stream: StreamLeg | None
    _connect_action: tuple[str, str] | None

    def speak_stream(self, stretches: list[str], *, pause: float = 0.0, after: float | None = None,
                     audio: bytes | None = None) -> list[Any]:
        """On a Media Stream: the caller speaks `stretches` of words with `pause` seconds
        between them, right after the prompts or `after` seconds into them (barge-in)."""
        self._require_active()
        if self._stream is None:
            raise self._error("the call is not on a Media Stream")
        mark = self._mark_input()
        self._stream.say(stretches, pause=pause, after=after, audio=audio)
        self._stream_step()
        return self.heard[mark:]

    def press_during(self, keys: str, after: float) -> list[Any]:
        """Keys `after` seconds into the prompts (on a stream; at a <Gather> keys barge in anyway)."""
        if self._stream is None:
            return self.press(keys)
        self._require_active()
        mark = self._mark_input()
        self._stream.press(keys, after=after)
        self._stream_step()
        return self.heard[mark:]

    def _verb_connect(self, verb: ET.Element, frame: Any) -> None:
        streams = [child for child in verb if child.tag == "Stream"]
        if len(streams) != 1 or not streams[0].get("url"):
            return self._twiml_error(frame, "<Connect> needs one <Stream url=...>")
        url = streams[0].get("url", "")
        if not url.startswith("wss://") and not url.startswith("ws://"):
            return self._twiml_error(frame, f"<Stream url={url!r}>: only wss:// (error 31920)")
        if self.sim.stream_link is None:
            raise self._error("<Connect><Stream>: the simulator has no stream_link to reach the service")
        parameters = {p.get("name", ""): p.get("value", "") for p in streams[0] if p.tag == "Parameter"}
        action = verb.get("action")
        self._connect_action = (urljoin(frame.url, action), verb.get("method", "POST")) if action else None
        self._stream = StreamLeg(self, url, parameters, self.sim.stream_link)
        if "?" in url:  # Twilio refuses query strings on stream URLs (error 31920)
            self._stream.closed, self._stream.refused = True, "query string in the stream URL"
        else:
            self._stream.open(self.sim.stream_signature)
        self._stream_step()

    def _stream_step(self) -> None:
        """After each moment on the stream: once the socket has closed, <Connect> is over and
        Twilio requests its action URL (or runs the next verb)."""
        stream = self._stream
        if stream is not None and not stream.closed:
            stream.hear_out()
        if stream is None or not stream.closed or self.ended:
            return
        self._stream = None
        if self._connect_action is not None:
            url, method = self._connect_action
            self._connect_action = None
            if not self._goto("connect_action", url, method, {}, context="main"):
                return
        self._run()

    def end_stream_if_closed(self) -> list[Any]:
        """On a live stream the service may close the socket while the caller waits: go on
        with <Connect action> (the terminal phone's watcher calls this)."""
        mark = len(self.heard)
        self._stream_step()
        return self.heard[mark:]

    def _drop_stream(self) -> None:
        """The call leaves the stream without the service closing it (hang-up, REST update)."""
        if self._stream is not None:
            self._stream.stop()
            self._stream, self._connect_action = None, None

    def _hear_stream_prompt(self, mark: str) -> Any:
        """A prompt played on the stream, named by the path of its text twin."""
        url = self.sim.url(mark[:-4] + ".wav") if mark.endswith(".txt") else None
        text = self._text_twin(url) if url else None
        from .twilio_sim import Heard  # the simulator's record of what was heard
        item = Heard("play", text if text is not None else f"[mark {mark}]", url, in_gather=True)
        self._hear(item)
        return item

    def _unhear(self, item: object) -> None:
        """A prompt cleared before any of it played (barge-in): the caller never heard it."""
        for index in range(len(self.heard) - 1, -1, -1):
            if self.heard[index] is item:
                del self.heard[index]
                if index < self._input_mark:
                    self._input_mark -= 1
                return
