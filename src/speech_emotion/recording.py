"""Emotion of a whole recording of any length: the answer of ``predict`` and ``POST /v1/predict``.

A recording is read in blocks (memory flat in its length) and its speech found with the same
voice activity detection as the live engine, so every door agrees on speech vs no speech:

- no speech -> :class:`NoSpeechError`;
- a short recording (up to ``whole_clip_max_s``, e.g. one utterance) -> one prediction of the
  whole clip, as the model was trained;
- a longer one -> the streaming engine with ``analyze``'s settings over all of it, and the
  speech-time-weighted mean of its segments' probabilities, labelled by the summary ``analyze``
  reports (:func:`~speech_emotion.report.summarize`), so the two agree by construction.

The result says how much speech it was based on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from .conditioning import SAMPLE_RATE, SampleConditioner, prepare
from .decode import AudioSource, ended_early, open_blocks
from .errors import AudioError
from .levels import PeakMeter
from .recognizer import Recognizer
from .report import speech_weighted, summarize
from .streaming import SegmentEvent, StreamingRecognizer, StreamOptions
from .timeline import ANALYZE_HOP_S, Timeline
from .vad import VoiceActivityDetector


class NoSpeechError(AudioError):
    """A recording in which voice activity detection finds no speech (silence, hiss, hum, noise)."""

    def __init__(self, source: str, duration_s: float, notes: tuple[str, ...] = ()) -> None:
        super().__init__(source, f"no speech detected ({duration_s:.1f} s of silence or noise)")
        self.duration_s = duration_s
        self.notes = notes
        """Notes of the recording (a file that ended early), kept with the no-speech answer."""


@dataclass(frozen=True)
class RecordingOptions:
    """How a whole recording is judged."""

    stream: StreamOptions = field(default_factory=lambda: StreamOptions(hop_s=ANALYZE_HOP_S))
    """Engine settings for long recordings (and the VAD used for all)."""
    whole_clip_max_s: float = 10.0
    """Recordings up to this long get one whole-clip prediction; longer ones the segment-weighted one."""
    block_s: float = 10.0
    """Seconds read from the source at a time."""
    max_duration_s: float | None = None
    """Longer sources are refused before decoding (``None``: no limit)."""


@dataclass(frozen=True)
class RecordingPrediction:
    """The emotion of a recording and what it rests on."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    duration_s: float
    """Length of the recording, seconds."""
    speech_s: float
    """Seconds of speech the answer is based on."""
    segments: int
    """Speech segments found."""
    method: Literal["whole-clip", "segments"]
    """``whole-clip``: one prediction of the whole (short) clip; ``segments``: speech-time-weighted segments."""
    notes: tuple[str, ...] = ()
    """Problems worth telling the user that did not stop the prediction (a file that ended early), as in
    :attr:`~speech_emotion.timeline.Timeline.notes`."""
    uncertain: bool = False
    """The bundle's calibration thresholds call the answer uncertain (:attr:`Recognizer.is_uncertain`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": self.confidence,
            "probabilities": self.probabilities,
            "duration_s": round(self.duration_s, 3),
            "speech_s": round(self.speech_s, 3),
            "segments": self.segments,
            "method": self.method,
            "notes": list(self.notes),
            "uncertain": self.uncertain,
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
    "file ended early" note. Raises :class:`NoSpeechError` or :class:`AudioError` (no samples, NaN, too short).
    """
    options = options or RecordingOptions()
    frames_read = 0
    meter = PeakMeter()

    def counted() -> Iterator[np.ndarray]:
        nonlocal frames_read
        for block in meter(blocks):
            frames_read += len(block)
            yield block

    conditioner = SampleConditioner(recognizer.preprocessing.highpass_hz, source=source)
    vad = VoiceActivityDetector(options.stream.vad)
    limit = round(options.whole_clip_max_s * SAMPLE_RATE)
    kept: list[np.ndarray] = []
    n = 0
    engine: StreamingRecognizer | None = None
    segments: list[SegmentEvent] = []
    for samples in conditioner.stream(counted(), sample_rate):
        n += len(samples)
        if engine is None and n <= limit:
            kept.append(samples)
            continue
        if engine is None:  # too long for one clip: hand what was kept over to the engine
            engine = StreamingRecognizer(recognizer, options.stream)
            samples = np.concatenate([*kept, samples])
            kept = []
        segments += _segments(engine.feed_conditioned(samples))
    if n == 0:
        raise AudioError(source, "contains no audio samples")
    duration = n / SAMPLE_RATE
    note = ended_early(frames_read, duration_s, sample_rate)
    notes = () if note is None else (note,)
    if engine is not None:
        segments += _segments(engine.flush())
        if not segments:
            raise NoSpeechError(source, duration, notes)
        return replace(_weighted(segments, recognizer, duration, source), notes=_with_level(notes, meter))
    clip = np.concatenate(kept)
    spans = _speech_spans(vad, clip)
    min_seg = options.stream.min_segment_s
    speech = [(s, e) for s, e in spans if e - s >= min_seg - 1e-9]
    if not speech:
        raise NoSpeechError(source, duration, notes)
    pred = recognizer.predict_preprocessed(prepare(clip, recognizer.preprocessing, source))
    return RecordingPrediction(
        label=pred.label,
        confidence=pred.confidence,
        probabilities=pred.probabilities,
        duration_s=duration,
        speech_s=float(sum(e - s for s, e in speech)),
        segments=len(speech),
        method="whole-clip",
        notes=_with_level(notes, meter),
        uncertain=pred.uncertain,
    )


def _with_level(notes: tuple[str, ...], meter: PeakMeter) -> tuple[str, ...]:
    level = meter.note()
    return notes if level is None else (*notes, level)


def _speech_spans(vad: VoiceActivityDetector, samples: np.ndarray) -> list[tuple[float, float]]:
    events = vad.process(samples) + vad.flush()
    starts = [e.sample for e in events if e.kind == "start"]
    ends = [e.sample for e in events if e.kind == "end"]
    return [(s / SAMPLE_RATE, e / SAMPLE_RATE) for s, e in zip(starts, ends)]


def _segments(events: list) -> list[SegmentEvent]:
    return [e for e in events if isinstance(e, SegmentEvent)]


def _weighted(
    segments: list[SegmentEvent], recognizer: Recognizer, duration_s: float, source: str
) -> RecordingPrediction:
    """The answer of ``analyze``'s summary for the same segments: its ``dominant`` and :func:`speech_weighted`."""
    timeline = Timeline(source, duration_s, SAMPLE_RATE, recognizer.name, recognizer.labels, segments=segments)
    label = summarize(timeline)["dominant"]
    probs = speech_weighted(segments, recognizer.labels)
    if label is None or probs is None:
        raise NoSpeechError(source, duration_s)
    return RecordingPrediction(
        label=label,
        confidence=float(probs[recognizer.labels.index(label)]),
        probabilities={name: float(p) for name, p in zip(recognizer.labels, probs)},
        duration_s=duration_s,
        speech_s=timeline.speech_s,
        segments=len(segments),
        method="segments",
        uncertain=recognizer.is_uncertain(probs),
    )
