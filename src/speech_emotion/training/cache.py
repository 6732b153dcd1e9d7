"""On-disk cache of per-clip arrays (training features, Whisper encoder states) and the store that fills it."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def file_digest(path: str | Path) -> str:
    """SHA-1 of a file's bytes: the content part of a cache key."""
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$SPEECH_EMOTION_CACHE`` or ``~/.cache/speech-emotion``."""
    env = os.environ.get("SPEECH_EMOTION_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "speech-emotion"


class FeatureCache:
    """Arrays on disk keyed by audio content and a configuration key; writes are atomic."""

    def __init__(self, root: str | Path | None, config_key: str) -> None:
        self.root = (Path(root) if root is not None else default_cache_dir()) / config_key
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get_or_compute(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array for ``key``; computed, stored and returned when absent."""
        target = self.path(key)
        if target.exists():
            try:
                return np.load(target)
            except (OSError, ValueError):
                target.unlink(missing_ok=True)
        value = compute()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, value)
        os.replace(tmp, target)
        return value


CacheJob = tuple[str, str, int, Any]
"""``(path, content digest, copy, options)``: copy 0 is the clip itself, 1.. its augmented copies."""


class ClipStore:
    """Per-clip arrays (a clip or one of its augmented copies) read from a :class:`FeatureCache`.

    Missing arrays are computed by ``compute(job)`` — a picklable top-level function that stores
    its result in the cache — in a process pool with a progress bar (the cold-cache case).
    Training features and encoder states are both served this way. ``prepare()``, when given, runs in this
    process once before a pool starts (e.g. compiling JIT kernels the workers would otherwise all compile at once).
    """

    def __init__(
        self,
        cache: FeatureCache,
        item_key: Callable[[str, int], str],
        compute: Callable[[CacheJob], np.ndarray],
        options: Any,
        workers: int = 2,
        progress: bool = True,
        desc: str = "features",
        start_method: str = "fork",
        initializer: Callable[[], None] | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.cache = cache
        self.item_key = item_key
        self.options = options
        self._compute_job = compute
        self._workers = workers
        self._progress = progress
        self._desc = desc
        self._start_method = start_method
        self._initializer = initializer
        self._prepare = prepare
        self._digests: dict[str, str] = {}

    def digest(self, path: str) -> str:
        """Content digest of ``path`` (read once per store)."""
        if path not in self._digests:
            self._digests[path] = file_digest(path)
        return self._digests[path]

    def get(self, paths: list[str], copies: list[int]) -> list[np.ndarray]:
        """The array of each ``(paths[i], copies[i])``; missing ones computed by the worker pool."""
        jobs: list[CacheJob] = [(p, self.digest(p), c, self.options) for p, c in zip(paths, copies)]
        results: list[np.ndarray | None] = [None] * len(jobs)
        missing = []
        for i, (_, digest, copy, _) in enumerate(jobs):
            target = self.cache.path(self.item_key(digest, copy))
            if target.exists():
                try:
                    results[i] = np.load(target)
                    continue
                except (OSError, ValueError):
                    pass
            missing.append(i)
        if missing:
            self._compute_missing(jobs, missing, results)
        return results  # type: ignore[return-value]

    def _compute_missing(self, jobs: list[CacheJob], missing: list[int], results: list[np.ndarray | None]) -> None:
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_all_start_methods, get_context

        from tqdm import tqdm

        bar = tqdm(total=len(missing), desc=self._desc, unit="clip", disable=not self._progress)
        if self._workers <= 1 or len(missing) < 8:
            for i in missing:
                results[i] = self._compute_job(jobs[i])
                bar.update()
        else:
            if self._prepare is not None:
                self._prepare()
            method = self._start_method if self._start_method in get_all_start_methods() else "spawn"
            # the workers end with this process (a run stopped with SIGTERM or killed left them waiting for ever)
            initializer = functools.partial(_start_worker, os.getpid(), self._initializer)
            with ProcessPoolExecutor(self._workers, mp_context=get_context(method), initializer=initializer) as pool:
                todo = [jobs[i] for i in missing]
                for i, value in zip(missing, pool.map(self._compute_job, todo, chunksize=4)):
                    results[i] = value
                    bar.update()
        bar.close()


def _start_worker(parent: int, initializer: Callable[[], None] | None) -> None:
    """A pool worker's first step: end with ``parent`` (:func:`~speech_emotion.processes.end_with_parent`), then
    the store's own ``initializer``."""
    from ..processes import end_with_parent

    end_with_parent(parent)
    if initializer is not None:
        initializer()
