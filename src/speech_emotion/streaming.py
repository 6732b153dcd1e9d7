"""The engine: audio blocks in, emotion events out, with bounded memory. Every door drives it.

:meth:`StreamingRecognizer.events` takes blocks of any size and sample rate (``(samples, sample_rate)`` pairs, or
16 kHz samples already conditioned), conditions them to 16 kHz mono (soxr, streaming), finds speech with
:mod:`~speech_emotion.vad` and yields, in time order:

- :class:`UpdateEvent` (only with ``windows=True``): one window (default 2 s, every 0.5 s) of an ongoing speech
  segment, smoothed over time;
- :class:`SegmentEvent`: a finished stretch of speech (at most ``max_segment_s``) classified once as one clip;
- :class:`StreamEnd`, last: how much audio and speech there was, notes (a file that ended early) and, without
  speech, the :class:`NoSpeechError` a door may raise.

With ``windows=False`` (``predict``, ``batch``) no window is classified: one model call per segment. Segment events
are the same in both modes. Errors (:class:`~speech_emotion.errors.AudioError`) name the engine's ``source``.
Results depend only on the audio, not on how it was chunked. ``predict`` and ``analyze`` (files), ``stream``,
``listen`` (the microphone), ``batch`` and the service all run this engine; see docs/architecture.md.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union, cast

import numpy as np

from .conditioning import SAMPLE_RATE, SampleConditioner, prepare
from .decode import ended_early
from .errors import AudioError
from .levels import PeakMeter
from .recognizer import ArrayFields, LabelledProbabilities, Recognizer, dimension_fields, read_only
from .vad import FrameClassifier, SpeechSegmenter, VadEvent, VadOptions, classify_streams

MIN_HOP_S = 0.01
"""The shortest hop between windows, seconds (a shorter one would round to no samples at all)."""


@dataclass(frozen=True)
class StreamOptions:
    """Windowing, smoothing and segmentation of the stream."""

    window_s: float = 2.0
    """Length of each classified window (shorter at the start of a segment)."""
    hop_s: float = 0.5
    """One update per hop while speech goes on."""
    min_window_s: float = 1.0
    """Speech needed before the first update of a segment (lower: faster first answer)."""
    min_segment_s: float = 0.3
    """Shorter speech segments produce no events: too little to judge."""
    max_segment_s: float = 30.0
    """Longer uninterrupted speech is cut into segments of this length."""
    smoothing: float = 0.6
    """Weight of the past in the exponential smoothing of update probabilities (0: none)."""
    vad: VadOptions = field(default_factory=VadOptions)

    def __post_init__(self) -> None:
        if not MIN_HOP_S <= self.hop_s <= self.window_s:
            raise ValueError(f"need {MIN_HOP_S} <= hop_s <= window_s")
        if not 0 < self.min_window_s <= self.window_s:
            raise ValueError("need 0 < min_window_s <= window_s")
        if not 0 <= self.min_segment_s <= self.min_window_s:
            raise ValueError("need 0 <= min_segment_s <= min_window_s")
        if self.max_segment_s < self.window_s:
            raise ValueError("max_segment_s must be at least window_s")
        if not 0 <= self.smoothing < 1:
            raise ValueError("smoothing must be in [0, 1)")


@dataclass(frozen=True, eq=False)
class UpdateEvent(LabelledProbabilities, ArrayFields):
    """Emotion of the latest window of ongoing speech (smoothed over recent windows)."""

    type: ClassVar[str] = "update"
    segment: int
    """Index of the speech segment the window belongs to."""
    start: float
    """Window start, seconds from the stream start."""
    end: float
    label: str
    confidence: float
    probabilities: np.ndarray
    """``(len(labels),)`` float64 in :attr:`labels` order, read-only (:meth:`probability` reads one by name)."""
    labels: tuple[str, ...]
    """The model's labels (:attr:`Recognizer.labels`)."""
    latency_ms: float
    """Wall-clock time spent classifying this window."""
    channel: int | None = None
    """Input channel (0: the first) the window comes from; ``None`` for the mix of all channels."""
    dimensions: np.ndarray | None = None
    """``(3,)`` float64 arousal, valence, dominance in [0, 1], smoothed like the probabilities (``None``: a model
    without them)."""
    uncertain: bool = False
    """The bundle's calibration thresholds call the (smoothed) answer uncertain (:meth:`Recognizer.is_uncertain` of
    :attr:`probabilities`; always ``False`` for a bundle without thresholds)."""

    def __post_init__(self) -> None:
        _freeze(self)

    def to_dict(self) -> dict[str, Any]:
        return _with_channel(
            self.channel,
            {
                "type": self.type,
                "segment": self.segment,
                "start": round(self.start, 3),
                "end": round(self.end, 3),
                "label": self.label,
                "confidence": round(self.confidence, 4),
                "probabilities": self.probabilities_dict(4),
                "uncertain": self.uncertain,
                **dimension_fields(self.dimensions, 4),
                "latency_ms": round(self.latency_ms, 2),
            },
        )


