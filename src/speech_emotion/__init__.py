"""speech-emotion: recognise emotion in human speech, live and in recordings.

``from speech_emotion import Recognizer; Recognizer.load().predict_file("clip.wav")`` runs the bundled
default model with ONNX Runtime (no PyTorch). The names below are imported lazily: ``import speech_emotion``
loads nothing but the label list.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .labels import EMOTIONS

if TYPE_CHECKING:
    from .bundle import ModelBundle, available_models, read_bundle
    from .recognizer import Prediction, Recognizer
    from .streaming import StreamingRecognizer, StreamOptions
    from .timeline import AnalyzeOptions, Timeline, analyze_file

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Recognizer": "recognizer",
    "Prediction": "recognizer",
    "StreamingRecognizer": "streaming",
    "StreamOptions": "streaming",
    "analyze_file": "timeline",
    "AnalyzeOptions": "timeline",
    "Timeline": "timeline",
    "available_models": "bundle",
    "read_bundle": "bundle",
    "ModelBundle": "bundle",
}
"""Public name -> the module defining it, imported on first use."""

__all__ = [
    "EMOTIONS",
    "AnalyzeOptions",
    "ModelBundle",
    "Prediction",
    "Recognizer",
    "StreamOptions",
    "StreamingRecognizer",
    "Timeline",
    "__version__",
    "analyze_file",
    "available_models",
    "read_bundle",
]


def __getattr__(name: str) -> Any:
    """Lazy public names: importing the package stays cheap and never needs ONNX Runtime."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'speech_emotion' has no attribute {name!r}")
