"""Fitting a bundle's confidence map on speech it never heard: temperature scaling and uncertainty thresholds.

Temperature scaling (Guo, Pleiss, Sun, Weinberger 2017, "On Calibration of Modern Neural Networks", section 4.2):
one scalar ``T`` minimising the negative log-likelihood of ``softmax(logits / T)`` on held-out clips; it changes no
argmax. Here held-out means held-out *corpora*: :func:`leave_one_corpus_out` fits on all corpora but one and scores
the one left out, in turn, so the figures it reports are those of a map fitted without the corpus it is judged on;
the map shipped is then fitted on all of them (:func:`fit_calibration`).

The uncertainty thresholds (:class:`~speech_emotion.calibration.Calibration`: ``min_confidence``, ``min_margin``)
are chosen on the same held-out predictions by :func:`choose_thresholds`: the pair that keeps the most answers
while the answers it keeps are right at least ``target`` of the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..calibration import Calibration
from .metrics import calibration_metrics

CONFIDENCE_GRID = tuple(round(0.05 * i, 2) for i in range(20))
"""Candidate ``min_confidence`` values (0 to 0.95)."""
MARGIN_GRID = tuple(round(0.05 * i, 2) for i in range(11))
"""Candidate ``min_margin`` values (0 to 0.5)."""


def nll(logits: np.ndarray, y_true: np.ndarray, temperature: float, weights: np.ndarray | None = None) -> float:
    """Mean (``weights``-weighted) negative log-likelihood (nats) of ``softmax(logits / temperature)`` for
    ``y_true``; ``logits``: ``(clips, classes)``, ``y_true`` and ``weights``: ``(clips,)``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.average(log_norm - z[np.arange(len(z)), y_true], weights=weights))


def corpus_weights(corpora: Sequence[str]) -> np.ndarray:
    """``(clips,)`` weights giving every corpus the same total weight (each clip ``1 / its corpus's clips``)."""
    names = np.asarray(corpora)
    _, inverse, counts = np.unique(names, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


def fit_temperature(
    logits: np.ndarray,
    y_true: Sequence[int],
    weights: np.ndarray | None = None,
    bounds: tuple[float, float] = (0.05, 100.0),
) -> float:
    """The temperature ``T`` minimising :func:`nll` (Guo et al. 2017, temperature scaling), each clip weighted by
    ``weights`` (``None``: equally; :func:`corpus_weights`: every corpus equally).

    The NLL is convex in ``1 / T``, so a golden-section search over ``log T`` within ``bounds`` finds the minimum
    (to about 1e-6 relative). ``logits``: ``(clips, classes)``; ``y_true``: ``(clips,)`` column indices.
    Raises ``ValueError`` for no clips.
    """
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true, dtype=int)
    if len(y) == 0:
        raise ValueError("fit_temperature needs at least one clip")
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, y, np.exp(a), weights), nll(logits, y, np.exp(b), weights)
    while hi - lo > 1e-7:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, y, np.exp(a), weights)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, y, np.exp(b), weights)
    return float(np.exp((lo + hi) / 2))


def flags(probs: np.ndarray, min_confidence: float, min_margin: float) -> np.ndarray:
    """``(clips,)`` bool: the answers :class:`~speech_emotion.calibration.Calibration` would call uncertain."""
    top = np.sort(np.asarray(probs, dtype=np.float64), axis=1)[:, ::-1]
    return (top[:, 0] < min_confidence) | (top[:, 0] - top[:, 1] < min_margin)


def choose_thresholds(probs: np.ndarray, y_true: Sequence[int], target: float = 0.5) -> tuple[float, float]:
    """``(min_confidence, min_margin)`` from :data:`CONFIDENCE_GRID` x :data:`MARGIN_GRID` keeping the most answers
    (not flagged uncertain) whose accuracy on these clips is at least ``target``; ties: the lower thresholds.
    When no pair reaches ``target``, the pair with the most accurate kept answers (at least 1 % of clips kept).
    ``probs``: calibrated ``(clips, classes)``; ``y_true``: ``(clips,)``."""
    probs = np.asarray(probs, dtype=np.float64)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    best: tuple[float, float, float, float] | None = None  # (kept share, accuracy, confidence, margin)
    fallback: tuple[float, float, float] | None = None  # (accuracy, confidence, margin)
    for confidence in CONFIDENCE_GRID:
        for margin in MARGIN_GRID:
            kept = ~flags(probs, confidence, margin)
            if kept.mean() < 0.01:
                continue
            accuracy = float(correct[kept].mean())
            if accuracy >= target and (best is None or kept.mean() > best[0]):
                best = (float(kept.mean()), accuracy, confidence, margin)
            if fallback is None or accuracy > fallback[0]:
                fallback = (accuracy, confidence, margin)
    if best is not None:
        return best[2], best[3]
    assert fallback is not None
    return fallback[1], fallback[2]


