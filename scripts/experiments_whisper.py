"""Whisper-encoder experiments on cached hidden states, scored on a protocol's folds (default actor-6fold).

Examples::

    python scripts/experiments_whisper.py DATA svm --layers 3
    python scripts/experiments_whisper.py DATA head --layers 0 1 2 3 4 5 6 --pooling attention
    python scripts/experiments_whisper.py DATA head --layers 2 3 4 --tune-blocks 1 --copies 2

Each run appends one JSON line (name, settings, fold UAs, mean UA/WA/F1) to ``runs/whisper-experiments.jsonl``
and writes its ``metrics.json`` under ``runs/exp/<name>/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from speech_emotion.corpora import load_corpus
from speech_emotion.evaluation.metrics import compute_metrics, summarize
from speech_emotion.labels import emotion_index
from speech_emotion.training.splits import make_splits, validation_split
from speech_emotion.training.whisper.probe import LinearProbe, ProbeOptions, pooled_stats
from speech_emotion.training.whisper.research.head import HeadOptions
from speech_emotion.training.whisper.research.train import HeadTrainOptions, fit, predict_proba, select
from speech_emotion.training.whisper.states import StateOptions, StateStore


def init_blocks(head: HeadOptions) -> list[dict]:
    import torch

    from speech_emotion.training.whisper.checkpoint import load_encoder_state

    state = load_encoder_state()
    out = []
    for b in range(head.base + 1, head.base + 1 + head.tune_blocks):
        prefix = f"layers.{b - 1}."
        out.append({k[len(prefix) :]: torch.from_numpy(v) for k, v in state.items() if k.startswith(prefix)})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data")
    p.add_argument("kind", choices=["svm", "logreg", "head"])
    p.add_argument("--name", default=None)
    p.add_argument("--protocol", default="actor-6fold")
    p.add_argument("--layers", type=int, nargs="+", default=[3])
    p.add_argument("--pooling", default="attention")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--no-layer-norm", action="store_true")
    p.add_argument("--tune-blocks", type=int, default=0)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--block-lr", type=float, default=5e-5)
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--mixup", type=float, default=0.0)
    p.add_argument("--time-masks", type=int, default=0)
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--copies", type=int, default=0, help="augmented copies of each training clip")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="several: ensemble (mean probabilities)")
    p.add_argument("--no-val", action="store_true", help="train on all training speakers for a fixed epoch count")
    p.add_argument("--C", type=float, default=10.0)
    p.add_argument("--save-probs", action="store_true")
    p.add_argument("--frame-norm", action="store_true", help="probe: LayerNorm each frame before pooling")
    args = p.parse_args()
    name = args.name or f"{args.kind}-L{''.join(map(str, args.layers))}"
    corpus = load_corpus(args.data)
    data = Path(args.data)
    splits = make_splits(corpus, args.protocol, data / "FOLDS.tsv")
    y = np.array([emotion_index(e) for e in corpus["emotion"]])
    store = StateStore(StateOptions())
    t0 = time.time()
    states, _ = store.rows(corpus, np.arange(len(corpus)))
    head = HeadOptions(
        layers=tuple(args.layers),
        tune_blocks=args.tune_blocks,
        hidden=args.hidden,
        pooling=args.pooling,
        dropout=args.dropout,
        layer_norm=not args.no_layer_norm,
    )
    folds, all_probs = [], np.zeros((len(corpus), 8), np.float32)
    x_all = pooled_stats(states, args.layers, args.frame_norm) if args.kind != "head" else None
    for split in splits:
        if args.kind in ("svm", "logreg"):
            tr_rows = split.train
            if args.copies:
                aug, tr_rows = store.rows(corpus, split.train, args.copies)
                x_train = pooled_stats(aug, args.layers, args.frame_norm)
            else:
                x_train = x_all[split.train]
            if args.kind == "logreg":
                model = LinearProbe(ProbeOptions(tuple(args.layers), C=args.C, frame_norm=args.frame_norm)).fit(
                    x_train, y[tr_rows]
                )
            else:
                from sklearn.pipeline import make_pipeline
                from sklearn.preprocessing import StandardScaler
                from sklearn.svm import SVC

                model = make_pipeline(StandardScaler(), SVC(C=args.C, probability=True)).fit(x_train, y[tr_rows])
            probs = model.predict_proba(x_all[split.test])
        else:
            frozen = [i for i in args.layers if i <= head.base]
            train_rows, val_rows = (split.train, None) if args.no_val else validation_split(corpus, split.train)
            if args.copies:
                aug, aug_rows = store.rows(corpus, train_rows, args.copies)
                tr_states, tr_y = select(aug, frozen), y[aug_rows]
            else:
                tr_states, tr_y = select([states[r] for r in train_rows], frozen), y[train_rows]
            va = None if val_rows is None else select([states[r] for r in val_rows], frozen)
            te = select([states[r] for r in split.test], frozen)
            probs = np.zeros((len(split.test), 8), np.float32)
            for seed in args.seeds:
                opts = HeadTrainOptions(
                    epochs=args.epochs,
                    lr=args.lr,
                    block_lr=args.block_lr,
                    weight_decay=args.weight_decay,
                    mixup=args.mixup,
                    time_masks=args.time_masks,
                    patience=args.patience,
                    seed=seed,
                )
                model, hist = fit(
                    head,
                    opts,
                    tr_states,
                    tr_y,
                    va,
                    None if val_rows is None else y[val_rows],
                    init_blocks(head) if head.tune_blocks else None,
                )
                best = max(hist, key=lambda r: r.get("val_ua", 0))
                print(
                    f"  {split.name} seed {seed}: best epoch {best['epoch']} val_ua {best.get('val_ua', 0):.3f}",
                    flush=True,
                )
                probs += predict_proba(model, te) / len(args.seeds)
        all_probs[split.test] = probs
        m = compute_metrics(y[split.test], probs.argmax(1))
        m["fold"] = split.name
        folds.append(m)
        print(
            f"{split.name}: UA {m['ua']:.3f} WA {m['wa']:.3f} F1 {m['macro_f1']:.3f}  ({time.time() - t0:.0f} s)",
            flush=True,
        )
    settings = {k: v for k, v in vars(args).items() if k not in ("data", "save_probs")}
    doc = summarize(name, args.protocol, folds, extra={"settings": settings})
    out = Path("runs/exp") / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n")
    if args.save_probs:
        np.save(out / "probs.npy", all_probs)
    line = {
        "name": name,
        "ua": doc["ua"],
        "wa": doc["wa"],
        "macro_f1": doc["macro_f1"],
        "fold_ua": [f["ua"] for f in folds],
        "seconds": round(time.time() - t0),
        "settings": settings,
    }
    with open("runs/whisper-experiments.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    print(f"== {name}: UA {doc['ua']:.4f} (std {doc['ua_std']:.3f}) WA {doc['wa']:.4f} F1 {doc['macro_f1']:.4f}")


if __name__ == "__main__":
    main()
