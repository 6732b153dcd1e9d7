"""The epoch loop: Adam, cross-entropy, ReduceLROnPlateau, early stopping, best-epoch and resumable checkpoints.

``workdir/last.pt`` is rewritten after every epoch with the model, optimiser, scheduler, random
states and history, so an interrupted :func:`train_model` continues where it stopped;
``workdir/best.pt`` holds the weights of the best validation epoch, which the model ends with.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import Example
from .options import EXECUTION_ONLY, SEED_MAX, option

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation and regularisation settings of :func:`train_model`; each field's allowed values are declared
    beside it (:func:`~speech_emotion.training.options.option`) and checked when options come from a user."""

    epochs: int = option(50, at_least=1)
    batch_size: int = option(32, at_least=1)
    lr: float = option(1e-3, above=0)
    weight_decay: float = option(1e-3, at_least=0)
    monitor: str = option("val_loss", choices=("val_loss", "val_ua"))
    """Validation score for the best checkpoint and early stopping: ``val_loss`` (smoother) or ``val_ua``."""
    patience: int = option(10, at_least=1)
    """Early stopping: epochs without a better ``monitor`` score."""
    lr_patience: int = option(3, at_least=0)
    lr_factor: float = option(0.5, above=0, below=1)
    """ReduceLROnPlateau: the learning rate is multiplied by this after ``lr_patience`` epochs without progress."""
    label_smoothing: float = option(0.1, at_least=0, below=1)
    class_weighted: bool = True
    """Weight the loss by inverse class frequency (RAVDESS has half as many neutral clips)."""
    time_masks: int = option(2, at_least=0)
    time_mask_frames: int = option(12, at_least=0)
    feature_masks: int = option(2, at_least=0)
    feature_mask_width: int = option(10, at_least=0)
    """SpecAugment-style masks on training batches (masked values set to the feature mean)."""
    mixup: float = option(0.2, at_least=0)
    """Beta(α, α) mixup of training batches; 0 disables it."""
    max_frames: int = option(400, at_least=1)
    """Training clips longer than this are randomly cropped."""
    seed: int = option(0, at_least=0, at_most=SEED_MAX)
    threads: int = option(1, at_least=1)
    """Torch intra-op threads; 1 is fastest for this small model, especially on a shared machine."""
    progress: bool = True

    def result_options(self) -> dict[str, Any]:
        """The fields that affect the trained weights (a checkpoint resumes only under the same ones)."""
        return {k: v for k, v in asdict(self).items() if k not in EXECUTION_ONLY}


def batches(examples: list[Example], indices: np.ndarray, batch_size: int):
    """Padded ``(features, lengths, labels)`` tensors for consecutive chunks of ``indices``."""
    for start in range(0, len(indices), batch_size):
        chunk = [examples[i] for i in indices[start : start + batch_size]]
        yield collate([e.features for e in chunk], [e.label for e in chunk])


def bucketed_order(examples: list[Example], batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """A random order in which each batch holds clips of similar length (less padding), batches shuffled."""
    order = rng.permutation(len(examples))
    pool = batch_size * 8
    chunks = [sorted(order[i : i + pool], key=lambda j: len(examples[j].features)) for i in range(0, len(order), pool)]
    flat = np.concatenate(chunks)
    groups = [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]
    return np.concatenate([groups[i] for i in rng.permutation(len(groups))])


def collate(features: list[np.ndarray], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    lengths = [len(f) for f in features]
    x = np.zeros((len(features), max(lengths), features[0].shape[1]), dtype=np.float32)
    for i, f in enumerate(features):
        x[i, : len(f)] = f
    return torch.from_numpy(x), torch.tensor(lengths), torch.tensor(labels)


def _crop(examples: list[Example], max_frames: int, rng: np.random.Generator) -> list[Example]:
    out = []
    for e in examples:
        if len(e.features) > max_frames:
            start = int(rng.integers(0, len(e.features) - max_frames + 1))
            e = Example(e.features[start : start + max_frames], e.label, e.row, e.augmented)
        out.append(e)
    return out


def spec_augment(
    x: torch.Tensor, lengths: torch.Tensor, fill: torch.Tensor, options: TrainOptions, gen: torch.Generator
) -> torch.Tensor:
    """Mask random frame spans and feature bands of a training batch with ``fill`` (the feature mean)."""
    x = x.clone()
    n_features = x.shape[2]
    for i in range(x.shape[0]):
        n = int(lengths[i])
        for _ in range(options.time_masks):
            width = int(torch.randint(0, options.time_mask_frames + 1, (1,), generator=gen))
            if 0 < width < n:
                start = int(torch.randint(0, n - width, (1,), generator=gen))
                x[i, start : start + width] = fill
        for _ in range(options.feature_masks):
            width = int(torch.randint(0, options.feature_mask_width + 1, (1,), generator=gen))
            if 0 < width < n_features:
                start = int(torch.randint(0, n_features - width, (1,), generator=gen))
                x[i, :n, start : start + width] = fill[start : start + width]
    return x


@torch.no_grad()
def evaluate_model(model: nn.Module, examples: list[Example], batch_size: int = 64) -> tuple[np.ndarray, float]:
    """Class probabilities ``(len(examples), classes)`` and the mean cross-entropy against the labels."""
    model.eval()
    order = np.argsort([len(e.features) for e in examples], kind="stable")  # similar lengths, little padding
    probs = np.zeros((len(examples), model.options.n_classes), dtype=np.float32)
    loss_sum = 0.0
    for start, (x, lengths, y) in zip(range(0, len(order), batch_size), batches(examples, order, batch_size)):
        logits = model(x, lengths)
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        probs[order[start : start + batch_size]] = torch.softmax(logits, dim=1).numpy()
    return probs, loss_sum / max(len(examples), 1)


def unweighted_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    classes = np.unique(y_true)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in classes]))


