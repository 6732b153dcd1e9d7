"""The live streams' scheduler: a few threads per server process (one per core) run the engine steps of every
WebSocket stream.

Each :class:`~speech_emotion.service.stream.StreamSession` hands its received audio to :meth:`LiveScheduler.feed`
and awaits the events. A step has two halves (:mod:`~speech_emotion.streaming`): the speech detector, cheap and
worth batching, and the emotion model, costly and hardly cheaper per input in a batch. A free scheduler thread takes
the oldest work waiting:

- **detection**: its share of the requests waiting at that moment (all of them divided by the free threads, the
  oldest first; the next free thread is woken for the rest), whose frames the speech detector scores in a few
  batched calls (:func:`~speech_emotion.streaming.detect_engines`). A stream that needs no model input now (most
  steps of 100 ms of audio) gets its events at once; the others queue for
- **scoring**: the model inputs of the oldest steps, at most ``batch_inputs`` of them in one ONNX Runtime call per
  input shape (:func:`~speech_emotion.streaming.score_steps`), each stream answered as soon as its own inputs are
  scored. A burst (many streams' windows due at the same moment) is thus shared by every core in small calls, and
  one stream's segment never holds up the answers of streams that needed no model.

There is no fixed tick and no waiting for a batch to fill: a quiet server answers at once, a busy one batches
more, every core runs work when there is some. Every stream has at most one request in flight (its session awaits
it), and work is served oldest first, so a busy stream cannot starve the others.

Under load the scheduler widens the update hop (every 2nd, then 4th window of the ``hop_s`` grid, up to
``max_hop_s``) when work has waited longer than ``widen_after_s`` (since its request arrived), and narrows it again
once work waits less than ``narrow_below_s`` for ``settle_s``; the hop in force is in every update event
(``hop_s``). Segment events and the audio accounting never change: no audio is skipped, only fewer windows are
classified.
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
from typing import Any, cast

import numpy as np

from ..streaming import PlannedStep, StreamingRecognizer, detect_engines, score_steps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SchedulerOptions:
    """When the live streams' update hop widens and narrows (seconds of waiting)."""

    max_stride: int = 4
    """Widest hop, in multiples of the engine's ``hop_s`` (1: never widen)."""
    widen_after_s: float = 0.08
    """Work waiting longer than this (since its request arrived) doubles the hop."""
    narrow_below_s: float = 0.02
    """Work waiting less than this for ``settle_s`` halves it again."""
    settle_s: float = 10.0
    """Time between two changes of the hop, and before a narrower hop is tried again (narrowing too soon brings
    back the load that widened it: the hop see-saws and the waits with it; 0.12 / 0.04 / 3 s before, measured in
    docs/service.md)."""
    batch_inputs: int = 4
    """Most model inputs (windows, segments) in one scoring call: a burst is shared among the threads in calls of
    this size (a larger batch is hardly cheaper per input on one core, and every stream in it waits for all)."""


