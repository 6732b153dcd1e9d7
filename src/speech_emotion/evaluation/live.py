"""Live-path scoring: test clips joined into per-speaker calls and run through the streaming engine.

Each speaker's test clips are shuffled and joined with pauses into one call; the call is fed to
:class:`~speech_emotion.streaming.StreamingRecognizer` in 0.5 s chunks, exactly as ``stream`` and the
service do. Every event is scored against the clip under it (the clip its window overlaps most):

- ``update_ua``: every update (2 s windows every 0.5 s, smoothed as the user sees them);
- ``first_update_ua``: the first update of each speech segment (the first answer a user gets);
- ``segment_ua``: each finished segment's label.

UA is the mean per-class recall over the emotions present, with the argmax restricted to ``allowed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..conditioning import SAMPLE_RATE
from ..labels import EMOTIONS, emotion_index
from ..recognizer import Recognizer
from ..streaming import SegmentEvent, StreamEnd, StreamingRecognizer, UpdateEvent
from .conditions import recording
from .metrics import compute_metrics


@dataclass(frozen=True)
class LiveOptions:
    """How calls are built from clips."""

    pause_s: tuple[float, float] = (0.8, 2.0)
    """Silence between two clips, drawn uniformly (seconds)."""
    chunk_s: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class Call:
    """One speaker's clips joined: 16 kHz mono audio and each clip's ``(start_s, end_s, row)``."""

    speaker: str
    audio: np.ndarray
    spans: list[tuple[float, float, int]]


def build_calls(corpus: pd.DataFrame, rows: np.ndarray, options: LiveOptions = LiveOptions()) -> list[Call]:
    """One :class:`Call` per speaker of ``rows``, clips in a seeded random order."""
    rng = np.random.default_rng(options.seed)
    calls = []
    speakers = corpus["speaker"].to_numpy()
    rows = np.asarray(rows, dtype=int)
    for speaker in sorted(set(speakers[rows])):
        own = rng.permutation(rows[speakers[rows] == speaker])
        parts, spans, t = [], [], 0
        for row in own:
            pause = np.zeros(int(rng.uniform(*options.pause_s) * SAMPLE_RATE), dtype=np.float32)
            clip = recording(str(corpus["path"].iloc[int(row)]))
            parts += [pause, clip]
            t += pause.size
            spans.append((t / SAMPLE_RATE, (t + clip.size) / SAMPLE_RATE, int(row)))
            t += clip.size
        parts.append(np.zeros(SAMPLE_RATE, dtype=np.float32))
        calls.append(Call(str(speaker), np.concatenate(parts), spans))
    return calls


def _clip_under(spans: list[tuple[float, float, int]], start: float, end: float) -> int | None:
    overlaps = [(min(end, e) - max(start, s), row) for s, e, row in spans]
    best, row = max(overlaps)
    return row if best > 0 else None


def score_live(
    recognizer: Recognizer,
    corpus: pd.DataFrame,
    rows: np.ndarray,
    allowed: np.ndarray | None = None,
    options: LiveOptions = LiveOptions(),
) -> dict[str, float | int]:
    """Live-path scores of ``rows`` (see the module docstring); ``allowed`` is an ``(8,)`` label mask."""
    allowed = np.ones(len(EMOTIONS), bool) if allowed is None else np.asarray(allowed, bool)
    truth = np.array([emotion_index(e) for e in corpus["emotion"]])
    index = [EMOTIONS.index(label) for label in recognizer.labels]
    kinds: dict[str, tuple[list[int], list[int]]] = {"update": ([], []), "first_update": ([], []), "segment": ([], [])}
    heard: set[int] = set()
    chunk = int(options.chunk_s * SAMPLE_RATE)
    for call in build_calls(corpus, rows, options):
        engine = StreamingRecognizer(recognizer)
        first_seen: set[int] = set()
        chunks = ((call.audio[i : i + chunk], SAMPLE_RATE) for i in range(0, call.audio.size, chunk))
        for event in engine.events(chunks):
            if isinstance(event, StreamEnd):
                continue
            row = _clip_under(call.spans, event.start, event.end)
            if row is None:
                continue
            probs = np.zeros(len(EMOTIONS))
            probs[index] = event.probabilities  # in recognizer.labels order
            pred = int(np.where(allowed, probs, -np.inf).argmax())
            names = []
            if isinstance(event, UpdateEvent):
                names.append("update")
                heard.add(row)
                if event.segment not in first_seen:
                    first_seen.add(event.segment)
                    names.append("first_update")
            elif isinstance(event, SegmentEvent):
                names.append("segment")
            for name in names:
                kinds[name][0].append(int(truth[row]))
                kinds[name][1].append(pred)
    scores: dict[str, float | int] = {}
    for name, (y_true, y_pred) in kinds.items():
        metrics = compute_metrics(y_true, y_pred) if y_true else {"ua": 0.0, "wa": 0.0}
        scores[f"{name}_ua"] = metrics["ua"]
        scores[f"{name}_wa"] = metrics["wa"]
        scores[f"n_{name}s"] = len(y_true)
    scores["clips_without_update"] = int(len(rows) - len(heard))
    return scores
