"""Reports of a :class:`~speech_emotion.timeline.Timeline`: the per-emotion summary, JSON and CSV writers, the plot.

:func:`summarize` is the one summary every door reports (``analyze``, the service's ``/analyze``, ``batch``);
:data:`EMOTION_COLORS` the one palette (plot and live view). matplotlib is imported only to plot.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import Calibration
from .recognizer import dimension_fields
from .streaming import SegmentEvent, UpdateEvent
from .timeline import Timeline
from .words import shown

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


VERDICT_KEYS = ("dominant", "probabilities", "verdict", "uncertain", "uncertain_share")
"""The keys of :func:`summarize` a stream's last message carries (``stream --jsonl``'s and the WebSocket's ``end``)."""

MIXED_MARGIN = 0.05
"""Emotions whose speech-time-weighted probability is within this of the top one share the verdict ("mixed")."""


def speech_weighted(segments: Sequence[SegmentEvent], labels: tuple[str, ...]) -> np.ndarray | None:
    """Speech-time-weighted mean of the segments' probabilities, ``(labels,)``; ``None`` without speech.

    The emotion of a recording: what ``predict`` answers for a long one and what :func:`summarize` calls dominant.
    """
    speech = float(sum(s.duration for s in segments))
    if not segments or speech <= 0:
        return None
    if any(s.labels != labels for s in segments):
        raise ValueError(f"segments of another model (labels {segments[0].labels}, not {labels})")
    return sum(s.probabilities * s.duration for s in segments) / speech


def speech_weighted_dimensions(segments: Sequence[SegmentEvent]) -> np.ndarray | None:
    """Speech-time-weighted mean of the segments' arousal, valence, dominance, ``(3,)``; ``None`` without speech
    or for a model without them. The recording's values in ``predict`` and :func:`summarize`."""
    speech = float(sum(s.duration for s in segments))
    if not segments or speech <= 0 or any(s.dimensions is None for s in segments):
        return None
    return sum(s.dimensions * s.duration for s in segments) / speech


def summarize(timeline: Timeline) -> dict[str, Any]:
    """The per-emotion summary of a timeline, the one ``analyze``, ``stream``, ``listen``, the service and ``batch``
    report (and whose ``dominant`` ``predict`` answers for a long recording).

    Keys: ``duration_s``, ``speech_s`` (seconds), ``speech_share`` (0-1), ``segments`` (count),
    ``emotion_seconds``/``emotion_share`` (per label: seconds of segments with that label and their share of speech
    time), ``probabilities`` (per label: :func:`speech_weighted`, empty without speech), ``dominant`` (the top of
    ``probabilities``, ``None`` without speech), ``top`` (the labels within :data:`MIXED_MARGIN` of it, best first:
    two or more mean a mixed recording), ``verdict`` (``"mostly angry"``, ``"mixed: angry / sad"`` or
    ``"no speech"``: :func:`verdict`, which also weighs the emotion with the most speech time), ``uncertain``
    (``probabilities``, the answer ``predict`` gives, fall under the bundle's calibration thresholds:
    :func:`recording_uncertain`; ``False`` without speech or calibration),
    ``uncertain_share`` (0-1: share of speech time in segments flagged uncertain), ``intense_moments``
    (:func:`intense_moments`) and, for a model with them, ``arousal``, ``valence``, ``dominance``
    (:func:`speech_weighted_dimensions`; absent without speech).
    """
    speech = timeline.speech_s
    per_label = {label: 0.0 for label in timeline.labels}
    for seg in timeline.segments:
        per_label[seg.label] += seg.duration
    weighted = speech_weighted(timeline.segments, timeline.labels)
    probabilities = {} if weighted is None else dict(zip(timeline.labels, (float(p) for p in weighted)))
    top = [
        label
        for label, p in sorted(probabilities.items(), key=lambda kv: -kv[1])
        if p >= max(probabilities.values()) - MIXED_MARGIN
    ]
    uncertain_s = float(sum(s.duration for s in timeline.segments if s.uncertain))
    return {
        "duration_s": round(timeline.duration_s, 3),
        "speech_s": round(speech, 3),
        "speech_share": round(speech / timeline.duration_s, 4) if timeline.duration_s else 0.0,
        "segments": len(timeline.segments),
        "emotion_seconds": {k: round(v, 3) for k, v in per_label.items()},
        "emotion_share": {k: round(v / speech, 4) if speech else 0.0 for k, v in per_label.items()},
        "probabilities": {k: round(v, 4) for k, v in probabilities.items()},
        **dimension_fields(speech_weighted_dimensions(timeline.segments), 4),
        "dominant": top[0] if top else None,
        "top": top,
        "verdict": verdict(top, max(per_label, key=per_label.__getitem__) if timeline.segments else None),
        "uncertain": recording_uncertain(weighted, timeline.calibration),
        "uncertain_share": round(uncertain_s / speech, 4) if speech else 0.0,
        "intense_moments": intense_moments(timeline),
    }


