"""Fine-tuning the top Whisper block(s) for corpora never heard (experiment; issue 17 item 2):

    python scripts/experiments_finetune_corpora.py \
        --train ../shared/data/ravdess ../shared/data/ased ../shared/data/emovo ../corpora/esd-0020 \
        --held-out ../corpora/nemo ../corpora/es-students ../corpora/emospeech-cmd \
        --views clean aug1 crop1 augcrop1 --tune 1 --epochs 3 --out ../runs/finetune/t1

The probe of the ``whisper-base-multicorpus`` recipe (layers 2-4, mean + std, masked per-corpus softmax, corpus and
class balance, C 0.03) is fitted on the frozen statistics of the training corpora's views (:mod:`pooled` variants:
the clip, recording-chain copies, live-window crops); then the top ``--tune`` block(s) of the 4 and the probe
train together (AdamW, the probe's L2 kept), reading the cached output frames of block ``4 - tune``, so the lower
blocks run once per view, never per epoch. After every epoch (epoch 0: the probe alone) each held-out corpus is
scored on its clean clips, UA over its own labels: the corpora are never trained on, and no setting is chosen on
them (the epoch count is fixed in advance; every epoch is reported).

Writes ``log.jsonl`` (one line per epoch: loss, UA per held-out corpus, seconds), ``epoch<k>.pt`` (the tuned
blocks and linear layer) and ``held_out_epoch<k>.npz`` (8-way logits, labels, corpus of every held-out clip).
Frames are cached by content (``--cache``; float16, about 100 KB per second of audio).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speech_emotion.corpora import load_corpora
from speech_emotion.errors import AudioError
from speech_emotion.labels import emotion_index
from speech_emotion.training.cache import ClipStore, FeatureCache
from speech_emotion.training.whisper.encoder import cached_encoder
from speech_emotion.training.whisper.masked_probe import (
    MaskedProbeOptions,
    balance_weights,
    corpus_label_masks,
    fit_masked_probe,
    restricted_argmax,
    select_stats,
)
from speech_emotion.training.whisper.pooled import (
    PooledOptions,
    PooledStore,
    Variant,
    item_key,
    row_variant,
    variant_audio,
)
from speech_emotion.training.whisper.research.tuning import (
    TunedProbe,
    train_epoch,
    tuned_logits,
    tuning_optimizer,
    unweighted_accuracy,
)

LAYERS = (2, 3, 4)


@dataclass(frozen=True)
class FrameOptions:
    """Output frames of block ``base`` of the variants of :mod:`pooled` (same audio, same encoder)."""

    pooled: PooledOptions
    base: int

    def cache_key(self) -> str:
        return f"{self.pooled.cache_key()}-frames{self.base}"


def _frames(job: tuple[str, str, Variant, FrameOptions]) -> np.ndarray:
    path, digest, variant, options = job
    cache = FeatureCache(options.pooled.cache_dir, options.cache_key())

    def run() -> np.ndarray:
        from speech_emotion.features.logmel import log_mel

        try:
            samples = variant_audio(path, digest, variant, options.pooled)
        except AudioError:
            width = cached_encoder(options.pooled.weights, options.base).config.width
            return np.zeros((0, width), np.float16)
        mel = torch.from_numpy(log_mel(samples, options.pooled.logmel)[None])
        with torch.inference_mode():
            (h,) = cached_encoder(options.pooled.weights, options.base)(mel, layers=[options.base])
        return h[0].numpy().astype(np.float16)

    return cache.get_or_compute(item_key(digest, variant), run)


def _init_worker() -> None:
    torch.set_num_threads(1)


def frame_store(options: FrameOptions) -> ClipStore:
    return ClipStore(
        FeatureCache(options.pooled.cache_dir, options.cache_key()),
        item_key,
        _frames,
        options,
        workers=options.pooled.workers,
        desc=f"block-{options.base} frames",
        start_method="spawn",
        initializer=_init_worker,
    )


def views(corpus, rows: np.ndarray, names: list[str]) -> list[tuple[int, Variant]]:  # noqa: ANN001
    """``(row, variant)`` for each row and view name, keyed as :class:`PooledStore` keys them."""
    return [(int(r), row_variant(corpus, int(r), name)) for name in names for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", required=True)
    parser.add_argument("--held-out", nargs="+", required=True)
    parser.add_argument("--views", nargs="+", default=["clean", "aug1", "crop1", "augcrop1"])
    parser.add_argument("--tune", type=int, default=1, help="top blocks to tune (of 4)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-5, help="tuned blocks")
    parser.add_argument("--head-lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--C", type=float, default=0.03)
    parser.add_argument("--limit", type=int, default=0, help="clips per corpus (smoke tests)")
    parser.add_argument("--cache", default=None, help="feature cache (default: SPEECH_EMOTION_CACHE)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    corpus = load_corpora([*args.train, *args.held_out])
    names = corpus["corpus"].to_numpy()
    held = {Path(p).resolve().name for p in args.held_out}
    if args.limit:
        rng0 = np.random.default_rng(0)
        keep = np.concatenate(
            [rng0.permutation(np.flatnonzero(names == n))[: args.limit] for n in dict.fromkeys(names)]
        )
        corpus = corpus.iloc[np.sort(keep)].reset_index(drop=True)
        names = corpus["corpus"].to_numpy()
    y_all = np.array([emotion_index(e) for e in corpus["emotion"]])
    masks = corpus_label_masks(corpus)
    train_rows = np.flatnonzero(~np.isin(names, list(held)))
    test_rows = np.flatnonzero(np.isin(names, list(held)))

    pooled_options = PooledOptions(cache_dir=args.cache)
    pooled = PooledStore(pooled_options)
    frames = frame_store(FrameOptions(pooled_options, 4 - args.tune))
    paths = corpus["path"].astype(str).to_numpy()

    train_items = views(corpus, train_rows, args.views)
    test_items = views(corpus, test_rows, ["clean"])
    all_items = train_items + test_items
    stats = np.stack(pooled.get([paths[r] for r, _ in all_items], [v for _, v in all_items]))  # type: ignore[arg-type]
    h = frames.get([paths[r] for r, _ in all_items], [v for _, v in all_items])  # type: ignore[arg-type]
    usable = np.array([np.isfinite(s).all() and len(x) > 0 for s, x in zip(stats, h)])
    print(f"{len(all_items)} views, {int((~usable).sum())} unusable (left out)", flush=True)
    row_of = np.array([r for r, _ in all_items])
    is_train = np.arange(len(all_items)) < len(train_items)
    tr = np.flatnonzero(is_train & usable)
    te = np.flatnonzero(~is_train & usable)
    first = 4 - args.tune
    frozen = select_stats(stats, [layer for layer in LAYERS if layer <= first]).astype(np.float32)
    full = select_stats(stats, LAYERS).astype(np.float32)

    y_tr, y_te = y_all[row_of[tr]], y_all[row_of[te]]
    m_tr = np.stack([masks[names[r]] for r in row_of[tr]])
    options = MaskedProbeOptions(layers=LAYERS, C=args.C)
    w_tr = balance_weights(names[row_of[tr]], y_tr, options.balance)
    probe = fit_masked_probe(full[tr], y_tr, m_tr, w_tr, options)
    encoder = cached_encoder(None, 4)
    model = TunedProbe([encoder.layers[i] for i in range(first, 4)], probe)
    opt = tuning_optimizer(model, args.lr, args.head_lr)
    l2 = 1.0 / (2.0 * args.C * len(tr))
    rng = np.random.default_rng(0)
    held_names = names[row_of[te]]

    def evaluate(epoch: int, loss: float | None, seconds: float) -> None:
        z = tuned_logits(model, frozen, h, te)
        scores = {}
        for name in sorted(set(held_names)):
            sel = held_names == name
            scores[name] = round(100 * unweighted_accuracy(y_te[sel], restricted_argmax(z[sel], masks[name])), 1)
        record = {"epoch": epoch, "loss": loss, "ua": scores, "mean": round(float(np.mean(list(scores.values()))), 2)}
        record |= {"seconds": round(seconds), "tune": args.tune, "lr": args.lr, "views": args.views}
        print(json.dumps(record), flush=True)
        with (out / "log.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
        np.savez_compressed(out / f"held_out_epoch{epoch}.npz", logits=z, y=y_te, corpus=held_names)

    evaluate(0, None, 0.0)
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        loss = train_epoch(model, opt, frozen, h, tr, y_tr, m_tr, w_tr, l2, args.batch, rng)
        torch.save(model.state_dict(), out / f"epoch{epoch}.pt")
        evaluate(epoch, round(loss, 4), time.time() - t0)


if __name__ == "__main__":
    main()
