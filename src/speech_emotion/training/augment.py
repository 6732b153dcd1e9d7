"""Training-time augmentation: noise at a chosen SNR, time stretch, pitch shift.

Only the training side of a split is ever augmented; see :mod:`speech_emotion.training.data`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..conditioning import SAMPLE_RATE
from .options import option


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise so the signal-to-noise ratio is ``snr_db``."""
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    noise_power = power / (10 ** (snr_db / 10))
    noise = rng.normal(0.0, np.sqrt(noise_power), size=samples.shape)
    return (samples + noise).astype(np.float32)


def time_stretch(samples: np.ndarray, rate: float) -> np.ndarray:
    """Speed up (``rate`` > 1) or slow down without changing pitch (librosa phase vocoder)."""
    import librosa

    return librosa.effects.time_stretch(samples, rate=rate).astype(np.float32)


def pitch_shift(samples: np.ndarray, semitones: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping the duration (librosa)."""
    import librosa

    return librosa.effects.pitch_shift(samples, sr=sample_rate, n_steps=semitones).astype(np.float32)


@dataclass(frozen=True)
class AugmentOptions:
    """How many augmented copies of each training clip, and the ranges they are drawn from."""

    copies: int = option(2, at_least=0)
    snr_db: tuple[float, float] = (15.0, 30.0)
    stretch: tuple[float, float] = (0.85, 1.15)
    semitones: tuple[float, float] = (-2.0, 2.0)
    seed: int = 0


def augment(samples: np.ndarray, copy: int, key: str, options: AugmentOptions) -> np.ndarray:
    """Augmented copy number ``copy`` of a clip: random stretch, pitch shift and noise.

    Deterministic for a given (``key``, ``copy``, ``options.seed``), so cached copies stay valid.
    """
    seed = int.from_bytes(key.encode()[-8:], "little") ^ (options.seed * 1_000_003 + copy)
    rng = np.random.default_rng(seed)
    out = time_stretch(samples, float(rng.uniform(*options.stretch)))
    out = pitch_shift(out, float(rng.uniform(*options.semitones)))
    return add_noise(out, float(rng.uniform(*options.snr_db)), rng)


def compile_kernels(options: AugmentOptions = AugmentOptions()) -> None:
    """Compile the librosa kernels :func:`augment` uses in this process, before starting processes that augment
    (see :func:`speech_emotion.features.frames.compile_kernels`: processes that compile them at once can corrupt
    numba's disk cache)."""
    augment(np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1, 0, "compile", options)
