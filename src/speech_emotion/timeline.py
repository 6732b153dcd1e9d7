"""Emotion timelines of long recordings: a file streamed block by block through the engine.

:func:`analyze_file` never holds more than one block of the file (plus the engine's few
seconds of history), so memory stays flat however long the recording. The resulting
:class:`Timeline` holds the speech segments, the per-window emotions and a summary; writers
turn it into JSON, CSV and a PNG plot.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import open_audio
from .errors import AudioError
from .recognizer import Recognizer
from .streaming import SegmentEvent, StreamingRecognizer, StreamOptions, UpdateEvent

ProgressCallback = Callable[[float, float], None]
"""Called as ``progress(seconds_done, seconds_total)`` after each block."""

EMOTION_COLORS: dict[str, str] = {
    "neutral": "#9e9e9e",
    "calm": "#4db6ac",
    "happy": "#fbc02d",
    "sad": "#1e88e5",
    "angry": "#e53935",
    "fearful": "#8e24aa",
    "disgust": "#6d4c41",
    "surprised": "#fb8c00",
}
"""One colour per emotion, shared by the plot and the live view."""

CALM_LABELS = ("neutral", "calm")
"""Labels that do not count towards a moment's intensity."""


ANALYZE_HOP_S = 1.0
"""Window hop for recordings: 2 s windows every second, half the live rate, twice the throughput."""


@dataclass(frozen=True)
class AnalyzeOptions:
    """How a recording is analysed."""

    stream: StreamOptions = field(default_factory=lambda: StreamOptions(hop_s=ANALYZE_HOP_S))
    block_s: float = 10.0
    """Seconds of audio read from the file at a time."""
    keep_windows: bool = True
    """Keep every window's emotion (for the plot and the windows CSV): ~50 bytes per 0.5 s of speech."""
    top_moments: int = 5
    """How many of the most intense moments the summary lists."""


class WindowTrack:
    """Window emotions stored compactly (about 50 bytes each: an hour of speech is ~0.4 MB).

    Behaves like a list of :class:`UpdateEvent` (``append``, ``len``, iteration, indexing);
    ``starts``, ``ends`` and ``probabilities`` give the columns as arrays.
    """

    def __init__(self, labels: tuple[str, ...]) -> None:
        self.labels = labels
        self._n = 0
        self._times = np.zeros((64, 2), dtype=np.float64)
        self._probs = np.zeros((64, len(labels)), dtype=np.float32)
        self._segment = np.zeros(64, dtype=np.int32)

    def append(self, event: UpdateEvent) -> None:
        if self._n == len(self._times):
            self._times = np.concatenate([self._times, np.zeros_like(self._times)])
            self._probs = np.concatenate([self._probs, np.zeros_like(self._probs)])
            self._segment = np.concatenate([self._segment, np.zeros_like(self._segment)])
        self._times[self._n] = (event.start, event.end)
        self._probs[self._n] = [event.probabilities[label] for label in self.labels]
        self._segment[self._n] = event.segment
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
            probabilities={label: float(p) for label, p in zip(self.labels, probs)},
            latency_ms=0.0,
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


@dataclass
class Timeline:
    """Speech segments and window emotions of one recording, with a summary."""

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

    def __post_init__(self) -> None:
        if self.windows is None:
            self.windows = WindowTrack(self.labels)
        elif not isinstance(self.windows, WindowTrack):
            track = WindowTrack(self.labels)
            for w in self.windows:
                track.append(w)
            self.windows = track

    @property
    def speech_s(self) -> float:
        return float(sum(s.duration for s in self.segments))

    def summary(self) -> dict[str, Any]:
        """Speech time, share of speech time per emotion, and the most intense moments."""
        speech = self.speech_s
        per_label = {label: 0.0 for label in self.labels}
        for seg in self.segments:
            per_label[seg.label] += seg.duration
        return {
            "duration_s": round(self.duration_s, 3),
            "speech_s": round(speech, 3),
            "speech_share": round(speech / self.duration_s, 4) if self.duration_s else 0.0,
            "segments": len(self.segments),
            "emotion_seconds": {k: round(v, 3) for k, v in per_label.items()},
            "emotion_share": {k: round(v / speech, 4) if speech else 0.0 for k, v in per_label.items()},
            "dominant": max(per_label, key=per_label.__getitem__) if speech else None,
            "intense_moments": self.intense_moments(),
        }

    def intense_moments(self) -> list[dict[str, Any]]:
        """Non-overlapping windows (or segments, without windows) with the strongest non-calm emotion."""
        emotional = [i for i, label in enumerate(self.labels) if label not in CALM_LABELS]
        if not emotional:
            return []
        if len(self.windows):
            starts, ends, probs = self.windows.starts, self.windows.ends, self.windows.probabilities
        else:
            starts = np.array([s.start for s in self.segments])
            ends = np.array([s.end for s in self.segments])
            probs = np.array([[s.probabilities[label] for label in self.labels] for s in self.segments])
        if len(starts) == 0:
            return []
        sub = probs[:, emotional]
        best = sub.argmax(axis=1)
        score = sub[np.arange(len(sub)), best]
        chosen: list[int] = []
        for i in np.argsort(-score, kind="stable"):
            if len(chosen) >= self.top_moments:
                break
            if all(ends[i] <= starts[j] or starts[i] >= ends[j] for j in chosen):
                chosen.append(int(i))
        return [
            {
                "start": round(float(starts[i]), 3),
                "end": round(float(ends[i]), 3),
                "label": self.labels[emotional[int(best[i])]],
                "probability": round(float(score[i]), 4),
            }
            for i in chosen
        ]

    def to_dict(self, include_windows: bool = True) -> dict[str, Any]:
        d = {
            "source": self.source,
            "model": self.model,
            "duration_s": round(self.duration_s, 3),
            "sample_rate": self.sample_rate,
            "labels": list(self.labels),
            "notes": list(self.notes),
            "summary": self.summary(),
            "segments": [s.to_dict() for s in self.segments],
        }
        if include_windows:
            d["windows"] = [_window_dict(w) for w in self.windows]
        return d