def recording_uncertain(probabilities: np.ndarray | None, calibration: Calibration | None) -> bool:
    """Whether a recording's speech-time-weighted probabilities ``(labels,)`` (:func:`speech_weighted`; ``None``
    without speech) fall under ``calibration``'s thresholds (:meth:`Calibration.uncertain`, the rule of
    :meth:`Recognizer.is_uncertain`); ``False`` without speech or without calibration."""
    return bool(probabilities is not None and calibration is not None and calibration.uncertain(probabilities))


def verdict(top: Sequence[str], longest: str | None = None) -> str:
    """``"no speech"``, ``"mostly X"`` or ``"mixed: X / Y"`` for the best labels ``top`` (best first, by probability)
    and ``longest``, the label of the most speech time: "mostly X" only when X is both the one best label and the
    longest (a confident short sad segment beside a longer, less sure angry one is "mixed: sad / angry", not
    "mostly sad" above a table giving angry most of the time). At most three are named (the two best and the longest,
    or the third best), then "...": a long recording whose probabilities are flat named all eight."""
    if not top:
        return "no speech"
    labels = [*top, *([longest] if longest is not None and longest not in top else [])]
    if len(labels) == 1:
        return f"mostly {labels[0]}"
    named = [*top[:2], *([longest] if longest is not None and longest not in top[:2] else top[2:3])]
    return "mixed: " + " / ".join(named) + (" / ..." if len(labels) > len(named) else "")


def intense_moments(timeline: Timeline) -> list[dict[str, Any]]:
    """Up to ``timeline.top_moments`` non-overlapping windows (or segments, without windows) with the strongest
    non-calm emotion, strongest first: ``start``/``end`` (s), ``label``, ``probability``."""
    emotional = [i for i, label in enumerate(timeline.labels) if label not in CALM_LABELS]
    if not emotional:
        return []
    if len(timeline.windows):
        starts, ends, probs = timeline.windows.starts, timeline.windows.ends, timeline.windows.probabilities
    else:
        starts = np.array([s.start for s in timeline.segments])
        ends = np.array([s.end for s in timeline.segments])
        probs = np.array([s.probabilities for s in timeline.segments]).reshape(len(starts), len(timeline.labels))
    if len(starts) == 0:
        return []
    sub = probs[:, emotional]
    best = sub.argmax(axis=1)
    score = sub[np.arange(len(sub)), best]
    chosen: list[int] = []
    for i in np.argsort(-score, kind="stable"):
        if len(chosen) >= timeline.top_moments:
            break
        if all(ends[i] <= starts[j] or starts[i] >= ends[j] for j in chosen):
            chosen.append(int(i))
    return [
        {
            "start": round(float(starts[i]), 3),
            "end": round(float(ends[i]), 3),
            "label": timeline.labels[emotional[int(best[i])]],
            "probability": round(float(score[i]), 4),
        }
        for i in chosen
    ]


def timeline_document(timeline: Timeline, include_windows: bool = True) -> dict[str, Any]:
    """The timeline JSON document (``analyze``'s ``.timeline.json`` and the service's ``/analyze`` body)."""
    d = {
        "source": timeline.source,
        "model": timeline.model,
        "duration_s": round(timeline.duration_s, 3),
        "sample_rate": timeline.sample_rate,
        "labels": list(timeline.labels),
        "notes": list(timeline.notes),
        "summary": summarize(timeline),
        "segments": [s.to_dict() for s in timeline.segments],
    }
    if timeline.channel is not None:
        d = {"channel": timeline.channel, **d}
    if include_windows:
        d["windows"] = [_window_dict(w) for w in timeline.windows]
    return d


def channels_document(timelines: Sequence[Timeline], include_windows: bool = True) -> dict[str, Any]:
    """The JSON of a recording analysed per channel (``--channels split``): ``source``, ``model``,
    ``duration_s``, ``sample_rate``, ``labels`` and ``channels``, one :func:`timeline_document` per channel
    (each with its ``channel``, 0 = the first); a single mixed timeline gives its own document unchanged."""
    if len(timelines) == 1 and timelines[0].channel is None:
        return timeline_document(timelines[0], include_windows)
    first = timelines[0]
    return {
        "source": first.source,
        "model": first.model,
        "duration_s": round(first.duration_s, 3),
        "sample_rate": first.sample_rate,
        "labels": list(first.labels),
        "channels": [timeline_document(t, include_windows) for t in timelines],
    }


