"""speech-emotion: recognise emotion in human speech, live and in recordings.

``from speech_emotion import Recognizer, predict_recording; predict_recording("clip.wav", Recognizer.load())`` is
the emotion of a recording of any length with the bundled default model (ONNX Runtime, no PyTorch): the same answer
as ``speech-emotion predict`` and ``POST /v1/predict``. Every door runs one engine::

    blocks (samples, rate) --> StreamingRecognizer.events() --> UpdateEvent*, SegmentEvent*, StreamEnd
      condition (16 kHz mono) -> VAD segments -> Recognizer (windows; each finished segment once)

    predict_recording: segments only, speech-weighted mean   analyze_file: a Timeline of segments and windows

Results hold ``probabilities`` as a read-only float64 array in ``labels`` order (``result.probability("sad")`` reads
one by name) and arousal, valence, dominance as a ``(3,)`` array or ``None``; ``to_dict()`` gives the JSON every door
prints. See docs/architecture.md. The names below are imported lazily: ``import speech_emotion`` loads nothing but the
label list.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .labels import EMOTIONS

if TYPE_CHECKING:
    from .bundle import ModelBundle, available_models, read_bundle
    from .recognizer import Prediction, Recognizer
    from .recording import NoSpeechError, RecordingOptions, RecordingPrediction, predict_recording
    from .streaming import SegmentEvent, StreamEnd, StreamingRecognizer, StreamOptions, UpdateEvent
    from .timeline import AnalyzeOptions, Timeline, analyze_file

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "Recognizer": "recognizer",
    "Prediction": "recognizer",
    "predict_recording": "recording",
    "RecordingPrediction": "recording",
    "RecordingOptions": "recording",
    "NoSpeechError": "recording",
    "StreamingRecognizer": "streaming",
    "StreamOptions": "streaming",
    "UpdateEvent": "streaming",
    "SegmentEvent": "streaming",
    "StreamEnd": "streaming",
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
    "NoSpeechError",
    "Prediction",
    "Recognizer",
    "RecordingOptions",
    "RecordingPrediction",
    "SegmentEvent",
    "StreamEnd",
    "StreamOptions",
    "StreamingRecognizer",
    "Timeline",
    "UpdateEvent",
    "__version__",
    "analyze_file",
    "available_models",
    "predict_recording",
    "read_bundle",
]


def __getattr__(name: str) -> Any:
    """Lazy public names: importing the package stays cheap and never needs ONNX Runtime."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'speech_emotion' has no attribute {name!r}")
