"""A phone in the terminal: type keys, read what the caller would hear.

Works with a keyboard or with input from a pipe (no tty needed)::

    printf '1\\n\\nh\\n' | python -m ivr call

Commands (one per line):

    1 2 3 ... * #   press those keys (several at once is fine: 1234#)
    "words          speak to a pending <Record> (also: say words), e.g. say 我要查一查
    (empty line)    stay silent: the pending Gather times out, a Record ends silent
    w 30            wait 30 seconds (in a queue, on hold, or silent)
    op              an operator answers (the caller in a queue is bridged)
    end [secs]      the operator hangs up (after secs of conversation)
    h / q           hang up
    ?               help
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

from .twilio_sim import Heard, SimCall, SimulatorError, TwilioSimulator

if TYPE_CHECKING:
    from .cloud import SimulatedTwilio

__all__ = ["run_terminal_call", "HELP_TEXT"]

HELP_TEXT = (
    "keys: digits * # (e.g. 1234#) | \"words or say words: speak to a recording (e.g. say 我要查一查) | "
    "empty line: silence | w 30: wait 30 s | "
    "op: operator answers | end: operator hangs up | h/q: hang up | ?: help"
)
_SPEAK_QUOTES = ('"', "\N{LEFT DOUBLE QUOTATION MARK}")

_VERB_PREFIX = {
    "say": "\N{SPEAKER WITH THREE SOUND WAVES} ",
    "play": "\N{SPEAKER WITH THREE SOUND WAVES} ",
    "dial": "\N{BLACK TELEPHONE} dialing ",
    "bridge": "\N{BUST IN SILHOUETTE} ",
    "beep": "\N{SPEAKER WITH THREE SOUND WAVES} ",
    "application-error": "\N{WARNING SIGN} ",
}


def _format_heard(item: Heard, plain: bool) -> str:
    if plain:
        prefix = {"dial": "> dialing ", "bridge": "> ", "application-error": "! "}.get(item.verb, "> ")
    else:
        prefix = _VERB_PREFIX.get(item.verb, "\N{SPEAKER WITH THREE SOUND WAVES} ")
    text = item.display
    if item.loop_forever:
        text += " (repeats until hangup)"
    return prefix + text


def _status_line(call: SimCall) -> str | None:
    if call.ended:
        return None
    gather = call.pending_gather
    if gather is not None:
        return f"   [keys? {gather.hint()}]"
    record = call.pending_record
    if record is not None:
        return f"   [recording: {record.hint()}]"
    if call.state == "queued":
        queue = call.queue
        where = f"position {call.queue_position} of {queue.size}" if queue else ""
        return f"   [on hold in queue {queue.name if queue else '?'} {where}; 'w 30' to wait, 'op' for an operator]"
    if call.state == "bridged":
        return "   [talking to the operator; 'end' when the operator hangs up, 'h' to hang up]"
    return None


def run_terminal_call(
    sim: TwilioSimulator,
    from_: str,
    to: str,
    input_fn: Callable[[str], str] = input,
    print_fn: Callable[..., None] = print,
    *,
    voice_path: str = "/twilio/voice",
    status_callback_path: str | None = "/twilio/status",
    fallback_path: str | None = None,
    plain: bool = False,
    default_wait: float = 10.0,
    cloud: SimulatedTwilio | None = None,
) -> SimCall:
    """Place a call and drive it from ``input_fn`` lines; print what is heard.

    ``plain=True`` uses ASCII prefixes instead of emoji. End of input (EOF)
    hangs up. Returns the finished :class:`SimCall`.

    With ``cloud`` the operator console can act on this call over (fake) REST:
    take the caller out of the queue, or place callback calls; what those do is
    printed as it happens, between the caller's own commands.
    """
    lock: Any = cloud.lock if cloud is not None else threading.RLock()
    shown = 0
    # Reading from a pipe: input() would glue its prompt to the next output line,
    # so echo the command after reading it instead.
    echo = input_fn is input and not _stdin_is_tty()

    def flush() -> None:
        nonlocal shown
        with lock:  # the watcher thread flushes too
            for item in call.heard[shown:]:
                if item.text is not None and not item.text.strip():
                    continue        # a silence prompt (empty text twin)
                print_fn(_format_heard(item, plain))
            shown = len(call.heard)

    try:
        with lock:
            call = sim.place_call(from_, to, voice_path=voice_path,
                                  status_callback_path=status_callback_path,
                                  fallback_path=fallback_path)
    except SimulatorError as exc:
        if exc.call is None:
            raise
        call = exc.call
        flush()
        print_fn(f"! simulator error: {exc}")
        print_fn(_summary(call))
        return call

    print_fn(f"Calling {to} from {from_} (call {call.call_sid}). Type ? for help.")
    watcher = _Watcher(cloud, flush, print_fn, plain, call, lock) \
        if cloud is not None or call.stream is not None else None
    while True:
        flush()
        if call.ended:
            break
        status = _status_line(call)
        if status:
            print_fn(status)
        prompt = "\N{TELEPHONE RECEIVER} " if not plain else "phone> "
        try:
            if echo:
                line = input_fn("")
                print_fn(prompt + line.rstrip("\n"))
            else:
                line = input_fn(prompt)
        except EOFError:
            print_fn("(end of input: hanging up)")
            call.hangup()
            break
        except KeyboardInterrupt:
            print_fn("(interrupted: hanging up)")
            call.hangup()
            break
        command = line.strip()
        try:
            with lock:
                _dispatch(call, command, print_fn, default_wait)
        except SimulatorError as exc:
            flush()
            print_fn(f"! simulator error: {exc}")
            if call.ended:
                break
    if watcher is not None:
        watcher.stop()
    flush()
    print_fn(_summary(call))
    return call


class _Watcher:
    """Prints what the console's REST requests did to the call, and the callback calls it placed,
    while the terminal waits for the caller's next command."""

    def __init__(self, cloud: SimulatedTwilio | None, flush: Callable[[], None], print_fn: Callable[..., None],
                 plain: bool, call: SimCall, lock: Any) -> None:
        self.cloud, self.flush, self.print_fn, self.plain, self.call = cloud, flush, print_fn, plain, call
        self.lock = lock
        self.reported: set[str] = set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="terminal-watcher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(0.3):
            with self.lock:
                stream = self.call.stream
                if stream is not None and stream.closed and not self.call.ended:
                    self.call.end_stream_if_closed()  # the service left the stream: <Connect action>
                self.flush()
                for call in (self.cloud.outbound_calls if self.cloud is not None else ()):
                    if call.ended and call.call_sid not in self.reported:
                        self.reported.add(call.call_sid)
                        self._report(call)

    def _report(self, call: SimCall) -> None:
        self.print_fn(f"{'>' if self.plain else chr(0x260E)} outbound call {call.from_} -> {call.to}: "
                      f"{call.status}")
        for item in call.heard:
            if item.text is None or item.text.strip():
                self.print_fn("    " + _format_heard(item, self.plain))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)


