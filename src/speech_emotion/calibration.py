"""A bundle's confidence map: temperature scaling of its logits and the thresholds below which an answer is uncertain.

Temperature scaling (Guo, Pleiss, Sun, Weinberger 2017, "On Calibration of Modern Neural Networks") divides the
logits by one scalar ``T`` before the softmax: the argmax is unchanged, the shown confidence is softened
(``T > 1``) or sharpened (``T < 1``). ``T`` is fitted on speech the model never heard in training
(:mod:`speech_emotion.evaluation.calibration`), so a shown 80 % means about 80 % right on unheard speech.

In ``model.json`` (format 2, optional)::

    "calibration": {"method": "temperature", "temperature": 2.7, "fitted_on": ["nemo", "es-students"],
                    "thresholds": {"min_confidence": 0.5, "min_margin": 0.1}, "notes": "..."}

Numpy only: the inference path reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = ("temperature",)
_KEYS = {"method", "temperature", "fitted_on", "thresholds", "notes"}
_THRESHOLDS = {"min_confidence", "min_margin"}


@dataclass(frozen=True)
class Calibration:
    """``temperature`` (> 0) divides the logits; an answer is uncertain when its calibrated confidence is below
    ``min_confidence`` or the top two probabilities are less than ``min_margin`` apart (both 0 to 1).
    ``fitted_on``: the corpora the map was fitted on; ``notes``: free text (how the thresholds were chosen)."""

    temperature: float = 1.0
    min_confidence: float = 0.0
    min_margin: float = 0.0
    fitted_on: tuple[str, ...] = ()
    method: str = "temperature"
    notes: str = ""

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities along the last axis of ``logits`` (any leading shape; float64)."""
        z = np.asarray(logits, dtype=np.float64) / self.temperature
        z = z - z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def uncertain(self, probs: np.ndarray) -> bool:
        """Whether the answer of one clip's calibrated probabilities ``(labels,)`` is uncertain."""
        top = np.sort(np.asarray(probs, dtype=np.float64))[::-1]
        margin = top[0] - top[1] if len(top) > 1 else top[0]
        return bool(top[0] < self.min_confidence or margin < self.min_margin)

    def to_json(self) -> dict[str, Any]:
        """The ``calibration`` block of ``model.json``."""
        doc: dict[str, Any] = {
            "method": self.method,
            "temperature": self.temperature,
            "fitted_on": list(self.fitted_on),
            "thresholds": {"min_confidence": self.min_confidence, "min_margin": self.min_margin},
        }
        if self.notes:
            doc["notes"] = self.notes
        return doc


def parse_calibration(raw: Any) -> Calibration:
    """The :class:`Calibration` of a ``model.json`` ``calibration`` block; ``ValueError("<field>: <reason>")`` (the
    field relative to the block, e.g. ``thresholds.min_margin``) for anything missing, unknown or out of range."""
    if not isinstance(raw, dict):
        raise ValueError("calibration: must be a JSON object")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(f"calibration.{unknown[0]}: unknown field (known: {', '.join(sorted(_KEYS))})")
    method = raw.get("method")
    if method not in METHODS:
        raise ValueError(f"calibration.method: must be one of {', '.join(METHODS)}, got {method!r}")
    if "temperature" not in raw:
        raise ValueError("calibration.temperature: missing")
    temperature = _number(raw["temperature"], "calibration.temperature")
    if not 0 < temperature < 1000:
        raise ValueError(f"calibration.temperature: must be above 0 and below 1000, got {temperature!r}")
    fitted_on = raw.get("fitted_on", [])
    if not isinstance(fitted_on, list) or not all(isinstance(x, str) for x in fitted_on):
        raise ValueError("calibration.fitted_on: must be a list of corpus names")
    thresholds = raw.get("thresholds", {})
    if not isinstance(thresholds, dict):
        raise ValueError("calibration.thresholds: must be a JSON object")
    strange = sorted(set(thresholds) - _THRESHOLDS)
    if strange:
        raise ValueError(
            f"calibration.thresholds.{strange[0]}: unknown field (known: {', '.join(sorted(_THRESHOLDS))})"
        )
    values = {}
    for key in sorted(_THRESHOLDS):
        value = _number(thresholds.get(key, 0.0), f"calibration.thresholds.{key}")
        if not 0 <= value <= 1:
            raise ValueError(f"calibration.thresholds.{key}: must be 0 to 1, got {value!r}")
        values[key] = value
    notes = raw.get("notes", "")
    if not isinstance(notes, str):
        raise ValueError("calibration.notes: must be a string")
    return Calibration(temperature, values["min_confidence"], values["min_margin"], tuple(fitted_on), method, notes)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    return float(value)