@dataclass
class _Request:
    engine: Any
    audio: np.ndarray | None
    """Samples at ``rate``; ``None``: the end of the stream (flush)."""
    rate: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    submitted: float
    step: PlannedStep | None = None
    """After detection: the model inputs its events wait for."""

    @property
    def inputs(self) -> int:
        """Model inputs its step waits for."""
        return 0 if self.step is None else len(self.step.jobs)


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
        """Detection steps run so far (each serves a share of the streams that were waiting)."""
        self._changed = self._last_work = time.monotonic()
        self._pending: deque[_Request] = deque()
        """Requests waiting for detection, oldest first."""
        self._scoring: deque[_Request] = deque()
        """Detected steps waiting for the model, oldest first."""
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

    @property
    def current_stride(self) -> int:
        """The hop the next work gets, in multiples of the engine's ``hop_s``: :attr:`stride`, or 1 once no work has
        come for ``settle_s`` (an idle server starts its next streams at the engine's own hop)."""
        return 1 if time.monotonic() - self._last_work > self.options.settle_s else self.stride

    def hop_s(self, engine: Any) -> float | None:
        """The update hop ``engine`` runs with now, seconds (``None`` for an engine without a hop)."""
        options = getattr(engine, "options", None)
        return None if options is None else options.hop_s * getattr(engine, "hop_stride", 1)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while (work := self._take()) is not None:
            scoring, batch = work
            with self._adapt_lock:
                now = time.monotonic()
                if now - self._last_work > self.options.settle_s:  # idle that long: nothing left to protect
                    self.stride = 1
                self._last_work = now
                self._adapt(now - batch[0].submitted)
                self.steps += not scoring
            if scoring:
                self._score(batch)
            else:
                self._detect(batch)

    def _take(self) -> tuple[bool, list[_Request]] | None:
        """The next work, the oldest first: ``(True, steps to score)`` or ``(False, this thread's share of the
        requests waiting for detection)``; ``None``: stop, nothing left."""
        with self._ready:
            self._idle += 1
            while not self._pending and not self._scoring and not self._stopping:
                self._ready.wait()
            self._idle -= 1
            if not self._pending and not self._scoring:
                return None
            if self._scoring and (not self._pending or self._scoring[0].submitted <= self._pending[0].submitted):
                batch = [self._scoring.popleft()]
                inputs = batch[0].inputs
                while self._scoring and inputs + self._scoring[0].inputs <= self.options.batch_inputs:
                    inputs += self._scoring[0].inputs
                    batch.append(self._scoring.popleft())
                scoring = True
            else:
                share = math.ceil(len(self._pending) / (self._idle + 1))
                batch, scoring = [self._pending.popleft() for _ in range(share)], False
            if self._pending or self._scoring:
                self._ready.notify()  # another free thread takes the rest now
            return scoring, batch

    def _adapt(self, waited_s: float) -> None:
        """Widen the hop when work waits too long, narrow it when it has not for a while."""
        o, now = self.options, time.monotonic()
        if waited_s > o.widen_after_s and self.stride < o.max_stride and now - self._changed > o.widen_after_s:
            self.stride, self._changed = min(2 * self.stride, o.max_stride), now
            log.info("live streams behind by %.2f s: update hop x%d", waited_s, self.stride)
        elif waited_s < o.narrow_below_s and self.stride > 1 and now - self._changed > o.settle_s:
            self.stride, self._changed = self.stride // 2, now
            log.info("live streams caught up: update hop x%d", self.stride)

    def _detect(self, batch: list[_Request]) -> None:
        """The speech detector over the requests' audio; each stream that needs the model queues for scoring, the
        others are answered now."""
        engines: list[StreamingRecognizer] = []
        inputs: list[np.ndarray] = []
        detected: list[_Request] = []
        planned: list[_Request] = []
        for r in batch:
            try:
                if not isinstance(r.engine, StreamingRecognizer):  # any other engine with feed/flush (tests)
                    if r.audio is None:
                        self._done(r, list((getattr(r.engine, "close", None) or r.engine.flush)()))
                    else:
                        self._done(r, list(r.engine.feed(r.audio, r.rate)))
                elif r.audio is None:
                    r.step = r.engine.plan_close()
                    planned.append(r)
                else:
                    r.engine.hop_stride = self.stride
                    inputs.append(r.engine.condition(r.audio, r.rate))
                    engines.append(r.engine)
                    detected.append(r)
            except Exception as exc:
                self._done(r, None, exc)
        if engines:
            try:
                for r, step in zip(detected, detect_engines(engines, inputs)):
                    r.step = step
            except Exception as exc:  # a fault of the engine, not of one stream's input (refused above): all in it end
                log.exception("the speech detector failed on a step of %d streams", len(engines))
                for r in detected:
                    self._done(r, None, exc)
                detected = []
        waiting = sorted([*detected, *planned], key=lambda r: r.submitted)
        queued = [r for r in waiting if r.inputs]
        if queued:
            with self._ready:
                self._scoring.extend(queued)
                self._ready.notify()
        done = [r for r in waiting if not r.inputs]  # every request here has its step
        if done:
            self._score(done)  # no model call: the events complete now

    def _score(self, batch: list[_Request]) -> None:
        """The model inputs of the detected steps ``batch``, scored together; each stream gets its events."""
        try:
            results = score_steps([cast(PlannedStep, r.step) for r in batch])  # every request here was detected
        except Exception as exc:
            log.exception("scoring the model inputs of %d streams failed", len(batch))
            for r in batch:
                self._done(r, None, exc)
            return
        for r, events in zip(batch, results):
            self._done(r, events)

    @staticmethod
    def _done(r: _Request, result: Any, error: BaseException | None = None) -> None:
        with contextlib.suppress(RuntimeError):  # the session's event loop has closed (server shut down)
            r.loop.call_soon_threadsafe(_resolve, r.future, result, error)