@dataclass(frozen=True, eq=False)
class SegmentEvent(LabelledProbabilities, ArrayFields):
    """A finished stretch of speech: its span and the probabilities of the whole segment as one clip.

    ``label`` is the top of ``probabilities``. It may differ from the labels of the segment's
    :class:`UpdateEvent` windows, which judge 2 s at a time with smoothing: the whole utterance at once is the
    better estimate for the segment, and the one summaries count.
    """

    type: ClassVar[str] = "segment"
    segment: int
    """Index of the speech segment (0, 1, ...): the same key as :attr:`UpdateEvent.segment`."""
    start: float
    end: float
    label: str
    confidence: float
    probabilities: np.ndarray
    """``(len(labels),)`` float64 in :attr:`labels` order, read-only (:meth:`probability` reads one by name)."""
    labels: tuple[str, ...]
    """The model's labels (:attr:`Recognizer.labels`)."""
    windows: int
    """Windows classified in the segment."""
    channel: int | None = None
    """Input channel (0: the first) the segment comes from; ``None`` for the mix of all channels."""
    dimensions: np.ndarray | None = None
    """``(3,)`` float64 arousal, valence, dominance in [0, 1] of the whole segment (``None``: a model without
    them)."""
    uncertain: bool = False
    """The bundle's calibration thresholds call the segment's answer uncertain (:meth:`Recognizer.is_uncertain` of
    :attr:`probabilities`; always ``False`` for a bundle without thresholds)."""

    def __post_init__(self) -> None:
        _freeze(self)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return _with_channel(
            self.channel,
            {
                "type": self.type,
                "segment": self.segment,
                "start": round(self.start, 3),
                "end": round(self.end, 3),
                "duration": round(self.duration, 3),
                "label": self.label,
                "confidence": round(self.confidence, 4),
                "probabilities": self.probabilities_dict(4),
                "uncertain": self.uncertain,
                **dimension_fields(self.dimensions, 4),
                "windows": self.windows,
            },
        )


def _freeze(event: UpdateEvent | SegmentEvent) -> None:
    """The event's arrays as read-only float64 copies (the engine's smoothing state is never shared)."""
    object.__setattr__(event, "probabilities", read_only(event.probabilities))
    if event.dimensions is not None:
        object.__setattr__(event, "dimensions", read_only(event.dimensions))


def _with_channel(channel: int | None, d: dict[str, Any]) -> dict[str, Any]:
    """Event dicts name their channel only when it is one (split channels), not for the mix."""
    if channel is not None:
        d["channel"] = channel
    return d


Event = Union[UpdateEvent, SegmentEvent]

Block = Union[tuple[np.ndarray, int], np.ndarray]
"""What :meth:`StreamingRecognizer.events` reads: ``(samples, sample_rate)`` (any rate, ``(frames[, channels])``,
int or float) or a 1-D float32 array already conditioned to 16 kHz (the output of a
:class:`~speech_emotion.conditioning.SampleConditioner`)."""


class NoSpeechError(AudioError):
    """A recording in which voice activity detection finds no speech (silence, hiss, hum, noise)."""

    def __init__(self, source: str, duration_s: float, notes: tuple[str, ...] = ()) -> None:
        super().__init__(source, f"no speech detected ({duration_s:.1f} s of silence or noise)")
        self.duration_s = duration_s
        self.notes = notes
        """Notes of the recording (a file that ended early), kept with the no-speech answer."""

    def __reduce__(self) -> tuple[type, tuple[str, float, tuple[str, ...]]]:
        return (type(self), (self.source, self.duration_s, self.notes))