def _window_dict(w: UpdateEvent) -> dict[str, Any]:
    d = w.to_dict()
    d.pop("type")
    d.pop("latency_ms")
    return d


def write_json(timeline: Timeline, path: str | Path) -> Path:
    """The :func:`timeline_document`; windows are written one by one (one per line)."""
    path = Path(path)
    head = json.dumps(timeline_document(timeline, include_windows=False), indent=1)
    with path.open("w") as f:
        f.write(head[: head.rindex("}")].rstrip() + ',\n "windows": [')
        for i, window in enumerate(timeline.windows):
            f.write(("," if i else "") + "\n  " + json.dumps(_window_dict(window)))
        f.write("\n ]\n}\n")
    return path


def write_csv(
    items: Iterable[SegmentEvent] | Iterable[UpdateEvent],
    labels: tuple[str, ...],
    path: str | Path,
    with_channel: bool = False,
    dimensions: tuple[str, ...] = (),
) -> Path:
    """One row per segment or window: start, end, label, confidence, ``uncertain`` (1: the bundle's calibration
    thresholds call the answer uncertain, else 0), every probability and then the ``dimensions``
    (``arousal,valence,dominance`` for a model with them); first a ``channel`` column when ``with_channel`` (split
    channels)."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        channel = ["channel"] if with_channel else []
        writer.writerow(
            [
                *channel,
                *("start", "end", "label", "confidence", "uncertain"),
                *(f"p_{label}" for label in labels),
                *dimensions,
            ]
        )
        for item in items:
            writer.writerow(
                [
                    *([item.channel] if with_channel else []),
                    f"{item.start:.3f}",
                    f"{item.end:.3f}",
                    item.label,
                    f"{item.confidence:.4f}",
                    int(item.uncertain),
                    *(f"{p:.4f}" for p in item.probabilities),
                    *(f"{v:.4f}" for v in (() if item.dimensions is None else item.dimensions)[: len(dimensions)]),
                ]
            )
    return path


PLOT_POINTS = 600
"""More windows than this are averaged into this many time bins (readable, and constant cost)."""


def _plot_points(ends: np.ndarray, values: np.ndarray, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Window end times and their values ``(windows, k)`` (probabilities or dimensions), with NaN rows where speech
    pauses (to break the lines)."""
    values = values.astype(np.float64)
    if len(ends) > PLOT_POINTS:  # bin: the plot's cost and memory stay the same for any length
        width = max(duration_s, float(ends[-1])) / PLOT_POINTS
        index = np.minimum((ends / width).astype(int), PLOT_POINTS - 1)
        sums = np.zeros((PLOT_POINTS, values.shape[1]))
        np.add.at(sums, index, values)
        counts = np.bincount(index, minlength=PLOT_POINTS)[:, None]
        with np.errstate(invalid="ignore"):
            return (np.arange(PLOT_POINTS) + 0.5) * width, sums / counts  # empty bins: NaN gaps
    steps = np.diff(ends)
    hop = float(steps[steps > 0].min()) if np.any(steps > 0) else 0.5
    gaps = np.flatnonzero(steps > 2.5 * hop) + 1
    return np.insert(ends, gaps, np.nan), np.insert(values, gaps, np.nan, axis=0)


DIMENSION_COLORS = {"arousal": "#d81b60", "valence": "#00897b"}
"""The curves of the plot's arousal-valence panel (dominance is in the CSV and JSON, not plotted)."""


