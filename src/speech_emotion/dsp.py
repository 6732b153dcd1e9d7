"""Signal processing of the default model's path in numpy alone: the mel filter bank, silence trimming and the
DC/rumble high-pass.

Each function reproduces the library call it replaces so results do not move: :func:`mel_filters` is
``librosa.filters.mel`` (Slaney scale and norm), :func:`trim_bounds` is ``librosa.effects.trim`` (RMS frames
with centre padding, dB below the loudest frame) and :class:`HighPass` is ``scipy.signal.butter`` +
``sosfilt`` with the state started as by ``sosfilt_zi``. None of them imports librosa or scipy, which cost
about 2 s of start-up (tests/test_dsp.py compares each with its library counterpart when that is installed).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

_F_SP = 200.0 / 3  # Slaney mel scale: linear below 1 kHz (Hz per mel) ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0  # ... and logarithmic above


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Frequencies (Hz) on the Slaney mel scale (``librosa.hz_to_mel``, ``htk=False``)."""
    hz = np.asarray(hz, dtype=np.float64)
    mels = hz / _F_SP
    log = hz >= _MIN_LOG_HZ
    mels[log] = _MIN_LOG_MEL + np.log(hz[log] / _MIN_LOG_HZ) / _LOGSTEP
    return mels


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """The inverse of :func:`hz_to_mel` (``librosa.mel_to_hz``, ``htk=False``)."""
    mels = np.asarray(mels, dtype=np.float64)
    hz = _F_SP * mels
    log = mels >= _MIN_LOG_MEL
    hz[log] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log] - _MIN_LOG_MEL))
    return hz


