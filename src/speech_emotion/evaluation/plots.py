"""Figures people would rather see than read: training curves and confusion matrices (PNG)."""

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
