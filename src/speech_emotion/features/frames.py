"""Hand-crafted frame features (librosa): the ``librosa`` model input of the CNN-LSTM bundles.

One STFT per clip feeds 20 MFCCs, chroma, a log-mel spectrogram, spectral contrast and
tonnetz, stacked as a ``(frames, features)`` matrix for the sequence model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from ..conditioning import SAMPLE_RATE

FEATURE_VERSION = 1
"""Bump when the computation changes, so cached features are recomputed."""


@dataclass(frozen=True)
class FeatureOptions:
    """Parameters of :func:`extract_features` (16 kHz audio: :data:`~speech_emotion.conditioning.SAMPLE_RATE`)."""

    n_fft: int = 1024
    hop_length: int = 320
    """20 ms at 16 kHz."""
    n_mfcc: int = 20
    n_mels: int = 64
    contrast_fmin: float = 100.0
    contrast_bands: int = 6

    @property
    def n_features(self) -> int:
        return self.n_mfcc + 12 + self.n_mels + (self.contrast_bands + 1) + 6

    def feature_names(self) -> list[str]:
        """Column names of the feature matrix, in order."""
        return (
            [f"mfcc{i}" for i in range(self.n_mfcc)]
            + [f"chroma{i}" for i in range(12)]
            + [f"mel{i}" for i in range(self.n_mels)]
            + [f"contrast{i}" for i in range(self.contrast_bands + 1)]
            + [f"tonnetz{i}" for i in range(6)]
        )

    def key(self) -> str:
        """Short stable hash of the options (and the feature code version)."""
        blob = json.dumps({"v": FEATURE_VERSION, "sample_rate": SAMPLE_RATE, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


def extract_features(samples: np.ndarray, options: FeatureOptions = FeatureOptions()) -> np.ndarray:
    """Feature matrix ``(frames, options.n_features)``, float32, for preprocessed mono audio."""
    import librosa

    sr = SAMPLE_RATE
    stft = librosa.stft(samples, n_fft=options.n_fft, hop_length=options.hop_length)
    magnitude = np.abs(stft)
    power = magnitude**2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=options.n_mels)
    log_mel = librosa.power_to_db(mel, ref=1.0, top_db=80.0)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=options.n_mfcc)
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=options.n_fft)
    contrast = librosa.feature.spectral_contrast(
        S=magnitude, sr=sr, fmin=options.contrast_fmin, n_bands=options.contrast_bands
    )
    tonnetz = librosa.feature.tonnetz(chroma=chroma, sr=sr)
    stacked = np.concatenate([mfcc, chroma, log_mel, contrast, tonnetz], axis=0)
    return np.ascontiguousarray(stacked.T, dtype=np.float32)


def compile_kernels(options: FeatureOptions = FeatureOptions()) -> None:
    """Compile librosa's numba kernels for :func:`extract_features` in this process (loads them from numba's disk
    cache when they are there: a fraction of a second).

    Call it once before starting processes that compute these features. Each kernel is compiled on first use and
    cached on disk; processes that compile them at the same moment can write an inconsistent cache, after which
    every process that loads it crashes with a segmentation fault (numba issue #10128: two of seven cold starts of
    two processes here).
    """
    extract_features(np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1, options)