def train_model(
    model: nn.Module,
    train: list[Example],
    val: list[Example],
    options: TrainOptions,
    workdir: Path,
) -> list[dict[str, Any]]:
    """Train ``model`` in place, resuming from ``workdir/last.pt`` if present; returns the per-epoch history.

    The model ends with the weights of the epoch with the best validation score (``options.monitor``).
    """
    from tqdm import tqdm

    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(options.seed)
    gen = torch.Generator().manual_seed(options.seed)
    n_classes = model.options.n_classes
    counts = np.bincount([e.label for e in train], minlength=n_classes).astype(np.float64)
    weights = counts.sum() / np.maximum(counts, 1) / n_classes if options.class_weighted else np.ones(n_classes)
    criterion = nn.CrossEntropyLoss(
        weight=torch.tensor(weights, dtype=torch.float32), label_smoothing=options.label_smoothing
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=options.lr_factor, patience=options.lr_patience
    )
    state: dict[str, Any] = {
        "epoch": 0,
        "best_ua": -1.0,
        "best_loss": float("inf"),
        "bad_epochs": 0,
        "history": [],
        "stopped": False,
    }
    last, best = workdir / "last.pt", workdir / "best.pt"
    if last.exists():
        checkpoint = torch.load(last, weights_only=False)
        if checkpoint.get("options") == options.result_options():
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            rng.bit_generator.state = checkpoint["numpy_rng"]
            gen.set_state(checkpoint["torch_gen"])
            torch.set_rng_state(checkpoint["torch_rng"])
            state = checkpoint["state"]
            log.info("resuming %s after epoch %d", workdir, state["epoch"])
        else:
            log.warning("%s was written with other options; starting afresh", last)
    y_val = np.array([e.label for e in val])
    fill = model.feature_mean.detach().clone()
    bar = tqdm(total=options.epochs, initial=state["epoch"], desc="epochs", unit="ep", disable=not options.progress)
    while not state["stopped"] and state["epoch"] < options.epochs:
        model.train()
        epoch_train = _crop(train, options.max_frames, rng)
        loss_sum, correct = 0.0, 0
        for x, lengths, y in batches(
            epoch_train, bucketed_order(epoch_train, options.batch_size, rng), options.batch_size
        ):
            x = spec_augment(x, lengths, fill, options, gen)
            if options.mixup > 0:
                lam = float(rng.beta(options.mixup, options.mixup))
                perm = torch.randperm(len(y), generator=gen)
                x = lam * x + (1 - lam) * x[perm]
                lengths = torch.maximum(lengths, lengths[perm])
                logits = model(x, lengths)
                loss = lam * criterion(logits, y) + (1 - lam) * criterion(logits, y[perm])
            else:
                logits = model(x, lengths)
                loss = criterion(logits, y)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
        probs, val_loss = evaluate_model(model, val)
        val_pred = probs.argmax(1)
        val_ua = unweighted_accuracy(y_val, val_pred)
        state["epoch"] += 1
        entry = {
            "epoch": state["epoch"],
            "train_loss": loss_sum / len(train),
            "val_loss": val_loss,
            "train_acc": correct / len(train),
            "val_acc": float(np.mean(val_pred == y_val)),
            "val_ua": val_ua,
            "lr": optimizer.param_groups[0]["lr"],
        }
        state["history"].append(entry)
        scheduler.step(val_loss)
        if _improved(options.monitor, val_ua, val_loss, state):
            state.update(best_ua=val_ua, best_loss=val_loss, bad_epochs=0, best_epoch=state["epoch"])
            torch.save(model.state_dict(), best)
        else:
            state["bad_epochs"] += 1
            state["stopped"] = state["bad_epochs"] >= options.patience
        _save_last(last, model, optimizer, scheduler, rng, gen, state, options)
        bar.update()
        bar.set_postfix(loss=f"{entry['train_loss']:.3f}", val_loss=f"{val_loss:.3f}", val_ua=f"{val_ua:.3f}")
    bar.close()
    if best.exists():
        model.load_state_dict(torch.load(best, weights_only=True))
    model.eval()
    return state["history"]


def _improved(monitor: str, val_ua: float, val_loss: float, state: dict[str, Any]) -> bool:
    if monitor == "val_loss":
        return val_loss < state["best_loss"]
    if monitor == "val_ua":
        return val_ua > state["best_ua"] or (val_ua == state["best_ua"] and val_loss < state["best_loss"])
    raise ValueError(f"unknown monitor {monitor!r}; use val_loss or val_ua")


def _save_last(path: Path, model, optimizer, scheduler, rng, gen, state, options: TrainOptions) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            "torch_gen": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": state,
            "options": options.result_options(),
        },
        tmp,
    )
    tmp.replace(path)
