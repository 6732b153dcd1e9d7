"""Conditioning: decoded samples to what the model hears, 16 kHz mono float32.

Two ways in:

- :class:`SampleConditioner` turns raw chunks (any rate, sample type, channels) into 16 kHz mono, high-passed
  samples as they come (:meth:`~SampleConditioner.push`, :meth:`~SampleConditioner.stream`) or all at once
  (:meth:`~SampleConditioner.whole`): one rule for sample types, shapes, NaN/Inf and channel mixing;
- :func:`prepare` makes whole-clip model input (trimmed, length-checked, loudness-normalised) from an audio source,
  raw samples, or samples a :class:`SampleConditioner` already conditioned.

Training, evaluation, inference and streaming all go through these, so a model always sees audio prepared the
same way. :func:`resample` and :func:`normalize_loudness` are the two steps training's augmentations reuse.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from .decode import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, AudioBlocks, AudioSource, open_blocks
from .dsp import HighPass, trim_silence
from .errors import AudioError
from .words import plural

SAMPLE_RATE = 16000
"""Sample rate of every waveform inside the project."""


@dataclass(frozen=True)
class AudioOptions:
    """How raw audio becomes model input (always at :data:`SAMPLE_RATE`: a constant, not an option)."""

    trim: bool = True
    trim_top_db: float = 30.0
    """Leading/trailing audio quieter than the clip's peak by this many dB is cut."""
    normalize: bool = True
    target_rms_dbfs: float = -20.0
    """Loudness target; the gain is then lowered if the peak would pass ``peak_limit``."""
    peak_limit: float = 0.99
    min_duration_s: float = 0.25
    """Shorter audio (after trimming) is rejected: too little to judge an emotion."""
    silence_peak: float = 1e-4
    """Audio whose peak is below this (-80 dBFS) counts as silent."""
    highpass_hz: float | None = 5.0
    """Cut-off of the high-pass that removes DC offset and subsonic rumble (``None``: off); low enough
    that bundles trained without it give the same answers on RAVDESS (70 Hz changed 4 of 1440)."""


MAX_CHANNELS = 32
"""More channels than this in a 2-D array means the layout is ``(channels, frames)``: refused."""


def integers_as_float(a: np.ndarray) -> np.ndarray:
    """Integer samples (signed, or unsigned centred on half their range) scaled by their type's full range to
    float64 in [-1, 1): the one scaling of every door (:func:`as_float`) and of the level meter."""
    scale = float(2 ** (np.iinfo(a.dtype).bits - 1))
    return (a.astype(np.float64) - (scale if a.dtype.kind == "u" else 0.0)) / scale


def as_float(chunk: np.ndarray, source: str = "<stream>") -> np.ndarray:
    """float32 ``(frames, channels)`` in [-1, 1] from int or float, ``(frames,)`` or ``(frames, channels)`` audio.

    Integer samples are scaled by their type's full range. Raises :class:`AudioError` for another
    sample type, another shape (naming it: a ``(channels, frames)`` array must be transposed first)
    or NaN / infinite samples -- the one rule for every path: such input is refused, never patched.
    """
    a = np.asarray(chunk)
    if a.dtype.kind in "iu":
        a = integers_as_float(a)
    elif a.dtype.kind != "f":
        raise AudioError(source, f"unsupported sample type {a.dtype}")
    if a.ndim == 1:
        a = a[:, None]
    elif a.ndim == 2 and MAX_CHANNELS < a.shape[1] <= a.shape[0]:
        raise AudioError(source, f"unsupported channel count {a.shape[1]} (at most {MAX_CHANNELS})")
    elif a.ndim != 2 or a.shape[1] > MAX_CHANNELS or (a.shape[1] == 0 and a.shape[0] > 0):
        hint = " (channels first? pass the transpose, samples.T)" if a.ndim == 2 and a.shape[0] <= MAX_CHANNELS else ""
        raise AudioError(source, f"expected (frames,) or (frames, channels) audio, got shape {a.shape}{hint}")
    if not np.all(np.isfinite(a)):  # before float32, where a finite float64 beyond its range would become infinite
        raise AudioError(source, "contains NaN or infinite samples")
    return np.clip(a, -1.0, 1.0).astype(np.float32, copy=False)


