"""Corpus readers: each returns a DataFrame with one row per clip and at least ``path``, ``emotion``, ``speaker``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from .folder import read_folder, read_table
from .ravdess import parse_ravdess_name, read_ravdess

__all__ = ["load_corpus", "parse_ravdess_name", "read_folder", "read_ravdess", "read_table"]


def load_corpus(source: str | Path) -> pd.DataFrame:
    """Read a corpus from a RAVDESS folder, a ``<label>/*.wav`` folder, or a CSV/TSV manifest."""
    path = Path(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_file():
        return read_table(path)
    if any(path.glob("Actor_*")) or any(path.glob("**/03-01-*-*-*-*-*.*")):
        return read_ravdess(path)
    return read_folder(path)
