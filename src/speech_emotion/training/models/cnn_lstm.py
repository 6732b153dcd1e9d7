"""The seed's CNN + LSTM: convolution/max-pooling blocks over frame features, an LSTM over time, pooled logits.

Input is the raw ``(batch, frames, features)`` matrix of the librosa frame features; the per-feature
standardisation learnt from the training set lives in the module as buffers, so the exported
ONNX graph takes exactly what :func:`speech_emotion.features.extract_features` returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..options import option


@dataclass(frozen=True)
class CnnLstmOptions:
    """Architecture of :class:`CnnLstm`."""

    n_features: int = 109
    n_classes: int = 8
    conv_channels: tuple[int, ...] = (64, 64)
    """One convolution + batch-norm + ReLU + max-pooling block per entry."""
    kernel_size: int = option(5, at_least=1)
    pool: int = option(2, at_least=1)
    lstm_hidden: int = option(64, at_least=1)
    lstm_layers: int = option(1, at_least=1)
    bidirectional: bool = True
    dropout: float = option(0.4, at_least=0, below=1)
    pooling: str = option("attention", choices=("attention", "mean", "last"))
    """How LSTM outputs become one vector: ``attention``, ``mean`` or ``last``."""
    utterance_norm: bool = False
    """Subtract each clip's own mean per feature (after standardisation): removes speaker/channel offsets."""


class CnnLstm(nn.Module):
    """Convolution blocks over time, an LSTM, masked pooling over frames and a linear classifier."""

    def __init__(self, options: CnnLstmOptions = CnnLstmOptions()) -> None:
        super().__init__()
        if options.pooling not in ("attention", "mean", "last"):
            raise ValueError(f"unknown pooling {options.pooling!r}")
        self.options = options
        self.register_buffer("feature_mean", torch.zeros(options.n_features))
        self.register_buffer("feature_std", torch.ones(options.n_features))
        blocks: list[nn.Module] = []
        channels = options.n_features
        for out in options.conv_channels:
            blocks.append(
                nn.Sequential(
                    nn.Conv1d(channels, out, options.kernel_size, padding=options.kernel_size // 2),
                    nn.BatchNorm1d(out),
                    nn.ReLU(),
                    nn.MaxPool1d(options.pool, ceil_mode=True),
                    nn.Dropout(options.dropout),
                )
            )
            channels = out
        self.conv = nn.ModuleList(blocks)
        self.lstm = nn.LSTM(
            channels,
            options.lstm_hidden,
            num_layers=options.lstm_layers,
            batch_first=True,
            bidirectional=options.bidirectional,
            dropout=options.dropout if options.lstm_layers > 1 else 0.0,
        )
        width = options.lstm_hidden * (2 if options.bidirectional else 1)
        self.attention = nn.Linear(width, 1) if options.pooling == "attention" else None
        self.head = nn.Sequential(nn.Dropout(options.dropout), nn.Linear(width, options.n_classes))

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training set's per-feature mean and standard deviation (raw features in, standardised inside)."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_std.copy_(torch.clamp(torch.as_tensor(std, dtype=torch.float32), min=1e-5))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames left after the pooling blocks for inputs of ``lengths`` frames."""
        for _ in self.options.conv_channels:
            lengths = torch.div(lengths + self.options.pool - 1, self.options.pool, rounding_mode="floor")
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(batch, n_classes)`` for raw features ``(batch, frames, n_features)``.

        ``lengths`` (valid frames per item) masks the padding of a batch; ``None`` means no padding.
        """
        h = ((x - self.feature_mean) / self.feature_std).transpose(1, 2)  # (batch, channels, frames)
        if self.options.utterance_norm:
            h = h - self._clip_mean(h, lengths)
        valid = lengths
        for conv, norm, act, pool, drop in self.conv:
            # padding is zeroed before each convolution and pooling, so it acts like their own zero padding
            h = act(norm(conv(self._zero_padding(h, valid))))
            h = drop(pool(self._zero_padding(h, valid)))
            if valid is not None:
                valid = torch.div(valid + self.options.pool - 1, self.options.pool, rounding_mode="floor")
        h = h.transpose(1, 2)  # (batch, frames', channels)
        mask = None
        if lengths is not None:
            out_lengths = self.output_lengths(lengths).clamp(min=1, max=h.shape[1])
            packed = nn.utils.rnn.pack_padded_sequence(h, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])
            mask = torch.arange(h.shape[1], device=x.device)[None, :] < out_lengths[:, None]
        else:
            out, _ = self.lstm(h)
        return self.head(self._pool(out, mask, lengths=None if mask is None else out_lengths))

    @staticmethod
    def _clip_mean(h: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if lengths is None:
            return h.mean(dim=2, keepdim=True)
        keep = (torch.arange(h.shape[2], device=h.device)[None, :] < lengths[:, None]).unsqueeze(1).to(h.dtype)
        return (h * keep).sum(dim=2, keepdim=True) / lengths[:, None, None].to(h.dtype)

    @staticmethod
    def _zero_padding(h: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
        if valid is None:
            return h
        keep = torch.arange(h.shape[2], device=h.device)[None, :] < valid[:, None]
        return h * keep.unsqueeze(1).to(h.dtype)

    def _pool(self, out: torch.Tensor, mask: torch.Tensor | None, lengths: torch.Tensor | None) -> torch.Tensor:
        pooling = self.options.pooling
        if pooling == "last":
            if lengths is None:
                return out[:, -1]
            return out[torch.arange(out.shape[0], device=out.device), lengths - 1]
        if pooling == "mean":
            if mask is None:
                return out.mean(dim=1)
            weights = mask.unsqueeze(-1).to(out.dtype)
            return (out * weights).sum(dim=1) / weights.sum(dim=1)
        scores = self.attention(torch.tanh(out)).squeeze(-1)  # (batch, frames)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1).unsqueeze(-1)
        return (out * weights).sum(dim=1)
