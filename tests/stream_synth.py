"""Synthetic streams for the streaming tests: voiced bursts, silences and noise with known speech spans."""

from __future__ import annotations

import numpy as np

from synth import noise, silence, vowel

# (kind, seconds): the layout of the standard test stream
LAYOUT: tuple[tuple[str, float], ...] = (
    ("silence", 1.0),
    ("voice", 2.5),
    ("silence", 1.5),
    ("noise", 2.0),
    ("silence", 1.0),
    ("voice", 0.8),
    ("silence", 1.2),
    ("voice", 3.0),
    ("silence", 1.0),
)


def bursts(
    sample_rate: int = 16000, layout: tuple[tuple[str, float], ...] = LAYOUT, clip: bool = False
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The stream and the true ``(start_s, end_s)`` of each voiced burst."""
    parts: list[np.ndarray] = []
    truth: list[tuple[float, float]] = []
    t = 0.0
    for i, (kind, seconds) in enumerate(layout):
        if kind == "voice":
            amplitude = 2.5 if clip else 0.3
            part = vowel(seconds, sample_rate, f0=110.0 + 15 * i, amplitude=amplitude, seed=i)
            part = np.clip(part, -1.0, 1.0)
            truth.append((t, t + seconds))
        elif kind == "noise":
            part = noise(seconds, sample_rate, level=0.05, seed=i)
        else:
            part = silence(seconds, sample_rate)
        parts.append(part)
        t += len(part) / sample_rate
    return np.concatenate(parts).astype(np.float32), truth


def feed_in_chunks(engine, samples: np.ndarray, sample_rate: int, sizes: list[int]) -> list:
    """All events of ``samples`` fed with chunk sizes cycling through ``sizes``, then flushed."""
    events: list = []
    i = k = 0
    while i < len(samples):
        n = sizes[k % len(sizes)]
        events += engine.feed(samples[i : i + n], sample_rate)
        i += n
        k += 1
    return events + engine.flush()


def events_of(engine, blocks) -> list:
    """The events of ``engine.events(blocks)`` without the :class:`~speech_emotion.streaming.StreamEnd` that ends
    them (checked to be there, last and only once)."""
    from speech_emotion.streaming import StreamEnd

    items = list(engine.events(blocks))
    assert isinstance(items[-1], StreamEnd) and not any(isinstance(e, StreamEnd) for e in items[:-1])
    return items[:-1]


def long_talk(seconds: float = 120.0, seed: int = 0) -> np.ndarray:
    """A long 16 kHz recording of pauses and voiced bursts at four levels (-10 to -50 dBFS peaks) over faint noise,
    starting and ending with a pause, a whole number of 32 ms VAD frames long (so copies of it line up with the
    frames)."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    total = 0.0
    while total < seconds:
        speech_s, pause_s = rng.uniform(0.5, 4.0), rng.uniform(0.2, 2.0)
        amplitude = float(rng.choice([0.3, 0.05, 0.01, 0.003]))
        f0 = float(rng.uniform(90, 250))
        parts.append(noise(pause_s, level=0.0005, seed=int(rng.integers(1_000_000))))
        parts.append(vowel(speech_s, f0=f0, amplitude=amplitude, seed=int(rng.integers(1_000_000))))
        total += speech_s + pause_s
    parts.append(noise(1.0, level=0.0005, seed=seed + 2))
    out = np.concatenate(parts)
    out = out + noise(len(out) / 16000, level=0.0003, seed=seed + 1)[: len(out)]
    return out[: len(out) // 512 * 512].astype(np.float32)
