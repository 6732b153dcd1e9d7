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
    corpus = load_corpora(args.data)
    rows = np.arange(len(corpus)) if args.corpus is None else np.flatnonzero(corpus["corpus"] == args.corpus)
    store = PooledStore(PooledOptions(workers=args.workers))
    for variant in args.variants:
        print(f"{variant}: {len(rows)} clips", flush=True)
        store.stats(corpus, rows, variant)


if __name__ == "__main__":
    main()
