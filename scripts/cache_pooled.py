"""Warm the pooled Whisper statistics cache: ``python scripts/cache_pooled.py --data DIR... --variants clean aug1``.

Long and resumable: every finished clip is on disk (content-keyed), so a rerun continues where it stopped.
"""

from __future__ import annotations

import argparse

import numpy as np

from speech_emotion.corpora import load_corpora
from speech_emotion.training.whisper.pooled import PooledOptions, PooledStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", nargs="+", required=True, help="corpus folders")
    parser.add_argument(
        "--variants", nargs="+", default=["clean"], help="clean, aug<k>, crop<k>, augcrop<k>, sn<k>, cond:<name>"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--corpus", default=None, help="only rows of this corpus")
    args = parser.parse_args()
    store = PooledStore(PooledOptions(workers=args.workers))
    corpus = load_corpora(args.data)
    # as training does (drop_unusable): clips the preprocessing refuses leave the table first, so the babble
    # voices drawn per speaker fold, and with them the cache keys, are those training asks for
    usable = np.isfinite(store.stats(corpus, np.arange(len(corpus)), "clean")).all(axis=(1, 2, 3))
    corpus = corpus[usable].reset_index(drop=True)
    print(f"{int((~usable).sum())} clips the preprocessing refuses left out", flush=True)
    rows = np.arange(len(corpus)) if args.corpus is None else np.flatnonzero(corpus["corpus"] == args.corpus)
    for variant in args.variants:
        print(f"{variant}: {len(rows)} clips", flush=True)
        store.stats(corpus, rows, variant)


if __name__ == "__main__":
    main()
