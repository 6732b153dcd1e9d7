"""Scores of continuous (dimensional) outputs: concordance, rank correlation and the within-emotion intensity test.

- :func:`ccc`: Lin's concordance correlation coefficient (Lin 1989), the usual score of arousal/valence regression
  (e.g. the AVEC challenges, MSP-Podcast).
- :func:`spearman`: rank correlation (ties averaged).
- :func:`intensity_auc`: for clips of one emotion, the probability that a *strong* clip gets a higher value than a
  *normal* one (the area under the ROC curve, Mann-Whitney U / (n_strong x n_normal)); 0.5 is chance.
"""

from __future__ import annotations

import numpy as np


def ccc(predicted: np.ndarray, target: np.ndarray) -> float:
    """Lin's concordance correlation coefficient of two ``(n,)`` arrays, in [-1, 1] (nan when both are constant)."""
    x, y = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    denominator = x.var() + y.var() + (x.mean() - y.mean()) ** 2
    return float(2 * np.mean((x - x.mean()) * (y - y.mean())) / denominator) if denominator > 0 else float("nan")


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + end - 1) / 2.0
            start = end
    return ranks


def spearman(predicted: np.ndarray, target: np.ndarray) -> float:
    """Spearman's rank correlation of two ``(n,)`` arrays (ties get their mean rank; nan when one is constant)."""
    x, y = _ranks(np.asarray(predicted, np.float64)), _ranks(np.asarray(target, np.float64))
    if x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def intensity_auc(values: np.ndarray, strong: np.ndarray) -> float:
    """P(value of a strong clip > value of a normal clip), ties counting half: ``values`` ``(n,)``, ``strong``
    ``(n,)`` booleans. nan when either group is empty."""
    values, strong = np.asarray(values, np.float64), np.asarray(strong, bool)
    n_strong, n_normal = int(strong.sum()), int((~strong).sum())
    if not n_strong or not n_normal:
        return float("nan")
    ranks = _ranks(values)
    u = ranks[strong].sum() + n_strong - n_strong * (n_strong + 1) / 2.0
    return float(u / (n_strong * n_normal))
