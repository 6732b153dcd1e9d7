"""The live streams' scheduler: a few threads per server process (one per core) run the engine steps of every
WebSocket stream.

Each :class:`~speech_emotion.service.stream.StreamSession` hands its received audio to :meth:`LiveScheduler.feed`
and awaits the events. A free scheduler thread takes its share of the requests waiting at that moment (all of them
divided by the free threads, the oldest first; the next free thread is woken for the rest) and runs them as one step
of those streams (:func:`~speech_emotion.streaming.step_engines`): the speech detector scores the frames of all of
them in a few batched calls, and the windows and segments due go to the model together, in one ONNX Runtime call
per input shape when the graph takes a batch. There is no fixed tick and no waiting for a batch to fill: a quiet
server answers at once, a busy one batches more, every core runs a step when there is work for it (one thread
taking all the waiting streams would leave the other cores idle while those streams' next requests wait for it),
and no step is a barrier every stream waits on. Every stream has at most one request in flight (its session awaits
it), and requests are served in arrival order, so a busy stream cannot starve the others.

Under load the scheduler widens the update hop (every 2nd, then 4th window of the ``hop_s`` grid, up to
``max_hop_s``) when requests have waited longer than ``widen_after_s``, and narrows it again once they wait less
than ``narrow_below_s`` for ``settle_s``; the hop in force is in every update event (``hop_s``). Segment events and
the audio accounting never change: no audio is skipped, only fewer windows are classified.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..streaming import StreamingRecognizer, step_engines

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerOptions:
    """When the live streams' update hop widens and narrows (seconds of waiting)."""

    max_stride: int = 4
    """Widest hop, in multiples of the engine's ``hop_s`` (1: never widen)."""
    widen_after_s: float = 0.12
    """Requests waiting longer than this double the hop."""
    narrow_below_s: float = 0.04
    """Requests waiting less than this for ``settle_s`` halve it again."""
    settle_s: float = 3.0
    """Time between two changes of the hop."""


@dataclass
class _Request:
    engine: Any
    audio: np.ndarray | None
    """Samples at ``rate``; ``None``: the end of the stream (flush)."""
    rate: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    submitted: float


def _resolve(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # the session was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class LiveScheduler:
    """Runs the engine steps of all live streams on one thread; see the module docstring."""

    def __init__(self, options: SchedulerOptions | None = None, workers: int = 1) -> None:
        """``workers``: threads running steps (one per core the process may use): while one runs a step, another
        takes the requests that arrived meanwhile, so a step is never a barrier all streams wait on."""
        self.options = options or SchedulerOptions()
        self.workers = max(1, workers)
        self.stride = 1
        """The hop in force, in multiples of each engine's ``hop_s``."""
        self.steps = 0
        """Steps run so far (each serves every stream that was waiting)."""
        self._changed = time.monotonic()
        self._pending: deque[_Request] = deque()
        self._ready = threading.Condition()
        self._idle = 0
        """Threads waiting for requests (guarded by ``_ready``)."""
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._adapt_lock = threading.Lock()

    def start(self) -> None:
        """Start the scheduler's thread (idempotent)."""
        if not self._threads:
            self._stopping = False
            self._threads = [
                threading.Thread(target=self._run, name=f"se-live-{i}", daemon=True) for i in range(self.workers)
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """End the threads after the requests already queued."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []

    async def feed(self, engine: Any, audio: np.ndarray, rate: int) -> list[Any]:
        """The events of ``engine`` fed ``audio`` (mono float32 at ``rate`` Hz), computed on the scheduler's
        thread together with the other streams'. Raises what the engine raises (e.g. :class:`AudioError`)."""
        return await self._submit(engine, audio, rate)

    async def close(self, engine: Any) -> list[Any]:
        """The last events of ``engine``'s stream and its :class:`~speech_emotion.streaming.StreamEnd` (its
        ``close``; an engine without one: its ``flush``), on the scheduler's thread."""
        return await self._submit(engine, None, 0)

    async def _submit(self, engine: Any, audio: np.ndarray | None, rate: int) -> list[Any]:
        with self._lock:
            self.start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._ready:
            self._pending.append(_Request(engine, audio, rate, loop, future, time.monotonic()))
            self._ready.notify()
        return await future

    def hop_s(self, engine: Any) -> float | None:
        """The update hop ``engine`` runs with now, seconds (``None`` for an engine without a hop)."""
        options = getattr(engine, "options", None)
        return None if options is None else options.hop_s * getattr(engine, "hop_stride", 1)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            with self._adapt_lock:
                self._adapt(time.monotonic() - batch[0].submitted)
                self.steps += 1
            self._step(batch)

    def _take(self) -> list[_Request] | None:
        """The next step's requests: this thread's share of those waiting (``None``: stop, nothing left)."""
        with self._ready:
            self._idle += 1
            while not self._pending and not self._stopping:
                self._ready.wait()
            self._idle -= 1
            if not self._pending:
                return None
            share = math.ceil(len(self._pending) / (self._idle + 1))
            batch = [self._pending.popleft() for _ in range(share)]
            if self._pending:
                self._ready.notify()  # another free thread takes the rest now
            return batch

    def _adapt(self, waited_s: float) -> None:
        """Widen the hop when requests wait too long, narrow it when they have not for a while."""
        o, now = self.options, time.monotonic()
        if waited_s > o.widen_after_s and self.stride < o.max_stride and now - self._changed > o.widen_after_s:
            self.stride, self._changed = min(2 * self.stride, o.max_stride), now
            log.info("live streams behind by %.2f s: update hop x%d", waited_s, self.stride)
        elif waited_s < o.narrow_below_s and self.stride > 1 and now - self._changed > o.settle_s:
            self.stride, self._changed = self.stride // 2, now
            log.info("live streams caught up: update hop x%d", self.stride)

    def _step(self, batch: list[_Request]) -> None:
        engines: list[StreamingRecognizer] = []
        inputs: list[np.ndarray] = []
        waiting: list[_Request] = []
        for r in batch:
            try:
                if r.audio is None:
                    end = getattr(r.engine, "close", None) or r.engine.flush
                    self._done(r, list(end()))
                elif isinstance(r.engine, StreamingRecognizer):
                    r.engine.hop_stride = self.stride
                    inputs.append(r.engine.condition(r.audio, r.rate))
                    engines.append(r.engine)
                    waiting.append(r)
                else:  # any other engine with feed/flush (tests' stand-ins)
                    self._done(r, list(r.engine.feed(r.audio, r.rate)))
            except Exception as exc:
                self._done(r, None, exc)
        if not engines:
            return
        try:
            results = step_engines(engines, inputs)
        except Exception as exc:  # a fault of the engine, not of one stream's input (refused above): all in it end
            log.exception("a batched step of %d streams failed", len(engines))
            for r in waiting:
                self._done(r, None, exc)
            return
        for r, events in zip(waiting, results):
            self._done(r, events)

    @staticmethod
    def _done(r: _Request, result: Any, error: BaseException | None = None) -> None:
        with contextlib.suppress(RuntimeError):  # the session's event loop has closed (server shut down)
            r.loop.call_soon_threadsafe(_resolve, r.future, result, error)
