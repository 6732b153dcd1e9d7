"""Every Nth clip of each corpus, by path, as a corpus folder of its own (for quick comparisons of bundles):

    python scripts/corpus_subset.py ../shared/data/ravdess ../corpora/nemo --clips 150 --out ../runs/subsets

For each corpus folder (with a ``MANIFEST.tsv``), ``OUT/<corpus name>/`` gets the manifest's rows sorted by path,
every ``len // clips``-th of them (so between ``clips`` and twice as many rows), and links to the corpus's own files
and folders (its audio, ``FOLDS.tsv``, ``SOURCE.txt``): no audio is copied. The folder keeps the corpus's name, so
``evaluate --model ... --data OUT/*`` scores each subset over that corpus's own labels. A fixed stride over paths
follows the corpus's naming: with few clips it can miss emotions (RAVDESS below about 50), so the clips per
emotion are printed: check them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd


def subset(corpus: Path, clips: int, out: Path) -> pd.DataFrame:
    """Write ``out/<corpus name>``; returns its manifest rows. Raises ``FileNotFoundError`` without a manifest."""
    rows = pd.read_csv(corpus / "MANIFEST.tsv", sep="\t", dtype=str, keep_default_na=False).sort_values("path")
    target = out / corpus.resolve().name
    target.mkdir(parents=True, exist_ok=True)
    picked = rows.iloc[:: max(1, len(rows) // clips)]
    picked.to_csv(target / "MANIFEST.tsv", sep="\t", index=False)
    for entry in corpus.resolve().iterdir():
        link = target / entry.name
        if entry.name != "MANIFEST.tsv" and not link.exists():
            os.symlink(entry, link)
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="+", type=Path, help="corpus folders with a MANIFEST.tsv")
    parser.add_argument("--clips", type=int, default=150, help="about this many clips per corpus (default 150)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.clips < 1:
        parser.error("--clips must be at least 1")
    for corpus in args.corpora:
        if not (corpus / "MANIFEST.tsv").is_file():
            parser.error(f"{corpus}: no MANIFEST.tsv there (a corpus folder as scripts/build_corpora.sh makes them)")
    for corpus in args.corpora:
        rows = subset(corpus, args.clips, args.out)
        counts = ", ".join(f"{k} {v}" for k, v in rows["emotion"].value_counts().sort_index().items())
        print(f"{corpus.resolve().name}: {len(rows)} clips ({counts})")


if __name__ == "__main__":
    main()
