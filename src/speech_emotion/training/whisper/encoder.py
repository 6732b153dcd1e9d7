"""The Whisper audio encoder as a plain PyTorch module: 2 convolutions, positions, pre-norm transformer blocks.

Runs on a clip's own log-mel frames (no 30 s padding): the position table is sliced to the
clip's length. :meth:`WhisperEncoder.forward` returns the hidden states of the requested layers and
stops after the last one needed. With ``merge_after``, neighbouring positions are averaged in pairs after the
named layers, so the blocks above run on half as many (:func:`merge_pairs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of a Whisper encoder (defaults: whisper-base)."""

    n_mels: int = 80
    width: int = 512
    heads: int = 8
    layers: int = 6
    max_positions: int = 1500
    merge_after: tuple[int, ...] = ()
    """Layers (0: the embedding, ``i``: block ``i``) after which neighbouring positions are averaged in pairs
    (:func:`merge_pairs`); their own hidden states are returned before the merge."""

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], heads: int | None = None) -> EncoderConfig:
        """Infer the shape from a state dict (heads: 64 channels per head, as in every Whisper size)."""
        n_layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("layers."))
        positions, width = state["positions"].shape
        return cls(state["conv1.weight"].shape[1], width, heads or width // 64, n_layers, positions)


def merge_pairs(x: torch.Tensor) -> torch.Tensor:
    """``(batch, positions, width)`` -> ``(batch, ceil(positions / 2), width)``: each two neighbouring positions
    averaged (an odd last one kept as it is), so the blocks above run on half the positions at half the cost: token
    merging in its simplest form (cf. Bolya et al. 2023, "Token Merging: Your ViT But Faster"). Exported to ONNX as
    one ``AveragePool``. Measured in docs/experiments.md: no loss on RAVDESS alone, but 2-4 UA points on unheard
    corpora when merging after the embedding in the default's recipe."""
    return F.avg_pool1d(x.transpose(1, 2), 2, ceil_mode=True).transpose(1, 2)


class EncoderBlock(nn.Module):
    """Pre-norm self-attention and GELU MLP, each with a residual connection."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attn_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.mlp_norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 4 * width)
        self.fc2 = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``(batch, frames, width)``; ``mask``: ``(batch, frames)``, true for real (not padding) frames."""
        b, t, c = x.shape
        q, k, v = (
            self.qkv(self.attn_norm(x)).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        )
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None, None, :])
        x = x + self.out(a.transpose(1, 2).reshape(b, t, c))
        return x + self.fc2(F.gelu(self.fc1(self.mlp_norm(x))))


class WhisperEncoder(nn.Module):
    """Whisper's audio encoder; hidden state 0 is the embedding, ``i`` the output of block ``i``."""

    def __init__(self, config: EncoderConfig = EncoderConfig()) -> None:
        super().__init__()
        self.config = config
        self.conv1 = nn.Conv1d(config.n_mels, config.width, 3, padding=1)
        self.conv2 = nn.Conv1d(config.width, config.width, 3, stride=2, padding=1)
        self.register_buffer("positions", torch.zeros(config.max_positions, config.width))
        self.layers = nn.ModuleList(EncoderBlock(config.width, config.heads) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.width)

    @classmethod
    def from_state(
        cls, state: dict[str, np.ndarray], layers: int | None = None, merge_after: tuple[int, ...] = ()
    ) -> WhisperEncoder:
        """Encoder with the given weights, keeping only the first ``layers`` blocks when set; ``merge_after``: see
        :attr:`EncoderConfig.merge_after`."""
        config = EncoderConfig.from_state(state)
        layers = config.layers if layers is None else layers
        config = replace(config, layers=layers, merge_after=tuple(merge_after))
        model = cls(config)
        wanted = model.state_dict().keys()
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items() if k in wanted})
        return model.eval()

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """``(batch, n_mels, frames)`` log-mel -> ``(batch, ceil(frames/2), width)`` with positions added."""
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        return x + self.positions[: x.shape[1]]

    def forward(
        self, mel: torch.Tensor, layers: Sequence[int] | None = None, final_norm: bool = False
    ) -> list[torch.Tensor]:
        """Hidden states of ``layers`` (default: all, 0..n), each ``(batch, frames, width)``.

        With ``final_norm``, the last block's output gets the encoder's final LayerNorm (as Whisper's
        decoder sees it); intermediate states never do.
        """
        wanted = list(range(len(self.layers) + 1)) if layers is None else list(layers)
        merge = self.config.merge_after
        x = self.embed(mel)
        states = {0: x}
        for i in range(1, max(wanted) + 1):
            x = self.layers[i - 1](merge_pairs(x) if i - 1 in merge else x)
            states[i] = x
        if final_norm and len(self.layers) in states:
            states[len(self.layers)] = self.norm(states[len(self.layers)])
        return [states[i] for i in wanted]


_LOADED: dict[tuple[str | None, int, tuple[int, ...]], WhisperEncoder] = {}


def cached_encoder(weights: str | None, layers: int, merge_after: tuple[int, ...] = ()) -> WhisperEncoder:
    """The first ``layers`` blocks of the encoder from checkpoint ``weights`` (``None``: the default source), with
    positions merged after ``merge_after`` (:attr:`EncoderConfig.merge_after`), loaded once per process (each worker
    of a feature pool keeps its own)."""
    key = (weights, layers, tuple(merge_after))
    if key not in _LOADED:
        from .checkpoint import load_encoder_state

        _LOADED[key] = WhisperEncoder.from_state(load_encoder_state(weights), layers, tuple(merge_after))
    return _LOADED[key]
