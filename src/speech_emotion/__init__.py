"""speech-emotion: recognise emotion in human speech, live and in recordings.

``from speech_emotion import Recognizer; Recognizer.load().predict_file("clip.wav")`` runs the bundled
default model with ONNX Runtime (no PyTorch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .labels import EMOTIONS

if TYPE_CHECKING:
    from .inference import Prediction, Recognizer

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "Prediction", "Recognizer", "__version__"]


def __getattr__(name: str) -> Any:
    """Lazy ``Recognizer``/``Prediction``: importing the package stays cheap and never needs ONNX Runtime."""
    if name in ("Recognizer", "Prediction"):
        from . import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'speech_emotion' has no attribute {name!r}")
