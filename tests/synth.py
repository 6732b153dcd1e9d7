"""Synthetic audio for tests: no corpus audio is ever committed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from speech_emotion.labels import EMOTIONS

_VOWELS = np.array(
    [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410), (440, 1020, 2240)],
    dtype=float,
)
"""Formant targets (Hz) of a few vowels, scaled per voice by ``formants / (700, 1200, 2500)``."""


def _lowpass(x: np.ndarray) -> np.ndarray:
    """8th-order Butterworth low-pass at 6.5 kHz (scipy imported here: the tests of what the product's doors
    import run this synthesiser in the same interpreter)."""
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(8, 6500, fs=16000, output="sos"), x)


def _resonator(x: np.ndarray, freq: float, bandwidth: float, sample_rate: int, state: np.ndarray):
    """One formant (a two-pole resonator with unit gain at 0 Hz), filtering ``x`` from ``state``."""
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bandwidth / sample_rate)
    b1, b2 = 2 * r * np.cos(2 * np.pi * freq / sample_rate), -r * r
    return lfilter([1 - b1 - b2], [1, -b1, -b2], x, zi=state)


def vowel(
    duration_s: float = 1.0,
    sample_rate: int = 16000,
    f0: float = 140.0,
    formants: tuple[float, ...] = (700.0, 1200.0, 2500.0),
    amplitude: float = 0.3,
    seed: int = 0,
    syllable_s: float = 0.28,
) -> np.ndarray:
    """Speech-like voice: syllables of a glottal pulse train through three moving formants, with a fricative onset.

    ``f0`` and ``formants`` set the voice (mean pitch, formant scale) so a model can learn voices apart;
    each syllable has a pitch accent, moves between vowel targets and starts with a short hiss, which is
    what makes it speech to a learned voice-activity detector (a steady vowel is a tone to it).
    Peak ``amplitude``, 50 ms fades at both ends, deterministic for a ``seed``. Synthesised at 16 kHz and
    resampled to ``sample_rate``, so the same voice at every rate (up to the lower rate's band).
    """
    n = int(duration_s * sample_rate)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    if sample_rate != 16000:
        voice = vowel(duration_s, f0=f0, formants=formants, amplitude=amplitude, seed=seed, syllable_s=syllable_s)
        out = soxr.resample(voice, 16000, sample_rate)[:n]
        out = np.pad(out, (0, n - len(out)))
        return (amplitude * out / (float(np.max(np.abs(out))) or 1.0)).astype(np.float32)
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sample_rate
    lengths = syllable_s * rng.uniform(0.8, 1.2, int(duration_s / syllable_s / 0.8) + 3)
    lengths[0] = 1.5 * syllable_s  # a long first syllable: the detector is sure of the voice from its start
    starts = np.concatenate([[0.0], np.cumsum(lengths)])
    k = np.searchsorted(starts, t, side="right") - 1
    pos = (t - starts[k]) / lengths[k]
    count = len(lengths) + 1
    targets = np.minimum(
        _VOWELS[rng.integers(0, len(_VOWELS), count)] * (np.asarray(formants) / (700, 1200, 2500)), 7200
    )
    accent = rng.uniform(-0.12, 0.18, count)
    fricated = rng.uniform(0, 1, count) > 0.35
    pitch = f0 * (1 + accent[k] * np.sin(np.pi * pos)) * (1 - 0.1 * t / max(duration_s, 1e-9))
    frac = np.cumsum(pitch) / sample_rate % 1.0
    breath, frication = rng.standard_normal(n), rng.standard_normal(n)
    source = np.diff(np.where(frac < 0.4, np.sin(np.pi * frac / 0.4) ** 2, 0.0), prepend=0.0)
    source = (source + 0.02 * breath) * np.clip((pos - 0.2) / 0.08, 0, 1) * np.clip((1 - pos) / 0.1, 0, 1)
    hiss = 0.05 * frication * np.exp(-(((pos - 0.09) / 0.05) ** 2)) * fricated[k]
    glide = np.clip((pos - 0.55) / 0.45, 0, 1)[:, None]
    track = targets[k] * (1 - glide) + targets[k + 1] * glide
    out = np.zeros(n)
    states = [np.zeros(2) for _ in range(4)]
    block = max(1, sample_rate // 100)
    for i in range(0, n, block):
        seg = source[i : i + block]
        for j in range(3):
            seg, states[j] = _resonator(seg, track[i, j], 60 + 0.08 * track[i, j], sample_rate, states[j])
        fric, states[3] = _resonator(hiss[i : i + block], 4000.0, 1500.0, sample_rate, states[3])
        out[i : i + block] = seg + fric
    out /= float(np.max(np.abs(out))) or 1.0
    envelope = np.clip(np.minimum(t, t[-1] - t) / 0.05, 0, 1)
    out = out * envelope + 0.002 * rng.standard_normal(n)
    out = _lowpass(out)  # below 7 kHz: resampling to other rates and back leaves it as it is
    peak = float(np.max(np.abs(out))) or 1.0
    return (amplitude * out / peak).astype(np.float32)


def sustained_vowel(
    duration_s: float = 1.0,
    sample_rate: int = 16000,
    f0: float = 140.0,
    formants: tuple[float, ...] = (700.0, 1200.0, 2500.0),
    amplitude: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """One steady formant-shaped harmonic tone with slight vibrato (sung, not spoken: not speech to the VAD)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * sample_rate)
    t = np.arange(n) / sample_rate
    pitch = f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    out = np.zeros(n)
    for k in range(1, int(sample_rate / 2 / f0)):
        fk = k * f0
        gain = sum(1.0 / (1 + ((fk - fm) / 120.0) ** 2) for fm in formants) / k**0.5
        out += gain * np.sin(k * phase)
    envelope = np.clip(np.minimum(t, t[-1] - t) / 0.05, 0, 1) if n else out
    out = out * envelope + 0.002 * rng.standard_normal(n)
    peak = float(np.max(np.abs(out))) or 1.0
    return (amplitude * out / peak).astype(np.float32)


