"""The one label map of the project: the eight RAVDESS emotions, in a fixed order."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)
"""Class order used by every model, metric and output of the project."""

EMOTION_TO_INDEX: dict[str, int] = {name: i for i, name in enumerate(EMOTIONS)}

RAVDESS_EMOTION_CODES: dict[str, str] = {f"{i + 1:02d}": name for i, name in enumerate(EMOTIONS)}
"""RAVDESS filename emotion field ("01".."08") to emotion name."""


def emotion_index(label: str) -> int:
    """Index of ``label`` in :data:`EMOTIONS`; raises ``KeyError`` naming the label."""
    try:
        return EMOTION_TO_INDEX[label]
    except KeyError:
        raise KeyError(f"unknown emotion {label!r}; expected one of {', '.join(EMOTIONS)}") from None
