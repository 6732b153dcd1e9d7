"""RAVDESS reader: the original 48 kHz WAV download or the project's 16 kHz FLAC copy."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..labels import RAVDESS_EMOTION_CODES

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac")
_FIELDS = ("modality", "vocal_channel", "emotion_code", "intensity", "statement", "repetition", "actor")
_MODALITY = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
_CHANNEL = {"01": "speech", "02": "song"}
_INTENSITY = {"01": "normal", "02": "strong"}
_STATEMENT = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}


def parse_ravdess_name(name: str) -> dict[str, object] | None:
    """Parse a RAVDESS file name such as ``03-01-05-02-01-01-12.wav``; ``None`` if malformed.

    Returns the seven filename fields plus ``emotion``, ``speaker`` (``Actor_XX``) and
    ``gender`` (odd actors are male).
    """
    stem = Path(name).stem
    parts = stem.split("-")
    if len(parts) != 7 or not all(len(p) == 2 and p.isdigit() for p in parts):
        return None
    fields = dict(zip(_FIELDS, parts))
    emotion = RAVDESS_EMOTION_CODES.get(fields["emotion_code"])
    actor = int(fields["actor"])
    if (
        emotion is None
        or fields["modality"] not in _MODALITY
        or fields["vocal_channel"] not in _CHANNEL
        or fields["intensity"] not in _INTENSITY
        or fields["statement"] not in _STATEMENT
        or fields["repetition"] not in ("01", "02")
        or not 1 <= actor <= 24
    ):
        return None
    return {
        "emotion": emotion,
        "speaker": f"Actor_{actor:02d}",
        "gender": "male" if actor % 2 else "female",
        "modality": _MODALITY[fields["modality"]],
        "vocal_channel": _CHANNEL[fields["vocal_channel"]],
        "emotion_code": fields["emotion_code"],
        "intensity": _INTENSITY[fields["intensity"]],
        "statement": _STATEMENT[fields["statement"]],
        "repetition": int(fields["repetition"]),
        "actor": actor,
    }


def with_ravdess_fields(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (a manifest's clips) plus the RAVDESS file-name fields it lacks (``actor``, ``gender``,
    ``intensity``, ...) when every clip has a RAVDESS name; the table's own columns are kept as they are, and the
    name's emotion code is not added (the manifest's label is the label). Unchanged otherwise."""
    parsed = [parse_ravdess_name(str(p)) for p in table["path"]]
    if not parsed or any(fields is None for fields in parsed):
        return table
    extra = pd.DataFrame(parsed, index=table.index)
    return table.join(extra[[c for c in extra.columns if c not in table.columns and c != "emotion_code"]])


def read_ravdess(root: str | Path, include_song: bool = False) -> pd.DataFrame:
    """All RAVDESS clips under ``root`` (any depth), speech only unless ``include_song``.

    Malformed names or unknown codes are skipped with one warning that counts them.
    """
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    rows: list[dict[str, object]] = []
    skipped: list[str] = []
    for path in files:
        fields = parse_ravdess_name(path.name)
        if fields is None:
            skipped.append(path.name)
            continue
        if fields["vocal_channel"] == "song" and not include_song:
            continue
        rows.append({"path": str(path), **fields})
    if skipped:
        log.warning(
            "%s: skipped %d file(s) whose names are not RAVDESS names (e.g. %s)",
            root,
            len(skipped),
            skipped[0],
        )
    if not rows:
        raise DataError(f"{root}: no RAVDESS audio files found")
    return pd.DataFrame(rows)
