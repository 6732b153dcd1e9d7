"""Calibration levers compared leave-one-corpus-out on an ``evaluate --model`` run's logits.

Each lever is fitted on all of ``--corpora`` but one and judged on the one left out (ECE over 15 bins, NLL,
confidently wrong share of the full 8-way output), in turn; printed as a table with the means. Levers:
``none`` (as shipped); ``temperature`` (Guo et al. 2017, one scalar, every clip or every corpus weighing the same);
``vector`` (vector scaling, Guo et al. 2017 section 4.2: a scale and a bias per class, L2-penalised towards the
identity, every corpus weighing the same).

Usage::

    python scripts/experiments_calibration.py \\
        --predictions ../runs/calib/whisper-base-general-as-shipped/predictions.csv \\
        --model whisper-base-general --corpora nemo es-students esd-0020 emospeech-cmd
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from speech_emotion.bundle import load_bundle
from speech_emotion.calibration import Calibration
from speech_emotion.evaluation.bundle_score import logit_columns
from speech_emotion.evaluation.calibration import corpus_weights, fit_temperature
from speech_emotion.evaluation.metrics import calibration_metrics


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--corpora", nargs="+", required=True)
    args = parser.parse_args()
    bundle = load_bundle(args.model)
    table = pd.read_csv(args.predictions)
    table = table[table["corpus"].isin(args.corpora)]
    logits = table[logit_columns(bundle.labels)].to_numpy(np.float64)
    labels = list(bundle.labels)
    y = np.array([labels.index(e) for e in table["actual"]])
    names = table["corpus"].to_numpy()

    def temperature(weigh: str):
        def fit(z, t, n):
            cal = Calibration(fit_temperature(z, t, corpus_weights(n) if weigh == "corpus" else None))
            return cal.probabilities

        return fit

    def vector(z, t, n):
        w, b = fit_vector(z, t, corpus_weights(n))
        return lambda x: np.exp(_log_softmax(x * w + b))

    levers = {
        "none": lambda z, t, n: Calibration().probabilities,
        "temperature, every clip": temperature("clip"),
        "temperature, every corpus": temperature("corpus"),
        "vector scaling, every corpus": vector,
    }
    print("| lever | " + " | ".join(sorted(set(names))) + " | mean ECE | mean NLL | mean confident & wrong % |")
    print("|---|" + "---|" * (len(set(names)) + 3))
    for name, fit in levers.items():
        cells, eces, nlls, wrongs = [], [], [], []
        for held in sorted(set(names)):
            train, test = names != held, names == held
            probs = fit(logits[train], y[train], names[train])(logits[test])
            m = calibration_metrics(probs, y[test])
            cells.append(f"{m['ece']:.3f}")
            eces.append(m["ece"])
            nlls.append(m["nll"])
            wrongs.append(m["confident_wrong"])
        print(
            f"| {name} | " + " | ".join(cells) + f" | {np.mean(eces):.3f} | {np.mean(nlls):.2f} | "
            f"{100 * np.mean(wrongs):.1f} |"
        )


if __name__ == "__main__":
    main()