def silence(duration_s: float, sample_rate: int = 16000) -> np.ndarray:
    return np.zeros(int(duration_s * sample_rate), dtype=np.float32)


def noise(duration_s: float, sample_rate: int = 16000, level: float = 0.05, seed: int = 0) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(duration_s * sample_rate))).astype(np.float32)


EMOTION_VOICES: dict[str, tuple[float, tuple[float, ...]]] = {
    name: (100.0 + 25.0 * i, (500.0 + 90.0 * i, 1100.0 + 150.0 * i, 2400.0)) for i, name in enumerate(EMOTIONS)
}
"""A distinct pitch and formant set per emotion, so a model can learn the synthetic classes."""


def emotion_clip(emotion: str, seed: int, sample_rate: int = 16000, duration_s: float = 1.2) -> np.ndarray:
    """A clip whose pitch and formants identify ``emotion``, with silence around it and per-seed jitter."""
    rng = np.random.default_rng(seed)
    f0, formants = EMOTION_VOICES[emotion]
    voiced = vowel(
        duration_s,
        sample_rate,
        f0=f0 * rng.uniform(0.95, 1.05),
        formants=tuple(f * rng.uniform(0.97, 1.03) for f in formants),
        seed=seed,
    )
    return np.concatenate([silence(0.2, sample_rate), voiced, silence(0.2, sample_rate)])


def write_ravdess_corpus(
    root: Path,
    actors: tuple[int, ...] = (1, 2, 3, 4),
    emotions: tuple[str, ...] = EMOTIONS,
    sample_rate: int = 16000,
    suffix: str = ".wav",
    takes: int = 2,
) -> Path:
    """Write synthetic clips under ``root/Actor_XX/`` with genuine RAVDESS file names."""
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for e, emotion in enumerate(emotions):
            code = EMOTIONS.index(emotion) + 1
            for take in range(takes):
                name = f"03-01-{code:02d}-01-01-{take + 1:02d}-{actor:02d}{suffix}"
                clip = emotion_clip(emotion, seed=actor * 1000 + e * 10 + take, sample_rate=sample_rate)
                sf.write(folder / name, clip, sample_rate)
    return root


AV_FORMATS: dict[str, tuple[str, str]] = {
    "m4a": ("ipod", "aac"),
    "mp4": ("mp4", "aac"),
    "mov": ("mov", "aac"),
    "webm": ("webm", "libopus"),
    "mp3": ("mp3", "libmp3lame"),
    "3gp": ("3gp", "aac"),
    "mkv": ("matroska", "aac"),
    "amr": ("amr", "libopencore_amrnb"),
    "wma": ("asf", "wmav2"),
}
"""Suffix -> (FFmpeg muxer, encoder) of the formats tests write with PyAV: phones' voice memos (M4A/AAC, 3GP, AMR),
video (MP4, MOV, Matroska), what browsers record (WebM/Opus), MP3 and WMA."""


def av_encoded(
    samples: np.ndarray,
    sample_rate: int,
    suffix: str,
    video: bool = False,
    container_options: dict[str, str] | None = None,
) -> bytes:
    """``samples`` (``(frames,)`` or ``(frames, channels)`` float in [-1, 1]) encoded by FFmpeg through PyAV into
    the format of ``suffix`` (a key of :data:`AV_FORMATS`); ``video`` adds a small black video stream first."""
    import io

    import av

    fmt, codec = AV_FORMATS[suffix]
    data = np.asarray(samples, dtype=np.float32)
    data = data[:, None] if data.ndim == 1 else data
    layout = "mono" if data.shape[1] == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt, options=container_options or {}) as out:
        picture = None
        if video:
            picture = out.add_stream("mpeg4", rate=10)
            picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream(codec, rate=sample_rate, layout=layout)
        if codec == "wmav2":
            audio.bit_rate = 64000  # the WMA encoder has no default
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data.reshape(1, -1)), format="flt", layout=layout)
        frame.sample_rate = sample_rate
        to_codec = av.AudioResampler(format=audio.codec_context.format, layout=layout, rate=sample_rate)
        for part in [*to_codec.resample(frame), *to_codec.resample(None), None]:
            for packet in audio.encode(part):
                out.mux(packet)
        if picture is not None:
            black = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            for _ in range(int(10 * len(data) / sample_rate)):
                for packet in picture.encode(black):
                    out.mux(packet)
            for packet in picture.encode(None):
                out.mux(packet)
    return buf.getvalue()
