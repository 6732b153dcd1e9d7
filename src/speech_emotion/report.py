"""Reports of a :class:`~speech_emotion.timeline.Timeline`: the per-emotion summary, JSON and CSV writers, the plot.

:func:`summarize` is the one summary every door reports (``analyze``, the service's ``/analyze``, ``batch``);
:data:`EMOTION_COLORS` the one palette (plot and live view). matplotlib is imported only to plot.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .streaming import SegmentEvent, UpdateEvent
from .timeline import Timeline, WindowTrack

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


def summarize(timeline: Timeline) -> dict[str, Any]:
    """The per-emotion summary of a timeline, the one ``analyze``, the service and ``batch`` report.

    Keys: ``duration_s``, ``speech_s`` (seconds), ``speech_share`` (0-1), ``segments`` (count),
    ``emotion_seconds``/``emotion_share`` (per label, seconds and share of speech time), ``dominant`` (label with
    the most speech time, ``None`` without speech) and ``intense_moments`` (:func:`intense_moments`).
    """
    speech = timeline.speech_s
    per_label = {label: 0.0 for label in timeline.labels}
    for seg in timeline.segments:
        per_label[seg.label] += seg.duration
    return {
        "duration_s": round(timeline.duration_s, 3),
        "speech_s": round(speech, 3),
        "speech_share": round(speech / timeline.duration_s, 4) if timeline.duration_s else 0.0,
        "segments": len(timeline.segments),
        "emotion_seconds": {k: round(v, 3) for k, v in per_label.items()},
        "emotion_share": {k: round(v / speech, 4) if speech else 0.0 for k, v in per_label.items()},
        "dominant": max(per_label, key=per_label.__getitem__) if speech else None,
        "intense_moments": intense_moments(timeline),
    }


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
        probs = np.array([[s.probabilities[label] for label in timeline.labels] for s in timeline.segments])
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
    if include_windows:
        d["windows"] = [_window_dict(w) for w in timeline.windows]
    return d


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
