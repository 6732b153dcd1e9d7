"""Readers for a user's own data: a ``<label>/*.wav`` folder tree or a CSV/TSV manifest."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..decode import AUDIO_SUFFIXES
from ..errors import DataError
from ..labels import EMOTIONS

log = logging.getLogger(__name__)

ALIASES: dict[str, str] = {
    "anger": "angry",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "fear": "fearful",
    "disgusted": "disgust",
    "surprise": "surprised",
    "neu": "neutral",
    "ang": "angry",
    "hap": "happy",
    "sad": "sad",
}


def normalize_label(label: str) -> str | None:
    """Map a user's label to one of :data:`EMOTIONS` (common aliases accepted); ``None`` if unknown."""
    key = str(label).strip().lower()
    key = ALIASES.get(key, key)
    return key if key in EMOTIONS else None


def _finish(rows: list[dict[str, object]], unknown: list[str], where: Path) -> pd.DataFrame:
    if unknown:
        log.warning(
            "%s: skipped %d clip(s) with labels outside %s (e.g. %r)",
            where,
            len(unknown),
            "/".join(EMOTIONS),
            unknown[0],
        )
    if not rows:
        raise DataError(f"{where}: no labelled audio found")
    return pd.DataFrame(rows)


def read_folder(root: str | Path) -> pd.DataFrame:
    """Clips laid out as ``root/<label>/**/*.wav``; the speaker is unknown (one per file)."""
    root = Path(root)
    rows: list[dict[str, object]] = []
    unknown: list[str] = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
            continue
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            unknown.append(str(rel))
            continue
        label = normalize_label(rel.parts[0])
        if label is None:
            unknown.append(rel.parts[0])
            continue
        rows.append({"path": str(path), "emotion": label, "speaker": path.stem})
    return _finish(rows, unknown, root)


def read_text_table(path: str | Path, what: str) -> pd.DataFrame:
    """A CSV table of strings (tab-separated for a ``.tsv``/``.tab`` name); :class:`DataError`
    ``"PATH: cannot read WHAT (reason)"`` in one line for a missing, empty, binary or malformed file."""
    path = Path(path)
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        return pd.read_csv(path, sep=sep, dtype=str)
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except pd.errors.EmptyDataError:
        reason = "the file is empty"
    except (OSError, ValueError) as exc:  # ValueError: pandas' ParserError and kin
        reason = " ".join(str(exc).split())
    raise DataError(f"{path}: cannot read {what} ({reason})")


def read_table(manifest: str | Path) -> pd.DataFrame:
    """Clips listed in a CSV/TSV with columns ``path``, ``label`` (or ``emotion``) and optional ``speaker``.

    Relative paths are taken from the manifest's folder; extra columns are kept.
    """
    manifest = Path(manifest)
    table = read_text_table(manifest, "manifest")
    label_col = "label" if "label" in table.columns else "emotion"
    if "path" not in table.columns or label_col not in table.columns:
        raise DataError(f"{manifest}: needs columns 'path' and 'label' (found {', '.join(table.columns)})")
    rows: list[dict[str, object]] = []
    unknown: list[str] = []
    for record in table.to_dict("records"):
        label = normalize_label(record[label_col])
        if label is None:
            unknown.append(str(record[label_col]))
            continue
        path = Path(record["path"])
        if not path.is_absolute():
            path = manifest.parent / path
        speaker = record.get("speaker")
        row = {k: v for k, v in record.items() if k not in ("path", label_col)}
        row.update(
            path=str(path),
            emotion=label,
            speaker=str(speaker) if isinstance(speaker, str) and speaker else path.stem,
        )
        rows.append(row)
    return _finish(rows, unknown, manifest)
