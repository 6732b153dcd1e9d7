"""Emotion timelines of long recordings: a file streamed block by block through the engine.

:func:`analyze_file` never holds more than one block of the file (plus the engine's few
seconds of history), so memory stays flat however long the recording. The resulting
:class:`Timeline` holds the speech segments and the per-window emotions; :mod:`speech_emotion.report`
summarises it and writes JSON, CSV and a PNG plot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .calibration import Calibration
from .decode import AudioSource, open_blocks
from .recognizer import Recognizer
from .streaming import SegmentEvent, StreamingRecognizer, StreamOptions, UpdateEvent, run_engines

ProgressCallback = Callable[[float, float], None]
"""Called as ``progress(seconds_done, seconds_total)`` after each block."""


ANALYZE_HOP_S = 1.0
"""Window hop for recordings: 2 s windows every second, half the live rate, twice the throughput."""


@dataclass(frozen=True)
class AnalyzeOptions:
    """How a recording is analysed."""

    stream: StreamOptions = field(default_factory=lambda: StreamOptions(hop_s=ANALYZE_HOP_S))
    block_s: float = 10.0
    """Seconds of audio read from the file at a time."""
    keep_windows: bool = True
    """Classify and keep every window's emotion (for the plot and the windows CSV): ~50 bytes per 0.5 s of speech;
    ``False``: the engine's segments-only mode, no window classified at all (segments are the same)."""
    top_moments: int = 5
    """How many of the most intense moments the summary lists."""
    channels: Literal["mix", "split"] = "mix"
    """``mix``: one timeline of a safe mix of all channels; ``split``: one timeline per channel (two-party calls
    with each party on its own channel), via :func:`analyze_channels`."""

    def __post_init__(self) -> None:
        if self.channels not in ("mix", "split"):
            raise ValueError(f"channels must be 'mix' or 'split', not {self.channels!r}")


class WindowTrack:
    """Window emotions stored compactly (about 50 bytes each: an hour of speech is ~0.4 MB).

    Behaves like a list of :class:`UpdateEvent` (``append``, ``len``, iteration, indexing);
    ``starts``, ``ends``, ``probabilities``, ``dimensions`` and ``uncertain`` give the columns as arrays.
    """

    def __init__(self, labels: tuple[str, ...], channel: int | None = None, dimensions: tuple[str, ...] = ()) -> None:
        """``dimensions``: the model's (:attr:`Recognizer.dimensions`), ``()`` without them."""
        self.labels = labels
        self.channel = channel
        self.dimension_names = dimensions
        self._n = 0
        self._times = np.zeros((64, 2), dtype=np.float64)
        self._probs = np.zeros((64, len(labels)), dtype=np.float32)
        self._dims = np.zeros((64, len(dimensions)), dtype=np.float32)
        self._segment = np.zeros(64, dtype=np.int32)
        self._uncertain = np.zeros(64, dtype=bool)

    def append(self, event: UpdateEvent) -> None:
        if self._n == len(self._times):
            self._times = np.concatenate([self._times, np.zeros_like(self._times)])
            self._probs = np.concatenate([self._probs, np.zeros_like(self._probs)])
            self._dims = np.concatenate([self._dims, np.zeros_like(self._dims)])
            self._segment = np.concatenate([self._segment, np.zeros_like(self._segment)])
            self._uncertain = np.concatenate([self._uncertain, np.zeros_like(self._uncertain)])
        self._times[self._n] = (event.start, event.end)
        self._probs[self._n] = event.probabilities  # in label order: the model's, as the events
        if self.dimension_names:
            self._dims[self._n] = event.dimensions
        self._segment[self._n] = event.segment
        self._uncertain[self._n] = event.uncertain  # judged on the event's float64 probabilities, kept as given
        self._n += 1

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> UpdateEvent:
        if not -self._n <= i < self._n:
            raise IndexError(i)
        i %= self._n
        probs = self._probs[i].astype(np.float64)
        best = int(np.argmax(probs))
        return UpdateEvent(
            segment=int(self._segment[i]),
            start=float(self._times[i, 0]),
            end=float(self._times[i, 1]),
            label=self.labels[best],
            confidence=float(probs[best]),
            probabilities=probs,
            labels=self.labels,
            latency_ms=0.0,
            channel=self.channel,
            dimensions=self._dims[i] if self.dimension_names else None,
            uncertain=bool(self._uncertain[i]),
        )

    def __iter__(self) -> Iterator[UpdateEvent]:
        for i in range(self._n):
            yield self[i]

    @property
    def starts(self) -> np.ndarray:
        return self._times[: self._n, 0]

    @property
    def ends(self) -> np.ndarray:
        return self._times[: self._n, 1]

    @property
    def probabilities(self) -> np.ndarray:
        """``(windows, labels)`` float32."""
        return self._probs[: self._n]

    @property
    def uncertain(self) -> np.ndarray:
        """``(windows,)`` bool: the windows whose answer the bundle's calibration thresholds call uncertain."""
        return self._uncertain[: self._n]

    @property
    def dimensions(self) -> np.ndarray:
        """``(windows, len(dimension_names))`` float32: arousal, valence, dominance (no columns without them)."""
        return self._dims[: self._n]


