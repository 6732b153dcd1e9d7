"""Classification metrics: UA (mean per-class recall), WA (accuracy), macro and per-class P/R/F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..labels import EMOTIONS


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts ``cm[true, predicted]``."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def metrics_from_confusion(cm: np.ndarray, labels: Sequence[str] = EMOTIONS) -> dict[str, Any]:
    """All scores from a confusion matrix; classes absent from both truth and prediction are left out of macros."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    return {
        "ua": float(recall[present].mean()) if present.any() else 0.0,
        "wa": float(tp.sum() / cm.sum()) if cm.sum() else 0.0,
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.astype(int).tolist(),
        "labels": list(labels),
        "n": int(cm.sum()),
    }


def compute_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str] = EMOTIONS) -> dict[str, Any]:
    """Scores for integer class predictions against the truth."""
    return metrics_from_confusion(confusion_matrix(y_true, y_pred, len(labels)), labels)


def summarize(
    model: str,
    protocol: str,
    folds: list[dict[str, Any]],
    labels: Sequence[str] = EMOTIONS,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``metrics.json`` document: fold scores, their means (the headline) and pooled counts.

    ``ua``/``wa``/``macro_f1`` are means over folds (as EmoBox reports); the confusion
    matrix sums all folds' test predictions.
    """
    pooled = np.sum([np.asarray(f["confusion_matrix"]) for f in folds], axis=0)
    pooled_scores = metrics_from_confusion(pooled, labels)
    keys = ("ua", "wa", "macro_precision", "macro_recall", "macro_f1")
    doc: dict[str, Any] = {"model": model, "protocol": protocol}
    for key in keys:
        values = [f[key] for f in folds]
        doc[key] = float(np.mean(values))
        doc[f"{key}_std"] = float(np.std(values))
    doc.update(
        per_class=pooled_scores["per_class"],
        confusion_matrix=pooled_scores["confusion_matrix"],
        labels=list(labels),
        folds=folds,
    )
    if extra:
        doc.update(extra)
    return doc
