"""The shared recognizer: a model bundle run with ONNX Runtime (no PyTorch needed).

A bundle is a folder with ``model.json`` (labels, front end, audio options) and the ONNX
graph it names. The CLI, streaming engine, web service and batch runs all use :class:`Recognizer`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .audio import AudioOptions, AudioSource, load_audio, preprocess
from .errors import ModelError
from .frontend import build_frontend

DEFAULT_MODEL = "default"
"""Name of the bundled model ``predict`` uses when none is given."""


@dataclass(frozen=True)
class Prediction:
    """One clip's result: the winning label, its probability, and all probabilities."""

    label: str
    confidence: float
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence, "probabilities": self.probabilities}


def bundled_models_dir() -> Path:
    """Folder holding the models that ship with the package (``models/`` in the repository)."""
    return Path(str(resources.files("speech_emotion.bundled_models")))


def resolve_model(model: str | Path | None = None) -> Path:
    """Bundle folder for a bundled model name, a bundle folder, or a ``model.json`` path."""
    if model is None:
        model = DEFAULT_MODEL
    path = Path(model)
    if path.name == "model.json" and path.is_file():
        return path.parent
    if (path / "model.json").is_file():
        return path
    bundled = bundled_models_dir() / str(model)
    if (bundled / "model.json").is_file():
        return bundled
    if (bundled / "LINK").is_file():  # an alias such as "default" -> "whisper-base-probe"
        return resolve_model((bundled / "LINK").read_text().strip())
    known = sorted(p.name for p in bundled_models_dir().iterdir() if p.is_dir() and not p.name.startswith("_"))
    raise ModelError(f"{model}: not a model folder and not a bundled model (bundled: {', '.join(known)})")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Recognizer:
    """Emotion recognizer over a model bundle, backed by an ONNX Runtime session."""

    def __init__(self, bundle: Path, config: dict[str, Any], threads: int | None = None) -> None:
        import onnxruntime as ort

        self.bundle = bundle
        self.config = config
        self.name: str = config["name"]
        self.labels: tuple[str, ...] = tuple(config["labels"])
        self.audio_options = AudioOptions(**config.get("audio_options", {}))
        self.sample_rate = self.audio_options.sample_rate
        self._frontend = build_frontend(config["frontend"], config.get("frontend_options"))
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        so.log_severity_level = 3
        onnx_path = bundle / config.get("onnx", "model.onnx")
        if not onnx_path.is_file():
            raise ModelError(f"{onnx_path}: model file missing")
        self._session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    @classmethod
    def load(cls, model: str | Path | None = None, threads: int | None = None) -> Recognizer:
        """Load a bundled model by name (default: the bundled default) or a bundle folder."""
        bundle = resolve_model(model)
        try:
            config = json.loads((bundle / "model.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"{bundle / 'model.json'}: cannot read ({exc})") from None
        return cls(bundle, config, threads)

    def model_input(self, samples: np.ndarray) -> np.ndarray:
        """Front-end output for already preprocessed audio, with a batch axis."""
        return self._frontend(samples)[None].astype(np.float32)

    def logits(self, samples: np.ndarray) -> np.ndarray:
        """Raw scores for preprocessed audio, shape ``(len(labels),)``."""
        return self._session.run(None, {self._input: self.model_input(samples)})[0][0]

    def predict_preprocessed(self, samples: np.ndarray) -> Prediction:
        """Prediction for audio that already went through :func:`~speech_emotion.audio.preprocess`."""
        probs = softmax(self.logits(samples).astype(np.float64))
        best = int(np.argmax(probs))
        return Prediction(
            label=self.labels[best],
            confidence=float(probs[best]),
            probabilities={label: float(p) for label, p in zip(self.labels, probs)},
        )

    def predict(self, samples: np.ndarray, sample_rate: int, source: str = "<audio>") -> Prediction:
        """Prediction for raw audio (any rate, mono or ``(frames, channels)``)."""
        return self.predict_preprocessed(preprocess(samples, sample_rate, self.audio_options, source))

    def predict_file(self, source: AudioSource) -> Prediction:
        """Prediction for an audio file (path, bytes or binary file object)."""
        return self.predict_preprocessed(load_audio(source, self.audio_options))
