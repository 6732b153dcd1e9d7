"""The streaming engine as it was before issue 18 (commit 7081a5d), frozen as the reference its successor must match.

``tests/test_engine_reference.py`` runs this copy and the current engine on the same recordings and requires the same
update and segment events (windows on): the generator engine of issue 18 changed how the engine is driven, not what it
computes. Only the classes that do the work are kept; the event types and options are the current ones.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from speech_emotion.conditioning import SAMPLE_RATE, SampleConditioner, prepare
from speech_emotion.errors import AudioError
from speech_emotion.recognizer import Recognizer
from speech_emotion.streaming import Event, SegmentEvent, StreamOptions, UpdateEvent
from speech_emotion.vad import FrameClassifier, SpeechSegmenter, VadEvent


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
    prob_sum: np.ndarray | None = None
    windows: int = 0


class LegacyStreamingRecognizer:
    """Emotion events from a live or recorded stream; see the module docstring.

    ``feed`` and ``flush`` process their audio at once and return the events it completed,
    in time order. One instance serves one stream at a time; the recognizer may be shared.
    """

    def __init__(
        self, recognizer: Recognizer, options: StreamOptions | None = None, channel: int | None = None
    ) -> None:
        self.recognizer = recognizer
        self.channel = channel
        """Which channel of multichannel input to follow (``None``: a safe mix of all)."""
        self.options = options or StreamOptions()
        self.labels = recognizer.labels
        self._window_opts = dataclasses.replace(
            recognizer.preprocessing, trim=False, min_duration_s=0.0
        )  # windows come from the conditioned (resampled, high-passed) stream
        self._segment_opts = dataclasses.replace(recognizer.preprocessing, min_duration_s=0.0)
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
        self._conditioner = SampleConditioner(self.recognizer.preprocessing.highpass_hz, channel=self.channel)
        self._segment: _Segment | None = None
        self._segments_done = 0
        self._smoothed: np.ndarray | None = None

    def feed(self, chunk: np.ndarray, sample_rate: int) -> list[Event]:
        """Add audio (any length, rate, int or float, mono or ``(frames, channels)``); returns new events.

        Raises :class:`AudioError` for input :class:`~speech_emotion.conditioning.SampleConditioner` refuses
        (NaN/Inf samples, a ``(channels, frames)`` array, an unsupported rate or sample type).
        """
        return self._process(self._conditioner.push(chunk, sample_rate))

    def flush(self) -> list[Event]:
        """End of stream: closes open speech and returns the last events, then resets."""
        events = self._process(self._conditioner.finish())
        edge = self._segmenter.finish()
        if edge is not None:
            events += self._on_edge(edge)
        self.reset()
        return events

    # -- internals ---------------------------------------------------------------------------

    def _process(self, samples: np.ndarray) -> list[Event]:
        events: list[Event] = []
        if len(samples) == 0:
            return events
        self._buffer.append(samples)
        events += self._due_windows()
        f = self._frame
        n = (self._buffer.end - self._segmenter.position) // f
        if n > 0:
            start = self._segmenter.position
            frames = self._buffer.get(start, start + n * f).reshape(n, f)
            for voiced in self._classifier.classify(frames):
                edge = self._segmenter.step(bool(voiced))
                if edge is not None:
                    events += self._on_edge(edge)
                events += self._due_windows()
                events += self._split_long_segment()
            keep_from = self._segmenter.position - self._keep
            if self._segment is not None:  # the open segment is judged as a whole when it ends
                keep_from = min(keep_from, self._segment.start)
            self._buffer.release_before(keep_from)
        return events

    def _on_edge(self, edge: VadEvent) -> list[Event]:
        if edge.kind == "start":
            self._smoothed = None
            self._open(edge.sample)
            return []
        return self._close(edge.sample)

    def _open(self, start: int) -> None:
        self._segment = _Segment(index=self._segments_done, start=start, next_end=start + self._min_win)

    def _due_windows(self) -> list[Event]:
        """Windows whose audio has arrived, each classified once frames up to its end are known."""
        seg = self._segment
        events: list[Event] = []
        if seg is None:
            return events
        limit = min(
            self._segmenter.position + self._frame - 1,  # frames ending at or before the window end are in
            self._buffer.end,
            self._segmenter.last_voiced_end + self._pad,  # not ending in a pause (waits for more speech)
        )
        while seg.next_end <= limit:
            events.append(self._classify(seg, max(seg.start, seg.next_end - self._win), seg.next_end))
            seg.next_end += self._hop
        return events

    def _split_long_segment(self) -> list[Event]:
        seg = self._segment
        if seg is None or self._segmenter.position - seg.start < self._max_seg:
            return []
        events = self._close(self._segmenter.position)
        self._open(self._segmenter.position)
        return events

    def _close(self, end: int) -> list[Event]:
        seg = self._segment
        self._segment = None
        if seg is None:
            return []
        end = max(end, seg.last_end or 0)
        if end - seg.start < self._min_seg:
            return []
        events: list[Event] = []
        if seg.last_end is None or end - seg.last_end >= self._hop // 2:
            events.append(self._classify(seg, max(seg.start, end - self._win), end))
        if seg.windows == 0 or seg.prob_sum is None:
            return events
        self._segments_done += 1
        probs = self._whole_segment(seg.start, end)
        if probs is None:
            probs = seg.prob_sum / seg.windows
        best = int(np.argmax(probs))
        events.append(
            SegmentEvent(
                segment=seg.index,
                start=seg.start / SAMPLE_RATE,
                end=end / SAMPLE_RATE,
                label=self.labels[best],
                confidence=float(probs[best]),
                probabilities=probs,
                labels=self.labels,
                windows=seg.windows,
                channel=self.channel,
            )
        )
        return events

    def _whole_segment(self, start: int, end: int) -> np.ndarray | None:
        """Probabilities of the whole segment as one clip (as ``predict`` judges a short recording)."""
        try:
            samples = prepare(self._buffer.get(max(start, self._buffer.start), end), self._segment_opts)
        except AudioError:
            return None
        pred = self.recognizer.predict_preprocessed(samples)
        return np.array(pred.probabilities)

    def _classify(self, seg: _Segment, start: int, end: int) -> UpdateEvent:
        t0 = time.perf_counter()
        window = self._buffer.get(start, end)
        try:
            samples = prepare(window, self._window_opts)
            pred = self.recognizer.predict_preprocessed(samples)
            raw = np.array(pred.probabilities)
        except AudioError:  # a silent window inside speech: no evidence either way
            raw = np.full(len(self.labels), 1.0 / len(self.labels))
        latency_ms = (time.perf_counter() - t0) * 1000
        seg.prob_sum = raw if seg.prob_sum is None else seg.prob_sum + raw
        seg.windows += 1
        seg.last_end = end
        a = self.options.smoothing
        self._smoothed = raw if self._smoothed is None else a * self._smoothed + (1 - a) * raw
        best = int(np.argmax(self._smoothed))
        return UpdateEvent(
            segment=seg.index,
            start=start / SAMPLE_RATE,
            end=end / SAMPLE_RATE,
            label=self.labels[best],
            confidence=float(self._smoothed[best]),
            probabilities=self._smoothed,
            labels=self.labels,
            latency_ms=latency_ms,
            channel=self.channel,
        )
