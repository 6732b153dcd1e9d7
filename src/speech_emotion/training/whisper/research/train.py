"""Training a :class:`~.head.StateClassifier` on cached hidden states, with speaker-held-out early stopping."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .head import HeadOptions, StateClassifier, build_head


@dataclass(frozen=True)
class HeadTrainOptions:
    """Optimiser, schedule and regularisation of head training."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3
    block_lr: float = 5e-5
    """Learning rate of tuned encoder blocks (initialised from the pretrained ones)."""
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    mixup: float = 0.0
    """Beta(a, a) mixup of clip pairs (0: off)."""
    time_masks: int = 0
    """SpecAugment-style: this many random frame spans per clip hidden from the head during training."""
    time_mask_fraction: float = 0.1
    patience: int = 10
    seed: int = 0
    threads: int = 1


def select(states: list[np.ndarray], layers: list[int]) -> list[np.ndarray]:
    """Keep the hidden states the head reads (cached arrays hold all layers)."""
    return [s[layers] for s in states]


def prepare(model: StateClassifier, states: list[np.ndarray]) -> list[torch.Tensor]:
    """Each clip's selected states through the head's parameter-free :meth:`~.head.StateClassifier.prepare`,
    kept as float16 tensors ``(layers, frames, width)``."""
    out = []
    with torch.inference_mode():
        for s in states:
            out.append(model.prepare(torch.from_numpy(s.astype(np.float32))[None])[0].half())
    return out


def _batch(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    t = max(s.shape[1] for s in items)
    x = torch.zeros((len(items), items[0].shape[0], t, items[0].shape[2]))
    mask = torch.zeros((len(items), t), dtype=torch.bool)
    for i, s in enumerate(items):
        x[i, :, : s.shape[1]] = s
        mask[i, : s.shape[1]] = True
    return x, mask


def _length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of similar length (little padding), in random order."""
    order = np.argsort(lengths + rng.uniform(0, 8, len(lengths)))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _time_mask(mask: torch.Tensor, n: int, fraction: float, rng: np.random.Generator) -> torch.Tensor:
    mask = mask.clone()
    for i in range(mask.shape[0]):
        length = int(mask[i].sum())
        span = max(1, int(length * fraction))
        for _ in range(n):
            start = int(rng.integers(0, max(1, length - span)))
            mask[i, start : start + span] = False
        if not mask[i].any():
            mask[i, :length] = True
    return mask


def predict_proba(
    model: StateClassifier, states: list[np.ndarray] | list[torch.Tensor], batch_size: int = 64
) -> np.ndarray:
    """Class probabilities ``(len(states), n_classes)`` for selected states (see :func:`select`) or prepared ones."""
    model.eval()
    if states and isinstance(states[0], np.ndarray):
        states = prepare(model, states)  # type: ignore[arg-type]
    order = np.argsort([s.shape[1] for s in states])
    out = np.zeros((len(states), model.options.n_classes), np.float32)
    with torch.inference_mode():
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x, m = _batch([states[j] for j in idx])
            out[idx] = torch.softmax(model(x, m, prepared=True), -1).numpy()
    return out


def unweighted_accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int = 8) -> float:
    recalls = [np.mean(pred[y == c] == c) for c in range(n_classes) if np.any(y == c)]
    return float(np.mean(recalls))


def fit(
    head: HeadOptions,
    options: HeadTrainOptions,
    train_states: list[np.ndarray],
    train_y: np.ndarray,
    val_states: list[np.ndarray] | None = None,
    val_y: np.ndarray | None = None,
    init_blocks: list[dict[str, torch.Tensor]] | None = None,
) -> tuple[StateClassifier, list[dict]]:
    """Train a head; with validation data, keep the epoch with the best validation UA (early stopping).

    ``init_blocks``: state dicts of the pretrained encoder blocks to start tuned blocks from.
    """
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    model = build_head(head)
    for block, init in zip(model.blocks, init_blocks or []):
        block.load_state_dict(init)
    block_params = list(model.blocks.parameters())
    ids = {id(p) for p in block_params}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids], "lr": options.lr}]
    if block_params:
        groups.append({"params": block_params, "lr": options.block_lr})
    opt = torch.optim.AdamW(groups, weight_decay=options.weight_decay)
    steps = options.epochs * int(np.ceil(len(train_states) / options.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, [g["lr"] for g in groups], total_steps=steps, pct_start=0.1)
    y_all = torch.as_tensor(train_y, dtype=torch.long)
    train_prepared = prepare(model, train_states)
    val_prepared = prepare(model, val_states) if val_states is not None else None
    lengths = np.array([s.shape[1] for s in train_prepared])
    history: list[dict] = []
    best, best_ua, stale = None, -1.0, 0
    for epoch in range(1, options.epochs + 1):
        model.train()
        total, correct, loss_sum = 0, 0, 0.0
        for idx in _length_batches(lengths, options.batch_size, rng):
            x, m = _batch([train_prepared[j] for j in idx])
            y = y_all[idx]
            if options.time_masks:
                m = _time_mask(m, options.time_masks, options.time_mask_fraction, rng)
            target = F.one_hot(y, head.n_classes).float()
            if options.mixup > 0:
                lam = float(rng.beta(options.mixup, options.mixup))
                p = torch.from_numpy(rng.permutation(len(idx)))  # similar lengths: little padding mixed in
                x = lam * x + (1 - lam) * x[p]
                m = m | m[p]
                target = lam * target + (1 - lam) * target[p]
            logits = model(x, m, prepared=True)
            target = target * (1 - options.label_smoothing) + options.label_smoothing / head.n_classes
            loss = torch.sum(-target * F.log_softmax(logits, -1), -1).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            total += len(idx)
            correct += int((logits.argmax(-1) == y).sum())
        row = {"epoch": epoch, "train_loss": loss_sum / total, "train_acc": correct / total}
        if val_prepared is not None and val_y is not None:
            probs = predict_proba(model, val_prepared)
            row["val_loss"] = float(-np.mean(np.log(probs[np.arange(len(val_y)), val_y] + 1e-9)))
            row["val_acc"] = float(np.mean(probs.argmax(1) == val_y))
            row["val_ua"] = unweighted_accuracy(val_y, probs.argmax(1), head.n_classes)
            if row["val_ua"] > best_ua:
                best_ua, best, stale = row["val_ua"], copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
        history.append(row)
        if stale >= options.patience:
            break
    if best is not None:
        model.load_state_dict(best)
    return model.eval(), history
