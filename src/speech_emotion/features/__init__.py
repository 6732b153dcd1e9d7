"""Model input features: turn preprocessed mono audio into the array a bundle's ONNX graph takes.

A bundle's ``model.json`` names its features (``librosa`` frame features or ``whisper-logmel``) and their
options; training and inference both build them with :func:`build_features`, so both compute the same input.
Torch-free; only the ``librosa`` features import librosa (when they are computed); ``whisper-logmel`` is numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Union

import numpy as np

from .frames import FeatureOptions, compile_kernels, extract_features
from .logmel import LogMelOptions, log_mel

AnyFeatureOptions = Union[FeatureOptions, LogMelOptions]
"""The options dataclass of any registered features."""

FeatureExtractor = Callable[[np.ndarray], np.ndarray]
"""Maps preprocessed mono float32 audio to one model input without the batch axis."""


@dataclass(frozen=True)
class FeatureKind:
    """One registered kind of model input: its frozen options dataclass and its extractor."""

    options_type: type
    extract: Callable[[np.ndarray, Any], np.ndarray]
    compile_kernels: Callable[[Any], None] | None = None
    """Compiles the extractor's JIT kernels in this process, before processes that use them start (or ``None``)."""


FEATURES: dict[str, FeatureKind] = {
    "librosa": FeatureKind(FeatureOptions, extract_features, compile_kernels),
    "whisper-logmel": FeatureKind(LogMelOptions, log_mel),
}
"""The explicit registry of model input features, by the name stored in ``model.json``."""


def feature_options(name: str, options: Mapping[str, Any] | None = None) -> AnyFeatureOptions:
    """The options dataclass of features ``name`` from a ``model.json`` mapping.

    Raises ``KeyError`` for an unknown ``name`` and ``TypeError`` naming the first unknown option key.
    """
    if name not in FEATURES:
        raise KeyError(f"unknown features {name!r}; known: {', '.join(sorted(FEATURES))}")
    options_type = FEATURES[name].options_type
    known = {f.name for f in fields(options_type)}
    for key in options or {}:
        if key not in known:
            raise TypeError(f"unknown option {key!r} (known: {', '.join(sorted(known))})")
    return options_type(**dict(options or {}))


def build_features(name: str, options: Mapping[str, Any] | Any = None) -> FeatureExtractor:
    """The feature extractor ``name`` configured with ``options`` (its dataclass or a ``model.json`` mapping).

    Raises ``KeyError`` for an unknown ``name``, ``TypeError`` for an unknown option key.
    """
    opts = options if is_dataclass(options) else feature_options(name, options)
    extract = FEATURES[name].extract

    def run(samples: np.ndarray) -> np.ndarray:
        return extract(samples, opts)

    return run


def prepare_for_processes(name: str, options: AnyFeatureOptions) -> None:
    """Get features ``name`` ready to be computed by several processes at once: call it in the process that starts
    them, before it does (see :func:`~speech_emotion.features.frames.compile_kernels`). Free for features without
    JIT kernels. Raises ``KeyError`` for an unknown ``name``."""
    compile_now = FEATURES[name].compile_kernels
    if compile_now is not None:
        compile_now(options)


__all__ = [
    "AnyFeatureOptions",
    "FEATURES",
    "FeatureExtractor",
    "FeatureKind",
    "FeatureOptions",
    "LogMelOptions",
    "build_features",
    "extract_features",
    "feature_options",
    "prepare_for_processes",
    "log_mel",
]