@dataclass
class Timeline:
    """Speech segments and window emotions of one recording (summarised by :func:`speech_emotion.report.summarize`)."""

    source: str
    duration_s: float
    sample_rate: int
    model: str
    labels: tuple[str, ...]
    segments: list[SegmentEvent] = field(default_factory=list)
    windows: WindowTrack = None  # type: ignore[assignment]  # set in __post_init__
    top_moments: int = 5
    notes: list[str] = field(default_factory=list)
    """Problems worth telling the user that did not stop the analysis (a truncated file)."""
    channel: int | None = None
    """The input channel (0: the first) this timeline follows; ``None`` for the mix of all channels."""
    dimensions: tuple[str, ...] = ()
    """The model's continuous outputs (arousal, valence, dominance) the events carry; ``()`` without them."""
    calibration: Calibration | None = None
    """The bundle's calibration (:attr:`Recognizer.calibration`): its thresholds say whether the recording's
    answer is uncertain (:func:`~speech_emotion.report.summarize`); ``None``: a bundle without one, never uncertain."""

    def __post_init__(self) -> None:
        if self.windows is None:
            self.windows = WindowTrack(self.labels, self.channel, self.dimensions)
        elif not isinstance(self.windows, WindowTrack):
            track = WindowTrack(self.labels, self.channel, self.dimensions)
            for w in self.windows:
                track.append(w)
            self.windows = track

    @property
    def speech_s(self) -> float:
        """Seconds of speech: the summed segment durations."""
        return float(sum(s.duration for s in self.segments))


def analyze_file(
    path: AudioSource,
    recognizer: Recognizer,
    options: AnalyzeOptions | None = None,
    progress: ProgressCallback | None = None,
) -> Timeline:
    """Timeline of a recording of any length (path, bytes or binary file), read block by block (memory flat),
    from a safe mix of its channels (:func:`analyze_channels` gives one per channel).

    Raises :class:`AudioError` for a source :func:`~speech_emotion.decode.open_blocks` cannot read.
    """
    options = options or AnalyzeOptions()
    blocks = open_blocks(path, options.block_s)
    return analyze_blocks(
        blocks,
        blocks.sample_rate,
        recognizer,
        options,
        source=blocks.name,
        duration_s=blocks.duration_s,
        progress=progress,
    )


