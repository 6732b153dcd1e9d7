"""One file in, one :class:`FileResult` out: the unit of work both runners (local, Ray) run, in their own processes.

:func:`analyze_one` never raises for a bad file: the one-line reason of the error becomes the
result's ``error``, so one corrupt recording never stops a run over thousands.
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import silero
from ..errors import SpeechEmotionError
from ..recognizer import Recognizer
from ..report import speech_weighted_dimensions, summarize
from ..threads import limit_native_threads
from ..timeline import AnalyzeOptions, analyze_call, analyze_channels
from .inputs import Job

OK = "ok"
FAILED = "failed"

ANALYZE_OPTIONS = AnalyzeOptions(keep_windows=False)
"""Batch runs keep segments, not the per-window emotions: the engine runs segments-only, one model call per speech
segment and none for windows."""


@dataclass
class SegmentResult:
    """One analysed stretch of speech inside a file."""

    start_s: float
    end_s: float
    label: str
    confidence: float
    probabilities: list[float]
    """In the model's label order (the ``prob_<label>`` columns of the segments table)."""
    channel: int | None = None
    """Input channel (0: the first) with ``--channels split``; ``None`` for the mix."""
    dimensions: list[float] | None = None
    """Arousal, valence, dominance in [0, 1]; ``None`` for a model without them."""
    uncertain: bool = False
    """The bundle's calibration thresholds call the segment's answer uncertain (the event's flag)."""


@dataclass
class ChannelSummary:
    """The summary of one channel of a file analysed with ``--channels split`` (0: the first)."""

    channel: int
    speech_s: float
    dominant_emotion: str | None
    verdict: str
    shares: dict[str, float]
    dimensions: list[float] | None = None
    """Speech-time-weighted arousal, valence, dominance of the channel (``None``: no speech or no such outputs)."""
    uncertain: bool = False
    """The summary's ``uncertain``: the channel's answer is under the bundle's calibration thresholds."""
    uncertain_share: float = 0.0
    """The summary's ``uncertain_share``: share of the channel's speech time in uncertain segments."""
    probabilities: dict[str, float] = field(default_factory=dict)
    """The summary's ``probabilities`` (``predict --channels split``'s answer for the channel; empty: no speech)."""
    notes: str | None = None
    """The channel's own notes, ``"; "``-joined (a loud tone or clipping on this channel only), as ``predict
    --channels split`` gives each channel its own."""