MIX_FRAME = 1024
"""Input frames per downmix decision (a fixed grid, so the mix does not depend on chunking)."""


def safe_mix(frames: np.ndarray) -> np.ndarray:
    """Mono from ``(frames, channels)``: the channel mean, or the loudest channel where the mean loses
    most of the energy (channels that cancel, e.g. one polarity-inverted). Decided per :data:`MIX_FRAME` frames."""
    if frames.shape[1] == 1:
        return frames[:, 0]
    out = frames.mean(axis=1)
    for start in range(0, len(frames), MIX_FRAME):
        block = frames[start : start + MIX_FRAME]
        energy = np.mean(np.square(block, dtype=np.float64), axis=0)
        mixed = out[start : start + MIX_FRAME]
        if float(np.mean(np.square(mixed, dtype=np.float64))) < 0.1 * float(energy.max()):
            out[start : start + MIX_FRAME] = block[:, int(np.argmax(energy))]
    return out


class SampleConditioner:
    """Raw chunks in, model-ready samples out: the one function turning audio into 16 kHz mono float32.

    Each chunk (any length, rate, int or float, ``(frames,)`` or ``(frames, channels)``) goes through
    :func:`as_float` (type, shape and NaN rule), :func:`safe_mix` (or picks ``channel``), a streaming
    soxr resampler and :class:`HighPass`. Output depends only on the samples, not on the chunking.
    """

    def __init__(self, highpass_hz: float | None = 5.0, channel: int | None = None, source: str = "<stream>") -> None:
        self.highpass_hz = highpass_hz
        self.channel = channel
        self.source = source
        self.reset()

    def reset(self) -> None:
        """Forget the stream (resampler, filter and mix state)."""
        self._rate: int | None = None
        self._resampler: Any = None
        self._highpass = HighPass(self.highpass_hz, SAMPLE_RATE) if self.highpass_hz else None
        self._carry = np.zeros((0, 1), dtype=np.float32)

    def push(self, chunk: np.ndarray, sample_rate: int) -> np.ndarray:
        """16 kHz mono float32 for ``chunk``; a rate change ends the previous rate's resampling first.

        Raises :class:`AudioError` for an unsupported rate, sample type, shape, NaN or channel.
        """
        if (
            not isinstance(sample_rate, (int, float, np.integer, np.floating))
            or not float(sample_rate).is_integer()
            or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE
        ):
            raise AudioError(self.source, f"unsupported sample rate {sample_rate!r}")
        frames = as_float(chunk, self.source)
        if self.channel is not None and self.channel >= frames.shape[1]:
            raise AudioError(
                self.source, f"has {plural(frames.shape[1], 'channel')}, no channel {self.channel} (0 = the first)"
            )
        out = []
        if int(sample_rate) != self._rate:
            out.append(self._finish_rate())
            self._rate = int(sample_rate)
            if self._rate != SAMPLE_RATE:
                self._resampler = soxr.ResampleStream(self._rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        out.append(self._convert(self._mix(frames, last=False), last=False))
        return _join(out)

    def finish(self) -> np.ndarray:
        """The samples still held (mix grid, resampler tail); the conditioner is then reset."""
        out = self._finish_rate()
        self.reset()
        return out

    def stream(self, blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[np.ndarray]:
        """The non-empty 16 kHz mono outputs for consecutive raw ``blocks`` at ``sample_rate``, the tail included
        (the conditioner is then reset)."""
        for block in blocks:
            samples = self.push(block, sample_rate)
            if len(samples):
                yield samples
        tail = self.finish()
        if len(tail):
            yield tail

    def whole(self, audio: AudioSource | AudioBlocks | np.ndarray, sample_rate: int | None = None) -> np.ndarray:
        """All of ``audio`` conditioned at once: raw samples at ``sample_rate``, or an audio source (path, bytes,
        binary file, or blocks :func:`~speech_emotion.decode.open_blocks` opened) decoded at its own rate, named
        after it in errors. Raises :class:`AudioError` for a source that cannot be read or holds no samples."""
        if sample_rate is not None:
            return _join(list(self.stream([audio], sample_rate)))
        if isinstance(audio, np.ndarray):
            raise TypeError("raw samples need their sample_rate")
        blocks = audio if isinstance(audio, AudioBlocks) else open_blocks(audio)
        named = SampleConditioner(self.highpass_hz, self.channel, blocks.name)
        samples = _join(list(named.stream(blocks, blocks.sample_rate)))
        if samples.size == 0:
            raise AudioError(blocks.name, "contains no audio samples")
        return samples

    def _finish_rate(self) -> np.ndarray:
        if self._rate is None:
            return np.zeros(0, dtype=np.float32)
        out = self._convert(self._mix(np.zeros((0, self._carry.shape[1]), dtype=np.float32), last=True), last=True)
        self._resampler = None
        self._rate = None
        return out

    def _mix(self, frames: np.ndarray, last: bool) -> np.ndarray:
        if self.channel is not None:
            return frames[:, self.channel] if len(frames) else np.zeros(0, dtype=np.float32)
        if frames.shape[1] == 1 and len(self._carry) == 0:
            return frames[:, 0]
        if len(self._carry) and self._carry.shape[1] != frames.shape[1]:
            raise AudioError(self.source, f"channel count changed from {self._carry.shape[1]} to {frames.shape[1]}")
        data = np.concatenate([self._carry, frames]) if len(self._carry) else frames
        n = len(data) if last else len(data) // MIX_FRAME * MIX_FRAME
        self._carry = data[n:].copy()
        return safe_mix(data[:n])

    def _convert(self, samples: np.ndarray, last: bool) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        if self._highpass is not None:
            samples = self._highpass(samples)
        return np.asarray(samples, dtype=np.float32)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def resample(samples: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono audio with soxr (high quality); a no-op when the rates match."""
    if sample_rate == target_rate:
        return np.asarray(samples, dtype=np.float32)
    return soxr.resample(samples, sample_rate, target_rate, quality="HQ").astype(np.float32)


def normalize_loudness(samples: np.ndarray, target_rms_dbfs: float, peak_limit: float) -> np.ndarray:
    """Scale to the target RMS level, lowered if needed so the peak stays under ``peak_limit``."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    peak = float(np.max(np.abs(samples)))
    if rms <= 0.0 or peak <= 0.0:
        return samples
    gain = min(10 ** (target_rms_dbfs / 20) / rms, peak_limit / peak)
    return (samples * gain).astype(np.float32)


def prepare(
    audio: AudioSource | np.ndarray,
    options: AudioOptions = AudioOptions(),
    source: str | None = None,
    sample_rate: int | None = None,
) -> np.ndarray:
    """Whole-clip model input: trimmed, length-checked and loudness-normalised 16 kHz mono float32.

    ``audio`` is one of: an audio source (path, bytes or binary file: decoded by
    :func:`~speech_emotion.decode.open_blocks` and conditioned a block at a time); raw samples, ``(frames,)`` or
    ``(frames, channels)``, int or float, at ``sample_rate`` (conditioned first); or, with no ``sample_rate``,
    samples a :class:`SampleConditioner` already conditioned. ``source`` names the audio in errors (default: a
    path as given, else ``<audio>``). Raises :class:`AudioError` for unreadable, empty, NaN, silent or too-short
    audio.
    """
    name = source or "<audio>"
    if sample_rate is not None:
        if np.asarray(audio).size == 0:
            raise AudioError(name, "contains no audio samples")
        return _prepare(SampleConditioner(options.highpass_hz, source=name).whole(audio, sample_rate), options, name)
    if isinstance(audio, np.ndarray):
        return _prepare(audio, options, name)
    blocks = open_blocks(audio, name=source)
    return _prepare(SampleConditioner(options.highpass_hz).whole(blocks), options, blocks.name)


def _prepare(samples: np.ndarray, options: AudioOptions, source: str) -> np.ndarray:
    if samples.size == 0:
        raise AudioError(source, "contains no audio samples")
    if float(np.max(np.abs(samples))) < options.silence_peak:
        raise AudioError(source, "audio is silent")
    if options.trim:
        samples = trim_silence(samples, options.trim_top_db)
    duration = samples.size / SAMPLE_RATE
    if duration < options.min_duration_s:
        raise AudioError(
            source,
            f"too short: {duration:.2f} s of sound, at least {options.min_duration_s:.2f} s needed",
        )
    if options.normalize:
        samples = normalize_loudness(samples, options.target_rms_dbfs, options.peak_limit)
    return np.ascontiguousarray(samples, dtype=np.float32)
