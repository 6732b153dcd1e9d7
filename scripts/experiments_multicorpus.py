"""Levers for a general model, measured on cached pooled Whisper statistics (fast; no export):

    python scripts/experiments_multicorpus.py --data ../shared/data/ravdess ../shared/data/ased ../shared/data/emovo \
        --config multi-aug-crop [--config ...]

Per config it prints RAVDESS actor-6fold UA (clean test clips, 1-2 s crops of them as a proxy of live windows,
and each test condition), and leave-one-corpus-out UA per held-out corpus (over the labels it shares with the
training corpora, argmax restricted to them) and their mean. The committed figures come from
``speech-emotion evaluate``; this script is for choosing the recipe.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from speech_emotion.corpora import load_corpora, read_folds
from speech_emotion.labels import EMOTIONS, emotion_index
from speech_emotion.training.whisper.masked_probe import (
    MaskedProbeOptions,
    balance_weights,
    corpus_label_masks,
    fit_masked_probe,
    restricted_argmax,
    select_stats,
)
from speech_emotion.training.whisper.pooled import PooledOptions, PooledStore

CONFIGS: dict[str, dict] = {
    "old": {"others": False, "train": ["clean", "sn1", "sn2"], "masked": False, "balance": "none"},
    "old-multi": {"others": True, "train": ["clean", "sn1", "sn2"], "masked": False, "balance": "none"},
    "multi-clean": {"others": True, "train": ["clean"], "masked": True, "balance": "corpus"},
    "multi-clean-unmasked": {"others": True, "train": ["clean"], "masked": False, "balance": "corpus"},
    "multi-aug": {"others": True, "train": ["clean", "aug1"], "masked": True, "balance": "corpus"},
    "multi-crop": {"others": True, "train": ["clean", "crop1"], "masked": True, "balance": "corpus"},
    "multi-aug-crop": {
        "others": True,
        "train": ["clean", "aug1", "crop1", "augcrop1"],
        "masked": True,
        "balance": "corpus",
    },
    "final": {
        "others": True,
        "train": ["clean", "aug1", "aug2", "crop1", "crop2", "augcrop1"],
        "masked": True,
        "balance": "corpus",
    },
    "rav-aug-crop": {
        "others": False,
        "train": ["clean", "aug1", "crop1", "augcrop1"],
        "masked": True,
        "balance": "corpus",
    },
}
CONDITIONS = ["phone", "gsm", "babble10", "babble0", "reverb", "noise10"]


class MlpProbe:
    """Experimental head: standardise -> Linear(d, hidden) -> GELU -> dropout -> Linear(hidden, 8), masked softmax."""

    def __init__(self, x, y, masks, weights, hidden=256, epochs=25, lr=1e-3, weight_decay=0.05, dropout=0.5, seed=0):
        import torch

        torch.manual_seed(seed)
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-6
        xs = torch.from_numpy(((x - self.mean) / self.scale).astype(np.float32))
        yt, allowed = torch.from_numpy(y.astype(np.int64)), torch.from_numpy(masks)
        w = torch.from_numpy(weights.astype(np.float32))
        self.net = torch.nn.Sequential(
            torch.nn.Dropout(0.2),
            torch.nn.Linear(x.shape[1], hidden),
            torch.nn.GELU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, 8),
        )
        opt = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=weight_decay)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(xs), generator=gen).split(256):
                logits = self.net(xs[idx]).masked_fill(~allowed[idx], float("-inf"))
                loss = (torch.nn.functional.cross_entropy(logits, yt[idx], reduction="none") * w[idx]).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()
        self.seen = masks.any(0)

    def predict_proba(self, x):
        import torch

        with torch.no_grad():
            z = self.net(torch.from_numpy(((x - self.mean) / self.scale).astype(np.float32))).numpy()
        z = np.where(self.seen, z, -1e4)
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)


HEAD = {"kind": "linear"}


def ua(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def scored_ua(y: np.ndarray, pred: np.ndarray) -> float:
    """UA over the rows with a prediction (``-1``: not scored)."""
    return ua(y[pred >= 0], pred[pred >= 0])


class Bench:
    def __init__(self, data: list[str]) -> None:
        self.corpus = load_corpora(data)
        self.store = PooledStore(PooledOptions())
        self.cache: dict[str, np.ndarray] = {}
        self.y = np.array([emotion_index(e) for e in self.corpus["emotion"]])
        self.names = self.corpus["corpus"].to_numpy()
        self.masks = corpus_label_masks(self.corpus)

    def stats(self, variant: str, rows: np.ndarray | None = None) -> np.ndarray:
        if variant not in self.cache:
            all_rows = np.arange(len(self.corpus)) if rows is None else rows
            values = self.store.stats(self.corpus, all_rows, variant)
            if rows is not None:
                full = np.zeros((len(self.corpus), *values.shape[1:]), np.float32)
                full[rows] = values
                values = full
            self.cache[variant] = values
        return self.cache[variant]

    def ravdess_folds(self, others: bool):
        """``(test rows, training rows)`` of each RAVDESS actor-6fold fold; the other corpora join training."""
        rav = np.flatnonzero(self.names == "ravdess")
        folds = read_folds("../shared/data/ravdess/FOLDS.tsv")
        fold_of = np.array([folds[s] for s in self.corpus["speaker"].iloc[rav]])
        for fold in sorted(set(fold_of)):
            train = rav[fold_of != fold]
            if others:
                train = np.concatenate([train, np.flatnonzero(self.names != "ravdess")])
            yield rav[fold_of == fold], train

    def held_out_corpora(self):
        """``(held-out name, its rows, training rows, labels shared with training)`` per leave-one-corpus-out fold."""
        for held in sorted(set(self.names)):
            test, train = np.flatnonzero(self.names == held), np.flatnonzero(self.names != held)
            shared = self.masks[held] & np.any([self.masks[n] for n in set(self.names[train])], 0)
            yield held, test, train, shared

    def fit(self, rows: np.ndarray, config: dict, options: MaskedProbeOptions):
        xs, ys, ms, cs = [], [], [], []
        for variant in config["train"]:
            xs.append(select_stats(self.stats(variant)[rows], options.layers))
            ys.append(self.y[rows])
            ms.append(np.stack([self.masks[n] for n in self.names[rows]]))
            cs.append(self.names[rows])
        c = np.concatenate(cs)
        y = np.concatenate(ys)
        weights = balance_weights(c, y, options.balance)
        if HEAD["kind"] == "mlp":
            return MlpProbe(np.concatenate(xs), y, np.concatenate(ms), weights)
        return fit_masked_probe(np.concatenate(xs), y, np.concatenate(ms), weights, options)

    def run_blend(
        self, names: tuple[str, str], alphas: list[float], layers: tuple[int, ...], C: float, conditions: bool
    ) -> list[dict]:
        """Logit mix ``alpha * probe(names[0]) + (1 - alpha) * probe(names[1])`` (one linear layer when exported)."""
        configs = [CONFIGS[n] for n in names]
        options = [MaskedProbeOptions(layers=layers, C=C, masked=c["masked"], balance=c["balance"]) for c in configs]
        rav = np.flatnonzero(self.names == "ravdess")
        tests = ["clean", "crop1"] + ([f"cond:{c}" for c in CONDITIONS] if conditions else [])
        logits: dict[str, list] = {v: [[], []] for v in tests}
        for k, (config, option) in enumerate(zip(configs, options)):
            truth = []
            for test, train in self.ravdess_folds(config["others"]):
                truth.append(self.y[test])
                probe = self.fit(train, config, option)
                for variant in tests:
                    x = select_stats(self.stats(variant, rav if variant.startswith("cond") else None)[test], layers)
                    logits[variant][k].append(np.maximum(probe.logits(x), -30))
        y = np.concatenate(truth)
        loco_logits = {}
        for held, test, train, shared in self.held_out_corpora():
            pair = [
                np.maximum(self.fit(train, c, o).logits(select_stats(self.stats("clean")[test], layers)), -30)
                for c, o in zip(configs, options)
            ]
            loco_logits[held] = (pair, shared, test)
        out = []
        for alpha in alphas:
            result = {}
            for variant in tests:
                z = alpha * np.concatenate(logits[variant][0]) + (1 - alpha) * np.concatenate(logits[variant][1])
                result[variant] = round(100 * ua(y, z.argmax(1)), 1)
            result["crops"] = result.pop("crop1")
            loco = {}
            for held, (pair, shared, test) in loco_logits.items():
                z = alpha * pair[0] + (1 - alpha) * pair[1]
                keep = shared[self.y[test]]
                loco[held] = round(100 * ua(self.y[test][keep], restricted_argmax(z[keep], shared)), 1)
            result["loco"] = loco
            result["loco_mean"] = round(float(np.mean(list(loco.values()))), 1)
            out.append(
                {"config": f"{alpha}*{names[0]}+{1 - alpha:.2f}*{names[1]}", "layers": list(layers), "C": C, **result}
            )
        return out

    def speaker_means(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Per row, the mean of ``x`` over the rows of the same speaker (``x`` and ``rows`` aligned)."""
        speakers = self.corpus["speaker"].to_numpy()[rows]
        out = np.empty_like(x)
        for s in np.unique(speakers):
            out[speakers == s] = x[speakers == s].mean(0)
        return out

    def run_speaker_norm(self, name: str, layers: tuple[int, ...], C: float) -> dict:
        """Per-speaker normalisation (statistics minus the speaker's mean clip), RAVDESS actor-6fold and LOCO, scored
        three ways: without it; with each test speaker's mean over all their clips (every emotion: what RAVDESS
        offers); and with each test speaker heard in one emotion only (the mean over their clips of that emotion:
        a caller who keeps one emotion all call long)."""
        config = CONFIGS[name]
        options = MaskedProbeOptions(layers=layers, C=C, masked=config["masked"], balance=config["balance"])

        offset = [np.zeros(1)]

        def fit_normed(train: np.ndarray):
            clean = select_stats(self.stats("clean")[train], layers)
            means = self.speaker_means(clean, train)
            speakers = self.corpus["speaker"].to_numpy()[train]
            is_neutral = self.y[train] == emotion_index("neutral")
            gaps = [
                means[speakers == s][0] - clean[(speakers == s) & is_neutral].mean(0)
                for s in np.unique(speakers[is_neutral])
            ]
            offset[0] = np.mean(gaps, 0)
            xs, ys, ms, cs = [], [], [], []
            for variant in config["train"]:
                xs.append(select_stats(self.stats(variant)[train], layers) - means)
                ys.append(self.y[train])
                ms.append(np.stack([self.masks[n] for n in self.names[train]]))
                cs.append(self.names[train])
            y, c = np.concatenate(ys), np.concatenate(cs)
            return fit_masked_probe(
                np.concatenate(xs), y, np.concatenate(ms), balance_weights(c, y, options.balance), options
            )

        def scores(probe_plain, probe_norm, test: np.ndarray, allowed: np.ndarray | None = None):
            x = select_stats(self.stats("clean")[test], layers)
            y = self.y[test]
            one = np.empty_like(x)
            speakers = self.corpus["speaker"].to_numpy()[test]
            for s in np.unique(speakers):
                for e in np.unique(y[speakers == s]):
                    pick = (speakers == s) & (y == e)
                    one[pick] = x[pick] - x[pick].mean(0)
            out = {}
            for label, probe, z in (
                ("plain", probe_plain, x),
                ("speaker_norm", probe_norm, x - self.speaker_means(x, test)),
                ("speaker_norm_one_emotion", probe_norm, one),
            ):
                p = probe.predict_proba(z)
                out[label] = restricted_argmax(p, allowed) if allowed is not None else p.argmax(1)
            # A neutral reference instead: the speaker's neutral clips (then not scored), shifted by the training
            # speakers' mean offset between all their clips and their neutral ones. -1 marks rows not scored.
            neutral = emotion_index("neutral")
            ref = np.zeros_like(x)
            for s in np.unique(speakers):
                pick = speakers == s
                if (pick & (y == neutral)).any():
                    ref[pick] = x[pick & (y == neutral)].mean(0) + offset[0]
            has_ref = np.isin(speakers, speakers[y == neutral])
            scored = has_ref & (y != neutral)
            p = probe_norm.predict_proba(x - ref)
            ref_pred = restricted_argmax(p, allowed) if allowed is not None else p.argmax(1)
            out["speaker_norm_neutral_ref"] = np.where(scored, ref_pred, -1)
            out["plain_same_clips"] = np.where(scored, out["plain"], -1)
            return out

        preds: dict[str, list] = {}
        truth = []
        for test, train in self.ravdess_folds(config["others"]):
            got = scores(self.fit(train, config, options), fit_normed(train), test)
            truth.append(self.y[test])
            for k, v in got.items():
                preds.setdefault(k, []).append(v)
        y = np.concatenate(truth)
        result = {k: round(100 * scored_ua(y, np.concatenate(v)), 1) for k, v in preds.items()}
        loco = {}
        for held, test, train, shared in self.held_out_corpora():
            keep = test[shared[self.y[test]]]
            got = scores(self.fit(train, config, options), fit_normed(train), keep, shared)
            loco[held] = {k: round(100 * scored_ua(self.y[keep], v), 1) for k, v in got.items()}
        result["loco"] = loco
        result["loco_mean"] = {
            k: round(float(np.mean([loco[h][k] for h in loco])), 1) for k in next(iter(loco.values()))
        }
        return {"config": name, "lever": "speaker-norm", "layers": list(layers), "C": C, **result}

    def run(self, name: str, config: dict, layers: tuple[int, ...], C: float, conditions: bool, crops: bool) -> dict:
        options = MaskedProbeOptions(layers=layers, C=C, masked=config["masked"], balance=config["balance"])
        rav = np.flatnonzero(self.names == "ravdess")
        preds: dict[str, list] = {}
        truth = []
        for test, train in self.ravdess_folds(config["others"]):
            probe = self.fit(train, config, options)
            truth.append(self.y[test])
            tests = ["clean"] + (["crop1"] if crops else [])
            tests += [f"cond:{c}" for c in CONDITIONS] if conditions else []
            for variant in tests:
                x = select_stats(self.stats(variant, rav if variant.startswith("cond") else None)[test], layers)
                preds.setdefault(variant, []).append(probe.predict_proba(x).argmax(1))
        y = np.concatenate(truth)
        result = {v: round(100 * ua(y, np.concatenate(p)), 1) for v, p in preds.items()}
        if crops:
            result["crops"] = result.pop("crop1")
        loco = {}
        for held, test, train, shared in self.held_out_corpora():
            probe = self.fit(train, config, options)
            keep = shared[self.y[test]]
            probs = probe.predict_proba(select_stats(self.stats("clean")[test], layers))
            loco[held] = round(100 * ua(self.y[test][keep], restricted_argmax(probs[keep], shared)), 1)
        result["loco"] = loco
        result["loco_mean"] = round(float(np.mean(list(loco.values()))), 1)
        return {"config": name, "layers": list(layers), "C": C, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--config", nargs="+", default=["old", "multi"], choices=sorted(CONFIGS))
    parser.add_argument("--layers", default="2,3,4")
    parser.add_argument("--C", type=float, nargs="+", default=[0.03])
    parser.add_argument("--head", default="linear", choices=["linear", "mlp"])
    parser.add_argument("--balance", default=None, choices=["corpus", "class", "none"], help="override the config's")
    parser.add_argument("--conditions", action="store_true", help="also score the test conditions")
    parser.add_argument("--no-crops", action="store_true", help="skip the 1-2 s crop scores (live-window proxy)")
    parser.add_argument("--blend", nargs=2, metavar=("A", "B"), choices=sorted(CONFIGS), help="mix two configs' logits")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--speaker-norm", action="store_true", help="measure per-speaker normalisation (--config)")
    args = parser.parse_args()
    HEAD["kind"] = args.head
    bench = Bench(args.data)
    layers = tuple(int(v) for v in args.layers.split(","))
    if args.speaker_norm:
        for name in args.config:
            print(json.dumps(bench.run_speaker_norm(name, layers, args.C[0])), flush=True)
        return
    if args.blend:
        for result in bench.run_blend(tuple(args.blend), args.alphas, layers, args.C[0], args.conditions):
            print(json.dumps(result), flush=True)
        return
    for name in args.config:
        for C in args.C:
            config = {**CONFIGS[name], **({"balance": args.balance} if args.balance else {})}
            result = bench.run(name, config, layers, C, args.conditions, not args.no_crops)
            print(json.dumps({"head": args.head, "balance": config["balance"], **result}), flush=True)
    print("labels:", ", ".join(EMOTIONS))


if __name__ == "__main__":
    main()
