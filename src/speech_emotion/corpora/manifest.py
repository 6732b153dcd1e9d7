"""Corpora described by a ``MANIFEST.tsv`` (and optionally a ``FOLDS.tsv``) in their folder, and several
corpora read as one table.

``MANIFEST.tsv`` columns: ``path`` (relative to the folder), ``emotion``, ``speaker`` and any others
(kept). ``FOLDS.tsv`` columns: ``speaker``, ``fold`` (a speaker-independent split).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..errors import DataError
from .folder import read_table, read_text_table

MANIFEST = "MANIFEST.tsv"
FOLDS = "FOLDS.tsv"


def read_manifest_folder(root: str | Path) -> pd.DataFrame:
    """Clips of the corpus in ``root`` from its ``MANIFEST.tsv``, with ``corpus`` (the folder name) and,
    when ``FOLDS.tsv`` is there, each speaker's ``fold``. Raises :class:`DataError` if files are missing."""
    root = Path(root)
    table = read_table(root / MANIFEST)
    missing = [p for p in table["path"] if not Path(p).is_file()]
    if missing:
        raise DataError(f"{root / MANIFEST}: {len(missing)} listed file(s) missing (e.g. {missing[0]})")
    table["corpus"] = root.resolve().name
    return attach_folds(table, root)


def attach_folds(table: pd.DataFrame, root: str | Path) -> pd.DataFrame:
    """``table`` with each speaker's ``fold`` from ``root/FOLDS.tsv`` (unchanged when there is none)."""
    folds_file = Path(root) / FOLDS
    if folds_file.is_file() and "fold" not in table:
        table = table.assign(fold=table["speaker"].map(read_folds(folds_file)))
    return table


def read_folds(path: str | Path) -> dict[str, str]:
    """Speaker -> fold name from a TSV/CSV with columns ``speaker`` and ``fold`` (like FOLDS.tsv); :class:`DataError`
    in one line for a file that cannot be read as such a table."""
    path = Path(path)
    table = read_text_table(path, "fold file")
    if not {"speaker", "fold"} <= set(table.columns):
        raise DataError(f"{path}: fold file needs columns 'speaker' and 'fold'")
    table = table.dropna(subset=["speaker", "fold"])
    return dict(zip(table["speaker"].str.strip(), table["fold"].str.strip()))


def combine_corpora(tables: Sequence[pd.DataFrame], names: Sequence[str]) -> pd.DataFrame:
    """One table of several corpora: ``corpus`` column set to ``names``; speakers made unique across corpora."""
    parts = []
    for table, name in zip(tables, names):
        table = table.copy()
        table["corpus"] = name
        parts.append(table)
    combined = pd.concat(parts, ignore_index=True)
    owners = combined.groupby("speaker")["corpus"].nunique()
    shared = set(owners[owners > 1].index)
    if shared:
        combined["speaker"] = [
            f"{c}:{s}" if s in shared else s for c, s in zip(combined["corpus"], combined["speaker"])
        ]
    return combined
