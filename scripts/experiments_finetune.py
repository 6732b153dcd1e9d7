"""Fine-tuning the top Whisper block(s) on cached lower-block states, started from the linear probe (experiment):

    python scripts/experiments_finetune.py --data ../shared/data/ravdess \
        [--others ../shared/data/ased ../shared/data/emovo] \
        --tune 1 --epochs 3 --lr 1e-5 --log runs/finetune.jsonl

For each RAVDESS ``actor-6fold`` fold: the probe of the shipped recipe (layers 2-4, mean + std, C 0.03) is fitted on
the frozen statistics of the clip and its speed/noise copies; then the top ``--tune`` block(s) of the 4 and the probe
are trained together (AdamW, the probe's L2 kept), reading the cached states of block ``4 - tune`` so the lower
blocks never run. Prints and logs the test fold's UA after every epoch (epoch 0 = the probe alone).
States come from :class:`~speech_emotion.training.whisper.states.StateStore` (``python scripts/whisper_cache.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from speech_emotion.corpora import load_corpora, read_folds
from speech_emotion.labels import emotion_index
from speech_emotion.training.whisper.checkpoint import load_encoder_state
from speech_emotion.training.whisper.encoder import WhisperEncoder
from speech_emotion.training.whisper.masked_probe import (
    MaskedProbeOptions,
    balance_weights,
    corpus_label_masks,
    fit_masked_probe,
)
from speech_emotion.training.whisper.research.tuning import (
    TunedProbe,
    train_epoch,
    tuned_logits,
    tuning_optimizer,
    unweighted_accuracy,
)
from speech_emotion.training.whisper.states import StateOptions, StateStore

LAYERS = (2, 3, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True)
    parser.add_argument("--others", nargs="*", default=[])
    parser.add_argument("--tune", type=int, default=1, help="top blocks to tune (of 4)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--head-lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--C", type=float, default=0.03)
    parser.add_argument("--folds", default="1,2,3,4,5,6")
    parser.add_argument("--log", default="runs/finetune.jsonl")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    corpus = load_corpora([args.data, *args.others])
    names = corpus["corpus"].to_numpy()
    y_all = np.array([emotion_index(e) for e in corpus["emotion"]])
    masks = corpus_label_masks(corpus)
    rav = np.flatnonzero(names == names[0])
    folds = read_folds(str(Path(args.data) / "FOLDS.tsv"))
    fold_of = np.array([int(folds[s]) for s in corpus["speaker"].iloc[rav]])

    first = 4 - args.tune  # cached state the tuned blocks read
    store = StateStore(StateOptions())
    rows = np.arange(len(corpus))
    states, row_of = store.rows(corpus, rows, copies=args.copies)
    copy_of = np.array([i % (args.copies + 1) for i in range(len(states))])
    frozen_layers = [layer for layer in LAYERS if layer <= first]
    frozen = np.stack(
        [
            np.concatenate(
                [
                    np.r_[s[layer].astype(np.float32).mean(0), s[layer].astype(np.float32).std(0)]
                    for layer in frozen_layers
                ]
            )
            for s in states
        ]
    )
    full = np.stack(
        [
            np.concatenate(
                [np.r_[s[layer].astype(np.float32).mean(0), s[layer].astype(np.float32).std(0)] for layer in LAYERS]
            )
            for s in states
        ]
    )
    inputs = [s[first] for s in states]  # float16 (t, c)
    lengths = np.array([len(x) for x in inputs])
    del states
    print(f"loaded {len(inputs)} states, frames median {int(np.median(lengths))}", flush=True)

    encoder = WhisperEncoder.from_state(load_encoder_state(None), layers=4)
    top = [encoder.layers[i] for i in range(first, 4)]
    options = MaskedProbeOptions(
        layers=LAYERS, C=args.C, masked=bool(args.others), balance="corpus" if args.others else "none"
    )
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    for fold in [int(f) for f in args.folds.split(",")]:
        test_rows = set(rav[fold_of == fold].tolist())
        train_items = np.array([i for i, r in enumerate(row_of) if r not in test_rows], dtype=int)
        test_items = np.array([i for i, r in enumerate(row_of) if r in test_rows and copy_of[i] == 0], dtype=int)
        y_tr, y_te = y_all[row_of[train_items]], y_all[row_of[test_items]]
        m_tr = np.stack([masks[names[r]] for r in row_of[train_items]])
        w_tr = balance_weights(names[row_of[train_items]], y_tr, options.balance)
        probe = fit_masked_probe(full[train_items], y_tr, m_tr, w_tr, options)
        base = unweighted_accuracy(y_te, probe.logits(full[test_items]).argmax(1))
        print(f"fold {fold}: probe UA {100 * base:.1f}", flush=True)
        model = TunedProbe(top, probe)
        opt = tuning_optimizer(model, args.lr, args.head_lr)
        l2 = 1.0 / (2.0 * args.C * len(train_items))
        rng = np.random.default_rng(fold)
        record = {
            "fold": fold,
            "tune": args.tune,
            "lr": args.lr,
            "head_lr": args.head_lr,
            "others": bool(args.others),
            "copies": args.copies,
            "ua": [round(100 * base, 1)],
        }
        for epoch in range(1, args.epochs + 1):
            t0 = time.time()
            loss = train_epoch(model, opt, frozen, inputs, train_items, y_tr, m_tr, w_tr, l2, args.batch, rng)
            score = unweighted_accuracy(y_te, tuned_logits(model, frozen, inputs, test_items).argmax(1))
            record["ua"].append(round(100 * score, 1))
            print(
                f"fold {fold} epoch {epoch}: loss {loss:.3f} UA {100 * score:.1f} ({time.time() - t0:.0f} s)",
                flush=True,
            )
        with log.open("a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
