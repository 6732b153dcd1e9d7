"""The shared recognizer: a model bundle run with ONNX Runtime (no PyTorch needed).

A bundle (:mod:`speech_emotion.bundle`) is a folder with ``model.json`` (labels, sample rate, preprocessing,
features) and the ONNX graph it names. :class:`Recognizer` classifies one prepared clip; the emotion of a file is
:func:`~speech_emotion.recording.predict_recording`, which runs the engine over it with a recognizer. The CLI,
streaming engine, web service and batch runs all share one :class:`Recognizer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import DEFAULT_MODEL, DIMENSIONS, ModelBundle, load_bundle, resolve_model
from .calibration import Calibration
from .conditioning import SAMPLE_RATE, prepare
from .errors import ModelError
from .features import build_features


def read_only(values: Any) -> np.ndarray:
    """A read-only float64 copy of ``values`` (probabilities ``(labels,)``, dimensions ``(3,)``): what the frozen
    result classes hold, so no caller can change a result after the fact."""
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


class ArrayFields:
    """Equality and hash for the frozen dataclasses (``eq=False``) that hold read-only numpy arrays: equal when every
    field is, arrays by value (:func:`numpy.array_equal`)."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))  # type: ignore[arg-type]

    def __hash__(self) -> int:
        return hash(tuple(_hashable(getattr(self, f.name)) for f in fields(self)))  # type: ignore[arg-type]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is not None and b is not None and np.array_equal(a, b)
    return bool(a == b)


def _hashable(value: Any) -> Any:
    return (value.shape, value.tobytes()) if isinstance(value, np.ndarray) else value


class LabelledProbabilities:
    """The accessor of results that hold ``probabilities`` ``(len(labels),)`` in ``labels`` order."""

    labels: tuple[str, ...]
    probabilities: np.ndarray

    def probability(self, label: str) -> float:
        """The probability of ``label`` (one of :attr:`labels`; :class:`KeyError` otherwise)."""
        try:
            return float(self.probabilities[self.labels.index(label)])
        except ValueError:
            raise KeyError(label) from None

    def probabilities_dict(self, digits: int | None = None) -> dict[str, float]:
        """``{label: probability}`` in label order (rounded to ``digits`` when given): the JSON form, built only
        at the edge (``to_dict``)."""
        return {
            label: float(p) if digits is None else round(float(p), digits)
            for label, p in zip(self.labels, self.probabilities)
        }


@dataclass(frozen=True, eq=False)
class Prediction(LabelledProbabilities, ArrayFields):
    """One clip's result: the winning label, its probability, and all probabilities (calibrated when the bundle
    has a calibration); ``uncertain``: the bundle's thresholds say the answer is not to be trusted (low confidence
    or the top two close; always ``False`` for a bundle without calibration thresholds)."""

    label: str
    confidence: float
    probabilities: np.ndarray
    """``(len(labels),)`` float64 in :attr:`labels` order, read-only (:meth:`probability` reads one by name)."""
    labels: tuple[str, ...]
    uncertain: bool = False
    dimensions: np.ndarray | None = None
    """``(3,)`` float64 arousal, valence, dominance (each in [0, 1], 0.5 = neutral) when the bundle has them, else
    ``None``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "probabilities", read_only(self.probabilities))
        if self.dimensions is not None:
            object.__setattr__(self, "dimensions", read_only(self.dimensions))

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "confidence": self.confidence,
            "probabilities": self.probabilities_dict(),
            "uncertain": self.uncertain,
            **dimension_fields(self.dimensions),
        }


def dimension_fields(values: np.ndarray | tuple[float, ...] | None, digits: int | None = None) -> dict[str, float]:
    """The JSON keys ``arousal``, ``valence``, ``dominance`` of the values ``(3,)`` (rounded to ``digits`` when
    given); no keys for ``None`` (a model without dimensions): the one place every door names them."""
    if values is None:
        return {}
    return {name: float(v) if digits is None else round(float(v), digits) for name, v in zip(DIMENSIONS, values)}


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else (d or "?") for d in shape) + "]"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities along the last axis of ``logits`` (same shape)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def tone(seconds: float, hz: float = 220.0) -> np.ndarray:
    """``seconds`` of a 0.1-amplitude sine at ``hz``, 16 kHz float32: the warm-up and shape-check input."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.1 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


