"""Figures people would rather see than read: training curves, confusion matrices, reliability diagrams and the
dimensional scores (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with counts, saved as PNG."""
    plt = _pyplot()
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.0%}\n({int(cm[i, j])})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_title(title or "Confusion matrix (row-normalised)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_history(histories: dict[str, list[dict[str, Any]]], path: Path, title: str = "") -> Path:
    """Training vs validation loss and accuracy per epoch, one line pair per fold."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (name, history) in enumerate(histories.items()):
        if not history:
            continue
        epochs = [h["epoch"] for h in history]
        color = f"C{i % 10}"
        ax_loss.plot(epochs, [h["train_loss"] for h in history], color=color, label=f"{name} train")
        ax_loss.plot(epochs, [h["val_loss"] for h in history], color=color, ls="--", label=f"{name} val")
        ax_acc.plot(epochs, [h["train_acc"] for h in history], color=color)
        ax_acc.plot(epochs, [h["val_acc"] for h in history], color=color, ls="--")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    if any(histories.values()):
        ax_loss.legend(fontsize=6, ncol=2)
    else:  # a closed-form recipe (the Whisper probes): say so instead of two empty axes and a matplotlib warning
        for ax in (ax_loss, ax_acc):
            ax.text(0.5, 0.5, "no per-epoch training in this recipe", ha="center", va="center", transform=ax.transAxes)
    ax_acc.set_title("solid: train, dashed: validation")
    fig.suptitle(title or "Training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_reliability(panels: dict[str, dict[str, Any]], path: Path, title: str = "") -> Path:
    """Reliability diagrams (Guo et al. 2017, fig. 1), one panel per entry of ``panels``: a name mapped to a
    :func:`~speech_emotion.evaluation.metrics.calibration_metrics` document with ``bins``. Bars: accuracy per
    confidence bin; the diagonal: perfect calibration; each panel's title gives ECE and the confident-and-wrong share;
    the bars' shade shows how many clips a bin holds. Saved as PNG."""
    plt = _pyplot()
    n = len(panels)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, doc) in zip(axes.flat, panels.items()):
        bins = doc["bins"]
        edges = np.asarray(bins["edges"])
        width = np.diff(edges)
        count = np.asarray(bins["count"], dtype=float)
        accuracy = np.array([a if a is not None else 0.0 for a in bins["accuracy"]])
        shade = 0.25 + 0.75 * count / max(count.max(), 1)
        ax.bar(
            edges[:-1],
            accuracy,
            width=width,
            align="edge",
            color=[(0.2, 0.4, 0.8, s) for s in shade],
            edgecolor="black",
            linewidth=0.4,
            label="accuracy",
        )
        confidence = [c if c is not None else np.nan for c in bins["confidence"]]
        ax.plot(np.asarray(confidence), accuracy, ".", color="black", markersize=3)
        ax.plot([0, 1], [0, 1], "--", color="gray", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("shown confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(
            f"{name} (n={doc['n']})\nECE {doc['ece']:.3f}, confident & wrong {doc['confident_wrong']:.0%}", fontsize=8
        )
    fig.suptitle(title or "Reliability (bars on the diagonal: calibrated)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_dimensions(
    panels: dict[str, dict[str, Any]], path: Path, title: str = "", intensity_of: Sequence[str] | None = None
) -> Path:
    """The dimensional head's scores as bars: left, per corpus or fold (an entry of ``panels``, a
    :func:`~speech_emotion.evaluation.dimensions.dimension_scores` document) the Spearman correlation of arousal,
    valence and dominance with the anchors (dots: CCC); right, for the entries that have it (those of
    ``intensity_of`` only, when given), the within-emotion intensity AUC of arousal (strong over normal) per
    emotion, chance (0.5) dashed. Saved as PNG."""
    plt = _pyplot()
    intensity: dict[str, dict[str, float]] = {}
    for name, doc in panels.items():  # once each: pooled over folds is the one corpus's when only it has them
        if intensity_of is not None and name not in intensity_of:
            continue
        if doc.get("intensity_auc") and doc["intensity_auc"] not in intensity.values():
            intensity[name] = doc["intensity_auc"]
    fig, axes = plt.subplots(1, 2 if intensity else 1, figsize=(12 if intensity else 6.5, 4.2), squeeze=False)
    ax = axes[0, 0]
    names = list(panels)
    dims = list(next(iter(panels.values()))["anchors"]) if panels else []
    width = 0.8 / max(len(dims), 1)
    for k, dim in enumerate(dims):
        x = np.arange(len(names)) + (k - (len(dims) - 1) / 2) * width
        spearman = [panels[n]["anchors"][dim]["spearman"] for n in names]
        ccc = [panels[n]["anchors"][dim]["ccc"] for n in names]
        ax.bar(x, [np.nan if v is None else v for v in spearman], width, color=f"C{k}", label=f"{dim} (Spearman)")
        ax.plot(x, [np.nan if v is None else v for v in ccc], "o", color="black", markersize=3)
    ax.plot([], [], "o", color="black", markersize=3, label="CCC")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylim(-1, 1)
    ax.set_title("vs the anchors of each clip's label (weak: rewards the category)", fontsize=9)
    ax.legend(fontsize=7)
    if intensity:
        ax = axes[0, 1]
        emotions = list(dict.fromkeys(e for aucs in intensity.values() for e in aucs if e != "mean"))
        width = 0.8 / len(intensity)
        for k, (name, aucs) in enumerate(intensity.items()):
            x = np.arange(len(emotions)) + (k - (len(intensity) - 1) / 2) * width
            ax.bar(
                x,
                [aucs.get(e, np.nan) for e in emotions],
                width,
                color=f"C{k + 3}",
                label=f"{name} (mean {aucs['mean']:.2f})",
            )
        ax.axhline(0.5, color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(emotions)), emotions, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("AUC")
        ax.set_title("within-emotion intensity: arousal of strong > normal", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title or "Arousal, valence, dominance")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
