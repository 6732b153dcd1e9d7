"""The linear probe: per-layer mean and standard deviation of Whisper hidden states, standardised, then
multinomial logistic regression. Trained with scikit-learn; exported as one linear layer after the encoder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..options import option
from .encoder import WhisperEncoder


@dataclass(frozen=True)
class ProbeOptions:
    """Which hidden states are pooled and how strongly the regression is regularised."""

    layers: tuple[int, ...] = (2, 3, 4)
    C: float = option(0.03, above=0)
    """Inverse L2 strength of the logistic regression (on standardised statistics)."""
    max_iter: int = option(3000, at_least=1)
    frame_norm: bool = False
    """Normalise every frame (LayerNorm without weights) before pooling."""


def pooled_stats(states: Sequence[np.ndarray], layers: Sequence[int], frame_norm: bool = False) -> np.ndarray:
    """``(clips, len(layers) * 2 * width)``: for each layer, mean then std over frames (float32)."""
    rows = []
    for s in states:
        x = s[list(layers)].astype(np.float32)
        if frame_norm:
            x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
        rows.append(np.concatenate([x.mean(1), x.std(1)], -1).ravel())
    return np.stack(rows)


class LinearProbe:
    """Standardisation + logistic regression on :func:`pooled_stats`."""

    def __init__(self, options: ProbeOptions = ProbeOptions()) -> None:
        self.options = options
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self.intercept: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int = 8) -> LinearProbe:
        """Fit on statistics ``x`` and class indices ``y``. Classes absent from ``y`` (another corpus's label
        set) get zero weights and a bias of -1e4: never predicted. Needs at least two classes."""
        from sklearn.linear_model import LogisticRegression

        self.mean = x.mean(0)
        self.scale = x.std(0) + 1e-6
        clf = LogisticRegression(C=self.options.C, max_iter=self.options.max_iter)
        clf.fit((x - self.mean) / self.scale, y)
        self.coef = np.zeros((n_classes, x.shape[1]), dtype=np.float32)
        self.intercept = np.full(n_classes, -1e4, dtype=np.float32)
        coef, intercept = clf.coef_, clf.intercept_
        if coef.shape[0] == 1:  # two classes: scikit-learn keeps one logit; the softmax form splits it
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        self.coef[clf.classes_] = coef
        self.intercept[clf.classes_] = intercept
        return self

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef.T + self.intercept

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """Weight and bias of one linear layer on raw statistics (standardisation folded in)."""
        weight = self.coef / self.scale[None]
        bias = self.intercept - weight @ self.mean
        return weight.astype(np.float32), bias.astype(np.float32)


class ProbeClassifier(nn.Module):
    """Log-mel ``(1, n_mels, frames)`` -> logits: encoder blocks up to the deepest used layer, pooled
    statistics, and the mean of one or more probes' logits (an ensemble)."""

    def __init__(self, encoder: WhisperEncoder, layers: Sequence[int], probes: Sequence[LinearProbe]) -> None:
        super().__init__()
        self.encoder = encoder
        self.frame_norm = probes[0].options.frame_norm
        self.layers = list(layers)
        weights = [p.folded() for p in probes]
        self.linear = nn.Linear(weights[0][0].shape[1], weights[0][0].shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(np.mean([w for w, _ in weights], 0)))
            self.linear.bias.copy_(torch.from_numpy(np.mean([b for _, b in weights], 0)))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        stats = []
        for h in self.encoder(mel, layers=self.layers):
            if self.frame_norm:
                h = nn.functional.layer_norm(h, h.shape[-1:], eps=1e-5)
            mean = h.mean(1)
            std = (h - mean[:, None]).pow(2).mean(1).sqrt()
            stats += [mean, std]
        return self.linear(torch.cat(stats, -1))
