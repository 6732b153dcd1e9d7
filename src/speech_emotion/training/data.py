"""Feature datasets for training and evaluation, computed once through the on-disk :class:`FeatureCache`.

Augmented copies exist only for the training side of a split: :func:`training_examples` adds them,
:func:`evaluation_examples` (validation and test) never does. Missing features are computed by a
small process pool with a progress bar (the cold-cache case); cached ones are read directly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from ..conditioning import AudioOptions, prepare
from ..features import FeatureOptions, extract_features, prepare_for_processes
from ..labels import emotion_index
from .augment import AugmentOptions, augment
from .augment import compile_kernels as compile_augment_kernels
from .cache import ClipStore, FeatureCache
from .options import option


@dataclass(frozen=True)
class DataOptions:
    """How clips become feature matrices: preprocessing, features, augmentation and the worker pool."""

    features: FeatureOptions = field(default_factory=FeatureOptions)
    audio: AudioOptions = field(default_factory=AudioOptions)
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    workers: int = option(2, at_least=1)
    cache_dir: str | None = None
    """``None``: ``$SPEECH_EMOTION_CACHE`` or ``~/.cache/speech-emotion``."""
    progress: bool = True

    def cache_key(self) -> str:
        """Cache folder name: the feature options' key plus a hash of the audio options."""
        audio = hashlib.sha1(json.dumps(asdict(self.audio), sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.features.key()}-{audio}"

    def augment_key(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self.augment), sort_keys=True).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Example:
    """One feature matrix ``(frames, features)``, its class index and the corpus row it came from."""

    features: np.ndarray
    label: int
    row: int
    augmented: bool = False


def item_key(digest: str, copy: int, options: DataOptions) -> str:
    """Cache key of a clip (``copy`` 0) or of its augmented copy number ``copy`` (1, 2, ...)."""
    return digest if copy == 0 else f"{digest}-aug{copy}-{options.augment_key()}"


def compute_item(path: str, digest: str, copy: int, options: DataOptions) -> np.ndarray:
    """Features of a clip, or of its augmented copy ``copy`` (augmentation seeded by the clip's content)."""
    samples = prepare(path, options.audio)
    if copy > 0:
        samples = augment(samples, copy - 1, digest, options.augment)
    return extract_features(samples, options.features)


def _cached_item(job: tuple[str, str, int, DataOptions]) -> np.ndarray:
    path, digest, copy, options = job
    cache = FeatureCache(options.cache_dir, options.cache_key())
    return cache.get_or_compute(item_key(digest, copy, options), lambda: compute_item(path, digest, copy, options))


def compile_kernels(options: DataOptions) -> None:
    """Compile the augmentation's and the features' librosa kernels in this process, so that the forked workers
    inherit them instead of compiling them all at once (see :func:`speech_emotion.features.frames.compile_kernels`)."""
    compile_augment_kernels(options.augment)
    prepare_for_processes("librosa", options.features)


class FeatureStore(ClipStore):
    """Features of corpus clips and their augmented copies, through the cache, computed in parallel when missing."""

    def __init__(self, options: DataOptions = DataOptions()) -> None:
        # fork: workers only run numpy/librosa, and need no importable __main__ (unlike spawn)
        super().__init__(
            FeatureCache(options.cache_dir, options.cache_key()),
            lambda digest, copy: item_key(digest, copy, options),
            _cached_item,
            options,
            workers=options.workers,
            progress=options.progress,
            desc="features",
            start_method="fork",
            prepare=partial(compile_kernels, options),
        )


def _examples(store: FeatureStore, corpus: pd.DataFrame, rows: np.ndarray, copies: int) -> list[Example]:
    rows = np.asarray(rows, dtype=int)
    paths = corpus["path"].to_numpy()
    labels = [emotion_index(e) for e in corpus["emotion"].to_numpy()]
    jobs = [(int(r), c) for r in rows for c in range(copies + 1)]
    feats = store.get([str(paths[r]) for r, _ in jobs], [c for _, c in jobs])
    return [Example(f, labels[r], r, c > 0) for (r, c), f in zip(jobs, feats)]


def training_examples(store: FeatureStore, corpus: pd.DataFrame, rows: np.ndarray) -> list[Example]:
    """Each training row's clip plus its ``augment.copies`` augmented copies."""
    return _examples(store, corpus, rows, store.options.augment.copies)


def evaluation_examples(store: FeatureStore, corpus: pd.DataFrame, rows: np.ndarray) -> list[Example]:
    """The clips of validation or test rows as they are: never augmented."""
    return _examples(store, corpus, rows, 0)


def feature_statistics(examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over all frames of ``examples`` (the training set)."""
    frames = np.concatenate([e.features for e in examples], axis=0).astype(np.float64)
    return frames.mean(axis=0).astype(np.float32), frames.std(axis=0).astype(np.float32)
