"""Calibration levers compared leave-one-corpus-out on out-of-corpus predictions.

Each lever is fitted on all of ``--corpora`` but one and judged on the one left out (ECE over 15 bins, NLL,
confidently wrong share of the full 8-way output), in turn; printed as a table with the means. Levers:
``none`` (as shipped); ``temperature`` (Guo et al. 2017, one scalar, every clip or every corpus weighing the same);
``vector`` (vector scaling, Guo et al. 2017 section 4.2: a scale and a bias per class, L2-penalised towards the
identity, every corpus weighing the same); ``duration`` (a temperature that depends on how much speech the answer
rests on, ``T(d) = T0 * (d / 3 s) ** b`` with ``d`` the clip's length once trimmed as the model hears it: shorter
speech, less evidence; every corpus weighing the same).

The predictions are an ``evaluate --model`` run's ``predictions.csv`` (``logit_<label>`` columns, with ``--model``)
or a training protocol's (``p_<label>`` columns, whose logarithms are the logits up to a per-clip constant), or
``--folds DIR``: the ``result.json`` of each finished fold of a protocol run (``DIR/folds/*/result.json``), e.g. of a
``leave-one-corpus-out`` run stopped before its last fold.

Usage::

    python scripts/experiments_calibration.py \\
        --predictions ../runs/calib/whisper-base-general-as-shipped/predictions.csv \\
        --model whisper-base-general --corpora nemo es-students esd-0020 emospeech-cmd
    python scripts/experiments_calibration.py --folds ../runs/merge1/clean-full-loco \\
        --corpora ased emospeech-cmd emovo es-students esd-0020 nemo --durations ../runs/calib/durations.csv
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from speech_emotion.calibration import Calibration
from speech_emotion.evaluation.calibration import corpus_weights, fit_temperature
from speech_emotion.evaluation.metrics import calibration_metrics

REFERENCE_S = 3.0
"""Speech length (s) at which the duration lever's temperature is ``T0``."""


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fit_vector(logits: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = 1e-2) -> tuple[np.ndarray, ...]:
    """Per-class scale ``w`` and bias ``b`` minimising the weighted NLL of ``softmax(w * logits + b)``."""
    k = logits.shape[1]
    weights = weights / weights.sum()

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:k], params[k:]
        logp = _log_softmax(logits * w + b)
        p = np.exp(logp)
        onehot = np.eye(k)[y]
        value = -(weights * logp[np.arange(len(y)), y]).sum() + l2 * (((w - w.mean()) ** 2).sum() + (b**2).sum())
        grad_z = (p - onehot) * weights[:, None]
        grad_w = (grad_z * logits).sum(axis=0) + 2 * l2 * (w - w.mean())
        grad_b = grad_z.sum(axis=0) + 2 * l2 * b
        return float(value), np.concatenate([grad_w, grad_b])

    start = np.concatenate([np.full(k, 1.0 / 4), np.zeros(k)])
    result = minimize(loss, start, jac=True, method="L-BFGS-B")
    return result.x[:k], result.x[k:]


def duration_probabilities(logits: np.ndarray, log_d: np.ndarray, params: np.ndarray) -> np.ndarray:
    """``softmax(logits / T(d))`` with ``log T(d) = params[0] + params[1] * log_d`` (``log_d``: log of d / 3 s)."""
    t = np.exp(params[0] + params[1] * log_d)[:, None]
    return np.exp(_log_softmax(logits / t))