def _window_dict(w: UpdateEvent) -> dict[str, Any]:
    d = w.to_dict()
    d.pop("type")
    d.pop("latency_ms")
    return d


def open_audio_blocks(path: str | Path, block_s: float = 10.0) -> tuple[Iterator[np.ndarray], int, float]:
    """``(blocks, sample_rate, duration_s)`` for an audio file read ``block_s`` at a time.

    Blocks are float32, ``(frames,)`` or ``(frames, channels)``. Raises :class:`AudioError`
    for a missing, empty, unreadable or unsupported file, also when decoding fails midway.
    """
    import soundfile as sf

    name = str(path)
    handle = open_audio(path)
    sr = handle.samplerate
    duration = handle.frames / sr if handle.frames > 0 else 0.0
    blocksize = max(1, int(block_s * sr))

    def blocks() -> Iterator[np.ndarray]:
        done = 0
        with handle:
            while True:
                try:
                    block = handle.read(blocksize, dtype="float32")
                except (sf.LibsndfileError, RuntimeError) as exc:
                    reason = str(exc).split("\n")[0]
                    raise AudioError(name, f"decoding failed at {done / sr:.1f} s ({reason})") from None
                if len(block) == 0:
                    return
                done += len(block)
                yield block

    return blocks(), sr, duration


def analyze_file(
    path: str | Path,
    recognizer: Recognizer,
    options: AnalyzeOptions | None = None,
    progress: ProgressCallback | None = None,
) -> Timeline:
    """Timeline of a recording of any length, read block by block (memory flat in its length)."""
    options = options or AnalyzeOptions()
    blocks, sr, duration = open_audio_blocks(path, options.block_s)
    return analyze_blocks(blocks, sr, recognizer, options, source=str(path), duration_s=duration, progress=progress)


def analyze_blocks(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    recognizer: Recognizer,
    options: AnalyzeOptions | None = None,
    source: str = "<audio>",
    duration_s: float = 0.0,
    progress: ProgressCallback | None = None,
) -> Timeline:
    """Timeline of audio given as consecutive blocks (any size, rate ``sample_rate``).

    ``duration_s`` is the expected length (for progress and the truncation note; 0: unknown).
    Raises :class:`AudioError` when there are no samples at all.
    """
    options = options or AnalyzeOptions()
    engine = StreamingRecognizer(recognizer, options.stream)
    timeline = Timeline(
        source=source,
        duration_s=duration_s,
        sample_rate=sample_rate,
        model=recognizer.name,
        labels=recognizer.labels,
        top_moments=options.top_moments,
    )
    done = 0
    for block in blocks:
        _collect(timeline, engine.feed(block, sample_rate), options.keep_windows)
        done += len(block)
        if progress is not None:
            progress(done / sample_rate, max(duration_s, done / sample_rate))
    _collect(timeline, engine.flush(), options.keep_windows)
    if done == 0:
        raise AudioError(source, "contains no audio samples")
    if duration_s and done < duration_s * sample_rate - 1:
        timeline.notes.append(
            f"file ended early: {done / sample_rate:.1f} s of the announced {duration_s:.1f} s were read"
        )
    timeline.duration_s = done / sample_rate
    return timeline


def _collect(timeline: Timeline, events: list, keep_windows: bool) -> None:
    for event in events:
        if isinstance(event, SegmentEvent):
            timeline.segments.append(event)
        elif keep_windows:
            timeline.windows.append(event)


# -- writers -----------------------------------------------------------------------------------


