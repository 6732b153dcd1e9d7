"""A linear probe for several corpora with different label sets: the softmax of each training clip runs over
its own corpus's emotions only, so a corpus without "calm" does not teach the model that nothing is calm.

Same model as :class:`~speech_emotion.training.whisper.probe.LinearProbe` (standardisation + multinomial logistic
regression on pooled encoder statistics, exported as one linear layer), fitted with L-BFGS in PyTorch on

``mean_i w_i * CE(softmax over labels(corpus_i)) + ||W||^2 / (2 C N)``

which is scikit-learn's objective (``0.5 ||W||^2 + C sum_i loss_i``) divided by ``C N`` when every label is
allowed and all weights are 1. Weights ``w_i`` balance corpora and classes (:func:`balance_weights`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...labels import EMOTIONS, emotion_index
from ..options import option
from .probe import LinearProbe, ProbeOptions


@dataclass(frozen=True)
class MaskedProbeOptions:
    """What the probe reads and how its loss is weighted."""

    layers: tuple[int, ...] = (2, 3, 4)
    """Encoder states whose mean and std over frames are the probe's input (0 is the embedding)."""
    C: float = option(0.03, above=0)
    """Inverse L2 strength, as in scikit-learn's LogisticRegression on standardised inputs."""
    masked: bool = True
    """Softmax over each clip's corpus labels only (``False``: over all eight emotions)."""
    balance: str = option("corpus", choices=("corpus", "class", "none"))
    """``corpus``: each corpus weighs the same in the loss, classes balanced within it; ``class``: classes
    balanced over all data; ``none``: every clip weighs 1."""
    max_iter: int = option(200, at_least=1)


def corpus_label_masks(corpus: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per corpus name, a boolean ``(8,)`` mask of the emotions it has (in :data:`EMOTIONS` order)."""
    names = corpus["corpus"] if "corpus" in corpus else pd.Series(["corpus"] * len(corpus))
    masks = {}
    for name, emotions in corpus.groupby(names.to_numpy())["emotion"]:
        mask = np.zeros(len(EMOTIONS), dtype=bool)
        mask[[emotion_index(e) for e in emotions.unique()]] = True
        masks[str(name)] = mask
    return masks


def balance_weights(corpora: np.ndarray, labels: np.ndarray, mode: str) -> np.ndarray:
    """Loss weights ``(n,)`` with mean 1: see :attr:`MaskedProbeOptions.balance`."""
    n = len(labels)
    if mode == "none":
        return np.ones(n)
    if mode == "class":
        groups = labels.astype(str)
    elif mode == "corpus":
        groups = np.array([f"{c}/{y}" for c, y in zip(corpora, labels)])
    else:
        raise ValueError(f"unknown balance {mode!r}: corpus, class or none")
    weights = np.zeros(n)
    for corpus_name in np.unique(corpora) if mode == "corpus" else [None]:
        in_corpus = corpora == corpus_name if corpus_name is not None else np.ones(n, bool)
        keys, counts = np.unique(groups[in_corpus], return_counts=True)
        per_group = dict(zip(keys, 1.0 / (counts * len(keys))))
        weights[in_corpus] = [per_group[g] for g in groups[in_corpus]]
    return weights * n / weights.sum()


def fit_masked_probe(
    x: np.ndarray, y: np.ndarray, masks: np.ndarray, weights: np.ndarray, options: MaskedProbeOptions
) -> LinearProbe:
    """Fit on statistics ``x`` ``(n, d)``, label indices ``y`` ``(n,)``, allowed labels ``masks`` ``(n, 8)``
    and loss ``weights`` ``(n,)``. Returns a :class:`LinearProbe` (exportable like the single-corpus one)."""
    import torch

    mean = x.mean(0)
    scale = x.std(0) + 1e-6
    xs = torch.from_numpy(((x - mean) / scale).astype(np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    allowed = torch.from_numpy(np.asarray(masks, dtype=bool) if options.masked else np.ones_like(masks, dtype=bool))
    w = torch.from_numpy(np.asarray(weights, dtype=np.float32))
    n, d = xs.shape
    coef = torch.zeros(len(EMOTIONS), d, requires_grad=True)
    bias = torch.zeros(len(EMOTIONS), requires_grad=True)
    l2 = 1.0 / (2.0 * options.C * n)
    optimizer = torch.optim.LBFGS(
        [coef, bias], lr=1.0, max_iter=options.max_iter, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = (xs @ coef.T + bias).masked_fill(~allowed, float("-inf"))
        loss = (torch.nn.functional.cross_entropy(logits, yt, reduction="none") * w).mean()
        loss = loss + l2 * coef.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    probe = LinearProbe(ProbeOptions(layers=options.layers, C=options.C))
    probe.mean, probe.scale = mean.astype(np.float32), scale.astype(np.float32)
    probe.coef = coef.detach().numpy().astype(np.float32)
    # Labels no training corpus has keep a bias far below the others: never predicted.
    seen = np.asarray(masks, dtype=bool).any(0)
    probe.intercept = np.where(seen, bias.detach().numpy(), -1e4).astype(np.float32)
    return probe


def mix_probes(probes: Sequence[LinearProbe], weights: Sequence[float]) -> LinearProbe:
    """One :class:`LinearProbe` whose logits are ``sum_k weights[k] * probes[k].logits(x)`` (a mix of linear probes
    on the same statistics is one linear layer, so the exported graph does not change). The standardisation is
    folded into the weights (``mean`` 0, ``scale`` 1); a label one probe never predicts stays far below the others."""
    folded = [p.folded() for p in probes]
    mixed = LinearProbe(probes[0].options)
    mixed.coef = np.sum([w * c for w, (c, _) in zip(weights, folded)], 0).astype(np.float32)
    mixed.intercept = np.sum([w * b for w, (_, b) in zip(weights, folded)], 0).astype(np.float32)
    mixed.mean = np.zeros(mixed.coef.shape[1], np.float32)
    mixed.scale = np.ones(mixed.coef.shape[1], np.float32)
    return mixed


def select_stats(pooled: np.ndarray, layers: Sequence[int]) -> np.ndarray:
    """``(n, len(layers) * 2 * width)`` probe input from pooled ``(n, layers + 1, 2, width)`` statistics,
    ordered like :func:`~speech_emotion.training.whisper.probe.pooled_stats` (per layer: mean, then std)."""
    return pooled[:, list(layers)].reshape(len(pooled), -1)


def restricted_argmax(probs: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Index of the most probable allowed label per row (``allowed`` ``(8,)`` or ``(n, 8)``)."""
    return np.where(np.broadcast_to(allowed, probs.shape), probs, -np.inf).argmax(1)
