"""Audio preprocessing: read any file soundfile reads, then mono, 16 kHz, trimmed and loudness-normalised.

Training, evaluation, inference and streaming all go through :func:`preprocess`, so a model
always sees audio prepared the same way.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError

SAMPLE_RATE = 16000
"""Sample rate of every waveform inside the project."""

AudioSource = Union[str, Path, bytes, BinaryIO]


@dataclass(frozen=True)
class AudioOptions:
    """How raw audio becomes model input."""

    sample_rate: int = SAMPLE_RATE
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
    max_duration_s: float | None = None
    """Longer files are rejected before decoding (``None``: no limit)."""


def _describe(source: AudioSource) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return getattr(source, "name", None) or "<audio>"


def open_audio(source: AudioSource) -> sf.SoundFile:
    """Open ``source`` (path, bytes or binary file) for reading, without decoding it yet.

    Raises :class:`AudioError` with a one-line reason for a missing, empty, unreadable,
    corrupt or unsupported input.
    """
    name = _describe(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise AudioError(name, "no such file")
        if path.is_dir():
            raise AudioError(name, "is a directory, not an audio file")
        if path.stat().st_size == 0:
            raise AudioError(name, "file is empty (0 bytes)")
        handle: str | BinaryIO = str(path)
    elif isinstance(source, bytes):
        if not source:
            raise AudioError(name, "file is empty (0 bytes)")
        handle = io.BytesIO(source)
    else:
        handle = source
    try:
        return sf.SoundFile(handle)
    except PermissionError:
        raise AudioError(name, "permission denied") from None
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(name, f"cannot decode audio ({_decode_reason(exc)})") from None


def _decode_reason(exc: Exception) -> str:
    reason = str(exc).split("\n")[0]
    lowered = reason.lower()
    # libsndfile says "not a regular file" for data it cannot identify (e.g. non-audio named .mp3)
    if "format" in lowered or "not a regular file" in lowered:
        return "unsupported or unrecognised audio format"
    return reason


def read_audio(source: AudioSource, max_duration_s: float | None = None) -> tuple[np.ndarray, int]:
    """Decode ``source`` (path, bytes or binary file) to float32 samples ``(frames,)`` or ``(frames, channels)``.

    Raises :class:`AudioError` with a one-line reason for a missing, empty, corrupt,
    unsupported or over-long input.
    """
    name = _describe(source)
    with open_audio(source) as f:
        sr = f.samplerate
        if max_duration_s is not None and f.frames > max_duration_s * sr:
            raise AudioError(name, f"too long: {f.frames / sr:.1f} s, the limit is {max_duration_s:.0f} s")
        try:
            data = f.read(dtype="float32", always_2d=False)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioError(name, f"cannot decode audio ({_decode_reason(exc)})") from None
    if data.size == 0:
        raise AudioError(name, "contains no audio samples")
    return data, sr


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of ``(frames, channels)`` audio; mono passes through."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return samples


def resample(samples: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono audio with soxr (high quality); a no-op when the rates match."""
    if sample_rate == target_rate:
        return np.asarray(samples, dtype=np.float32)
    return soxr.resample(samples, sample_rate, target_rate, quality="HQ").astype(np.float32)


def trim_silence(samples: np.ndarray, top_db: float) -> np.ndarray:
    """Cut leading and trailing audio more than ``top_db`` below the peak (librosa)."""
    import librosa

    trimmed, _ = librosa.effects.trim(samples, top_db=top_db, frame_length=1024, hop_length=256)
    return trimmed


def normalize_loudness(samples: np.ndarray, target_rms_dbfs: float, peak_limit: float) -> np.ndarray:
    """Scale to the target RMS level, lowered if needed so the peak stays under ``peak_limit``."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    peak = float(np.max(np.abs(samples)))
    if rms <= 0.0 or peak <= 0.0:
        return samples
    gain = min(10 ** (target_rms_dbfs / 20) / rms, peak_limit / peak)
    return (samples * gain).astype(np.float32)


def preprocess(
    samples: np.ndarray,
    sample_rate: int,
    options: AudioOptions = AudioOptions(),
    source: str = "<audio>",
) -> np.ndarray:
    """Mono, resampled, trimmed and normalised float32 audio at ``options.sample_rate``.

    Raises :class:`AudioError` for empty, silent or too-short audio.
    """
    samples = to_mono(samples)
    if samples.size == 0:
        raise AudioError(source, "contains no audio samples")
    if not np.all(np.isfinite(samples)):
        raise AudioError(source, "contains NaN or infinite samples")
    samples = resample(samples, sample_rate, options.sample_rate)
    if float(np.max(np.abs(samples))) < options.silence_peak:
        raise AudioError(source, "audio is silent")
    if options.trim:
        samples = trim_silence(samples, options.trim_top_db)
    duration = samples.size / options.sample_rate
    if duration < options.min_duration_s:
        raise AudioError(
            source,
            f"too short: {duration:.2f} s of sound, at least {options.min_duration_s:.2f} s needed",
        )
    if options.normalize:
        samples = normalize_loudness(samples, options.target_rms_dbfs, options.peak_limit)
    return np.ascontiguousarray(samples, dtype=np.float32)


def load_audio(source: AudioSource, options: AudioOptions = AudioOptions()) -> np.ndarray:
    """Read ``source`` and :func:`preprocess` it: the single entry point from a file to model input."""
    samples, sr = read_audio(source, options.max_duration_s)
    return preprocess(samples, sr, options, source=_describe(source))


def open_audio_blocks(path: str | Path, block_s: float = 10.0) -> tuple[Iterator[np.ndarray], int, float]:
    """``(blocks, sample_rate, duration_s)`` for an audio file read ``block_s`` at a time.

    Blocks are float32, ``(frames,)`` or ``(frames, channels)``. Raises :class:`AudioError`
    for a missing, empty, unreadable or unsupported file, also when decoding fails midway.
    """
    import soundfile as sf

    name = str(path)
    handle = open_audio(path)
    sr = handle.samplerate
    duration = handle.frames / sr if handle.frames > 0 else 0.0
    blocksize = max(1, int(block_s * sr))

    def blocks() -> Iterator[np.ndarray]:
        done = 0
        with handle:
            while True:
                try:
                    block = handle.read(blocksize, dtype="float32")
                except (sf.LibsndfileError, RuntimeError) as exc:
                    reason = str(exc).split("\n")[0]
                    raise AudioError(name, f"decoding failed at {done / sr:.1f} s ({reason})") from None
                if len(block) == 0:
                    return
                done += len(block)
                yield block

    return blocks(), sr, duration
