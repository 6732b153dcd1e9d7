"""Fine-tuning the top Whisper block(s) together with the linear probe, on cached lower-block frame states.

Research only (``scripts/experiments_finetune.py``, ``scripts/experiments_finetune_corpora.py``): the model starts
as the fitted probe (epoch 0 is the probe alone) and the top blocks, initialised from the pretrained ones, learn
with it. Frames come from the frozen encoder once per clip, so an epoch runs only the tuned blocks.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..probe import LinearProbe


def masked_stats(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(b, t, c)`` states, ``(b, t)`` mask (true for real frames) -> ``(b, 2c)``: mean and std over real frames."""
    m = mask[..., None].to(h.dtype)
    n = m.sum(1).clamp(min=1)
    mean = (h * m).sum(1) / n
    std = (((h - mean[:, None]) ** 2) * m).sum(1).div(n).clamp(min=1e-8).sqrt()
    return torch.cat([mean, std], -1)


class TunedProbe(nn.Module):
    """Frozen statistics of the lower layers + tuned top blocks + the probe's standardised linear layer.

    ``forward(frozen, h, mask)``: ``frozen`` ``(b, d_frozen)`` statistics of the frozen layers, ``h`` ``(b, t, c)``
    the input frames of the first tuned block, ``mask`` ``(b, t)``; returns ``(b, 8)`` logits. With the blocks as
    given and no training step, the logits equal ``probe.logits`` of the same statistics.
    """

    def __init__(self, blocks: list[nn.Module], probe: LinearProbe) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(copy.deepcopy(b) for b in blocks)
        self.register_buffer("mean", torch.from_numpy(probe.mean))
        self.register_buffer("scale", torch.from_numpy(probe.scale))
        self.linear = nn.Linear(probe.coef.shape[1], probe.coef.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(probe.coef))
            self.linear.bias.copy_(torch.from_numpy(np.maximum(probe.intercept, -30.0)))

    def forward(self, frozen: torch.Tensor, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        stats = [frozen]
        for block in self.blocks:
            h = block(h, mask)
            stats.append(masked_stats(h, mask))
        return self.linear((torch.cat(stats, -1) - self.mean) / self.scale)


def pad(items: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(t_i, c)`` arrays -> ``(b, max t, c)`` float32 zero-padded and the ``(b, max t)`` mask of real frames."""
    t = max(len(x) for x in items)
    out = np.zeros((len(items), t, items[0].shape[-1]), np.float32)
    mask = np.zeros((len(items), t), bool)
    for i, x in enumerate(items):
        out[i, : len(x)] = x
        mask[i, : len(x)] = True
    return torch.from_numpy(out), torch.from_numpy(mask)


def length_batches(order: np.ndarray, lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of ``size`` items of ``order``, sorted by length within runs of ``20 * size`` (little padding),
    in random order."""
    chunks = [order[i : i + size * 20] for i in range(0, len(order), size * 20)]
    out = []
    for chunk in chunks:
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(out)
    return out


def unweighted_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """UA: the mean over the classes present in ``y`` of each class's recall."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def tuning_optimizer(model: TunedProbe, lr: float, head_lr: float, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """AdamW with the tuned blocks at ``lr`` (weight decay ``weight_decay``) and the linear layer at ``head_lr``
    (its L2 is in the loss, :func:`train_epoch`)."""
    return torch.optim.AdamW(
        [
            {"params": model.blocks.parameters(), "lr": lr, "weight_decay": weight_decay},
            {"params": model.linear.parameters(), "lr": head_lr, "weight_decay": 0.0},
        ]
    )


def train_epoch(
    model: TunedProbe,
    optimizer: torch.optim.Optimizer,
    frozen: np.ndarray,
    frames: list[np.ndarray],
    items: np.ndarray,
    labels: np.ndarray,
    allowed: np.ndarray,
    weights: np.ndarray,
    l2: float,
    batch: int,
    rng: np.random.Generator,
) -> float:
    """One epoch over ``items`` (indices into ``frozen`` ``(n, d)`` and ``frames``, lists of ``(t, c)``) with their
    ``labels`` ``(k,)``, ``allowed`` labels ``(k, 8)`` (the masked softmax) and loss ``weights`` ``(k,)``; the
    linear layer's L2 is ``l2 * |W|^2``, as :func:`~..masked_probe.fit_masked_probe` has it. Returns the mean loss."""
    model.train()
    lengths = np.array([len(frames[i]) for i in items])
    allowed_t, weights_t = torch.from_numpy(np.asarray(allowed, bool)), torch.from_numpy(weights.astype(np.float32))
    total = 0.0
    for b in length_batches(rng.permutation(len(items)), lengths, batch, rng):
        x, mask = pad([frames[i] for i in items[b]])
        logits = model(torch.from_numpy(frozen[items[b]]), x, mask).masked_fill(~allowed_t[b], float("-inf"))
        target = torch.from_numpy(labels[b])
        loss = (nn.functional.cross_entropy(logits, target, reduction="none") * weights_t[b]).mean()
        loss = loss + l2 * model.linear.weight.pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(b)
    return total / len(items)


def tuned_logits(
    model: TunedProbe, frozen: np.ndarray, frames: list[np.ndarray], items: np.ndarray, batch: int = 32
) -> np.ndarray:
    """``(len(items), 8)`` logits of ``items`` (as in :func:`train_epoch`), in evaluation mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(items), batch):
            x, mask = pad([frames[j] for j in items[i : i + batch]])
            out.append(model(torch.from_numpy(frozen[items[i : i + batch]]), x, mask).numpy())
    return np.concatenate(out)