def _dispatch(call: SimCall, command: str, print_fn: Callable[..., None], default_wait: float) -> None:
    lowered = command.lower()
    if command.startswith(_SPEAK_QUOTES) or lowered.startswith("say ") or lowered == "say":
        text = command[1:] if command.startswith(_SPEAK_QUOTES) else command[3:]
        text = text.strip().strip('"\N{LEFT DOUBLE QUOTATION MARK}\N{RIGHT DOUBLE QUOTATION MARK}').strip()
        if call.pending_record is None and call.pending_gather is not None and text:
            # Speaking during a short key window: the window passes, then the recording starts
            # (the service's listening prompts are a 1 s <Gather> followed by <Record>).
            gather = call.pending_gather
            if gather.timeout <= 2 and not gather.digits:
                call.silence()
        if not text:
            print_fn('usage: "words  or  say words')
        elif call.stream is not None:
            call.speak(text)  # live audio: the service hears it if it listens (a recogniser is on)
        elif call.pending_record is None:
            print_fn("(nothing is recording: no one hears speech here; use keys)")
        else:
            call.speak(text)
    elif lowered in ("?", "help"):
        print_fn(HELP_TEXT)
    elif lowered in ("h", "q", "hangup", "quit"):
        call.hangup()
    elif lowered == "":
        if call.stream is not None or call.pending_gather is not None or call.pending_record is not None:
            call.silence()
        elif call.state in ("bridged", "queued"):
            call.wait(default_wait)
        else:
            print_fn("(nothing is waiting for input)")
    elif lowered == "op":
        if call.state == "queued":
            call.bridge()
        else:
            print_fn("(no queue: there is no operator to answer)")
    elif lowered.split()[0] == "end":
        seconds = _number(lowered.split()[1]) if len(lowered.split()) > 1 else 0.0
        if call.state == "bridged":
            call.end_bridge(talk_seconds=seconds or 0.0)
        else:
            print_fn("(not talking to an operator)")
    elif lowered.split()[0] in ("w", "wait"):
        parts = lowered.split()
        seconds = _number(parts[1]) if len(parts) > 1 else default_wait
        if seconds is None or seconds <= 0:
            print_fn("usage: w <seconds>")
        else:
            call.wait(seconds)
    elif all(ch in "0123456789*#" for ch in command.replace(" ", "")):
        before = len(call.ignored_keys)
        call.press(command.replace(" ", ""))
        if len(call.ignored_keys) > before:
            print_fn(f"(no menu was listening: {''.join(call.ignored_keys[before:])} ignored)")
    else:
        print_fn(f"unknown command {command!r}. {HELP_TEXT}")


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _summary(call: SimCall) -> str:
    errors = f", {len(call.errors)} error(s)" if call.errors else ""
    return (f"Call ended ({call.ended_by or call.state}) after {call.duration:.0f} s "
            f"of virtual time; {len(call.requests)} request(s){errors}.")