SPEECH_SILENCE_PEAK = 1e-6
"""Peak (-120 dBFS) below which a window or segment the speech detector took for speech still counts as silent (no
evidence: uniform scores). The whole-clip threshold (``AudioOptions.silence_peak``, -80 dBFS) sits above 16-bit
dither because nothing else has judged that audio; here the detector has, and a float recording whose speech peaks
at -81 dBFS got uniform scores ("neutral", 12.5 %) instead of its answer."""


@dataclass(frozen=True)
class StreamEnd:
    """The last item of :meth:`StreamingRecognizer.events`: what the stream held."""

    type: ClassVar[str] = "end"
    source: str
    duration_s: float
    """Seconds of audio received (at the input rate)."""
    samples: int
    """16 kHz samples the engine processed."""
    speech_s: float
    """Summed duration of the segment events."""
    segments: int
    notes: tuple[str, ...] = ()
    """Problems worth telling the user that did not stop the stream: a file that ended early; a level too low to
    trust the emotions found (:mod:`~speech_emotion.levels`, only when there was speech)."""
    channel: int | None = None

    @property
    def no_speech(self) -> NoSpeechError | None:
        """The error a door that needs speech raises (``None`` when there was speech)."""
        return NoSpeechError(self.source, self.duration_s, self.notes) if self.segments == 0 else None

    @property
    def no_audio(self) -> AudioError | None:
        """The error a door reading a file raises when it held not one sample (``None`` otherwise)."""
        return AudioError(self.source, "contains no audio samples") if self.samples == 0 else None


class _AudioBuffer:
    """The recent part of a 16 kHz stream, addressed by absolute sample index."""

    def __init__(self, capacity: int) -> None:
        self._data = np.zeros(capacity, dtype=np.float32)
        self._start = 0  # absolute index of _data[0]
        self._fill = 0
        self._keep_from = 0

    @property
    def start(self) -> int:
        """Absolute index of the oldest buffered sample."""
        return self._start

    @property
    def end(self) -> int:
        return self._start + self._fill

    def append(self, samples: np.ndarray) -> None:
        n = len(samples)
        if self._fill + n > len(self._data):
            drop = max(0, min(self._keep_from - self._start, self._fill))
            if drop:
                self._data[: self._fill - drop] = self._data[drop : self._fill]
                self._fill -= drop
                self._start += drop
            if self._fill + n > len(self._data):
                grown = np.zeros(max(2 * len(self._data), self._fill + n), dtype=np.float32)
                grown[: self._fill] = self._data[: self._fill]
                self._data = grown
        self._data[self._fill : self._fill + n] = samples
        self._fill += n

    def get(self, start: int, end: int) -> np.ndarray:
        if start < self._start or end > self.end:
            raise IndexError(f"samples {start}..{end} not buffered ({self._start}..{self.end})")
        return self._data[start - self._start : end - self._start]

    def release_before(self, index: int) -> None:
        """Samples before ``index`` may be dropped on a later append."""
        self._keep_from = max(self._keep_from, index)


@dataclass
class _Segment:
    index: int
    start: int
    next_end: int
    last_end: int | None = None
    windows: int = 0


@dataclass(frozen=True)
class _Job:
    """One model input the engine needs, with what the event it becomes needs: a window (an update) or a whole
    segment. Planned in time order while the audio is read; scored later, alone or batched with other streams'."""

    segment: int
    start: int
    end: int
    samples: np.ndarray | None
    """The prepared 16 kHz model input; ``None``: too quiet to judge (no evidence either way)."""
    window: bool
    """An update window (``True``) or the whole segment."""
    fresh: bool = False
    """The first window since speech started: the smoothing starts again."""
    windows: int = 0
    """For a segment: the windows classified in it."""


Scores = tuple[np.ndarray, Union[np.ndarray, None]]


