"""Per-clip Whisper hidden states for training, computed once and kept in the :class:`FeatureCache`.

One cached array per clip (or augmented copy): ``(layers + 1, frames, width)`` float16, the embedding
and the outputs of blocks ``1..layers``. Heads and fine-tuned top blocks train on these, so the
frozen encoder runs once per clip, not once per epoch. Augmentation is applied to the waveform,
before the encoder, and only for the training rows that ask for it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from ...conditioning import SAMPLE_RATE, AudioOptions, prepare, resample
from ...features import LogMelOptions, log_mel
from ..augment import AugmentOptions, augment, compile_kernels
from ..cache import ClipStore, FeatureCache

STATES_VERSION = 1


@dataclass(frozen=True)
class SpeedNoiseOptions:
    """Fast augmentation: speed perturbation (resampling: tempo and pitch together) plus white noise."""

    speeds: tuple[float, ...] = (0.9, 1.1)
    """Copy ``k`` plays at ``speeds[(k - 1) % len(speeds)]`` times the original speed."""
    snr_db: tuple[float, float] = (15.0, 30.0)
    seed: int = 0


def speed_noise(samples: np.ndarray, copy: int, key: str, options: SpeedNoiseOptions) -> np.ndarray:
    """Augmented copy ``copy`` (1, 2, ...) of a clip; deterministic for (``key``, ``copy``, seed)."""
    from ..augment import add_noise

    rng = np.random.default_rng(int.from_bytes(key.encode()[-8:], "little") ^ (options.seed * 1_000_003 + copy))
    speed = options.speeds[(copy - 1) % len(options.speeds)]
    out = resample(samples, SAMPLE_RATE, round(SAMPLE_RATE / speed))
    return add_noise(out, float(rng.uniform(*options.snr_db)), rng)


@dataclass(frozen=True)
class StateOptions:
    """Which weights and how many blocks produce the cached states, and how clips are prepared."""

    weights: str | None = None
    """Checkpoint for :func:`~.checkpoint.load_encoder_state` (``None``: the default source)."""
    layers: int = 6
    audio: AudioOptions = field(default_factory=AudioOptions)
    logmel: LogMelOptions = field(default_factory=LogMelOptions)
    augmentation: str = "speed-noise"
    """``speed-noise`` (:func:`speed_noise`, fast) or ``librosa`` (:func:`~speech_emotion.training.augment.augment`:
    stretch, pitch and noise; about 20 times slower)."""
    speed_noise: SpeedNoiseOptions = field(default_factory=SpeedNoiseOptions)
    augment: AugmentOptions = field(default_factory=AugmentOptions)
    cache_dir: str | None = None
    workers: int = 2
    progress: bool = True

    def cache_key(self) -> str:
        blob = json.dumps(
            {
                "v": STATES_VERSION,
                "w": self.weights,
                "l": self.layers,
                "a": asdict(self.audio),
                "m": {"sample_rate": SAMPLE_RATE, **asdict(self.logmel)},  # the key from before 16 kHz was fixed
            },
            sort_keys=True,
        )
        return "whisper-states-" + hashlib.sha1(blob.encode()).hexdigest()[:12]

    def item_key(self, digest: str, copy: int) -> str:
        if copy == 0:
            return digest
        opts = asdict(self.speed_noise) if self.augmentation == "speed-noise" else asdict(self.augment)
        aug = hashlib.sha1(json.dumps([self.augmentation, opts], sort_keys=True).encode()).hexdigest()[:8]
        return f"{digest}-aug{copy}-{aug}"


def encode_samples(samples: np.ndarray, options: StateOptions) -> np.ndarray:
    """Hidden states ``(layers + 1, frames, width)`` float16 of preprocessed audio."""
    import torch

    from .encoder import cached_encoder

    mel = torch.from_numpy(log_mel(samples, options.logmel)[None])
    with torch.inference_mode():
        states = cached_encoder(options.weights, options.layers)(mel, layers=range(options.layers + 1))
    return torch.cat(states).numpy().astype(np.float16)


def _compute(job: tuple[str, str, int, StateOptions]) -> np.ndarray:
    path, digest, copy, options = job
    cache = FeatureCache(options.cache_dir, options.cache_key())

    def run() -> np.ndarray:
        samples = prepare(path, options.audio)
        if copy > 0 and options.augmentation == "speed-noise":
            samples = speed_noise(samples, copy, digest, options.speed_noise)
        elif copy > 0:
            samples = augment(samples, copy - 1, digest, options.augment)
        return encode_samples(samples, options)

    return cache.get_or_compute(options.item_key(digest, copy), run)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


class StateStore(ClipStore):
    """Cached hidden states of corpus clips and augmented copies; missing ones computed by a process pool."""

    def __init__(self, options: StateOptions = StateOptions()) -> None:
        super().__init__(
            FeatureCache(options.cache_dir, options.cache_key()),
            options.item_key,
            _compute,
            options,
            workers=options.workers,
            progress=options.progress,
            desc="whisper states",
            start_method="spawn",  # torch in the workers: no forked copies of a threaded parent
            initializer=_init_worker,
            prepare=partial(compile_kernels, options.augment) if options.augmentation == "librosa" else None,
        )

    def rows(self, corpus: pd.DataFrame, rows: np.ndarray, copies: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
        """States of ``rows`` and, with ``copies``, of their augmented copies; returns (states, row of each)."""
        jobs = [(int(r), c) for r in rows for c in range(copies + 1)]
        paths = corpus["path"].to_numpy()
        states = self.get([str(paths[r]) for r, _ in jobs], [c for _, c in jobs])
        return states, np.array([r for r, _ in jobs], dtype=int)
