"""What the live path would lose by encoding audio in chunks once instead of every overlapping window (issue 19).

The live engine classifies 2 s windows every 0.5 s and then each whole segment, so the encoder hears every second
of speech about five times. Reusing its states across windows is not exact (every position attends to the whole
window), so the question is what an encoder run on aligned chunks (each encoded once, optionally with some left
context whose states are dropped) costs in accuracy. This script answers it for whole clips on RAVDESS
``actor-6fold``: the statistics the shipped probe reads (mean and standard deviation over frames of blocks 2-4) are
computed over the concatenated frames of the chunks, and the probe recipe (standardised multinomial logistic
regression, C 0.03, no augmentation) is trained and tested per fold on them.

Settings: ``full`` (today: the whole clip at once), ``C`` (chunks of C seconds, encoded alone), ``C+L`` (chunks of C
seconds, each encoded with the L seconds before it, whose states are dropped). A last chunk under 0.1 s joins the
one before it. Statistics are cached in ``--cache`` per setting.

Usage::

    python scripts/experiments_chunked_encoder.py ../shared/data/ravdess full 2.0 1.0 1.0+0.5 0.5+1.0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from speech_emotion.conditioning import SAMPLE_RATE, AudioOptions, prepare
from speech_emotion.features.logmel import log_mel
from speech_emotion.training.whisper.encoder import cached_encoder

POSITION = 320
"""Samples per encoder position (two 10 ms log-mel frames)."""


def states(samples: np.ndarray) -> torch.Tensor:
    """``(5, positions, 512)``: the embedding and blocks 1-4 of the Whisper-base encoder for ``samples``."""
    mel = torch.from_numpy(log_mel(samples)[None])
    with torch.inference_mode():
        return torch.cat(cached_encoder(None, 4)(mel, layers=range(5)))


def chunked_states(samples: np.ndarray, setting: str) -> torch.Tensor:
    """The states of ``samples`` encoded as ``setting`` says (``full``, ``C`` or ``C+L``), positions concatenated."""
    if setting == "full":
        return states(samples)
    chunk_s, _, context_s = setting.partition("+")
    n, m = round(float(chunk_s) * SAMPLE_RATE), round(float(context_s or 0) * SAMPLE_RATE)
    starts = list(range(0, len(samples), n))
    if len(starts) > 1 and len(samples) - starts[-1] < SAMPLE_RATE // 10:
        starts.pop()
    parts = []
    for j, start in enumerate(starts):
        end = len(samples) if j == len(starts) - 1 else start + n
        begin = max(0, start - m)
        parts.append(states(samples[begin:end])[:, (start - begin) // POSITION :])
    return torch.cat(parts, 1)


def statistics(h: torch.Tensor) -> np.ndarray:
    """``(5, 2, 512)``: mean and standard deviation over positions."""
    mean = h.mean(1)
    std = (h - mean[:, None]).pow(2).mean(1).sqrt()
    return torch.stack([mean, std], 1).numpy()


def actor_6fold_ua(x: np.ndarray, y: np.ndarray, folds: np.ndarray) -> list[float]:
    """UA of the probe recipe on each fold (trained on the other five)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import recall_score
    from sklearn.preprocessing import StandardScaler

    uas = []
    for k in sorted(set(folds)):
        train, test = folds != k, folds == k
        scaler = StandardScaler().fit(x[train])
        probe = LogisticRegression(C=0.03, max_iter=3000).fit(scaler.transform(x[train]), y[train])
        uas.append(float(recall_score(y[test], probe.predict(scaler.transform(x[test])), average="macro")))
    return uas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="the RAVDESS folder (MANIFEST.tsv, FOLDS.tsv)")
    parser.add_argument("settings", nargs="+", help="full, C or C+L (seconds)")
    parser.add_argument("--cache", default="../runs/chunked-encoder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data, cache = Path(args.data), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    manifest = pd.read_csv(data / "MANIFEST.tsv", sep="\t")
    folds = manifest["speaker"].map(pd.read_csv(data / "FOLDS.tsv", sep="\t").set_index("speaker")["fold"]).to_numpy()
    y = pd.Categorical(manifest["emotion"]).codes
    todo = [s for s in args.settings if not (cache / f"{s}.npy").exists()]
    if todo:
        found: dict[str, list[np.ndarray]] = {s: [] for s in todo}
        for path in tqdm(manifest["path"], desc="encoder states"):
            samples = prepare(str(data / path), AudioOptions())
            for s in todo:
                found[s].append(statistics(chunked_states(samples, s)))
        for s in todo:
            np.save(cache / f"{s}.npy", np.stack(found[s]))
    print("| setting | UA % | folds 1-6 |\n|---|---|---|")
    for s in args.settings:
        x = np.load(cache / f"{s}.npy")[:, 2:5].reshape(len(manifest), -1)
        uas = actor_6fold_ua(x, y, folds)
        print(f"| {s} | {100 * np.mean(uas):.1f} | " + " ".join(f"{100 * u:.1f}" for u in uas) + " |")


if __name__ == "__main__":
    main()
