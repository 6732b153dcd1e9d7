"""Model bundles from trained PyTorch models: the ONNX graph plus the ``model.json`` the recognizer reads."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..audio import AudioOptions
from ..features import FeatureOptions
from ..labels import EMOTIONS

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


def export_onnx(model: nn.Module, path: Path, n_features: int, frames: int = 120) -> Path:
    """Write ``model`` as ONNX taking ``features`` ``[1, frames, n_features]`` (``frames`` dynamic) to ``logits``."""
    return trace_to_onnx(model, path, torch.zeros(1, frames, n_features), frames_axis=1)


def write_bundle(
    bundle_dir: Path,
    model: nn.Module,
    name: str,
    feature_options: FeatureOptions = FeatureOptions(),
    audio_options: AudioOptions = AudioOptions(),
    extra: dict[str, Any] | None = None,
) -> Path:
    """Export ``model`` over the librosa front end as a bundle folder (``model.json`` + ``model.onnx``)."""
    bundle_dir = Path(bundle_dir)
    export_onnx(model, bundle_dir / "model.onnx", feature_options.n_features)
    return write_model_json(bundle_dir, name, "librosa", asdict(feature_options), audio_options, extra)


def write_model_json(
    bundle_dir: Path,
    name: str,
    frontend: str,
    frontend_options: dict[str, Any],
    audio_options: AudioOptions,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the bundle's ``model.json`` beside ``model.onnx``: what ``Recognizer`` reads."""
    config = {
        "name": name,
        "labels": list(EMOTIONS),
        "frontend": frontend,
        "frontend_options": frontend_options,
        "audio_options": asdict(audio_options),
        "onnx": "model.onnx",
        **(extra or {}),
    }
    (bundle_dir / "model.json").write_text(json.dumps(config, indent=2) + "\n")
    return bundle_dir
