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


CALIBRATION_BINS = 15
"""Equal-width confidence bins of the expected calibration error (Guo et al. 2017 use 15)."""
CONFIDENT = 0.9
"""A shown confidence at or above this is "confident"; confident and wrong is the answer that misleads most."""


def reliability_bins(probs: np.ndarray, y_true: Sequence[int], n_bins: int = CALIBRATION_BINS) -> dict[str, list]:
    """Per confidence bin: clip count, mean confidence and accuracy of the argmax.

    ``probs``: ``(clips, classes)`` probabilities (rows sum to 1); ``y_true``: ``(clips,)`` class indices into the
    same columns. Bins are equal-width over ``[0, 1]`` (the first is closed on both ends); empty bins hold
    ``count`` 0 and ``None`` for the means. The data of a reliability diagram (Guo et al. 2017, fig. 1).
    """
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    which = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(which, weights=correct.astype(float), minlength=n_bins)
    return {
        "edges": [i / n_bins for i in range(n_bins + 1)],
        "count": count.tolist(),
        "confidence": [float(c / n) if n else None for c, n in zip(conf_sum, count)],
        "accuracy": [float(a / n) if n else None for a, n in zip(acc_sum, count)],
    }


def expected_calibration_error(probs: np.ndarray, y_true: Sequence[int], n_bins: int = CALIBRATION_BINS) -> float:
    """ECE: the clip-weighted mean over equal-width confidence bins of ``|accuracy - mean confidence|``.

    Guo, Pleiss, Sun, Weinberger 2017, "On Calibration of Modern Neural Networks" (ICML), eq. 3, with
    ``n_bins`` = 15 as there. 0 is perfectly calibrated; a model right 30 % of the time at 80 % confidence
    scores about 0.5. ``probs``: ``(clips, classes)``; ``y_true``: ``(clips,)`` column indices.
    """
    bins = reliability_bins(probs, y_true, n_bins)
    n = sum(bins["count"])
    if not n:
        return 0.0
    return float(sum(c * abs(a - m) for c, a, m in zip(bins["count"], bins["accuracy"], bins["confidence"]) if c) / n)


def calibration_metrics(
    probs: np.ndarray, y_true: Sequence[int], n_bins: int = CALIBRATION_BINS, with_bins: bool = False
) -> dict[str, Any]:
    """How far a model's shown confidence can be trusted, on its full (unrestricted) output.

    ``probs``: ``(clips, classes)`` probabilities as the product shows them; ``y_true``: ``(clips,)`` indices into
    the same columns. Returns ``ece`` (:func:`expected_calibration_error`, Guo et al. 2017), ``brier`` (multi-class
    Brier score: mean over clips of the squared distance between ``probs`` and the one-hot truth, 0 to 2), ``nll``
    (mean negative log-likelihood of the true class, nats; probabilities floored at 1e-12), ``accuracy`` (of the
    unrestricted argmax), ``mean_confidence``, ``confident_share`` (clips with confidence >= :data:`CONFIDENT`),
    ``confident_wrong`` (share of all clips that are confident and wrong), ``confident_precision`` (accuracy of the
    confident clips, ``None`` without any) and ``n``; with ``with_bins``, ``bins``: :func:`reliability_bins`.
    """
    probs = np.asarray(probs, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=int)
    n = len(y_true)
    if n == 0:
        raise ValueError("calibration_metrics needs at least one clip")
    onehot = np.zeros_like(probs)
    onehot[np.arange(n), y_true] = 1.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    confident = confidence >= CONFIDENT
    doc: dict[str, Any] = {
        "ece": expected_calibration_error(probs, y_true, n_bins),
        "brier": float(((probs - onehot) ** 2).sum(axis=1).mean()),
        "nll": float(-np.log(np.maximum(probs[np.arange(n), y_true], 1e-12)).mean()),
        "accuracy": float(correct.mean()),
        "mean_confidence": float(confidence.mean()),
        "confident_share": float(confident.mean()),
        "confident_wrong": float((confident & ~correct).mean()),
        "confident_precision": float(correct[confident].mean()) if confident.any() else None,
        "n": int(n),
    }
    if with_bins:
        doc["bins"] = reliability_bins(probs, y_true, n_bins)
    return doc


CALIBRATION_KEYS = ("ece", "brier", "nll", "accuracy", "mean_confidence", "confident_share", "confident_wrong")
"""The scalar calibration figures averaged over folds."""


def mean_calibration(folds: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each of :data:`CALIBRATION_KEYS` averaged over ``folds`` (each a :func:`calibration_metrics` document)."""
    return {key: float(np.mean([f[key] for f in folds])) for key in CALIBRATION_KEYS}