class StreamingRecognizer:
    """Emotion events from a live or recorded stream; see the module docstring.

    :meth:`events` is the way to run it over blocks one can read. :meth:`feed` and :meth:`flush`, the steps it is
    made of, serve audio that arrives while the caller waits; :func:`step_engines` runs many streams' steps with
    the model calls batched across them (the service). Each step returns the events it completed, in time order.
    One instance serves one stream at a time; the recognizer may be shared.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        options: StreamOptions | None = None,
        channel: int | None = None,
        source: str = "<stream>",
        windows: bool = True,
    ) -> None:
        """``channel``: which channel of multichannel input to follow (``None``: a safe mix of all); ``source``: the
        name errors and notes give the audio; ``windows``: classify sliding windows (update events) or, when
        ``False``, only each finished segment."""
        self.recognizer = recognizer
        self.channel = channel
        self.source = source
        self.windows = windows
        self.options = options or StreamOptions()
        self.labels = recognizer.labels
        self.hop_stride = 1
        """Classify every ``hop_stride``-th window of the ``hop_s`` grid (1: all). A server under load widens the
        hop this way (and says so); a segment's closing window is then left out too (the segment event, sent at
        the same moment, is the answer for that speech); segment events do not change."""
        # windows come from the conditioned (resampled, high-passed) stream; the speech detector has found speech in
        # them, so only digital silence counts as silent (a quiet float recording is normalised like any other)
        self._window_opts = dataclasses.replace(
            recognizer.preprocessing, trim=False, min_duration_s=0.0, silence_peak=SPEECH_SILENCE_PEAK
        )
        self._segment_opts = dataclasses.replace(
            recognizer.preprocessing, min_duration_s=0.0, silence_peak=SPEECH_SILENCE_PEAK
        )
        o = self.options
        self._win = round(o.window_s * SAMPLE_RATE)
        self._hop = round(o.hop_s * SAMPLE_RATE)
        self._min_win = round(o.min_window_s * SAMPLE_RATE)
        self._min_seg = round(o.min_segment_s * SAMPLE_RATE)
        self._max_seg = round(o.max_segment_s * SAMPLE_RATE)
        self._pad = o.vad.speech_pad_ms * SAMPLE_RATE // 1000
        self._frame = o.vad.frame_length
        self._classifier = FrameClassifier(o.vad)
        self._segmenter = SpeechSegmenter(o.vad)
        # What must stay buffered: a window ending up to the hangover before the current frame.
        self._keep = self._win + o.vad.min_silence_ms * SAMPLE_RATE // 1000 + 4 * self._frame
        self.reset()

    # -- public API -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the stream: the next chunk starts a new one at time 0."""
        self._classifier.reset()
        self._segmenter.reset()
        self._buffer = _AudioBuffer(self._keep + SAMPLE_RATE)
        self._conditioner = SampleConditioner(
            self.recognizer.preprocessing.highpass_hz, channel=self.channel, source=self.source
        )
        self._segment: _Segment | None = None
        self._meter = PeakMeter()
        self._frames_in = 0
        self._rate_in = SAMPLE_RATE
        self._segments_done = 0
        self._speech = 0
        self._fresh = False
        self._smoothed: np.ndarray | None = None
        self._smoothed_dims: np.ndarray | None = None

    @property
    def time(self) -> float:
        """Seconds of (16 kHz) audio received so far."""
        return self._buffer.end / SAMPLE_RATE

    @property
    def in_speech(self) -> bool:
        """Whether a speech segment is open."""
        return self._segment is not None

    @property
    def frame_voiced(self) -> bool:
        """Whether the latest VAD frame was voiced (a live speech indicator)."""
        return self._segmenter.frame_voiced

    def warmup(self) -> None:
        """Classify one synthetic window, so the first real update is not slowed by lazy setup (JIT, caches)."""
        self.recognizer.warmup()

    def condition(self, chunk: np.ndarray, sample_rate: int) -> np.ndarray:
        """``chunk`` (any length, rate, int or float, mono or ``(frames, channels)``) as the engine's 16 kHz mono
        float32 input, ready for :meth:`feed_conditioned` or :func:`step_engines`.

        Raises :class:`AudioError` for input :class:`~speech_emotion.conditioning.SampleConditioner` refuses
        (NaN/Inf samples, a ``(channels, frames)`` array, an unsupported rate or sample type).
        """
        samples = self._conditioner.push(chunk, sample_rate)
        self._count(chunk, sample_rate)
        return samples

    def _count(self, chunk: np.ndarray, sample_rate: int) -> None:
        """The input's length and peak (of the channel followed, when one is), for :meth:`close`'s notes."""
        chunk = np.asarray(chunk)
        followed = self.channel is not None and chunk.ndim == 2 and self.channel < chunk.shape[1]
        self._meter.add(chunk[:, self.channel] if followed else chunk)
        self._frames_in += len(chunk)
        self._rate_in = sample_rate

    def feed(self, chunk: np.ndarray, sample_rate: int) -> list[Event]:
        """Add audio (any length, rate, int or float, mono or ``(frames, channels)``); returns new events.

        Raises :class:`AudioError` as :meth:`condition` does.
        """
        return step_engines([self], [self.condition(chunk, sample_rate)])[0]  # condition() counted the chunk

    def feed_conditioned(self, samples: np.ndarray) -> list[Event]:
        """Add 16 kHz mono float32 that already went through a :class:`~.conditioning.SampleConditioner`."""
        self._count(samples, SAMPLE_RATE)
        return step_engines([self], [samples])[0]

    def flush(self) -> list[Event]:
        """End of stream: closes open speech and returns the last events, then resets."""
        *events, _end = self.close()
        return cast("list[Event]", events)

    def close(self, duration_s: float = 0.0) -> list[Event | StreamEnd]:
        """End of stream: the last events, then the :class:`StreamEnd` (how much audio and speech there was, the
        notes: a stream that ended well before the announced ``duration_s`` (0: unknown), a level too low to trust
        the emotions found); then resets. Every door ends a stream this way."""
        return score_steps([self.plan_close(duration_s)])[0]

    def plan_close(self, duration_s: float = 0.0) -> PlannedStep:
        """The stream's last step before the model (:func:`score_steps` completes it as :meth:`close` does): the
        conditioner's tail through the speech detector, open speech closed."""
        step = detect_engines([self], [self._conditioner.finish()])[0]
        edge = self._segmenter.finish()
        if edge is not None:
            step.jobs += self._on_edge(edge)
        step.closing = duration_s
        return step

    def _closed(self, duration_s: float) -> StreamEnd:
        """The :class:`StreamEnd` of the stream just closed (its last events completed); resets."""
        rate = self._rate_in
        notes = [note for note in (ended_early(self._frames_in, duration_s, rate),) if note is not None]
        notes += self._meter.notes(speech_found=self._segments_done > 0)
        end = self._end(self._frames_in / rate, tuple(notes))
        self.reset()
        return end

    def events(self, blocks: Iterable[Block], duration_s: float = 0.0) -> Iterator[Event | StreamEnd]:
        """The events of a whole stream read from ``blocks``, then its :class:`StreamEnd`.

        ``duration_s``: the announced length (0: unknown); blocks ending well before it give the end a "file ended
        early" note. Raises :class:`AudioError` naming :attr:`source` for input the conditioner refuses.
        """
        return run_engines([self], blocks, duration_s)

    def _end(self, duration_s: float, notes: tuple[str, ...]) -> StreamEnd:
        return StreamEnd(
            source=self.source,
            duration_s=duration_s,
            samples=self._buffer.end,
            speech_s=self._speech / SAMPLE_RATE,
            segments=self._segments_done,
            notes=notes,
            channel=self.channel,
        )

    # -- internals: take the audio, decide speech, plan model inputs, complete events ----------

    def _take(self, samples: np.ndarray) -> np.ndarray:
        """Buffer ``samples``; the whole VAD frames ``(n, frame)`` not yet classified."""
        if len(samples):
            self._buffer.append(np.asarray(samples, dtype=np.float32))
        f, start = self._frame, self._segmenter.position
        n = (self._buffer.end - start) // f
        return self._buffer.get(start, start + n * f).reshape(n, f)

    def _advance(self, voiced: np.ndarray) -> list[_Job]:
        """Step the segmenter over the flags of the frames :meth:`_take` gave; the model inputs due, in order."""
        jobs = self._due_windows()
        for flag in voiced:
            edge = self._segmenter.step(bool(flag))
            if edge is not None:
                jobs += self._on_edge(edge)
            jobs += self._due_windows()
            jobs += self._split_long_segment()
        if len(voiced):
            keep_from = self._segmenter.position - self._keep
            if self._segment is not None:  # the open segment is judged as a whole when it ends
                keep_from = min(keep_from, self._segment.start)
            self._buffer.release_before(keep_from)
        return jobs

    def _on_edge(self, edge: VadEvent) -> list[_Job]:
        if edge.kind == "start":
            self._fresh = True
            self._open(edge.sample)
            return []
        return self._close(edge.sample)

    def _open(self, start: int) -> None:
        self._segment = _Segment(index=self._segments_done, start=start, next_end=start + self._min_win)

    def _due_windows(self) -> list[_Job]:
        """Windows whose audio has arrived, each planned once frames up to its end are known."""
        seg = self._segment
        jobs: list[_Job] = []
        if seg is None or not self.windows:
            return jobs
        limit = min(
            self._segmenter.position + self._frame - 1,  # frames ending at or before the window end are in
            self._buffer.end,
            self._segmenter.last_voiced_end + self._pad,  # not ending in a pause (waits for more speech)
        )
        while seg.next_end <= limit:
            jobs.append(self._window(seg, max(seg.start, seg.next_end - self._win), seg.next_end))
            seg.next_end += self._hop * self.hop_stride
        return jobs

    def _split_long_segment(self) -> list[_Job]:
        seg = self._segment
        if seg is None or self._segmenter.position - seg.start < self._max_seg:
            return []
        jobs = self._close(self._segmenter.position)
        self._open(self._segmenter.position)
        return jobs

    def _close(self, end: int) -> list[_Job]:
        seg = self._segment
        self._segment = None
        if seg is None:
            return []
        end = max(end, seg.last_end or 0)
        if end - seg.start < self._min_seg:
            return []
        jobs: list[_Job] = []
        closing = seg.last_end is None or end - seg.last_end >= self._hop // 2
        if self.windows and closing and self.hop_stride == 1:
            jobs.append(self._window(seg, max(seg.start, end - self._win), end))
        self._segments_done += 1
        self._speech += end - seg.start
        try:
            samples: np.ndarray | None = prepare(
                self._buffer.get(max(seg.start, self._buffer.start), end), self._segment_opts
            )
        except AudioError:  # silent after the VAD's gain: no evidence either way
            samples = None
        jobs.append(_Job(seg.index, seg.start, end, samples, window=False, windows=seg.windows))
        return jobs

    def _window(self, seg: _Segment, start: int, end: int) -> _Job:
        try:  # a copy: the buffer may move on before the window is scored
            samples: np.ndarray | None = np.array(prepare(self._buffer.get(start, end), self._window_opts))
        except AudioError:  # a silent window inside speech: no evidence either way
            samples = None
        seg.windows += 1
        seg.last_end = end
        fresh, self._fresh = self._fresh, False
        return _Job(seg.index, start, end, samples, window=True, fresh=fresh)

    def _no_evidence(self) -> Scores:
        """Uniform probabilities and neutral (0.5) dimensions: what a clip too quiet to judge gets."""
        dims = np.full(len(self.recognizer.dimensions), 0.5) if self.recognizer.dimensions else None
        return np.full(len(self.labels), 1.0 / len(self.labels)), dims

    def _complete(self, jobs: list[_Job], scores: list[Scores | None], latency_ms: float) -> list[Event]:
        """The events of ``jobs`` (in order) given their scores (``None``: no evidence); ``latency_ms``: the time
        their scoring took."""
        events: list[Event] = []
        for job, score in zip(jobs, scores):
            raw, raw_dims = self._no_evidence() if score is None else score
            if job.window:
                events.append(self._update(job, raw, raw_dims, latency_ms))
                continue
            best = int(np.argmax(raw))
            events.append(
                SegmentEvent(
                    segment=job.segment,
                    start=job.start / SAMPLE_RATE,
                    end=job.end / SAMPLE_RATE,
                    label=self.labels[best],
                    confidence=float(raw[best]),
                    probabilities=raw,
                    labels=self.labels,
                    windows=job.windows,
                    channel=self.channel,
                    dimensions=raw_dims,
                    uncertain=self.recognizer.is_uncertain(raw),
                )
            )
        return events

    def _update(self, job: _Job, raw: np.ndarray, raw_dims: np.ndarray | None, latency_ms: float) -> UpdateEvent:
        if job.fresh:
            self._smoothed = self._smoothed_dims = None
        a = self.options.smoothing
        self._smoothed = raw if self._smoothed is None else a * self._smoothed + (1 - a) * raw
        if raw_dims is not None:
            past = self._smoothed_dims
            self._smoothed_dims = raw_dims if past is None else a * past + (1 - a) * raw_dims
        best = int(np.argmax(self._smoothed))
        return UpdateEvent(
            segment=job.segment,
            start=job.start / SAMPLE_RATE,
            end=job.end / SAMPLE_RATE,
            label=self.labels[best],
            confidence=float(self._smoothed[best]),
            probabilities=self._smoothed,
            labels=self.labels,
            latency_ms=latency_ms,
            channel=self.channel,
            dimensions=self._smoothed_dims,
            uncertain=self.recognizer.is_uncertain(self._smoothed),
        )


