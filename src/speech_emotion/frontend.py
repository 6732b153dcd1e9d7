"""Model front ends: turn preprocessed 16 kHz audio into the array a model bundle's ONNX graph takes.

A bundle's ``model.json`` names its front end; training and inference look it up here, so
both compute exactly the same input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .features import FeatureOptions, extract_features

Frontend = Callable[[np.ndarray], np.ndarray]
"""Maps preprocessed mono float32 audio to one model input without the batch axis."""

_BUILDERS: dict[str, Callable[[dict[str, Any]], Frontend]] = {}


def register(name: str) -> Callable[[Callable[[dict[str, Any]], Frontend]], Callable[[dict[str, Any]], Frontend]]:
    """Decorator registering a front-end builder under ``name``."""

    def wrap(builder: Callable[[dict[str, Any]], Frontend]) -> Callable[[dict[str, Any]], Frontend]:
        _BUILDERS[name] = builder
        return builder

    return wrap


def build_frontend(name: str, options: dict[str, Any] | None = None) -> Frontend:
    """The front end ``name`` configured with ``options`` (as stored in ``model.json``)."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown front end {name!r}; known: {', '.join(sorted(_BUILDERS))}")
    return _BUILDERS[name](options or {})


@register("librosa")
def _librosa(options: dict[str, Any]) -> Frontend:
    feature_options = FeatureOptions(**options)

    def run(samples: np.ndarray) -> np.ndarray:
        return extract_features(samples, feature_options)

    return run


from .whisper import logmel as _whisper_logmel  # noqa: E402,F401  (registers "whisper-logmel")