def kept_scores(probs: np.ndarray, y_true: Sequence[int], min_confidence: float, min_margin: float) -> dict[str, Any]:
    """``uncertain_share`` (answers flagged), ``kept_accuracy`` / ``uncertain_accuracy`` (accuracy of the answers
    kept / flagged; ``None`` if none) and ``auroc``: how well the shown confidence ranks right answers above wrong
    ones (area under the ROC curve; 0.5: no better than chance; ``None`` when all are right or all wrong)."""
    from sklearn.metrics import roc_auc_score

    uncertain = flags(probs, min_confidence, min_margin)
    correct = np.asarray(probs).argmax(axis=1) == np.asarray(y_true)
    return {
        "auroc": float(roc_auc_score(correct, np.asarray(probs).max(axis=1))) if 0 < correct.mean() < 1 else None,
        "uncertain_share": float(uncertain.mean()),
        "kept_accuracy": float(correct[~uncertain].mean()) if (~uncertain).any() else None,
        "uncertain_accuracy": float(correct[uncertain].mean()) if uncertain.any() else None,
    }


def fit_calibration(
    logits: np.ndarray,
    y_true: Sequence[int],
    corpora: Sequence[str],
    target: float = 0.5,
    notes: str = "",
    balance: bool = True,
) -> Calibration:
    """The :class:`Calibration` fitted on all of ``logits`` (temperature, then thresholds on the calibrated
    probabilities); ``corpora``: each clip's corpus name, recorded as ``fitted_on``; ``balance``: every corpus
    weighs the same in the temperature's NLL (else every clip)."""
    temperature = fit_temperature(logits, y_true, corpus_weights(corpora) if balance else None)
    probs = Calibration(temperature).probabilities(logits)
    min_confidence, min_margin = choose_thresholds(probs, y_true, target)
    return Calibration(temperature, min_confidence, min_margin, tuple(sorted(set(corpora))), notes=notes)


def leave_one_corpus_out(
    logits: np.ndarray, y_true: Sequence[int], corpora: Sequence[str], target: float = 0.5, balance: bool = True
) -> dict[str, Any]:
    """For each corpus: the map fitted on the other corpora (:func:`fit_calibration`), scored on it, against the
    uncalibrated output. Returns ``{"folds": {corpus: {...}}, "mean": {...}}`` where each fold holds
    ``temperature``, the thresholds, ``before`` and ``after`` (:func:`~.metrics.calibration_metrics`, no bins) and
    the kept/uncertain scores of the thresholds (:func:`kept_scores`); ``mean``: the figures averaged over corpora."""
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y_true, dtype=int)
    names = np.asarray(corpora)
    folds: dict[str, Any] = {}
    for held in sorted(set(names)):
        fit, test = names != held, names == held
        cal = fit_calibration(logits[fit], y[fit], names[fit], target, balance=balance)
        before = calibration_metrics(Calibration().probabilities(logits[test]), y[test])
        probs = cal.probabilities(logits[test])
        folds[str(held)] = {
            "fitted_on": list(cal.fitted_on),
            "temperature": cal.temperature,
            "min_confidence": cal.min_confidence,
            "min_margin": cal.min_margin,
            "before": before,
            "after": calibration_metrics(probs, y[test]),
            **kept_scores(probs, y[test], cal.min_confidence, cal.min_margin),
        }
    keys = ("ece", "brier", "nll", "mean_confidence", "confident_wrong")
    mean: dict[str, Any] = {
        f"{when}_{key}": float(np.mean([f[when][key] for f in folds.values()]))
        for when in ("before", "after")
        for key in keys
    }
    mean["uncertain_share"] = float(np.mean([f["uncertain_share"] for f in folds.values()]))
    kept = [f["kept_accuracy"] for f in folds.values() if f["kept_accuracy"] is not None]
    mean["kept_accuracy"] = float(np.mean(kept)) if kept else None
    return {"target": target, "balance": balance, "folds": folds, "mean": mean}
