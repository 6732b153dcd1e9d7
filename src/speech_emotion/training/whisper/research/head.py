"""Classifier heads over Whisper hidden states: learned layer weighting, frame projection, pooling, optional top blocks.

:class:`StateClassifier` reads stacked hidden states ``(batch, layers, frames, width)`` (the cached
form). Research only (``scripts/experiments_whisper.py``): the shipped recipe is the linear probe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..encoder import EncoderBlock


@dataclass(frozen=True)
class HeadOptions:
    """Shape of the head."""

    layers: tuple[int, ...] = (2, 3, 4)
    """Hidden states the head mixes (0: embedding, ``i``: output of block ``i``)."""
    tune_blocks: int = 0
    """Train copies of blocks ``base+1 .. base+tune_blocks`` on top of cached state ``base`` (max of ``layers``
    below the tuned ones)."""
    hidden: int = 256
    pooling: str = "attention"
    """``mean-std`` (statistics pooling) or ``attention`` (attentive statistics pooling)."""
    dropout: float = 0.2
    layer_norm: bool = True
    """Normalise each hidden state before mixing (magnitudes differ a lot between layers)."""
    stride: int = 2
    """Average this many consecutive (normalised) frames: 25 frames/s instead of 50, half the head's work."""
    n_classes: int = 8
    extra: dict = field(default_factory=dict)

    @property
    def base(self) -> int:
        """Highest frozen layer: the cached state the tuned blocks start from."""
        return max(self.layers) - self.tune_blocks


class StateClassifier(nn.Module):
    """Logits from stacked hidden states ``(batch, len(options.layers) - tuned, frames, width)`` and a frame mask."""

    def __init__(self, options: HeadOptions, width: int = 512, heads: int = 8) -> None:
        super().__init__()
        self.options = options
        self.blocks = nn.ModuleList(EncoderBlock(width, heads) for _ in range(options.tune_blocks))
        self.layer_logits = nn.Parameter(torch.zeros(len(options.layers)))
        self.norm = nn.LayerNorm(width, elementwise_affine=False) if options.layer_norm else nn.Identity()
        self.project = nn.Sequential(nn.Dropout(options.dropout), nn.Linear(width, options.hidden), nn.GELU())
        self.attention = nn.Linear(options.hidden, 1) if options.pooling == "attention" else None
        self.classify = nn.Sequential(nn.Dropout(options.dropout), nn.Linear(2 * options.hidden, options.n_classes))

    def frozen_layers(self) -> list[int]:
        """Layers taken from the (frozen) encoder; the rest are computed by the tuned blocks."""
        return [i for i in self.options.layers if i <= self.options.base]

    def prepare(self, states: torch.Tensor) -> torch.Tensor:
        """Per-frame normalisation and frame averaging of frozen states ``(batch, layers, frames, width)``.

        Parameter-free, so training applies it once to the cached states (``prepared=True``).
        """
        if not self.blocks:
            states = self.norm(states)
        if self.options.stride > 1:
            b, n, t, c = states.shape
            states = F.avg_pool1d(states.reshape(b * n, t, c).transpose(1, 2), self.options.stride, ceil_mode=True)
            states = states.transpose(1, 2).reshape(b, n, -1, c)
        return states

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None, prepared: bool = False) -> torch.Tensor:
        """``states``: ``(batch, len(frozen_layers), frames, width)`` ordered like ``frozen_layers`` with the
        ``base`` state last; ``mask``: ``(batch, frames)`` true for real frames (``None``: all real), after
        :meth:`prepare` when ``prepared``."""
        if not prepared:
            states = self.prepare(states)
        if self.blocks:  # tuned blocks see raw states; normalise everything afterwards
            layers = list(states.unbind(1))
            x = layers[-1]
            for block in self.blocks:
                x = block(x, mask)
                layers.append(x)
            states = self.norm(torch.stack(layers, 1))
        w = torch.softmax(self.layer_logits, 0)
        h = self.project(torch.einsum("blte,l->bte", states, w))
        if mask is None:
            mask = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
        m = mask[..., None].to(h.dtype)
        if self.attention is not None:
            scores = self.attention(h).masked_fill(~mask[..., None], -1e4)
            a = torch.softmax(scores, 1) * m
        else:
            a = m / m.sum(1, keepdim=True)
        mean = (a * h).sum(1)
        std = ((a * (h - mean[:, None]) ** 2).sum(1) + 1e-5).sqrt()
        return self.classify(torch.cat([mean, std], -1))


class PooledStatsClassifier(nn.Module):
    """Per-layer statistics first (mean and std of each normalised layer over frames), then a learned layer
    weighting and an MLP: the cheap head, trained on 1 vector per clip instead of every frame."""

    def __init__(self, options: HeadOptions, width: int = 512, heads: int = 8) -> None:
        super().__init__()
        if options.tune_blocks:
            raise ValueError("the pooled-statistics head cannot tune encoder blocks")
        self.options = options
        self.blocks = nn.ModuleList()
        self.layer_logits = nn.Parameter(torch.zeros(len(options.layers)))
        self.norm = nn.LayerNorm(width, elementwise_affine=False) if options.layer_norm else nn.Identity()
        self.stats_norm = nn.LayerNorm(2 * width)
        self.mlp = nn.Sequential(
            nn.Dropout(options.dropout),
            nn.Linear(2 * width, options.hidden),
            nn.GELU(),
            nn.Dropout(options.dropout),
            nn.Linear(options.hidden, options.n_classes),
        )

    def frozen_layers(self) -> list[int]:
        return list(self.options.layers)

    def prepare(self, states: torch.Tensor) -> torch.Tensor:
        """``(batch, layers, frames, width)`` -> ``(batch, layers, 1, 2 * width)`` mean and std over frames."""
        x = self.norm(states)
        mean = x.mean(2, keepdim=True)
        std = ((x - mean) ** 2).mean(2, keepdim=True).add(1e-5).sqrt()
        return torch.cat([mean, std], -1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None, prepared: bool = False) -> torch.Tensor:
        """Logits from raw stacked states, or from :meth:`prepare` output when ``prepared`` (``mask`` unused)."""
        if not prepared:
            states = self.prepare(states)
        w = torch.softmax(self.layer_logits, 0)
        pooled = torch.einsum("blte,l->bte", self.stats_norm(states), w)[:, 0]
        return self.mlp(pooled)


def build_head(options: HeadOptions, width: int = 512, heads: int = 8) -> nn.Module:
    """The head class ``options.pooling`` names: ``stats`` (pooled statistics) or frame pooling."""
    return (
        PooledStatsClassifier(options, width, heads)
        if options.pooling == "stats"
        else StateClassifier(options, width, heads)
    )