def _score(recognizer: Recognizer, jobs: Sequence[_Job]) -> list[Scores | None]:
    """:meth:`Recognizer.scores_batch` of the jobs that have audio (``None`` for those too quiet to judge)."""
    audible = [job.samples for job in jobs if job.samples is not None]
    found = iter(recognizer.scores_batch(audible) if audible else [])
    return [None if job.samples is None else next(found) for job in jobs]


@dataclass
class PlannedStep:
    """One stream's step after the speech detector (:func:`detect_engines`, :meth:`StreamingRecognizer.plan_close`):
    the model inputs its events wait for. :func:`score_steps` completes it; until then the engine takes no audio."""

    engine: StreamingRecognizer
    jobs: list[_Job]
    closing: float | None = None
    """For the stream's last step: its announced duration (seconds, 0: unknown); completing it ends the stream."""


def detect_engines(engines: Sequence[StreamingRecognizer], samples: Sequence[np.ndarray]) -> list[PlannedStep]:
    """The first half of :func:`step_engines`: each engine takes its ``samples``, the speech detector runs on all
    streams together, and each engine plans the windows and segments its new frames make due."""
    frames = [engine._take(x) for engine, x in zip(engines, samples)]
    flags = classify_streams([engine._classifier for engine in engines], frames)
    return [PlannedStep(engine, engine._advance(f)) for engine, f in zip(engines, flags)]


