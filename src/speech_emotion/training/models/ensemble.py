"""An ensemble of classifiers as one module: the log of the members' mean softmax probabilities."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def log_mean_softmax(logits: list[torch.Tensor]) -> torch.Tensor:
    """``log(mean(softmax(z)))`` over a list of ``(batch, n_classes)`` logits: a softmax of it gives the mean."""
    log_probs = torch.stack([torch.log_softmax(z, dim=-1) for z in logits])
    return torch.logsumexp(log_probs, dim=0) - math.log(len(logits))


class Ensemble(nn.Module):
    """Averages the softmax probabilities of ``members``; returns their log, so a softmax gives the mean back.

    Takes the members' inputs (``x`` and optional ``lengths``) and exports to ONNX like one member.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def options(self) -> Any:
        """The first member's options (``n_classes`` etc.; the members share their shape)."""
        return self.members[0].options

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``log(mean(softmax(member logits)))``, shape ``(batch, n_classes)``."""
        return log_mean_softmax([m(x, lengths) for m in self.members])
