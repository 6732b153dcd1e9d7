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
            part = vowel(seconds, sample_rate, f0=110.0 + 30 * i, amplitude=amplitude, seed=i)
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
