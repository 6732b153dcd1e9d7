"""Model bundles from trained PyTorch models: the traced ONNX graph, then ``model.json`` (via
:func:`speech_emotion.bundle.write_bundle`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..bundle import make_bundle, write_bundle
from ..conditioning import AudioOptions
from ..features import FeatureOptions

OPSET = 18


def trace_to_onnx(model: nn.Module, path: Path, example: torch.Tensor, frames_axis: int) -> Path:
    """Trace ``model`` on ``example`` to ONNX: input ``features`` -> ``logits``, axis ``frames_axis`` dynamic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model.eval(),
            (example,),
            str(path),
            input_names=["features"],
            output_names=["logits"],
            dynamic_axes={"features": {frames_axis: "frames"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def export_frames_onnx(model: nn.Module, path: Path, n_features: int, frames: int = 120) -> Path:
    """Write ``model`` as ONNX taking ``features`` ``[1, frames, n_features]`` (``frames`` dynamic) to ``logits``."""
    return trace_to_onnx(model, path, torch.zeros(1, frames, n_features), frames_axis=1)


def export_cnn_lstm(
    bundle_dir: Path,
    model: nn.Module,
    name: str,
    feature_options: FeatureOptions = FeatureOptions(),
    audio_options: AudioOptions = AudioOptions(),
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Export ``model`` over the ``librosa`` frame features as a bundle folder (``model.json`` + ``model.onnx``)."""
    bundle_dir = Path(bundle_dir)
    export_frames_onnx(model, bundle_dir / "model.onnx", feature_options.n_features)
    return write_bundle(bundle_dir, make_bundle(name, "librosa", feature_options, audio_options, metadata))
