"""Scores of continuous (dimensional) outputs: concordance, rank correlation and the within-emotion intensity test.

- :func:`ccc`: Lin's concordance correlation coefficient (Lin 1989), the usual score of arousal/valence regression
  (e.g. the AVEC challenges, MSP-Podcast).
- :func:`spearman`: rank correlation (ties averaged).
- :func:`intensity_auc`: for clips of one emotion, the probability that a *strong* clip gets a higher value than a
  *normal* one (the area under the ROC curve, Mann-Whitney U / (n_strong x n_normal)); 0.5 is chance.
"""

from __future__ import annotations

import numpy as np

from ..labels import EMOTIONS


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


WEAK_EVIDENCE = (
    "CCC and Spearman against the anchors are weak evidence: every clip of an emotion has the same anchor value, so "
    "they reward re-deriving the category; the within-emotion intensity AUC (RAVDESS strong over normal) is the test "
    "of a scale beyond the categories"
)
"""What the anchor scores mean and what they are not (printed and written beside them)."""


def _number(value: float) -> float | None:
    """``value`` as a JSON number (``None`` for nan)."""
    return None if np.isnan(value) else float(value)


def anchor_agreement(values: np.ndarray, emotions: np.ndarray | list[str]) -> dict[str, dict[str, float | None]]:
    """Per dimension (:data:`~speech_emotion.bundle.DIMENSIONS` order), ``ccc`` and ``spearman`` of ``values``
    ``(n, 3)`` against the anchor value of each clip's emotion (:func:`~speech_emotion.training.dimensions.
    anchor_matrix`); ``None`` where undefined (a constant column, or a corpus with one emotion)."""
    from ..bundle import DIMENSIONS
    from ..training.dimensions import anchor_matrix

    values = np.asarray(values, np.float64).reshape(-1, len(DIMENSIONS))
    target = anchor_matrix(np.asarray(emotions))
    return {
        name: {
            "ccc": _number(ccc(values[:, j], target[:, j])),
            "spearman": _number(spearman(values[:, j], target[:, j])),
        }
        for j, name in enumerate(DIMENSIONS)
    }


def intensity_aucs(arousal: np.ndarray, emotions: np.ndarray | list[str], intensity: np.ndarray | list) -> dict:
    """The within-emotion intensity test: per emotion that has both *normal* and *strong* clips, the
    :func:`intensity_auc` of ``arousal`` ``(n,)`` (strong over normal), and ``mean`` over those emotions.
    ``intensity`` ``(n,)`` holds ``"normal"``, ``"strong"`` or anything else (no intensity: left out).
    ``{}`` when no emotion has both."""
    arousal, emotions = np.asarray(arousal, np.float64), np.asarray(emotions).astype(str)
    intensity = np.asarray(intensity, dtype=object).astype(str)
    known = np.isin(intensity, ("normal", "strong"))
    per: dict[str, float] = {}
    for emotion in sorted(set(emotions[known]), key=lambda e: (EMOTIONS.index(e) if e in EMOTIONS else 99, e)):
        mine = known & (emotions == emotion)
        strong = intensity[mine] == "strong"
        if strong.any() and (~strong).any():
            per[str(emotion)] = intensity_auc(arousal[mine], strong)
    return {**per, "mean": float(np.mean(list(per.values())))} if per else {}


def dimension_scores(
    values: np.ndarray, emotions: np.ndarray | list[str], intensity: np.ndarray | list | None = None
) -> dict:
    """The dimension scores of one set of clips: ``n``, ``anchors`` (:func:`anchor_agreement`) and, when some emotion
    has both intensities, ``intensity_auc`` (:func:`intensity_aucs` of the arousal column). ``values`` ``(n, 3)``."""
    values = np.asarray(values, np.float64)
    doc: dict = {"n": int(len(values)), "anchors": anchor_agreement(values, emotions)}
    if intensity is not None:
        aucs = intensity_aucs(values[:, 0], emotions, intensity)
        if aucs:
            doc["intensity_auc"] = aucs
    return doc


def anchor_line(anchors: dict[str, dict[str, float | None]]) -> str:
    """``Spearman/CCC vs the anchors of each clip's label: arousal 0.81/0.80, ...`` of an :func:`anchor_agreement`."""
    scores = ", ".join(f"{name} {_shown(s['spearman'])}/{_shown(s['ccc'])}" for name, s in anchors.items())
    return f"Spearman/CCC vs the anchors of each clip's label: {scores}"


def intensity_line(aucs: dict[str, float]) -> str:
    """``within-emotion intensity AUC (arousal, strong > normal): mean 0.809 (calm 0.62, ...)`` of an
    :func:`intensity_aucs`."""
    per = ", ".join(f"{e} {v:.2f}" for e, v in aucs.items() if e != "mean")
    return f"within-emotion intensity AUC (arousal, strong > normal): mean {aucs['mean']:.3f} ({per})"


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