def score_steps(steps: Sequence[PlannedStep]) -> list[list[Event | StreamEnd]]:
    """The second half of :func:`step_engines`: the model inputs of all ``steps`` scored together (batched per input
    shape where the recognizer's graph allows, :meth:`Recognizer.scores_batch`), then each step's events; a closing
    step's end with its :class:`StreamEnd`. Steps of different engines may be completed in any grouping: each
    engine's events are those it would give alone (tested)."""
    groups: dict[int, list[int]] = {}
    for i, step in enumerate(steps):
        groups.setdefault(id(step.engine.recognizer), []).append(i)
    events: list[list[Event | StreamEnd]] = [[] for _ in steps]
    for members in groups.values():
        t0 = time.perf_counter()
        scores = iter(_score(steps[members[0]].engine.recognizer, [job for i in members for job in steps[i].jobs]))
        latency_ms = (time.perf_counter() - t0) * 1000
        for i in members:
            step = steps[i]
            events[i] = [*step.engine._complete(step.jobs, [next(scores) for _ in step.jobs], latency_ms)]
            if step.closing is not None:
                events[i].append(step.engine._closed(step.closing))
    return events


def step_engines(engines: Sequence[StreamingRecognizer], samples: Sequence[np.ndarray]) -> list[list[Event]]:
    """One step of many streams: each engine's :meth:`~StreamingRecognizer.feed_conditioned` of its ``samples``
    (16 kHz mono float32 from :meth:`~StreamingRecognizer.condition`; may be empty), with the speech detector run
    on all streams together and the model inputs of all streams scored together: :func:`detect_engines` then
    :func:`score_steps`. Each engine's events are those it would give alone (tested)."""
    return cast("list[list[Event]]", score_steps(detect_engines(engines, samples)))  # no closing step: no StreamEnd


def run_engines(
    engines: Sequence[StreamingRecognizer], blocks: Iterable[Block], duration_s: float = 0.0
) -> Iterator[Event | StreamEnd]:
    """The events of several engines fed the same ``blocks`` (one per channel of a split recording), in block order,
    then each engine's :class:`StreamEnd`; see :meth:`StreamingRecognizer.events`. Each engine starts a new stream."""
    for engine in engines:
        engine.reset()
    for block in blocks:
        if isinstance(block, tuple):
            inputs = [engine.condition(*block) for engine in engines]
        else:
            for engine in engines:
                engine._count(block, SAMPLE_RATE)
            inputs = [block] * len(engines)
        for events in step_engines(engines, inputs):
            yield from events
    for engine in engines:
        yield from engine.close(duration_s)


__all__ = [
    "Block",
    "Event",
    "NoSpeechError",
    "SegmentEvent",
    "StreamEnd",
    "PlannedStep",
    "StreamOptions",
    "StreamingRecognizer",
    "UpdateEvent",
    "detect_engines",
    "run_engines",
    "score_steps",
    "step_engines",
]