def plot_timeline(timeline: Timeline | Sequence[Timeline], path: str | Path) -> Path:
    """PNG: per timeline (one per channel when split), emotion probabilities over time, for a model with them a
    small panel of arousal and valence (0-1, 0.5 = neutral), and the segments coloured by emotion below them, on a
    shared time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    timelines = [timeline] if isinstance(timeline, Timeline) else list(timeline)
    first = timelines[0]
    path = Path(path)
    duration = max(t.duration_s for t in timelines)
    minutes = duration > 300
    scale = 60.0 if minutes else 1.0
    ratios = [4, 1.5, 1] if first.dimensions else [4, 1]
    rows = len(ratios)
    fig, axes = plt.subplots(
        rows * len(timelines),
        1,
        figsize=(12, 1.5 + (0.9 * rows + 1.2) * len(timelines)),
        sharex=True,
        gridspec_kw={"height_ratios": ratios * len(timelines)},
        constrained_layout=True,
        squeeze=False,
    )
    for k, t in enumerate(timelines):
        ax, strip = axes[rows * k, 0], axes[rows * k + rows - 1, 0]
        _plot_one(ax, strip, t, scale)
        if rows == 3:
            _plot_dimensions(axes[rows * k + 1, 0], t, scale)
        who = f" channel {t.channel}" if t.channel is not None else ""
        ax.set_title(f"{shown(Path(t.source).name)}{who}: emotion over time ({t.model})", parse_math=False)
        strip.set_xlim(0, duration / scale)
    axes[-1, 0].set_xlabel("time (min)" if minutes else "time (s)")
    handles = [Patch(color=EMOTION_COLORS.get(label, "k"), label=label) for label in first.labels]
    axes[0, 0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_one(ax: Any, strip: Any, timeline: Timeline, scale: float) -> None:
    if len(timeline.windows):
        xs, ys = _plot_points(timeline.windows.ends, timeline.windows.probabilities, timeline.duration_s)
        marker = "." if len(timeline.windows) <= PLOT_POINTS else None
        for i, label in enumerate(timeline.labels):
            color = EMOTION_COLORS.get(label)
            ax.plot(xs / scale, ys[:, i], color=color, label=label, linewidth=1.2, marker=marker, markersize=3)
    else:
        ax.text(0.5, 0.5, "no speech detected", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probability")
    ax.grid(alpha=0.3)
    for label in timeline.labels:  # one collection per emotion, not one artist per segment
        spans = [(seg.start / scale, seg.duration / scale) for seg in timeline.segments if seg.label == label]
        if spans:
            strip.broken_barh(spans, (0, 1), facecolors=EMOTION_COLORS.get(label, "k"))
    strip.set_yticks([])
    strip.set_ylabel("segments")


def _plot_dimensions(ax: Any, timeline: Timeline, scale: float) -> None:
    """Arousal and valence of the windows (of the segments, without windows) over time, around the 0.5 line."""
    if len(timeline.windows):
        ends, values = timeline.windows.ends, timeline.windows.dimensions
    else:
        segments = [s for s in timeline.segments if s.dimensions is not None]
        ends = np.array([s.end for s in segments])
        values = np.array([s.dimensions for s in segments]).reshape(len(segments), len(timeline.dimensions))
    if len(ends):
        xs, ys = _plot_points(ends, values, timeline.duration_s)
        for name, color in DIMENSION_COLORS.items():
            i = timeline.dimensions.index(name)
            marker = "." if len(ends) <= PLOT_POINTS else None
            ax.plot(xs / scale, ys[:, i], color=color, label=name, linewidth=1.2, marker=marker, markersize=3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.axhline(0.5, color="#9e9e9e", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, 1)
    ax.set_ylabel("arousal\nvalence")
    ax.grid(alpha=0.3)


def write_timeline(
    timeline: Timeline | Sequence[Timeline], out_dir: str | Path, stem: str | None = None, plot: bool = True
) -> dict[str, Path]:
    """Write ``<stem>.timeline.json``, ``<stem>.segments.csv``, ``<stem>.windows.csv`` and ``<stem>.timeline.png``.

    Several timelines (one per channel, ``--channels split``) go into the same four files: the JSON is a
    :func:`channels_document`, the CSV rows carry a ``channel`` column (sorted by start) and the plot has a
    panel per channel.
    """
    timelines = [timeline] if isinstance(timeline, Timeline) else list(timeline)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = timelines[0]
    stem = stem or Path(first.source).stem
    dims = first.dimensions
    if len(timelines) == 1 and first.channel is None:
        written = {
            "json": write_json(first, out / f"{stem}.timeline.json"),
            "segments_csv": write_csv(first.segments, first.labels, out / f"{stem}.segments.csv", False, dims),
            "windows_csv": write_csv(first.windows, first.labels, out / f"{stem}.windows.csv", False, dims),
        }
    else:
        json_path = out / f"{stem}.timeline.json"
        json_path.write_text(json.dumps(channels_document(timelines), indent=1) + "\n")
        segments = sorted((s for t in timelines for s in t.segments), key=lambda s: (s.start, s.channel))
        windows = sorted((w for t in timelines for w in t.windows), key=lambda w: (w.end, w.channel))
        written = {
            "json": json_path,
            "segments_csv": write_csv(segments, first.labels, out / f"{stem}.segments.csv", True, dims),
            "windows_csv": write_csv(windows, first.labels, out / f"{stem}.windows.csv", True, dims),
        }
    if plot:
        written["png"] = plot_timeline(timelines, out / f"{stem}.timeline.png")
    return written
