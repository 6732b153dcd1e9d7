"""Synthetic audio for tests: no corpus audio is ever committed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from speech_emotion.labels import EMOTIONS


def vowel(
    duration_s: float = 1.0,
    sample_rate: int = 16000,
    f0: float = 140.0,
    formants: tuple[float, ...] = (700.0, 1200.0, 2500.0),
    amplitude: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """A voiced, formant-shaped harmonic signal with slight vibrato: speech-like for the front end and VAD."""
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