class Recognizer:
    """Emotion recognizer over a model bundle, backed by an ONNX Runtime session."""

    def __init__(self, bundle: ModelBundle, threads: int | None = None) -> None:
        """Open ``bundle``'s ONNX graph (read with :func:`~speech_emotion.bundle.read_bundle`); ``threads``:
        ONNX Runtime intra-op threads (``None``: all cores)."""
        import onnxruntime as ort

        self.bundle = bundle
        self.name: str = bundle.name
        self.labels: tuple[str, ...] = bundle.labels
        self.preprocessing = bundle.preprocessing
        """The :class:`~speech_emotion.conditioning.AudioOptions` every input goes through before the features."""
        self.sample_rate = bundle.sample_rate
        self._features = build_features(bundle.features, bundle.feature_options)
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # ORT_ENABLE_ALL adds only layout transforms: the same logits bit for bit and no faster on the bundled
        # models, but 0.2-0.3 s longer to open the Whisper graph (benchmarks/bench_startup.py)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        try:
            self._session = ort.InferenceSession(str(bundle.onnx_path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime's own errors (a truncated file, a Git LFS pointer, not ONNX)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{bundle.onnx_path}: cannot load the ONNX graph ({reason})") from None
        self._input = self._session.get_inputs()[0].name
        outputs = [o.name for o in self._session.get_outputs()]
        if bundle.dimensions and "dimensions" not in outputs:
            raise ModelError(
                f"{bundle.onnx_path}: model.json declares dimensions but the graph has no 'dimensions' output "
                f"(outputs: {', '.join(outputs)})"
            )
        self._outputs = [outputs[0], "dimensions"] if bundle.dimensions else [outputs[0]]
        self.batched: bool = not isinstance(self._session.get_inputs()[0].shape[0], int)
        """Whether the graph takes a batch of clips (a symbolic first input dimension): :meth:`scores_batch`."""
        self.dimensions: tuple[str, ...] = bundle.dimensions
        """:data:`~speech_emotion.bundle.DIMENSIONS` when the model also gives arousal, valence and dominance, else
        ``()``."""
        self._check_shapes()

    def _check_shapes(self) -> None:
        """:class:`ModelError` when the graph's fixed input/output sizes disagree with the bundle's features and
        labels (e.g. another model's ``model.onnx`` copied in), instead of an ONNX Runtime error on the first clip."""
        actual = self.model_input(tone(1.0)).shape
        declared = self._session.get_inputs()[0].shape
        fixed = [(i, d) for i, d in enumerate(declared) if isinstance(d, int) and i < len(actual)]
        if len(declared) != len(actual) or any(actual[i] != d for i, d in fixed):
            raise ModelError(
                f"{self.bundle.onnx_path}: the graph expects input {_shape(declared)}, but the bundle's features "
                f"{self.bundle.features!r} give {_shape(actual)}"
            )
        out = self._session.get_outputs()[0].shape
        if out and isinstance(out[-1], int) and out[-1] != len(self.labels):
            raise ModelError(
                f"{self.bundle.onnx_path}: the graph gives {out[-1]} scores, "
                f"but model.json names {len(self.labels)} labels"
            )

    def warmup(self, seconds: float = 1.0) -> None:
        """Classify ``seconds`` of a quiet 220 Hz :func:`tone` through the whole path (conditioning, features,
        ONNX Runtime), so one-off setup (memory arenas, caches) is paid before the first real input."""
        self.predict(tone(seconds), SAMPLE_RATE, source="<warm-up>")

    @classmethod
    def load(cls, model: str | Path | None = None, threads: int | None = None) -> Recognizer:
        """Load a bundled model by name (default: the bundled default), a bundle folder or a ``model.json``.

        Raises :class:`~speech_emotion.errors.ModelError` (one line naming the bundle and field) for an unknown
        model or an invalid bundle.
        """
        return cls(load_bundle(model), threads)

    def model_input(self, samples: np.ndarray) -> np.ndarray:
        """Model input features ``(1, ...)`` float32 for already preprocessed audio (a batch of one)."""
        return self._features(samples)[None].astype(np.float32)

    def _run(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One model run: logits ``(len(labels),)`` and dimensions ``(3,)`` float64 (``None`` without them)."""
        return self._run_batch(self.model_input(samples))[0]

    def _run_batch(self, features: np.ndarray) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """One ONNX Runtime call on stacked model inputs ``(B, ...)``: each row's logits and dimensions."""
        out = self._session.run(self._outputs, {self._input: features})
        return [
            (out[0][row], np.asarray(out[1][row], dtype=np.float64) if len(out) > 1 else None)
            for row in range(len(features))
        ]

    def scores_batch(self, clips: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """:meth:`scores` of each clip (prepared as for :meth:`scores`), in order. When the graph takes a batch (its
        first input dimension is symbolic, which a bundle's graph may only declare when each row's outputs depend
        on that row alone), clips of the same length go through ONNX Runtime in one call; otherwise one call per
        clip. The results are those of :meth:`scores` either way (to float rounding)."""
        runs: dict[int, list[int]] = {}
        for i, clip in enumerate(clips):
            runs.setdefault(len(clip) if self.batched else i, []).append(i)  # equal samples: equal feature shapes
        results: list[tuple[np.ndarray, np.ndarray | None]] = [None] * len(clips)  # type: ignore[list-item]
        for members in runs.values():
            features = np.stack([self._features(clips[i]).astype(np.float32) for i in members])
            for i, (logits, dimensions) in zip(members, self._run_batch(features)):
                results[i] = (self.calibrated(logits), dimensions)
        return results

    def logits(self, samples: np.ndarray) -> np.ndarray:
        """Raw scores (logits) ``(len(labels),)`` for preprocessed mono float32 audio at :attr:`sample_rate` Hz."""
        return self._run(samples)[0]

    def scores(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Everything one model run gives for mono float32 audio at :attr:`sample_rate` Hz that already went
        through :func:`~speech_emotion.conditioning.prepare` with :attr:`preprocessing`: the shown probabilities
        ``(len(labels),)`` float64 in :attr:`labels` order (:meth:`calibrated` of the logits) and the
        :attr:`dimensions` ``(3,)`` float64, arousal, valence, dominance in [0, 1] (``None`` for a model without
        them). The engine's one call per window or segment."""
        logits, dimensions = self._run(samples)
        return self.calibrated(logits), dimensions

    def probabilities(self, samples: np.ndarray) -> np.ndarray:
        """The probabilities of :meth:`scores` alone, ``(len(labels),)`` float64."""
        return self.scores(samples)[0]

    def outputs(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Everything one model run gives, uncalibrated: raw logits ``(len(labels),)`` and dimensions ``(3,)``
        float64 (``None`` without them), for preprocessed audio (what ``evaluate --model`` keeps per clip)."""
        return self._run(samples)

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        """Shown probabilities for logits ``(..., len(labels))``: softmax of ``logits / T`` with the bundle's
        calibration temperature ``T`` (1 without calibration); float64, same shape."""
        calibration = self.bundle.calibration
        return calibration.probabilities(logits) if calibration else softmax(np.asarray(logits, dtype=np.float64))

    @property
    def calibration(self) -> Calibration | None:
        """The bundle's calibration (temperature and uncertainty thresholds); ``None`` for a bundle without one."""
        return self.bundle.calibration

    def is_uncertain(self, probs: np.ndarray) -> bool:
        """Whether one clip's shown probabilities ``(len(labels),)`` fall under the bundle's uncertainty thresholds
        (:meth:`Calibration.uncertain`; ``False`` without calibration): the one rule of every door, applied to
        predictions, update and segment events and the recording's speech-time-weighted probabilities."""
        return self.bundle.calibration.uncertain(probs) if self.bundle.calibration else False

    def predict_preprocessed(self, samples: np.ndarray) -> Prediction:
        """:meth:`scores` as a :class:`Prediction`."""
        probs, dimensions = self.scores(samples)
        best = int(np.argmax(probs))
        return Prediction(
            label=self.labels[best],
            confidence=float(probs[best]),
            probabilities=probs,
            labels=self.labels,
            uncertain=self.is_uncertain(probs),
            dimensions=dimensions,
        )

    def predict(self, samples: np.ndarray, sample_rate: int, source: str = "<audio>") -> Prediction:
        """Prediction for raw audio taken as one clip (no speech detection, features of at most the model's window):
        ``(frames,)`` or ``(frames, channels)`` samples at ``sample_rate`` Hz (any rate). The emotion of a recording
        is :func:`~speech_emotion.recording.predict_recording`.

        Raises :class:`~speech_emotion.errors.AudioError` (naming ``source``) for empty, silent, too short or
        non-finite audio."""
        return self.predict_preprocessed(prepare(samples, self.preprocessing, source, sample_rate))


__all__ = [
    "DEFAULT_MODEL",
    "ArrayFields",
    "LabelledProbabilities",
    "Prediction",
    "Recognizer",
    "dimension_fields",
    "read_only",
    "resolve_model",
    "softmax",
]