@dataclass
class FileResult:
    """Everything a batch run records about one file."""

    key: str
    path: str
    size: int
    mtime_ns: int
    status: str
    duration_s: float | None = None
    speech_s: float | None = None
    dominant_emotion: str | None = None
    verdict: str | None = None
    """The summary's verdict: ``mostly X``, ``mixed: X / Y`` or ``no speech``."""
    shares: dict[str, float] = field(default_factory=dict)
    """Share of speech time per emotion (sums to 1 when there is speech)."""
    segments: list[SegmentResult] = field(default_factory=list)
    channels: list[ChannelSummary] = field(default_factory=list)
    """With ``--channels split``: each channel's summary (the file's own fields summarise the whole call)."""
    dimensions: list[float] | None = None
    """Speech-time-weighted arousal, valence, dominance in [0, 1] (``predict``'s values); ``None`` without speech or
    for a model without them."""
    error: str | None = None
    notes: str | None = None
    """Problems that did not stop the analysis (a truncated file)."""
    process_s: float = 0.0
    """Wall-clock seconds the worker spent on the file."""
    cpu_s: float = 0.0
    """CPU seconds the worker spent on the file (independent of other load on the machine)."""
    worker: str = ""
    """``host:pid`` of the process that analysed the file."""
    worker_rss_mb: float = 0.0
    """Peak resident memory of that process so far."""
    uncertain: bool | None = None
    """The summary's ``uncertain`` (``predict``'s flag): the file's answer is under the bundle's calibration
    thresholds; ``None`` for a failed file."""
    uncertain_share: float | None = None
    """The summary's ``uncertain_share``: share of speech time in segments flagged uncertain (0-1)."""
    probabilities: dict[str, float] = field(default_factory=dict)
    """The summary's ``probabilities``: per label, speech-time-weighted, ``predict``'s answer (empty: no speech)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileResult:
        data = dict(data)
        data["segments"] = [SegmentResult(**s) for s in data.get("segments") or []]
        data["channels"] = [ChannelSummary(**c) for c in data.get("channels") or []]
        return cls(**data)


def load_worker_recognizer(model: str | Path | None) -> Recognizer:
    """The model one worker holds: single-threaded, since parallelism comes from the workers.

    It is warmed up on a short tone, so one-off setup (JIT compilation, caches) is paid at
    start-up rather than counted in the first file's time.
    """
    limit_native_threads()
    recognizer = Recognizer.load(model, threads=1)
    recognizer.warmup()
    silero.sessions()  # the speech detector: a broken installation aborts the run here (ModelError)
    return recognizer


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def analyze_one(job: Job, recognizer: Recognizer, channels: str = "mix") -> FileResult:
    """Analyse one file; failures of any kind are returned as a result with ``error`` set."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = FileResult(job.key, job.path, job.size, job.mtime_ns, OK)
    try:
        _fill(result, job.path, recognizer, channels)
    except SpeechEmotionError as exc:
        _fail(result, str(exc))
    except MemoryError:
        _fail(result, f"{job.path}: out of memory while analysing this file")
    except Exception as exc:  # a decoder or model bug must not stop the run: record it
        _fail(result, f"{job.path}: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    result.process_s = time.perf_counter() - start
    result.cpu_s = time.process_time() - cpu_start
    result.worker = worker_id()
    result.worker_rss_mb = peak_rss_mb()
    return result


def _fail(result: FileResult, error: str) -> None:
    result.status = FAILED
    result.error = error
    result.speech_s = None
    result.dominant_emotion = None
    result.verdict = None
    result.shares = {}
    result.segments = []
    result.channels = []
    result.dimensions = None
    result.uncertain = None
    result.uncertain_share = None


def _fill(result: FileResult, path: str, recognizer: Recognizer, channels: str = "mix") -> None:
    """Analyse ``path`` with the shared block-wise timeline (VAD segments, share of speech per emotion).

    With ``channels="split"`` the file is read once through :func:`~speech_emotion.timeline.analyze_call`, as
    ``predict --channels split`` reads it: the file's own fields are the whole call's (the safe mix of the channels,
    ``predict``'s answer), each channel gets a :class:`ChannelSummary`, and the segments of the mix (``channel``
    ``None``) and of every channel are all kept."""
    if channels == "split":
        timeline, parts = analyze_call(path, recognizer, ANALYZE_OPTIONS)
        result.channels = [_channel_summary(t) for t in parts]
        segments = [
            *timeline.segments,
            *sorted((s for t in parts for s in t.segments), key=lambda s: (s.start, s.channel)),
        ]
    else:
        (timeline,) = analyze_channels(path, recognizer, ANALYZE_OPTIONS)
        segments = timeline.segments
    summary = summarize(timeline)
    result.duration_s = timeline.duration_s
    result.speech_s = timeline.speech_s
    result.dominant_emotion = summary["dominant"]
    result.verdict = summary["verdict"]
    result.shares = {label: float(summary["emotion_share"][label]) for label in timeline.labels}
    result.dimensions = _list(speech_weighted_dimensions(timeline.segments))
    result.uncertain = summary["uncertain"]
    result.uncertain_share = summary["uncertain_share"]
    result.probabilities = dict(summary["probabilities"])
    result.segments = [
        SegmentResult(
            s.start, s.end, s.label, s.confidence, s.probabilities.tolist(), s.channel, _list(s.dimensions), s.uncertain
        )
        for s in segments
    ]
    result.notes = "; ".join(timeline.notes) or None


def _channel_summary(timeline: Any) -> ChannelSummary:
    summary = summarize(timeline)
    shares = {label: float(summary["emotion_share"][label]) for label in timeline.labels}
    dims = _list(speech_weighted_dimensions(timeline.segments))
    return ChannelSummary(
        timeline.channel,
        timeline.speech_s,
        summary["dominant"],
        summary["verdict"],
        shares,
        dims,
        summary["uncertain"],
        summary["uncertain_share"],
        dict(summary["probabilities"]),
        "; ".join(timeline.notes) or None,
    )


def _list(values: Any) -> list[float] | None:
    """Arousal, valence, dominance as plain floats (results cross process boundaries and JSON)."""
    return None if values is None else [float(v) for v in values]
