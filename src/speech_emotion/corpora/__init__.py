"""Corpus readers: each returns a DataFrame with one row per clip and at least ``path``, ``emotion``, ``speaker``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from .folder import read_folder, read_table
from .manifest import MANIFEST, attach_folds, combine_corpora, read_manifest_folder
from .ravdess import parse_ravdess_name, read_ravdess

__all__ = [
    "combine_corpora",
    "load_corpora",
    "load_corpus",
    "parse_ravdess_name",
    "read_folder",
    "read_manifest_folder",
    "read_ravdess",
    "read_table",
]


def load_corpus(source: str | Path) -> pd.DataFrame:
    """Read a corpus from a RAVDESS folder, a folder with a ``MANIFEST.tsv``, a ``<label>/*.wav`` folder,
    or a CSV/TSV manifest. Raises :class:`DataError` for a missing or unreadable source."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_file():
        return read_table(path)
    if any(path.glob("Actor_*")) or any(path.glob("**/03-01-*-*-*-*-*.*")):
        return read_ravdess(path)
    if (path / MANIFEST).is_file():
        return read_manifest_folder(path)
    return read_folder(path)


def load_corpora(sources: list[str | Path]) -> pd.DataFrame:
    """Several corpora as one table with a ``corpus`` column (each source's folder or file name)."""
    names = [Path(s).resolve().stem if Path(s).is_file() else Path(s).resolve().name for s in sources]
    if len(set(names)) != len(names):
        raise DataError(f"corpora need distinct names, got {', '.join(names)}")
    tables = [load_corpus(s) for s in sources]
    tables = [attach_folds(t, s) if Path(s).is_dir() else t for t, s in zip(tables, sources)]
    return combine_corpora(tables, names)
