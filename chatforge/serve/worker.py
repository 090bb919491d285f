"""The engine's thread: one thread owns the model and steps the engine; requests come and go.

    worker = Worker(engine)
    worker.start()
    seq, events = worker.submit(prompt_ids, sampling, loop)   # events: an asyncio.Queue
    async for ... in events: Token | Done                      # in the request's coroutine

The HTTP handlers run on the event loop; generation runs here, so a forward pass never
blocks the loop. Tokens are handed to the request's coroutine through its asyncio queue
(`call_soon_threadsafe`), and a request that ends early (a client gone, a stop string,
a timeout) calls `cancel`, which frees the sequence's slot at the next step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from chatforge.engine import Engine, Sampling, Seq, Token

log = logging.getLogger("chatforge.serve")


@dataclass
class Done:
    """The end of a sequence: why it ended."""

    finish_reason: str


class Worker:
    """Steps `engine` in a background thread while there is work."""

    def __init__(self, engine: Engine, *, on_step: Callable[[Engine], None] | None = None) -> None:
        self.engine = engine
        self.on_step = on_step  # called after each step (gauges)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chatforge-engine", daemon=True)
        self.error: BaseException | None = None
        self.failures = 0  # steps that raised (their sequences ended with finish_reason "error")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def submit(self, prompt: list[int], sampling: Sampling, loop: asyncio.AbstractEventLoop) -> tuple[Seq, asyncio.Queue[Token | Done]]:
        """Queue a sequence; its tokens and its end arrive on the returned queue (in `loop`)."""
        events: asyncio.Queue[Token | Done] = asyncio.Queue()

        def on_token(_: Seq, token: Token) -> None:
            loop.call_soon_threadsafe(events.put_nowait, token)

        def on_done(seq: Seq) -> None:
            loop.call_soon_threadsafe(events.put_nowait, Done(seq.finish_reason or "stop"))

        seq = self.engine.submit(prompt, sampling, on_token=on_token, on_done=on_done)
        self._wake.set()
        return seq, events

    def cancel(self, seq: Seq) -> None:
        self.engine.cancel(seq)
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.engine.step()
            except Exception:
                # A step that fails (a bug, or an input nothing caught) must not take the server
                # down: the sequences in flight end with an error (their requests get a 500 at
                # once instead of waiting forever) and the engine goes on with new ones.
                self.failures += 1
                log.exception("generation step failed; %d sequences ended with an error", self.engine.fail_all("error"))
                busy = False
            except BaseException as e:  # the interpreter is going down: /health reports it
                self.error = e
                self.engine.fail_all("error")
                raise
            if self.on_step is not None:
                self.on_step(self.engine)
            if not busy:
                self._wake.wait(timeout=0.5)
                self._wake.clear()
