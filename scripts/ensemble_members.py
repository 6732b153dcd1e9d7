"""Score each member of a finished CNN-LSTM ensemble run, and ensembles of its first k members.

Usage: ``python scripts/ensemble_members.py runs/v4-actor-6fold --data ../shared/data/ravdess``.
Reads each fold's ``work/member<i>/best.pt`` of an ``evaluate`` run (options from its
``metrics.json``) and prints per-fold and mean test UA; nothing is trained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="an evaluate --out folder of an ensemble run")
    parser.add_argument("--data", type=Path, required=True, help="the corpus the run was evaluated on")
    parser.add_argument("--folds", type=Path, default=None, help="fold file (default: DATA/FOLDS.tsv)")
    args = parser.parse_args()

    import torch

    from speech_emotion.corpora import load_corpus
    from speech_emotion.evaluation.metrics import compute_metrics
    from speech_emotion.labels import emotion_index
    from speech_emotion.training.data import evaluation_examples
    from speech_emotion.training.models import CnnLstm
    from speech_emotion.training.recipes import make_recipe
    from speech_emotion.training.splits import make_splits
    from speech_emotion.training.trainer import evaluate_model

    torch.set_num_threads(1)
    doc = json.loads((args.run / "metrics.json").read_text())
    recipe = make_recipe(doc["model"], **doc["recipe"])
    corpus = load_corpus(args.data)
    splits = make_splits(corpus, doc["protocol"], args.folds or args.data / "FOLDS.tsv")
    scores: dict[str, list[float]] = {}
    for split in splits:
        members = sorted((args.run / "folds" / split.name / "work").glob("member*/best.pt"))
        examples = evaluation_examples(recipe.store, corpus, split.test)
        y_true = np.array([emotion_index(e) for e in corpus["emotion"].iloc[split.test]])
        probs = []
        for path in members:
            model = CnnLstm(recipe.model_options)
            model.load_state_dict(torch.load(path))
            probs.append(evaluate_model(model, examples)[0])
        row = {f"member {i}": p for i, p in enumerate(probs)}
        row |= {f"first {k}": np.mean(probs[:k], axis=0) for k in range(2, len(probs) + 1)}
        line = []
        for name, p in row.items():
            ua = compute_metrics(y_true, p.argmax(axis=1))["ua"]
            scores.setdefault(name, []).append(ua)
            line.append(f"{name} {100 * ua:.1f}")
        print(f"{split.name}: " + "  ".join(line), flush=True)
    print("mean UA %: " + "  ".join(f"{name} {100 * np.mean(v):.1f}" for name, v in scores.items()))


if __name__ == "__main__":
    main()
