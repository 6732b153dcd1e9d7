"""The research fine-tuning pieces (scripts/experiments_finetune*.py): the tuned model starts as the probe, and an
epoch lowers the loss on data it can learn."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from speech_emotion.training.whisper.encoder import EncoderBlock  # noqa: E402
from speech_emotion.training.whisper.masked_probe import MaskedProbeOptions, fit_masked_probe  # noqa: E402
from speech_emotion.training.whisper.research.tuning import (  # noqa: E402
    TunedProbe,
    masked_stats,
    train_epoch,
    tuned_logits,
    tuning_optimizer,
)

WIDTH = 16


def toy(n: int = 48, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames whose mean level says the class (0 or 1), of varied lengths."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    frames = [(rng.normal(0.6 * y - 0.3, 1.0, (int(rng.integers(5, 12)), WIDTH))).astype(np.float32) for y in labels]
    return frames, labels


def test_the_tuned_model_starts_as_the_probe_of_the_same_statistics():
    torch.manual_seed(0)
    frames, labels = toy()
    block = EncoderBlock(WIDTH, 2).eval()
    with torch.no_grad():
        stats = np.stack(
            [
                masked_stats(block(torch.from_numpy(x)[None]), torch.ones(1, len(x), dtype=bool))[0].numpy()
                for x in frames
            ]
        )
    frozen = np.zeros((len(frames), 0), np.float32)
    allowed = np.zeros((len(frames), 8), bool)
    allowed[:, :2] = True
    probe = fit_masked_probe(stats, labels, allowed, np.ones(len(frames)), MaskedProbeOptions(layers=(4,), C=1.0))
    model = TunedProbe([block], probe)
    items = np.arange(len(frames))
    logits = tuned_logits(model, frozen, frames, items, batch=7)  # padded batches: the mask keeps them exact
    assert logits[:, :2] == pytest.approx(probe.logits(stats)[:, :2], abs=1e-3)


def test_an_epoch_lowers_the_loss_on_learnable_data():
    torch.manual_seed(0)
    frames, labels = toy(seed=1)
    stats = np.stack([np.r_[x.mean(0), x.std(0)] for x in frames]).astype(np.float32)
    allowed = np.zeros((len(frames), 8), bool)
    allowed[:, :2] = True
    probe = fit_masked_probe(stats * 0, labels, allowed, np.ones(len(frames)), MaskedProbeOptions(layers=(4,)))
    model = TunedProbe([EncoderBlock(WIDTH, 2)], probe)
    model.scale.fill_(1.0)
    optimizer = tuning_optimizer(model, lr=1e-3, head_lr=1e-2)
    items, rng = np.arange(len(frames)), np.random.default_rng(0)
    frozen = np.zeros((len(frames), 0), np.float32)
    args = (frozen, frames, items, labels, allowed, np.ones(len(frames)), 0.0, 8, rng)
    losses = [train_epoch(model, optimizer, *args) for _ in range(5)]
    assert losses[-1] < losses[0]