@lru_cache(maxsize=4)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney-normalised triangular mel filter bank ``(n_mels, n_fft // 2 + 1)``, float32, from 0 Hz to Nyquist.

    Equal to ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)`` (the same operations in the
    same order). Cached: treat the result as read-only.
    """
    fft_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    top_mel = hz_to_mel(np.array([sample_rate / 2]))[0]
    band_hz = mel_to_hz(np.linspace(0.0, top_mel, n_mels + 2))  # band edges and centres, 0 Hz to Nyquist
    widths = np.diff(band_hz)
    ramps = np.subtract.outer(band_hz, fft_hz)
    weights = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]))
    weights *= (2.0 / (band_hz[2 : n_mels + 2] - band_hz[:n_mels]))[:, np.newaxis]
    weights.flags.writeable = False
    return weights


TRIM_BLOCK_FRAMES = 2048
"""Frames squared at once by :func:`trim_bounds` (8 MB at 1024 samples a frame, whatever the signal's length)."""


def trim_bounds(samples: np.ndarray, top_db: float, frame_length: int = 1024, hop_length: int = 256) -> tuple[int, int]:
    """``(start, end)`` sample indices of ``samples`` without leading and trailing frames more than ``top_db``
    below the loudest frame; ``(0, 0)`` when no frame is loud enough.

    Frames are ``frame_length`` samples every ``hop_length`` over the signal zero-padded by half a frame on each
    side; a frame's level is its RMS in dB (floor 1e-5) relative to the loudest frame's. The result equals the
    index pair of ``librosa.effects.trim(samples, top_db=top_db, frame_length=..., hop_length=...)``.
    """
    y = np.asarray(samples)
    padded = np.pad(y, (frame_length // 2, frame_length // 2), mode="constant")
    n_frames = 1 + (padded.shape[0] - frame_length) // hop_length
    step = padded.strides[0]
    frames = np.lib.stride_tricks.as_strided(
        padded, shape=(frame_length, n_frames), strides=(step, step * hop_length), writeable=False
    )  # the (frame_length, frames) view librosa.util.frame makes, so each frame's sum runs in the same order
    power = np.empty(n_frames, dtype=np.float32)
    for start in range(0, n_frames, TRIM_BLOCK_FRAMES):  # a block of frames at a time: memory stays flat
        block = frames[:, start : start + TRIM_BLOCK_FRAMES]
        power[start : start + block.shape[1]] = np.mean(np.square(block, dtype=np.float32), axis=0)
    rms = np.sqrt(power)
    amin = 1e-5**2
    level_db = 10.0 * np.log10(np.maximum(amin, np.square(rms)))
    level_db -= 10.0 * np.log10(np.maximum(amin, rms.max() ** 2))
    loud = np.flatnonzero(level_db > -top_db)
    if loud.size == 0:
        return 0, 0
    return int(loud[0]) * hop_length, min(y.shape[-1], (int(loud[-1]) + 1) * hop_length)


def trim_silence(samples: np.ndarray, top_db: float, frame_length: int = 1024, hop_length: int = 256) -> np.ndarray:
    """``samples`` cut to :func:`trim_bounds` (a view; empty when nothing is within ``top_db`` of the peak)."""
    start, end = trim_bounds(samples, top_db, frame_length, hop_length)
    return samples[start:end]


def butter2_highpass(cutoff_hz: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """``(b, a)`` of the 2nd-order Butterworth high-pass at ``cutoff_hz`` (bilinear transform, pre-warped), as
    ``scipy.signal.butter(2, cutoff_hz, btype="highpass", fs=sample_rate)``; ``a[0] == 1``.

    Raises ``ValueError`` unless ``0 < cutoff_hz < sample_rate / 2``.
    """
    if not 0 < cutoff_hz < sample_rate / 2:
        raise ValueError(f"high-pass cutoff must be between 0 and {sample_rate / 2:g} Hz, got {cutoff_hz!r}")
    k = math.tan(math.pi * cutoff_hz / sample_rate)
    norm = 1.0 + math.sqrt(2.0) * k + k * k
    b = np.array([1.0, -2.0, 1.0]) / norm
    a = np.array([1.0, 2.0 * (k * k - 1.0) / norm, (1.0 - math.sqrt(2.0) * k + k * k) / norm])
    return b, a


class HighPass:
    """Streaming 2nd-order Butterworth high-pass: removes DC offset and subsonic rumble.

    The filter state starts as if the first sample had always been there (``scipy.signal.sosfilt_zi``), so a
    constant offset leaves no transient; it carries across calls, so any split of a signal into blocks gives
    the same samples as the whole signal. Equal to ``sosfilt(butter(2, cutoff_hz, "highpass", fs=..., output=
    "sos"), x, zi=sosfilt_zi(sos) * x[0])`` within float64 rounding.

    How: the transfer function is split into partial fractions ``k + r / (1 - p z^-1) + conj(...)`` with the
    complex pole ``p``, so the recursion is one complex first-order one, ``w[n] = p w[n-1] + x[n]``, which numpy
    runs a block at a time as a scaled cumulative sum (blocks short enough that ``|p|^-L`` stays below 1e3).
    """

    def __init__(self, cutoff_hz: float, sample_rate: int) -> None:
        b, a = butter2_highpass(cutoff_hz, sample_rate)
        pole = complex(np.roots(a)[np.argmax(np.roots(a).imag)])  # the pole with positive imaginary part
        self._pole = pole
        self._direct = float(b[2] / a[2])  # B(z)/A(z) as z^-1 -> infinity
        z = 1.0 / pole  # z^-1 at the pole
        remainder = (b[0] + b[1] * z + b[2] * z * z) - self._direct * (a[0] + a[1] * z + a[2] * z * z)
        self._residue = complex(remainder / (1.0 - np.conj(pole) * z))
        decay = -math.log(abs(pole))
        self._block = int(min(4096, max(16, math.log(1e3) / decay)))
        n = np.arange(self._block + 1)
        self._powers = pole**n  # p^0 .. p^L
        self._inverse = pole ** -n[:-1]  # p^-0 .. p^-(L-1)
        self._state: complex | None = None

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """The next filtered samples (float32) for the next ``samples`` of the stream."""
        x = np.asarray(samples, dtype=np.float64)
        if x.size == 0:
            return np.zeros(0, dtype=np.float32)
        if self._state is None:
            self._state = x[0] / (1.0 - self._pole)  # steady state of a constant x[0]
        w = np.empty(x.size, dtype=np.complex128)
        state = self._state
        for start in range(0, x.size, self._block):
            chunk = x[start : start + self._block]
            n = chunk.size
            # w[m] = p^(m+1) w[-1] + sum_{j<=m} p^(m-j) x[j]
            w[start : start + n] = self._powers[1 : n + 1] * state + self._powers[:n] * np.cumsum(
                chunk * self._inverse[:n]
            )
            state = w[start + n - 1]
        self._state = state
        out = self._direct * x + 2.0 * (self._residue * w).real
        return out.astype(np.float32)