def write_json(timeline: Timeline, path: str | Path) -> Path:
    """The :meth:`Timeline.to_dict` document; windows are written one by one (one per line)."""
    path = Path(path)
    head = json.dumps(timeline.to_dict(include_windows=False), indent=1)
    with path.open("w") as f:
        f.write(head[: head.rindex("}")].rstrip() + ',\n "windows": [')
        for i, window in enumerate(timeline.windows):
            f.write(("," if i else "") + "\n  " + json.dumps(_window_dict(window)))
        f.write("\n ]\n}\n")
    return path


def write_csv(items: Iterable[SegmentEvent] | Iterable[UpdateEvent], labels: tuple[str, ...], path: str | Path) -> Path:
    """One row per segment or window: start, end, label, confidence and every probability."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["start", "end", "label", "confidence", *(f"p_{label}" for label in labels)])
        for item in items:
            writer.writerow(
                [
                    f"{item.start:.3f}",
                    f"{item.end:.3f}",
                    item.label,
                    f"{item.confidence:.4f}",
                    *(f"{item.probabilities[label]:.4f}" for label in labels),
                ]
            )
    return path


PLOT_POINTS = 600
"""More windows than this are averaged into this many time bins (readable, and constant cost)."""


def _plot_points(windows: WindowTrack, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Window end times and probabilities, with NaN rows where speech pauses (to break the lines)."""
    ends = windows.ends
    probs = windows.probabilities.astype(np.float64)
    if len(ends) > PLOT_POINTS:  # bin: the plot's cost and memory stay the same for any length
        width = max(duration_s, float(ends[-1])) / PLOT_POINTS
        index = np.minimum((ends / width).astype(int), PLOT_POINTS - 1)
        sums = np.zeros((PLOT_POINTS, probs.shape[1]))
        np.add.at(sums, index, probs)
        counts = np.bincount(index, minlength=PLOT_POINTS)[:, None]
        with np.errstate(invalid="ignore"):
            return (np.arange(PLOT_POINTS) + 0.5) * width, sums / counts  # empty bins: NaN gaps
    steps = np.diff(ends)
    hop = float(steps[steps > 0].min()) if np.any(steps > 0) else 0.5
    gaps = np.flatnonzero(steps > 2.5 * hop) + 1
    return np.insert(ends, gaps, np.nan), np.insert(probs, gaps, np.nan, axis=0)


def plot_timeline(timeline: Timeline, path: str | Path) -> Path:
    """PNG: emotion probabilities over time (top) and the segments coloured by emotion (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    path = Path(path)
    minutes = timeline.duration_s > 300
    scale = 60.0 if minutes else 1.0
    fig, (ax, strip) = plt.subplots(
        2, 1, figsize=(12, 4.5), sharex=True, gridspec_kw={"height_ratios": [4, 1]}, constrained_layout=True
    )
    if len(timeline.windows):
        xs, ys = _plot_points(timeline.windows, timeline.duration_s)
        marker = "." if len(timeline.windows) <= PLOT_POINTS else None
        for i, label in enumerate(timeline.labels):
            color = EMOTION_COLORS.get(label)
            ax.plot(xs / scale, ys[:, i], color=color, label=label, linewidth=1.2, marker=marker, markersize=3)
    else:
        ax.text(0.5, 0.5, "no speech detected", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.set_title(f"{Path(timeline.source).name}: emotion over time ({timeline.model})")
    ax.grid(alpha=0.3)
    for label in timeline.labels:  # one collection per emotion, not one artist per segment
        spans = [(seg.start / scale, seg.duration / scale) for seg in timeline.segments if seg.label == label]
        if spans:
            strip.broken_barh(spans, (0, 1), facecolors=EMOTION_COLORS.get(label, "k"))
    strip.set_yticks([])
    strip.set_ylabel("segments")
    strip.set_xlim(0, timeline.duration_s / scale)
    strip.set_xlabel("time (min)" if minutes else "time (s)")
    handles = [Patch(color=EMOTION_COLORS.get(label, "k"), label=label) for label in timeline.labels]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_timeline(
    timeline: Timeline, out_dir: str | Path, stem: str | None = None, plot: bool = True
) -> dict[str, Path]:
    """Write ``<stem>.timeline.json``, ``<stem>.segments.csv``, ``<stem>.windows.csv`` and ``<stem>.timeline.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = stem or Path(timeline.source).stem
    written = {
        "json": write_json(timeline, out / f"{stem}.timeline.json"),
        "segments_csv": write_csv(timeline.segments, timeline.labels, out / f"{stem}.segments.csv"),
        "windows_csv": write_csv(timeline.windows, timeline.labels, out / f"{stem}.windows.csv"),
    }
    if plot:
        written["png"] = plot_timeline(timeline, out / f"{stem}.timeline.png")
    return written
