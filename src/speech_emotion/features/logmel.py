"""Whisper's log-mel spectrogram in numpy: the ``whisper-logmel`` model input of the Whisper bundles.

Same computation as OpenAI Whisper (400-point Hann STFT, hop 160, 80 Slaney mel bands, log10,
8 dB range below the maximum, ``(x + 4) / 4``) but without padding to 30 s: the clip's own frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dsp
from ..conditioning import SAMPLE_RATE

N_FFT = 400
HOP = 160


@dataclass(frozen=True)
class LogMelOptions:
    """Parameters of :func:`log_mel` (``n_mels``: 80 for whisper-base, 128 for large-v3)."""

    n_mels: int = 80
    max_seconds: float | None = 30.0
    """Longer audio is cut to its first ``max_seconds`` (the encoder knows 1500 positions = 30 s)."""


def mel_filters(n_mels: int = 80) -> np.ndarray:
    """Slaney-normalised mel filter bank ``(n_mels, 201)`` at 16 kHz, as Whisper uses (numpy, cached, read-only)."""
    return dsp.mel_filters(SAMPLE_RATE, N_FFT, n_mels)


def log_mel(samples: np.ndarray, options: LogMelOptions = LogMelOptions()) -> np.ndarray:
    """Whisper log-mel ``(n_mels, len(samples) // 160)`` for 16 kHz mono audio (float32)."""
    x = np.asarray(samples, dtype=np.float32)
    if options.max_seconds is not None:
        x = x[: int(options.max_seconds * SAMPLE_RATE)]
    padded = np.pad(x, N_FFT // 2, mode="reflect") if x.size > N_FFT // 2 else np.pad(x, N_FFT // 2)
    n_frames = 1 + (padded.size - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(n_frames, N_FFT), strides=(padded.strides[0] * HOP, padded.strides[0])
    )
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, like torch.hann_window
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    mel = mel_filters(options.n_mels) @ power[:-1].T.astype(np.float32)
    logm = np.log10(np.maximum(mel, 1e-10))
    logm = np.maximum(logm, logm.max() - 8.0)
    return ((logm + 4.0) / 4.0).astype(np.float32)
