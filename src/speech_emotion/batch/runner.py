"""A whole batch run: collect the jobs, skip what is done, analyse the rest (local or Ray), compact the tables."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow.compute as pc

from ..bundle import load_bundle
from ..errors import SpeechEmotionError
from ..features import prepare_for_processes
from .inputs import JobList, collect_jobs
from .state import FILES_TABLE, SEGMENTS_TABLE, ResultStore
from .worker import FAILED, OK, FileResult

log = logging.getLogger(__name__)

Runner = Literal["local", "ray"]


@dataclass
class BatchOptions:
    """What to analyse, where the results go, and how to run."""

    input: str | Path
    """Folder (recursive), glob pattern, or CSV/TSV/JSONL manifest."""
    out: str | Path
    """Results folder; restarting with the same folder resumes the run."""
    model: str | Path | None = None
    """Bundled model name or bundle folder (default: the bundled default model)."""
    runner: Runner = "local"
    workers: int | None = None
    """Worker processes / Ray actors (default: this machine's cores; on a Ray cluster, its CPUs)."""
    address: str | None = None
    """Ray cluster address; without one, ``runner="ray"`` starts a local Ray instance."""
    retry_failed: bool = False
    """Analyse again the files that failed in an earlier run (by default they are kept as failed)."""
    path_column: str | None = None
    """Manifest column holding the paths (default: the first of path, file, filename, ...)."""
    chunk_files: int = 64
    """Results are committed to disk every this many files ..."""
    chunk_seconds: float = 30.0
    """... or after this many seconds, whichever comes first (what an interruption can cost)."""
    progress: bool = True
    ray_batch_size: int = 4
    channels: Literal["mix", "split"] = "mix"
    """``mix``: a safe mix of each file's channels; ``split``: each channel apart (segments carry ``channel``)."""


@dataclass
class BatchSummary:
    """What a run did (this run only, except the ``table_*`` totals)."""

    files_total: int
    files_skipped: int
    """Already done in an earlier run (failed ones included unless retried)."""
    files_done: int = 0
    files_failed: int = 0
    audio_s: float = 0.0
    """Audio analysed in this run (seconds)."""
    cpu_s: float = 0.0
    """CPU seconds the workers spent on the files of this run."""
    wall_s: float = 0.0
    table_ok: int = 0
    table_failed: int = 0
    runner: str = "local"
    workers: int = 0
    """Workers (processes or Ray actors) the runner ran; 0 when there was nothing to do."""
    model: str = ""
    peak_worker_rss_mb: dict[str, float] = field(default_factory=dict)
    """Peak resident memory of each worker process (``host:pid``)."""
    failures: list[str] = field(default_factory=list)
    """Errors of the files that failed in this run (the first 20)."""
    earlier_failures: list[str] = field(default_factory=list)
    """Errors of the files of this input that failed in an earlier run and were not retried (the first 20; their
    count is ``table_failed - files_failed``)."""
    results_not_in_input: int = 0
    """Files with results in the results folder from earlier runs that are not in this input (removed, renamed or
    not given this time): left out of the tables, which hold the current input's files, but kept under ``parts/``."""
    files_left_out: int = 0
    """Files under a folder input not analysed (not audio, hidden) and folders not searched (hidden, linked)."""
    left_out: list[str] = field(default_factory=list)
    """``path: reason`` of the first 20 of them."""
    files_table: str = ""
    segments_table: str = ""
    interrupted: bool = False

    @property
    def audio_hours(self) -> float:
        return self.audio_s / 3600

    @property
    def real_time_factor(self) -> float | None:
        """Wall time per second of audio (below 1: faster than real time)."""
        return self.wall_s / self.audio_s if self.audio_s else None

    @property
    def cpu_per_audio_s(self) -> float | None:
        """CPU seconds per second of audio: what one dedicated core achieves is ``1 / cpu_per_audio_s``."""
        return self.cpu_s / self.audio_s if self.audio_s else None

    @property
    def files_per_s(self) -> float:
        processed = self.files_done + self.files_failed
        return processed / self.wall_s if self.wall_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.update(
            audio_hours=self.audio_hours,
            real_time_factor=self.real_time_factor,
            files_per_s=self.files_per_s,
            cpu_per_audio_s=self.cpu_per_audio_s,
        )
        return d


def model_info(model: str | Path | None) -> tuple[str, str, tuple[str, ...]]:
    """``(bundle folder, model name, labels)`` of a model, validated without loading its ONNX graph."""
    bundle = load_bundle(model)
    return str(Path(bundle.folder or ".").resolve()), bundle.name, bundle.labels


def model_digest(folder: str | Path) -> str:
    """The identity of the bundle in ``folder`` by content: ``sha256:`` and the hex SHA-256 of its ``model.json``
    and the ONNX graph it names (``train`` names every bundle after its recipe, so names are not identities)."""
    bundle = load_bundle(Path(folder))
    digest = hashlib.sha256()
    for path in (Path(folder) / "model.json", bundle.onnx_path):
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def make_runner(options: BatchOptions, workers: int | None) -> Any:
    if options.runner == "local":
        from .local import LocalRunner

        return LocalRunner(workers or 1, channels=options.channels)
    if options.runner == "ray":
        from .ray_runner import RayRunner

        return RayRunner(workers, address=options.address, batch_size=options.ray_batch_size, channels=options.channels)
    raise SpeechEmotionError(f"unknown runner {options.runner!r} (choose local or ray)")


def run_batch(options: BatchOptions, jobs: JobList | None = None) -> BatchSummary:
    """Run (or resume) a batch; writes ``files.parquet`` and ``segments.parquet`` under ``options.out``.

    On Ctrl-C (or SIGTERM) the results completed so far are committed and
    :class:`KeyboardInterrupt` (:class:`Terminated` for SIGTERM) is raised; the final tables are then left as they
    were.
    """
    started = time.perf_counter()
    bundle, model_name, labels = model_info(options.model)
    jobs = jobs or collect_jobs(options.input, options.path_column, results=options.out)
    workers: int | None = options.workers or os.cpu_count() or 1
    if not options.workers and options.runner == "ray" and options.address:
        workers = None  # on a Ray cluster: one actor per CPU of the cluster (the runner asks Ray)
    digest = model_digest(bundle)
    with ResultStore(options.out, model_name, labels, options.channels, digest) as store:
        statuses = store.statuses()
        todo = [j for j in jobs.jobs if _needs_run(statuses.get(j.key), options.retry_failed)]
        todo.sort(key=lambda j: -j.size)  # longest first: fewer stragglers at the end
        summary = BatchSummary(
            files_total=len(jobs.jobs),
            files_skipped=len(jobs.jobs) - len(todo),
            runner=options.runner,
            workers=workers or 0,
            model=model_name,
            files_left_out=len(jobs.left_out),
            left_out=[str(item) for item in jobs.left_out[:20]],
        )
        if todo:
            sink = _Sink(store, summary, options, len(todo))  # its progress bar shows while the features get ready
            try:
                with _sigterm_as_interrupt():
                    loaded = load_bundle(bundle)
                    prepare_for_processes(loaded.features, loaded.feature_options)  # before any worker starts
                    runner = make_runner(options, min(workers, len(todo)) if workers else None)
                    runner.run(todo, bundle, sink.add)
                    summary.workers = runner.workers
            except BaseException as exc:  # keep what completed (a rerun resumes from there)
                sink.close()
                summary.interrupted = isinstance(exc, KeyboardInterrupt)
                raise
            sink.close()
        files, _ = store.compact(jobs.keys, jobs.extras)
        whole = files.filter(pc.is_null(files["channel"]))  # the whole files' rows
        status = whole["status"].to_pylist()
        summary.table_ok, summary.table_failed = status.count(OK), status.count(FAILED)
        tried = {j.key for j in todo}
        summary.earlier_failures = [
            error or path
            for key, path, state, error in zip(*(whole[c].to_pylist() for c in ("key", "path", "status", "error")))
            if state == FAILED and key not in tried
        ][:20]
        summary.results_not_in_input = len(store.paths() - {j.path for j in jobs.jobs})
        summary.files_table = str(store.out / FILES_TABLE)
        summary.segments_table = str(store.out / SEGMENTS_TABLE)
    summary.wall_s = time.perf_counter() - started
    return summary


def _needs_run(status: str | None, retry_failed: bool) -> bool:
    return status is None or (status == FAILED and retry_failed)


class _Sink:
    """Receives results from a runner: counts them, shows progress, commits them in chunks."""

    def __init__(self, store: ResultStore, summary: BatchSummary, options: BatchOptions, total: int) -> None:
        self.store = store
        self.summary = summary
        self.options = options
        self.buffer: list[FileResult] = []
        self.last_commit = time.monotonic()
        self.bar = None
        if options.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", desc="analysing", dynamic_ncols=True, smoothing=0.05)

    def add(self, result: FileResult) -> None:
        s = self.summary
        if result.status == OK:
            s.files_done += 1
            s.audio_s += result.duration_s or 0.0
        else:
            s.files_failed += 1
            if len(s.failures) < 20:
                s.failures.append(result.error or result.path)
        s.cpu_s += result.cpu_s
        if result.worker:
            peak = s.peak_worker_rss_mb
            peak[result.worker] = max(peak.get(result.worker, 0.0), result.worker_rss_mb)
        self.buffer.append(result)
        due = time.monotonic() - self.last_commit >= self.options.chunk_seconds
        if len(self.buffer) >= self.options.chunk_files or due:
            self.commit()
        if self.bar is not None:
            audio = f"{s.audio_s / 60:.1f} min" if s.audio_s < 3600 else f"{s.audio_hours:.2f} h"
            self.bar.set_postfix_str(f"{audio} of audio, {s.files_failed} failed", refresh=False)
            self.bar.update(1)

    def commit(self) -> None:
        self.store.write_part(self.buffer)
        self.buffer = []
        self.last_commit = time.monotonic()

    def close(self) -> None:
        self.commit()
        if self.bar is not None:
            self.bar.close()


class Terminated(KeyboardInterrupt):
    """SIGTERM during a run, handled as Ctrl-C is; a ``KeyboardInterrupt`` of its own so the CLI can exit 143 (128 +
    SIGTERM), not Ctrl-C's 130."""


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while the runner runs, so completed results are committed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