def analyze_channels(
    source: AudioSource,
    recognizer: Recognizer,
    options: AnalyzeOptions | None = None,
    progress: ProgressCallback | None = None,
    max_duration_s: float | None = None,
    max_decoded_samples: int | None = None,
    name: str | None = None,
) -> list[Timeline]:
    """Timelines of a recording as ``options.channels`` asks: ``[mix]``, or one per channel for ``split``
    (each with its :attr:`Timeline.channel`; events carry it too). Read once, block by block.

    ``name`` is the recording's name in the timelines and errors (default: its path; see
    :func:`~speech_emotion.decode.open_blocks`). Raises :class:`AudioError` for a source
    :func:`~speech_emotion.decode.open_blocks` cannot read or refuses (longer than ``max_duration_s``, over the
    decode budget ``max_decoded_samples``).
    """
    options = options or AnalyzeOptions()
    blocks = open_blocks(source, options.block_s, max_duration_s, max_decoded_samples, name)
    channels: list[int | None] = list(range(blocks.channels)) if options.channels == "split" else [None]
    return _analyze(blocks, blocks.sample_rate, recognizer, options, blocks.name, blocks.duration_s, progress, channels)


def analyze_call(
    source: AudioSource,
    recognizer: Recognizer,
    options: AnalyzeOptions | None = None,
    max_duration_s: float | None = None,
    max_decoded_samples: int | None = None,
    name: str | None = None,
) -> tuple[Timeline, list[Timeline]]:
    """The timeline of the whole call (a safe mix of its channels: the timeline without ``split``) and one per
    channel, from one pass over the recording: what ``predict --channels split``
    (:func:`~speech_emotion.calls.predict_call`) and ``batch --channels split`` report, so both give the whole call
    the same answer. Arguments and errors as :func:`analyze_channels` (``options.channels`` is not read)."""
    options = options or AnalyzeOptions()
    blocks = open_blocks(source, options.block_s, max_duration_s, max_decoded_samples, name)
    channels: list[int | None] = [None, *range(blocks.channels)]
    mix, *parts = _analyze(
        blocks, blocks.sample_rate, recognizer, options, blocks.name, blocks.duration_s, None, channels
    )
    return mix, parts


def analyze_blocks(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    recognizer: Recognizer,
    options: AnalyzeOptions | None = None,
    source: str = "<audio>",
    duration_s: float = 0.0,
    progress: ProgressCallback | None = None,
) -> Timeline:
    """Timeline of audio given as consecutive blocks (any size, rate ``sample_rate``), channels mixed.

    ``duration_s`` is the expected length (for progress and the truncation note; 0: unknown).
    Raises :class:`AudioError` when there are no samples at all.
    """
    options = options or AnalyzeOptions()
    return _analyze(blocks, sample_rate, recognizer, options, source, duration_s, progress, [None])[0]


def _analyze(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    recognizer: Recognizer,
    options: AnalyzeOptions,
    source: str,
    duration_s: float,
    progress: ProgressCallback | None,
    channels: Sequence[int | None],
) -> list[Timeline]:
    """One engine and one timeline per entry of ``channels`` (``None``: the mix), all fed the same blocks."""
    engines = [
        StreamingRecognizer(recognizer, options.stream, channel=c, source=source, windows=options.keep_windows)
        for c in channels
    ]
    timelines = {
        c: Timeline(
            source=source,
            duration_s=duration_s,
            sample_rate=sample_rate,
            model=recognizer.name,
            labels=recognizer.labels,
            top_moments=options.top_moments,
            channel=c,
            dimensions=recognizer.dimensions,
            calibration=recognizer.calibration,
        )
        for c in channels
    }
    for item in run_engines(engines, _reported(blocks, sample_rate, duration_s, progress), duration_s):
        timeline = timelines[item.channel]
        if isinstance(item, SegmentEvent):
            timeline.segments.append(item)
        elif isinstance(item, UpdateEvent):
            timeline.windows.append(item)
        else:
            if item.no_audio is not None:  # not one 16 kHz sample: what predict says of it too
                raise item.no_audio
            timeline.notes.extend(item.notes)
            timeline.duration_s = item.duration_s
    return list(timelines.values())


def _reported(
    blocks: Iterable[np.ndarray], sample_rate: int, duration_s: float, progress: ProgressCallback | None
) -> Iterator[tuple[np.ndarray, int]]:
    """``blocks`` as engine blocks, calling ``progress`` once each has been processed."""
    done = 0
    for block in blocks:
        yield block, sample_rate
        done += len(block)
        if progress is not None:
            progress(done / sample_rate, max(duration_s, done / sample_rate))
