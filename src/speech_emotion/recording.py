"""Emotion of a whole recording of any length: the answer of ``predict`` and ``POST /v1/predict``.

A recording is read in blocks (memory flat in its length) through the engine
(:class:`~speech_emotion.streaming.StreamingRecognizer`) in segments-only mode: each finished speech segment is
classified once as a whole (segments longer than ``max_segment_s`` are cut, as everywhere) and the recording's
probabilities are the speech-time-weighted mean of its segments' (:func:`~speech_emotion.report.speech_weighted`),
the ``probabilities`` and ``dominant`` of ``analyze``'s summary (and so are its arousal, valence and dominance, for a
model with them: :func:`~speech_emotion.report.speech_weighted_dimensions`). So:

- no speech -> :class:`NoSpeechError`;
- a short clip with one utterance is judged as one clip (its speech segment), whatever silence surrounds it;
- ``predict``, ``analyze``, ``batch`` and both service routes give the same label and probabilities.

The result says how much speech it was based on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .decode import AudioSource, open_blocks
from .recognizer import ArrayFields, LabelledProbabilities, Recognizer, dimension_fields, read_only
from .report import speech_weighted, speech_weighted_dimensions
from .streaming import NoSpeechError, StreamOptions
from .timeline import ANALYZE_HOP_S, AnalyzeOptions, Timeline, analyze_blocks


@dataclass(frozen=True)
class RecordingOptions:
    """How a whole recording is judged."""

    stream: StreamOptions = field(default_factory=lambda: StreamOptions(hop_s=ANALYZE_HOP_S))
    """Engine settings: the VAD and the segment limits, the same as ``analyze``'s."""
    block_s: float = 10.0
    """Seconds read from the source at a time."""
    max_duration_s: float | None = None
    """Longer sources are refused before decoding (``None``: no limit)."""

    @property
    def analyze_options(self) -> AnalyzeOptions:
        """The timeline the answer is computed from: ``analyze``'s, segments only (no window is classified)."""
        return AnalyzeOptions(stream=self.stream, block_s=self.block_s, keep_windows=False)


@dataclass(frozen=True, eq=False)
class RecordingPrediction(LabelledProbabilities, ArrayFields):
    """The emotion of a recording and what it rests on."""

    label: str
    confidence: float
    probabilities: np.ndarray
    """``(len(labels),)`` float64 in :attr:`labels` order, read-only: the speech-time-weighted mean of the segments'
    (:meth:`probability` reads one by name)."""
    labels: tuple[str, ...]
    duration_s: float
    """Length of the recording, seconds."""
    speech_s: float
    """Seconds of speech the answer is based on."""
    segments: int
    """Speech segments found."""
    notes: tuple[str, ...] = ()
    """Problems worth telling the user that did not stop the prediction (a file that ended early), as in
    :attr:`~speech_emotion.timeline.Timeline.notes`."""
    uncertain: bool = False
    """The bundle's calibration thresholds call the answer uncertain (:attr:`Recognizer.is_uncertain`)."""
    dimensions: np.ndarray | None = None
    """``(3,)`` float64 arousal, valence, dominance in [0, 1] (0.5 = neutral): the speech-time-weighted mean of the
    segments'; ``None`` for a model without them."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "probabilities", read_only(self.probabilities))
        if self.dimensions is not None:
            object.__setattr__(self, "dimensions", read_only(self.dimensions))

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": self.confidence,
            "probabilities": self.probabilities_dict(),
            "duration_s": round(self.duration_s, 3),
            "speech_s": round(self.speech_s, 3),
            "segments": self.segments,
            "notes": list(self.notes),
            "uncertain": self.uncertain,
            **dimension_fields(self.dimensions),
        }


def predict_recording(
    source: AudioSource, recognizer: Recognizer, options: RecordingOptions | None = None
) -> RecordingPrediction:
    """Emotion of the recording ``source`` (path, bytes or binary file), read in blocks.

    Raises :class:`NoSpeechError` when it holds no speech, :class:`AudioError` when it cannot be read.
    """
    options = options or RecordingOptions()
    blocks = open_blocks(source, options.block_s, options.max_duration_s)
    return predict_blocks(blocks, blocks.sample_rate, recognizer, options, blocks.name, blocks.duration_s)


def predict_blocks(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    recognizer: Recognizer,
    options: RecordingOptions | None = None,
    source: str = "<audio>",
    duration_s: float = 0.0,
) -> RecordingPrediction:
    """Emotion of audio given as consecutive raw blocks (any size, rate ``sample_rate``, ``(frames[, channels])``).

    ``duration_s`` is the announced length (0: unknown): blocks ending well before it give the prediction a
    "file ended early" note. Raises :class:`NoSpeechError` or :class:`AudioError` (no samples, NaN).
    """
    options = options or RecordingOptions()
    timeline = analyze_blocks(blocks, sample_rate, recognizer, options.analyze_options, source, duration_s)
    return timeline_prediction(timeline, recognizer)


def timeline_prediction(timeline: Timeline, recognizer: Recognizer) -> RecordingPrediction:
    """The emotion of a recording from its (segments-only) :class:`~speech_emotion.timeline.Timeline`: the one
    rule every door applies, :func:`~speech_emotion.report.speech_weighted` of the segments.

    Raises :class:`NoSpeechError` (with the timeline's notes) when it holds no speech."""
    probs = speech_weighted(timeline.segments, timeline.labels)
    if probs is None:
        raise NoSpeechError(timeline.source, timeline.duration_s, tuple(timeline.notes))
    best = int(np.argmax(probs))
    return RecordingPrediction(
        label=timeline.labels[best],
        confidence=float(probs[best]),
        probabilities=probs,
        labels=timeline.labels,
        duration_s=timeline.duration_s,
        speech_s=timeline.speech_s,
        segments=len(timeline.segments),
        notes=tuple(timeline.notes),
        uncertain=recognizer.is_uncertain(probs),
        dimensions=speech_weighted_dimensions(timeline.segments),
    )


__all__ = [
    "NoSpeechError",
    "RecordingOptions",
    "RecordingPrediction",
    "predict_blocks",
    "predict_recording",
    "timeline_prediction",
]
