"""Corpus readers: each returns a DataFrame with one row per clip and at least ``path``, ``emotion``, ``speaker``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import DataError
from .folder import read_folder, read_table
from .manifest import FOLDS, MANIFEST, attach_folds, combine_corpora, read_folds, read_manifest_folder
from .ravdess import parse_ravdess_name, read_ravdess, with_ravdess_fields

__all__ = [
    "FOLDS",
    "MANIFEST",
    "combine_corpora",
    "corpus_folder",
    "load_corpora",
    "load_corpus",
    "parse_ravdess_name",
    "read_folder",
    "read_folds",
    "read_manifest_folder",
    "read_ravdess",
    "read_table",
]


def corpus_folder(source: str | Path) -> Path:
    """``source`` itself, or the folder of a ``MANIFEST.tsv`` named directly: ``--data corpus/MANIFEST.tsv`` reads
    (and finds ``FOLDS.tsv``) as ``--data corpus`` does."""
    path = Path(source)
    return path.parent if path.name == MANIFEST and path.is_file() else path


def load_corpus(source: str | Path) -> pd.DataFrame:
    """Read a corpus from a folder with a ``MANIFEST.tsv`` (or that file), a RAVDESS folder, a ``<label>/*.wav``
    folder, or a CSV/TSV manifest. A folder's ``MANIFEST.tsv`` wins over its file names: its rows, labels and
    speakers are the corpus (RAVDESS name fields such as ``actor`` fill in only columns it lacks).
    Raises :class:`DataError` for a missing or unreadable source."""
    path = corpus_folder(source)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_file():
        return read_table(path)
    if (path / MANIFEST).is_file():
        return with_ravdess_fields(read_manifest_folder(path))
    if any(path.glob("Actor_*")) or any(path.glob("**/03-01-*-*-*-*-*.*")):
        return read_ravdess(path)
    return read_folder(path)


def load_corpora(sources: list[str | Path]) -> pd.DataFrame:
    """Several corpora as one table with a ``corpus`` column (each source's folder or file name)."""
    folders = [corpus_folder(s) for s in sources]
    names = [f.resolve().stem if f.is_file() else f.resolve().name for f in folders]
    if len(set(names)) != len(names):
        raise DataError(f"corpora need distinct names, got {', '.join(names)}")
    tables = [load_corpus(f) for f in folders]
    tables = [attach_folds(t, f) if f.is_dir() else t for t, f in zip(tables, folders)]
    return combine_corpora(tables, names)
