"""Fill the Whisper hidden-state cache for a corpus: ``python scripts/whisper_cache.py DATA [--copies N]``."""

from __future__ import annotations

import argparse
import time

import numpy as np

from speech_emotion.corpora import load_corpus
from speech_emotion.training.whisper.states import StateOptions, StateStore


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data")
    p.add_argument("--copies", type=int, default=0, help="augmented copies per clip as well")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    corpus = load_corpus(args.data)
    store = StateStore(StateOptions(workers=args.workers))
    t = time.time()
    states, _ = store.rows(corpus, np.arange(len(corpus)), args.copies)
    frames = [s.shape[1] for s in states]
    print(f"{len(states)} items, frames mean {np.mean(frames):.0f} max {max(frames)}, {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
