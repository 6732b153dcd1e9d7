"""Recording conditions applied to 16 kHz waveforms: phone lines, codecs, rooms, noise and babble.

Used two ways, with the same functions:

- **test-time conditions** (:data:`TEST_CONDITIONS`), fixed settings applied to test clips only, to report
  UA per condition (``phone``, ``gsm``, ``babble10``, ``babble0``, ``reverb``, ``noise10``);
- **training augmentation** (:func:`random_channel`), random draws of the same kinds of degradation,
  applied to training clips only.

Codecs go through libsndfile (soundfile): G.711 mu-law and GSM 6.10 at 8 kHz, MP3, Opus. Rooms are
simulated with pyroomacoustics (image source method, absorption from Sabine's formula for a target
RT60). Every function takes and returns mono float32 ``(samples,)`` at 16 kHz and is deterministic for
a given :class:`numpy.random.Generator` state.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ..conditioning import SAMPLE_RATE, resample


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def active_rms(x: np.ndarray, frame: int = 320, range_db: float = 30.0) -> float:
    """RMS over the 20 ms frames within ``range_db`` of the loudest one: the speech level, not counting pauses
    (a simple stand-in for ITU-T P.56 active speech level)."""
    n = x.size // frame
    if n == 0:
        return _rms(x)
    energy = np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    active = energy >= energy.max() * 10 ** (-range_db / 10)
    return float(np.sqrt(energy[active].mean() + 1e-12))


def _match_level(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``y`` scaled to the RMS of ``reference``, peak kept under 0.99."""
    y = y * (_rms(reference) / _rms(y))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.99:
        y = y * (0.99 / peak)
    return y.astype(np.float32)


