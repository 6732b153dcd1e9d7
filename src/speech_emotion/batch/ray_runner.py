"""The distributed runner: the same per-file work on a Ray cluster, with Ray Data.

The jobs become a Ray dataset; ``map_batches`` runs :class:`_RayAnalyzer` on a fixed-size pool
of actors, each holding one model for its whole life (the model is loaded once per actor, not
per file), and the driver streams the results back and commits them in parts exactly like the
local runner. Ray is an optional extra (``pip install .[distributed]``) and is imported only here.

On a cluster, every node must see the audio files and the model bundle at the same paths (a
shared file system) and have this package installed.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SpeechEmotionError
from .inputs import Job
from .state import failed_result
from .worker import FileResult, analyze_one, load_worker_recognizer

log = logging.getLogger(__name__)

ResultCallback = Callable[[FileResult], None]
MAX_TASK_RETRIES = 1
"""Retries of a batch whose actor died (a lost node is worth one retry; a crashing file is not)."""
LOST_ERROR = "lost: the Ray worker died while analysing this file (a crash in the decoder or the model, or a lost node)"


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`SpeechEmotionError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise SpeechEmotionError(
            "the ray runner needs Ray: install it with pip install .[distributed] (or pip install 'ray[data]')"
        ) from None
    return ray


class _RayAnalyzer:
    """A Ray actor holding one model; called with a batch of jobs, returns their results as JSON."""

    def __init__(self, model: str, channels: str = "mix") -> None:
        self.recognizer = load_worker_recognizer(model)
        self.channels = channels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = []
        for path, size, mtime_ns, key in zip(batch["path"], batch["size"], batch["mtime_ns"], batch["key"]):
            job = Job(str(path), int(size), int(mtime_ns), str(key))
            results.append(json.dumps(analyze_one(job, self.recognizer, self.channels).to_dict()))
        return {"key": batch["key"], "result": np.array(results, dtype=object)}


@dataclass
class RayRunner:
    """Ray Data ``map_batches`` over an actor pool of ``workers`` model holders."""

    workers: int | None
    """Actors; ``None``: one per CPU of the cluster."""
    address: str | None = None
    """Cluster to join (``auto``, ``ray://host:10001``, ...); ``None`` starts a local Ray instance."""
    batch_size: int = 4
    """Files per call to an actor: larger amortises Ray's per-task overhead, smaller balances load."""
    channels: str = "mix"
    """``mix`` or ``split`` (see :class:`~speech_emotion.batch.runner.BatchOptions`)."""

    def run(self, jobs: Sequence[Job], model: str, on_result: ResultCallback) -> None:
        """Analyse ``jobs`` on Ray; ``on_result`` gets each result (on the driver) as it arrives."""
        ray = import_ray()
        started = self._connect(ray)
        try:
            self._run(ray, jobs, model, on_result)
        finally:
            if started:
                ray.shutdown()

    def _connect(self, ray: Any) -> bool:
        """Join or start Ray; returns whether this call started it (and so must shut it down)."""
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR}
        if self.address:
            kwargs["address"] = self.address
        elif self.workers:
            kwargs["num_cpus"] = self.workers
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise SpeechEmotionError(f"cannot start or join Ray ({self.address or 'local'}): {exc}") from None
        return True

    def _run(self, ray: Any, jobs: Sequence[Job], model: str, on_result: ResultCallback) -> None:
        if not jobs:
            return
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-run INFO lines and notices
        if not self.workers:
            self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the runner shows its own
        ctx.print_on_execution_start = False
        ctx.max_errored_blocks = -1  # a batch that keeps crashing its actor must not abort the run
        remaining = self._pass(ray, list(jobs), model, on_result, self.batch_size)
        if len(remaining) == len(jobs) > self.batch_size:  # every batch failed: not a bad file
            raise SpeechEmotionError(
                "Ray returned no result at all: its workers could not load the model or import speech_emotion "
                "(on a cluster, every node needs the package and the model at the same path; see the Ray logs)"
            )
        if remaining and self.batch_size > 1:  # find the culprit(s): the others of their batches were innocent
            log.warning("%d file(s) lost with a crashed Ray worker; retrying them one per task", len(remaining))
            remaining = self._pass(ray, list(remaining.values()), model, on_result, 1)
        for job in remaining.values():
            on_result(failed_result(job, f"{job.path}: {LOST_ERROR}"))

    def _pass(self, ray: Any, jobs: list[Job], model: str, on_result: ResultCallback, batch_size: int) -> dict:
        """One Ray Data run over ``jobs``; returns the jobs that got no result, by key."""
        items = [{"path": j.path, "size": j.size, "mtime_ns": j.mtime_ns, "key": j.key} for j in jobs]
        dataset = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / batch_size))
        with warnings.catch_warnings():  # Ray 2.60 has no named parameter for the retry limits yet
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = dataset.map_batches(
                _RayAnalyzer,
                fn_constructor_args=(model, self.channels),
                batch_size=batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=min(self.workers or 1, len(items))),
                num_cpus=1,
                max_restarts=-1,  # an actor killed by a crashing file comes back for the next batch ...
                max_task_retries=MAX_TASK_RETRIES,  # ... but that batch is not retried forever
            )
        remaining = {job.key: job for job in jobs}
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for key, text in zip(batch["key"], batch["result"]):
                    if remaining.pop(str(key), None) is not None:
                        on_result(FileResult.from_dict(json.loads(text)))
        except ray.exceptions.RayError as exc:  # e.g. actors that cannot load the model
            raise SpeechEmotionError(f"the Ray run failed: {_cause(exc)}") from None
        return remaining


def _cause(exc: BaseException) -> str:
    """The most telling line of a Ray error: the remote exception's own message when there is one."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines if "Error:" in line and not line.startswith(("File ", "Traceback"))]
    return (causes or lines or [type(exc).__name__])[-1]
