"""What a cheaper encoder pass would cost in accuracy (issue 19): chunks encoded once, or fewer positions.

The live engine classifies 2 s windows every 0.5 s and then each whole segment, so the encoder hears every second
of speech about five times. Reusing its states across windows is not exact (every position attends to the whole
window), so the question is what an encoder run on aligned chunks (each encoded once, optionally with some left
context whose states are dropped) costs in accuracy. This script answers it for whole clips on RAVDESS
``actor-6fold``: the statistics the shipped probe reads (mean and standard deviation over frames of blocks 2-4) are
computed over the concatenated frames of the chunks, and the probe recipe (standardised multinomial logistic
regression, C 0.03, no augmentation) is trained and tested per fold on them.

Settings: ``full`` (today: the whole clip at once), ``C`` (chunks of C seconds, encoded alone), ``C+L`` (chunks of C
seconds, each encoded with the L seconds before it, whose states are dropped; a last chunk under 0.1 s joins the
one before it), ``mergeK`` (the whole clip, each two neighbouring positions averaged into one after block K, 0 the
embedding, so the blocks above it run on half the positions; ``mergeK-J``: after K and again after J; token
merging in its simplest form, cf. Bolya et al. 2023, "Token Merging: Your ViT But Faster"). Statistics are cached
in ``--cache`` per setting; a setting's encoder CPU time is that of its first run.

Usage::

    python scripts/experiments_chunked_encoder.py ../shared/data/ravdess \\
        full 2.0 1.0 1.0+0.5 0.5+1.0 merge1 merge2 merge0 merge1-2
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from speech_emotion.conditioning import SAMPLE_RATE, AudioOptions, prepare
from speech_emotion.features.logmel import log_mel
from speech_emotion.training.whisper.encoder import cached_encoder

SETTING = re.compile(r"full|(?!0+(\.0*)?(\+|$))\d+(\.\d+)?(\+\d+(\.\d+)?)?|merge[0-3](-[0-3])*")
"""The settings ``main`` takes: ``full``, ``C`` or ``C+L`` (C above 0), ``mergeK`` or ``mergeK-J``."""
POSITION = 320
"""Samples per encoder position (two 10 ms log-mel frames)."""


def merge_pairs(x: torch.Tensor) -> torch.Tensor:
    """``(1, positions, width)`` -> ``(1, ceil(positions / 2), width)``: neighbours averaged in pairs (an odd last
    one kept)."""
    pairs = x.shape[1] // 2
    return torch.cat([(x[:, 0 : 2 * pairs : 2] + x[:, 1 : 2 * pairs : 2]) / 2, x[:, 2 * pairs :]], 1)


def states(samples: np.ndarray, merge_after: tuple[int, ...] = ()) -> list[torch.Tensor]:
    """The embedding and blocks 1-4 of the Whisper-base encoder for ``samples``, each ``(positions, 512)``; after
    each block K in ``merge_after`` (0: the embedding), neighbouring positions are averaged in pairs."""
    encoder = cached_encoder(None, 4)
    mel = torch.from_numpy(log_mel(samples)[None])
    with torch.inference_mode():
        x = encoder.embed(mel)
        found = [x[0]]
        x = merge_pairs(x) if 0 in merge_after else x
        for k, block in enumerate(encoder.layers, start=1):
            x = block(x)
            found.append(x[0])
            x = merge_pairs(x) if k in merge_after else x
    return found


def chunked_states(samples: np.ndarray, setting: str) -> list[torch.Tensor]:
    """The states of ``samples`` encoded as ``setting`` says, each layer's positions concatenated over chunks."""
    if setting == "full":
        return states(samples)
    if setting.startswith("merge"):
        return states(samples, tuple(int(k) for k in setting[5:].split("-")))
    chunk_s, _, context_s = setting.partition("+")
    n, m = round(float(chunk_s) * SAMPLE_RATE), round(float(context_s or 0) * SAMPLE_RATE)
    starts = list(range(0, len(samples), n))
    if len(starts) > 1 and len(samples) - starts[-1] < SAMPLE_RATE // 10:
        starts.pop()
    parts = []
    for j, start in enumerate(starts):
        end = len(samples) if j == len(starts) - 1 else start + n
        begin = max(0, start - m)
        parts.append([h[(start - begin) // POSITION :] for h in states(samples[begin:end])])
    return [torch.cat(layer) for layer in zip(*parts)]


def statistics(layers: list[torch.Tensor]) -> np.ndarray:
    """``(5, 2, 512)``: mean and standard deviation over positions of each layer."""
    mean = torch.stack([h.mean(0) for h in layers])
    std = torch.stack([(h - h.mean(0)).pow(2).mean(0).sqrt() for h in layers])
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
    parser.add_argument("settings", nargs="+", help="full, C or C+L (seconds), mergeK")
    parser.add_argument("--cache", default="../runs/chunked-encoder")
    args = parser.parse_args()
    for s in args.settings:
        if not SETTING.fullmatch(s):
            parser.error(f"unknown setting {s!r}: full, C, C+L (seconds, C > 0) or mergeK / mergeK-J (K, J 0-3)")
    torch.set_num_threads(1)
    data, cache = Path(args.data), Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    manifest = pd.read_csv(data / "MANIFEST.tsv", sep="\t")
    folds = manifest["speaker"].map(pd.read_csv(data / "FOLDS.tsv", sep="\t").set_index("speaker")["fold"]).to_numpy()
    y = pd.Categorical(manifest["emotion"]).codes
    todo = [s for s in args.settings if not (cache / f"{s}.npy").exists()]
    if todo:
        found: dict[str, list[np.ndarray]] = {s: [] for s in todo}
        cpu = dict.fromkeys(todo, 0.0)
        for path in tqdm(manifest["path"], desc="encoder states"):
            samples = prepare(str(data / path), AudioOptions())
            for s in todo:
                start = time.process_time()
                found[s].append(statistics(chunked_states(samples, s)))
                cpu[s] += time.process_time() - start
        for s in todo:
            np.save(cache / f"{s}.npy", np.stack(found[s]))
            (cache / f"{s}.cpu").write_text(f"{cpu[s]:.3f}\n")
    full_cpu = float((cache / "full.cpu").read_text()) if (cache / "full.cpu").exists() else None
    print("| setting | UA % | folds 1-6 | encoder CPU vs full (PyTorch, one thread) |\n|---|---|---|---|")
    for s in args.settings:
        x = np.load(cache / f"{s}.npy")[:, 2:5].reshape(len(manifest), -1)
        uas = actor_6fold_ua(x, y, folds)
        ratio = f"{float((cache / f'{s}.cpu').read_text()) / full_cpu:.2f}" if full_cpu else "-"
        print(f"| {s} | {100 * np.mean(uas):.1f} | " + " ".join(f"{100 * u:.1f}" for u in uas) + f" | {ratio} |")


if __name__ == "__main__":
    main()