def _fit_length(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if y.size >= n else np.pad(y, (0, n - y.size))


def band_pass(x: np.ndarray, low_hz: float, high_hz: float, order: int = 4) -> np.ndarray:
    """Butterworth band-pass (zero-phase), ``low_hz``..``high_hz``."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(order, [low_hz, high_hz], btype="band", fs=SAMPLE_RATE, output="sos")
    return sosfiltfilt(sos, x).astype(np.float32)


MP3_MAX_LEVEL = 0.99
"""The highest MP3 ``compression_level`` passed to libsndfile (it fails on some levels above, e.g. 0.99992)."""


def codec(x: np.ndarray, fmt: str, subtype: str, rate: int = SAMPLE_RATE, **write_options: float) -> np.ndarray:
    """Encode ``x`` with libsndfile (``fmt``/``subtype``, e.g. ``WAV``/``ULAW``, ``OGG``/``OPUS``) at ``rate``
    and decode it back to 16 kHz; same length as ``x``."""
    y = np.clip(resample(x, SAMPLE_RATE, rate), -1.0, 1.0)
    if fmt == "MP3" and "compression_level" in write_options:  # libsndfile refuses some MP3 levels very near 1
        write_options = {**write_options, "compression_level": min(write_options["compression_level"], MP3_MAX_LEVEL)}
    buf = io.BytesIO()
    sf.write(buf, y, rate, format=fmt, subtype=subtype, **write_options)
    buf.seek(0)
    decoded, got_rate = sf.read(buf, dtype="float32")
    if decoded.ndim == 2:
        decoded = decoded.mean(1)
    return _fit_length(resample(decoded, got_rate, SAMPLE_RATE), x.size)


def phone(x: np.ndarray, law: str = "ULAW") -> np.ndarray:
    """Narrow-band telephone channel: 300-3400 Hz band-pass, 8 kHz, G.711 (``ULAW``/``ALAW``) or ``GSM610``
    (a WAV subtype of libsndfile). Raises ``ValueError`` for another ``law``."""
    if law not in ("ULAW", "ALAW", "GSM610"):
        raise ValueError(f"unknown phone codec {law!r}: ULAW, ALAW or GSM610")
    return _match_level(codec(band_pass(x, 300.0, 3400.0), "WAV", law, rate=8000), x)


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ``1 / f**exponent`` (0 white, 1 pink, 2 brown), unit RMS, ``(n,)``."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum /= np.maximum(freqs, 20.0) ** (exponent / 2)
    y = np.fft.irfft(spectrum, n)
    return (y / _rms(y)).astype(np.float32)


def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` plus ``noise`` (tiled or cut to length) scaled to ``snr_db`` below the speech level
    (:func:`active_rms` of ``x``; the noise's plain RMS)."""
    if noise.size < x.size:
        noise = np.tile(noise, int(np.ceil(x.size / max(noise.size, 1))))
    noise = noise[: x.size]
    y = x + noise * (active_rms(x) / _rms(noise) / 10 ** (snr_db / 20))
    return _match_level(y, x)


def babble(others: Sequence[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Several talkers at once: each of ``others`` at equal level, randomly offset and looped to ``n`` samples."""
    total = np.zeros(n, dtype=np.float64)
    for voice in others:
        if voice.size == 0:
            continue
        looped = np.tile(voice, int(np.ceil(n / voice.size)) + 1)
        start = int(rng.integers(0, voice.size))
        total += looped[start : start + n] / active_rms(voice)
    return total.astype(np.float32)


@lru_cache(maxsize=256)
def room_impulse_response(rt60: float, seed: int) -> np.ndarray:
    """A simulated shoebox room's impulse response at 16 kHz (pyroomacoustics image source method).

    Room 3-10 x 3-8 x 2.5-3.5 m, absorption from Sabine's formula for ``rt60`` seconds, source and
    microphone 1-3 m apart at random positions; deterministic for ``seed``. Normalised to a unit peak.
    """
    import pyroomacoustics as pra

    rng = np.random.default_rng(seed)
    dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.5, 3.5)])
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(
        dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 17), air_absorption=True
    )
    mic = dims * rng.uniform(0.2, 0.8, 3)
    mic[2] = rng.uniform(1.0, 1.6)
    for _ in range(100):
        direction = rng.standard_normal(3)
        direction[2] *= 0.2
        src = mic + direction / np.linalg.norm(direction) * rng.uniform(1.0, 3.0)
        if np.all(src > 0.3) and np.all(src < dims - 0.3):
            break
    else:
        src = dims / 2
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    return (rir / np.max(np.abs(rir))).astype(np.float32)


def reverb(x: np.ndarray, rt60: float, seed: int) -> np.ndarray:
    """``x`` played in a simulated room (:func:`room_impulse_response`); same length and RMS as ``x``."""
    from scipy.signal import fftconvolve

    rir = room_impulse_response(round(rt60, 2), seed)
    onset = int(np.argmax(np.abs(rir)))
    y = fftconvolve(x, rir)[onset : onset + x.size]
    return _match_level(_fit_length(y.astype(np.float32), x.size), x)


def eq_tilt(x: np.ndarray, db_per_octave: float) -> np.ndarray:
    """Spectral tilt around 1 kHz (a cheap or far microphone): gain ``db_per_octave * log2(f / 1000)``."""
    spectrum = np.fft.rfft(x)
    freqs = np.maximum(np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE), 50.0)
    spectrum *= 10 ** (db_per_octave * np.log2(freqs / 1000.0) / 20)
    return _match_level(np.fft.irfft(spectrum, x.size).astype(np.float32), x)


def hard_clip(x: np.ndarray, drive_db: float) -> np.ndarray:
    """Overdriven input: gain ``drive_db`` above full scale on the peak, then clipped."""
    gain = 10 ** (drive_db / 20) / max(float(np.max(np.abs(x))), 1e-6)
    return _match_level(np.clip(x * gain, -1.0, 1.0), x)


Condition = Callable[[np.ndarray, Sequence[np.ndarray], int], np.ndarray]
"""``(clip, other talkers' clips, seed) -> degraded clip``; ``others`` is used only by babble."""


def _babble_condition(snr_db: float) -> Condition:
    def run(x: np.ndarray, others: Sequence[np.ndarray], seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return mix_at_snr(x, babble(others, x.size, rng), snr_db)

    return run


TEST_CONDITIONS: dict[str, Condition] = {
    "phone": lambda x, others, seed: phone(x, "ULAW"),
    "gsm": lambda x, others, seed: phone(x, "GSM610"),
    "babble10": _babble_condition(10.0),
    "babble0": _babble_condition(0.0),
    "reverb": lambda x, others, seed: reverb(x, 0.6, 10_000 + seed % 16),
    "noise10": lambda x, others, seed: mix_at_snr(x, coloured_noise(x.size, 1.0, np.random.default_rng(seed)), 10.0),
}
"""Fixed test-time conditions: G.711 mu-law and GSM 6.10 phone lines (300-3400 Hz, 8 kHz), babble of
other test speakers at 10 and 0 dB SNR, a room with RT60 0.6 s (one of 16 fixed rooms), pink noise at 10 dB."""

BABBLE_TALKERS = 4
"""Other talkers mixed into a babble condition."""


def random_channel(x: np.ndarray, others: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A random recording chain for training: each stage applied with some probability.

    room (RT60 0.2-1.0 s, 50 %), microphone tilt (+-3 dB/octave, 30 %), additive noise (babble of
    ``others`` or coloured noise, 0-20 dB SNR, 60 %), channel (G.711/GSM phone line, MP3 or Opus at
    low bitrates, 40 %), clipping (10 %). Rooms are drawn from seeds disjoint from the test rooms.
    """
    y = x
    if rng.random() < 0.5:
        y = reverb(y, float(rng.uniform(0.2, 1.0)), int(rng.integers(0, 200)))
    if rng.random() < 0.3:
        y = eq_tilt(y, float(rng.uniform(-3, 3)))
    if rng.random() < 0.6:
        snr = float(rng.uniform(0, 20))
        if others and rng.random() < 0.5:
            y = mix_at_snr(y, babble(others, y.size, rng), snr)
        else:
            y = mix_at_snr(y, coloured_noise(y.size, float(rng.uniform(0, 2)), rng), snr)
    if rng.random() < 0.4:
        kind = rng.integers(0, 4)
        if kind == 0:
            y = phone(y, "ULAW")
        elif kind == 1:
            y = phone(y, "GSM610")
        elif kind == 2:
            y = _match_level(codec(y, "MP3", "MPEG_LAYER_III", compression_level=float(rng.uniform(0.6, 1.0))), y)
        else:
            y = _match_level(codec(y, "OGG", "OPUS", compression_level=float(rng.uniform(0.6, 1.0))), y)
    if rng.random() < 0.1:
        y = hard_clip(y, float(rng.uniform(3, 12)))
    return y.astype(np.float32)


def other_talkers(corpus: pd.DataFrame, row: int, salt: str, n: int = BABBLE_TALKERS) -> tuple[str, ...]:
    """Paths of up to ``n`` clips of other speakers of the same corpus and speaker fold as ``row``, drawn
    deterministically for (clip name, ``salt``): the voices of its babble.

    Taking them from the clip's own fold keeps every split clean: a fold's speakers are always all on the
    training side or all on the test side, so babble never carries a test voice into training.
    Empty when the fold has no other speaker.
    """
    group = corpus["corpus"].to_numpy() if "corpus" in corpus else np.zeros(len(corpus))
    fold = corpus["fold"].astype(str).to_numpy() if "fold" in corpus else np.zeros(len(corpus))
    speakers = corpus["speaker"].to_numpy()
    candidates = np.flatnonzero((group == group[row]) & (fold == fold[row]) & (speakers != speakers[row]))
    if candidates.size == 0:
        return ()
    name = Path(str(corpus["path"].iloc[row])).name
    rng = np.random.default_rng(int(hashlib.sha1(f"{name}/{salt}".encode()).hexdigest()[:12], 16))
    chosen = rng.choice(candidates, size=min(n, candidates.size), replace=False)
    return tuple(str(corpus["path"].iloc[int(i)]) for i in sorted(chosen))
