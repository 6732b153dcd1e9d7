"""Measure the dimensional head (arousal, valence, dominance) speaker-independently and leave-one-corpus-out.

Reads the pooled statistics written by ``scripts/dimensions_pooled.py`` (one ``.npz`` per corpus) and reports:

- RAVDESS actor-6fold (``FOLDS.tsv``; the other corpora in every fold's training set): the within-emotion
  intensity test (AUC of arousal, strong over normal, per emotion, test actors only) and CCC / Spearman against
  the anchors on the test actors;
- leave-one-corpus-out over the multi-speaker corpora: Spearman and CCC of each dimension against the anchors
  on the held-out corpus (weak evidence: the anchors are per emotion, so this rewards re-deriving the category);
- the same for two baselines read off the shipped classifier's probabilities: the circumplex proxy
  ``P(angry, fearful, happy, surprised, disgust) - P(neutral, calm, sad)`` (arousal only) and the expected
  anchor under the probabilities (``sum_e P(e) * anchor(e)``). The shipped classifier was trained on RAVDESS,
  ASED and EMOVO, so the baselines are not held out there (they are on the other corpora).

    python scripts/dimensions_experiment.py --cache ../cache/dims --out results/dimensions/whisper-base-general.json \
        --plot docs/img/dimensions.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from speech_emotion.evaluation.dimensions import anchor_agreement, intensity_aucs
from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import softmax
from speech_emotion.training.dimensions import (
    DIMENSIONS,
    DimensionHeadOptions,
    anchor_matrix,
    balanced_weights,
    fit_dimension_head,
    intensity_pairs,
)

SINGLE_SPEAKER = ("esd-0020",)
"""Training only: one speaker cannot be held out speaker-independently."""
HIGH = ("angry", "fearful", "happy", "surprised", "disgust")
LOW = ("neutral", "calm", "sad")


def load(cache: Path) -> dict[str, np.ndarray]:
    parts = []
    for path in sorted(cache.glob("*.npz")):
        with np.load(path, allow_pickle=True) as data:
            n = len(data["emotion"])
            corpus = path.stem.rsplit("-", 1)[0]
            parts.append({k: data[k] for k in ("pooled", "logits", "path", "emotion", "speaker")})
            parts[-1]["corpus"] = np.full(n, corpus)
            parts[-1]["fold"] = data["fold"] if len(data["fold"]) == n else np.full(n, "")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def baselines(logits: np.ndarray) -> dict[str, np.ndarray]:
    probs = softmax(logits.astype(np.float64))
    idx = {e: i for i, e in enumerate(EMOTIONS)}
    proxy = probs[:, [idx[e] for e in HIGH]].sum(1) - probs[:, [idx[e] for e in LOW]].sum(1)
    expected = probs @ anchor_matrix(list(EMOTIONS))
    return {
        "circumplex-proxy": np.stack([proxy, np.full(len(proxy), np.nan), np.full(len(proxy), np.nan)], 1),
        "expected-anchor": expected,
    }


def scores(pred: np.ndarray, emotion: np.ndarray) -> dict[str, dict[str, float]]:
    """Spearman and CCC against the anchors per dimension (those the predictor gives), rounded."""
    given = [name for j, name in enumerate(DIMENSIONS) if not np.isnan(pred[:, j]).all()]
    agreement = anchor_agreement(np.nan_to_num(pred, nan=0.5), emotion)
    return {name: {key: round(agreement[name][key], 3) for key in ("spearman", "ccc")} for name in given}


def intensity(pred: np.ndarray, paths: np.ndarray, emotion: np.ndarray) -> dict[str, float]:
    """The within-emotion intensity AUCs of the arousal column (RAVDESS names say each clip's intensity), rounded."""
    level = np.array(["strong" if Path(str(p)).stem.split("-")[3] == "02" else "normal" for p in paths])
    return {k: round(v, 3) for k, v in intensity_aucs(pred[:, 0], emotion, level).items()}


def fit(data: dict[str, np.ndarray], rows: np.ndarray, options: DimensionHeadOptions):
    pairs_local = intensity_pairs(data["path"][rows]) if (data["corpus"][rows] == "ravdess").any() else np.zeros((0, 2))
    return fit_dimension_head(
        data["pooled"][rows],
        anchor_matrix(data["emotion"][rows]),
        balanced_weights(data["corpus"][rows], data["emotion"][rows]),
        pairs_local,
        options,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--plot", type=Path)
    ap.add_argument("--options", default="{}", help="DimensionHeadOptions as JSON")
    ap.add_argument(
        "--ship", type=Path, help="fit on every clip of every corpus and add the head to this bundle folder"
    )
    args = ap.parse_args()
    options = DimensionHeadOptions(**json.loads(args.options))
    data = load(args.cache)
    if args.ship:
        head = fit(data, np.arange(len(data["emotion"])), options)
        corpora = sorted(set(data["corpus"]))
        np.savez(
            args.ship,
            weight=head.weight,
            bias=head.bias,
            corpora=np.array(corpora),
            options=json.dumps(options.__dict__),
        )
        print(f"head fitted on {len(data['emotion'])} clips of {', '.join(corpora)} -> {args.ship}")
        return
    base = baselines(data["logits"])
    result: dict = {
        "command": "python scripts/dimensions_experiment.py " + " ".join(sys.argv[1:]),
        "options": options.__dict__,
        "clips": {c: int((data["corpus"] == c).sum()) for c in np.unique(data["corpus"])},
    }

    # RAVDESS actor-6fold, other corpora in every fold's training set
    rav = data["corpus"] == "ravdess"
    folds = sorted(set(data["fold"][rav]))
    pred = np.full((len(rav), 3), np.nan)
    for fold in folds:
        test = rav & (data["fold"] == fold)
        head = fit(data, np.flatnonzero(~test), options)
        pred[test] = head(data["pooled"][test])
    result["actor-6fold"] = {
        "head": {
            "intensity_auc": intensity(pred[rav], data["path"][rav], data["emotion"][rav]),
            "anchors": scores(pred[rav], data["emotion"][rav]),
        },
        **{
            name: {
                "intensity_auc": intensity(b[rav], data["path"][rav], data["emotion"][rav]),
                "anchors": scores(b[rav], data["emotion"][rav]),
            }
            for name, b in base.items()
        },
    }
    print("actor-6fold", json.dumps(result["actor-6fold"]))

    # leave-one-corpus-out over the multi-speaker corpora
    loco = {}
    for corpus in sorted(set(data["corpus"]) - set(SINGLE_SPEAKER)):
        test = data["corpus"] == corpus
        head = fit(data, np.flatnonzero(~test), options)
        p = head(data["pooled"][test])
        loco[corpus] = {
            "head": scores(p, data["emotion"][test]),
            **{name: scores(b[test], data["emotion"][test]) for name, b in base.items()},
        }
        print(corpus, json.dumps(loco[corpus]))
    result["leave-one-corpus-out"] = loco
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot(result, args.plot)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    auc = result["actor-6fold"]
    names = [e for e in auc["head"]["intensity_auc"] if e != "mean"]
    for k, (label, key) in enumerate(
        [("head", "head"), ("expected anchor", "expected-anchor"), ("circumplex proxy", "circumplex-proxy")]
    ):
        axes[0].bar(
            np.arange(len(names)) + (k - 1) * 0.27,
            [auc[key]["intensity_auc"][e] for e in names],
            0.27,
            label=f"{label} (mean {auc[key]['intensity_auc']['mean']:.2f})",
        )
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].set_xticks(range(len(names)), names, rotation=30)
    axes[0].set_ylim(0.2, 1.0)
    axes[0].set_title("RAVDESS held-out actors: arousal AUC, strong > normal")
    axes[0].legend(fontsize=8)
    loco = result["leave-one-corpus-out"]
    corpora = list(loco)
    for k, dim in enumerate(DIMENSIONS):
        axes[1].bar(
            np.arange(len(corpora)) + (k - 1) * 0.27,
            [loco[c]["head"][dim]["spearman"] for c in corpora],
            0.27,
            label=dim,
        )
    axes[1].set_xticks(range(len(corpora)), corpora, rotation=30)
    axes[1].set_title("Leave-one-corpus-out: Spearman vs anchors (head)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