def fit_duration(logits: np.ndarray, y: np.ndarray, log_d: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(log T0, b)`` of the duration lever minimising the weighted NLL."""
    weights = weights / weights.sum()

    def loss(params: np.ndarray) -> float:
        p = duration_probabilities(logits, log_d, params)
        return float(-(weights * np.log(p[np.arange(len(y)), y] + 1e-300)).sum())

    return minimize(loss, np.array([np.log(3.0), 0.0]), method="Nelder-Mead", options={"xatol": 1e-5}).x


def trimmed_seconds(paths: list[str], cache: Path | None) -> dict[str, float]:
    """Each clip's length (s) once trimmed and conditioned as the model hears it (``conditioning.prepare``), read
    from and added to ``cache`` (a CSV of ``path,trimmed_s``) when given; NaN for a clip the preprocessing refuses."""
    from tqdm import tqdm

    from speech_emotion.conditioning import SAMPLE_RATE, AudioOptions, prepare
    from speech_emotion.errors import AudioError

    known: dict[str, float] = {}
    if cache is not None and cache.exists():
        known = dict(pd.read_csv(cache).itertuples(index=False, name=None))
    missing = [p for p in dict.fromkeys(paths) if p not in known]
    for path in tqdm(missing, desc="trimmed lengths", disable=not missing):
        try:
            known[path] = len(prepare(path, AudioOptions())) / SAMPLE_RATE
        except AudioError:
            known[path] = float("nan")
    if cache is not None and missing:
        pd.DataFrame(sorted(known.items()), columns=["path", "trimmed_s"]).to_csv(cache, index=False)
    return known


def load_predictions(args: argparse.Namespace) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The predictions table, its ``(clips, labels)`` logits and the label order."""
    if args.folds:
        results = sorted(Path(args.folds).glob("folds/*/result.json"))
        rows = [r for f in results for r in json.loads(f.read_text())["predictions"]]
        table = pd.DataFrame(rows)
        table["corpus"] = table["fold"]  # leave-one-corpus-out folds are named by their held-out corpus
    else:
        table = pd.read_csv(args.predictions)
    if args.model:
        from speech_emotion.bundle import load_bundle
        from speech_emotion.evaluation.bundle_score import logit_columns

        labels = list(load_bundle(args.model).labels)
        logits = table[logit_columns(labels)].to_numpy(np.float64)
    else:
        labels = [c[2:] for c in table.columns if c.startswith("p_")]
        logits = np.log(np.clip(table[[f"p_{e}" for e in labels]].to_numpy(np.float64), 1e-300, 1.0))
    keep = table["corpus"].isin(args.corpora).to_numpy()
    return table[keep].reset_index(drop=True), logits[keep], labels


Fit = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="predictions.csv of an evaluate run")
    source.add_argument("--folds", help="a protocol run's folder: its finished folds' result.json are read")
    parser.add_argument("--model", help="the bundle whose logit_<label> columns are read (evaluate --model runs)")
    parser.add_argument("--corpora", nargs="+", required=True)
    parser.add_argument("--durations", type=Path, help="CSV cache of trimmed clip lengths (the duration lever)")
    args = parser.parse_args()
    table, logits, labels = load_predictions(args)
    y = np.array([labels.index(e) for e in table["actual"]])
    names = table["corpus"].to_numpy()
    seconds = trimmed_seconds(list(table["path"]), args.durations)
    log_d = np.log(np.array([seconds[p] for p in table["path"]]) / REFERENCE_S)
    usable = np.isfinite(log_d)
    table, logits, y, names, log_d = table[usable], logits[usable], y[usable], names[usable], log_d[usable]

    def temperature(weigh: str) -> Fit:
        def fit(z, t, n, _):
            cal = Calibration(fit_temperature(z, t, corpus_weights(n) if weigh == "corpus" else None))
            return lambda x, _d: cal.probabilities(x)

        return fit

    def vector(z, t, n, _):
        w, b = fit_vector(z, t, corpus_weights(n))
        return lambda x, _d: np.exp(_log_softmax(x * w + b))

    def duration(z, t, n, d):
        params = fit_duration(z, t, d, corpus_weights(n))
        return lambda x, dx: duration_probabilities(x, dx, params)

    levers: dict[str, Fit] = {
        "none": lambda z, t, n, d: lambda x, _d: Calibration().probabilities(x),
        "temperature, every clip": temperature("clip"),
        "temperature, every corpus": temperature("corpus"),
        "vector scaling, every corpus": vector,
        "temperature by speech duration, every corpus": duration,
    }
    corpora = sorted(set(names))
    for c in corpora:
        m = names == c
        print(f"{c}: {m.sum()} clips, median speech {REFERENCE_S * np.exp(np.median(log_d[m])):.2f} s")
    print("| lever | " + " | ".join(corpora) + " | mean ECE | mean NLL | mean confident & wrong % |")
    print("|---|" + "---|" * (len(corpora) + 3))
    for name, fit in levers.items():
        cells, eces, nlls, wrongs = [], [], [], []
        for held in corpora:
            train, test = names != held, names == held
            probs = fit(logits[train], y[train], names[train], log_d[train])(logits[test], log_d[test])
            m = calibration_metrics(probs, y[test])
            cells.append(f"{m['ece']:.3f}")
            eces.append(m["ece"])
            nlls.append(m["nll"])
            wrongs.append(m["confident_wrong"])
        print(
            f"| {name} | " + " | ".join(cells) + f" | {np.mean(eces):.3f} | {np.mean(nlls):.2f} | "
            f"{100 * np.mean(wrongs):.1f} |"
        )
    params = fit_duration(logits, y, log_d, corpus_weights(names))
    print(f"duration lever fitted on all: T0 {np.exp(params[0]):.2f}, exponent {params[1]:.3f}")


if __name__ == "__main__":
    main()
