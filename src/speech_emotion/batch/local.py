"""The default runner: a pool of processes on this machine, each holding one model.

Workers are forked from a ``forkserver`` that imported the heavy modules once (no state copied
from the parent, and a new worker costs a fork rather than seconds of imports); each loads one
single-threaded :class:`~speech_emotion.recognizer.Recognizer` and ignores Ctrl-C, which the
parent handles.
Only ``2 x workers`` files are in flight at once, so memory stays bounded whatever the archive size.
A worker that dies (a crash inside a native decoder) breaks the pool: the files that were in
flight are then rerun one at a time in a fresh pool, and the one that kills its worker again is
recorded as failed; the run goes on. Workers end themselves when the parent process disappears
(killed with SIGKILL), rather than waiting forever on their task queue.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import SpeechEmotionError
from ..recognizer import Recognizer
from .inputs import Job
from .state import failed_result
from .worker import FileResult, analyze_one, load_worker_recognizer

log = logging.getLogger(__name__)

ResultCallback = Callable[[FileResult], None]

_recognizer: Recognizer | None = None
_init_error: BaseException | None = None


_channels = "mix"

WAKE_S = 0.2
"""Longest wait for a result before the driver looks for a pending Ctrl-C (seconds)."""


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM where the run reads it as Ctrl-C) until the block ends, then raise it. A submit
    starts a worker when the pool has fewer than it may: an interrupt between the forkserver's fork and the pool
    registering the new process left a worker nobody stopped, which then printed a traceback as the run's queues
    went away. Only Python-level handlers are held (an ignored or default signal is left as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    handlers = {sig: h for sig, h in previous.items() if callable(h)}
    for sig in handlers:
        signal.signal(sig, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if held:
        handlers[held[0]](held[0], None)  # the run's handler: raises KeyboardInterrupt


def _start_forkserver_deaf_to_ctrl_c() -> None:
    """Start the forkserver (if it is not running) with Ctrl-C ignored. A terminal's Ctrl-C goes to every process of
    the run; the driver stops the workers itself, but the server (importing :data:`PRELOAD`) and a worker still
    unpickling its start-up (before :func:`_init_worker` ignores SIGINT) printed a traceback each. An ignored SIGINT
    survives the server's exec (Python leaves it ignored) and the server hands it to every worker it forks. The
    driver ignores Ctrl-C for the few milliseconds the server takes to start."""
    from multiprocessing import forkserver

    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_worker(model: str, driver_pid: int, channels: str = "mix") -> None:
    global _recognizer, _init_error, _channels
    _channels = channels
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a forked worker inherits the driver's (SIGTERM as Ctrl-C)
    threading.Thread(target=_exit_with_driver, args=(driver_pid,), daemon=True).start()
    try:
        _recognizer = load_worker_recognizer(model)
    except BaseException as exc:  # reported by the first task, which aborts the run
        _init_error = exc


def _exit_with_driver(driver_pid: int, interval_s: float = 1.0) -> None:
    """End this worker once the process that runs the batch is gone (killed with SIGKILL, say).

    A pool worker otherwise waits forever on its task queue, and keeps the fork server alive.
    """
    while True:
        time.sleep(interval_s)
        try:
            os.kill(driver_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # alive, owned by someone else (cannot happen for our parent, but harmless)
            pass


def _analyze(job: Job) -> FileResult:
    if _recognizer is None:
        raise _init_error or RuntimeError("worker has no model")
    return analyze_one(job, _recognizer, _channels)


PRELOAD = ("speech_emotion.batch.worker", "onnxruntime")
"""Modules the fork server imports once, so that starting a worker costs a fork and a model load rather than
imports (the default model's path is numpy + ONNX Runtime; a librosa-featured model imports librosa itself)."""

CRASH_ERROR = "the worker process died while analysing this file (a crash in the decoder or the model)"


@dataclass
class LocalRunner:
    """Process pool over this machine's cores."""

    workers: int
    max_in_flight: int | None = None
    """Files submitted but not finished at once (default ``2 x workers``)."""
    start_method: str = "forkserver"
    channels: str = "mix"
    """``mix`` or ``split`` (see :class:`~speech_emotion.batch.runner.BatchOptions`)."""
    _finished: int = 0
    _crashes_in_a_row: int = 0

    def run(self, jobs: Sequence[Job], model: str, on_result: ResultCallback) -> None:
        """Analyse ``jobs`` with the model bundle at ``model``; ``on_result`` gets each result as it completes."""
        self._finished = self._crashes_in_a_row = 0

        def counted(result: FileResult) -> None:
            self._finished += 1
            on_result(result)

        pending = deque(jobs)
        limit = self.max_in_flight or 2 * self.workers
        while pending:
            suspects = self._pass(pending, model, counted, self.workers, limit)
            if suspects and limit > 1:
                log.warning("a worker died; rerunning the %d file(s) in flight one at a time", len(suspects))
            self._isolate(deque(suspects), model, counted, on_result, known_culprits=limit == 1)

    def _isolate(
        self,
        suspects: deque[Job],
        model: str,
        on_result: ResultCallback,
        on_crash: ResultCallback,
        known_culprits: bool = False,
    ) -> None:
        """Run files one at a time; one that kills its worker is recorded as failed (through ``on_crash``).

        With ``known_culprits`` the suspects were alone in flight when their worker died: they are
        recorded at once, without a rerun.
        """
        while suspects:
            if known_culprits:
                lost = [suspects.popleft()]
            else:
                lost = self._pass(suspects, model, on_result, workers=1, limit=1)
            self._crashes_in_a_row = self._crashes_in_a_row + 1 if lost else 0
            if self._crashes_in_a_row >= 3 and self._finished == 0:
                raise SpeechEmotionError(
                    "worker processes keep dying before finishing any file: the model or the Python "
                    "environment is broken (run speech-emotion predict on one file to see why)"
                )
            for job in lost:
                on_crash(failed_result(job, f"{job.path}: {CRASH_ERROR}"))

    def _pass(self, pending: deque[Job], model: str, on_result: ResultCallback, workers: int, limit: int) -> list[Job]:
        """Run jobs from ``pending`` in one pool until it is empty or the pool breaks; returns the jobs lost."""
        context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":  # heavy imports once, in the server; workers fork from it
            context.set_forkserver_preload(list(PRELOAD))
            _start_forkserver_deaf_to_ctrl_c()
        in_flight: dict[Future[FileResult], Job] = {}
        children_before = set(multiprocessing.active_children())
        pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_worker, initargs=(model, os.getpid(), self.channels)
        )
        try:
            while pending or in_flight:
                with _interrupts_held():  # a submit may start a worker: not to be cut in half
                    while pending and len(in_flight) < limit:
                        job = pending.popleft()
                        in_flight[pool.submit(_analyze, job)] = job
                # a timeout, not a blocking wait: Ctrl-C's signal may go to another thread of this process, and a
                # main thread blocked without one would never run the handler (the run hung until a file finished)
                done, _ = wait(in_flight, timeout=WAKE_S, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()  # BrokenProcessPool, or the model error of a worker
                    del in_flight[future]
                    on_result(result)
        except BrokenProcessPool:
            pool.shutdown(wait=True, cancel_futures=True)
            lost = []
            for future, job in in_flight.items():
                if future.done() and not future.cancelled() and future.exception() is None:
                    on_result(future.result())  # finished before the pool broke
                else:
                    lost.append(job)
            return lost
        except BaseException:  # Ctrl-C or a model error: the files in flight are not waited for (a resume reruns them)
            _stop_workers(pool, set(multiprocessing.active_children()) - children_before)
            raise
        pool.shutdown(wait=True)
        return []


def _stop_workers(pool: ProcessPoolExecutor, started: set | None = None, grace_s: float = 5.0) -> None:
    """End ``pool`` now: its workers (which ignore Ctrl-C, and may be minutes into a long file) are terminated, the
    futures cancelled. Waiting for them instead could hang the exit: an interrupt that lands while the pool's feeder
    is handing out work can leave a worker waiting on its queue for a sentinel that never comes.

    Exits are watched through each process's sentinel, not ``join``: the pool's own thread reaps its workers once
    they die, and a second thread reaping the same process sees it as still running (``waitpid`` fails, and
    ``multiprocessing`` reads that as alive: a fresh clone's CI run failed on it)."""
    registered = list((getattr(pool, "_processes", None) or {}).values())
    # and any worker this run started that the pool had not registered yet (an interrupt inside its spawning)
    unregistered = [p for p in started or () if p not in registered]
    processes = registered + unregistered
    for process in processes:
        process.terminate()
    survivors = _still_running(processes, grace_s)
    for process in survivors:
        process.kill()
    _still_running(survivors, grace_s)
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    if manager is not None:  # it reaps the workers it knows, now that they are gone
        manager.join(grace_s)
    for process in unregistered:  # nobody else reaps these
        process.join(grace_s)


def _still_running(processes: Sequence[multiprocessing.process.BaseProcess], timeout_s: float) -> list:
    """The processes whose sentinel is not ready within ``timeout_s`` seconds (it is once a process has exited)."""
    waiting = {process.sentinel: process for process in processes}
    deadline = time.monotonic() + timeout_s
    while waiting and (left := deadline - time.monotonic()) > 0:
        for sentinel in multiprocessing.connection.wait(list(waiting), left):
            del waiting[sentinel]
    return list(waiting.values())
