"""ONNX bundles of Whisper-backbone models: the used encoder blocks and the head(s) in one graph.

Input ``features`` ``[1, n_mels, frames]`` (the ``whisper-logmel`` front end, ``frames`` dynamic) ->
``logits`` ``[1, 8]`` (log of the mean class probabilities when several heads are ensembled).
Optionally quantised with ONNX Runtime's dynamic int8 quantisation of the matrix weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..audio import AudioOptions
from ..labels import EMOTIONS
from .encoder import WhisperEncoder
from .head import StateClassifier
from .logmel import LogMelOptions

OPSET = 18


class EnsembleClassifier(nn.Module):
    """Log-mel -> log mean probability of one or more heads over the shared frozen encoder."""

    def __init__(self, encoder: WhisperEncoder, heads: list[StateClassifier]) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleList(heads)
        self.layers = sorted({i for h in heads for i in h.frozen_layers()})

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        states = dict(zip(self.layers, self.encoder(mel, layers=self.layers)))
        logits = [h(torch.stack([states[i] for i in h.frozen_layers()], 1)) for h in self.heads]
        if len(logits) == 1:
            return logits[0]
        return torch.log(torch.stack([torch.softmax(z, -1) for z in logits]).mean(0) + 1e-9)


def export_onnx(model: nn.Module, path: Path, n_mels: int = 80, frames: int = 300) -> Path:
    """Trace ``model`` to ONNX with a dynamic frame axis."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            model.eval(),
            (torch.zeros(1, n_mels, frames),),
            str(path),
            input_names=["features"],
            output_names=["logits"],
            dynamic_axes={"features": {2: "frames"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def quantize_int8(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation (weights of MatMul/Gemm) with ONNX Runtime; activations stay float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
    return target


def write_bundle(
    bundle_dir: Path,
    model: EnsembleClassifier,
    name: str,
    audio_options: AudioOptions = AudioOptions(),
    logmel_options: LogMelOptions = LogMelOptions(),
    quantize: str = "int8",
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.onnx`` (float, or int8 when ``quantize == "int8"``) and ``model.json`` into ``bundle_dir``."""
    bundle_dir = Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    target = bundle_dir / "model.onnx"
    if quantize == "int8":
        tmp = bundle_dir / "model.float.onnx"
        export_onnx(model, tmp, logmel_options.n_mels)
        quantize_int8(tmp, target)
        tmp.unlink()
    else:
        export_onnx(model, target, logmel_options.n_mels)
    config = {
        "name": name,
        "labels": list(EMOTIONS),
        "frontend": "whisper-logmel",
        "frontend_options": asdict(logmel_options),
        "audio_options": asdict(audio_options),
        "onnx": "model.onnx",
        "quantization": quantize,
        **(extra or {}),
    }
    (bundle_dir / "model.json").write_text(json.dumps(config, indent=2) + "\n")
    return bundle_dir


def max_abs_difference(model: nn.Module, onnx_path: Path, mel: np.ndarray) -> float:
    """Largest difference between the PyTorch and ONNX Runtime logits for one log-mel ``(n_mels, frames)``."""
    import onnxruntime as ort

    with torch.no_grad():
        expected = model(torch.from_numpy(mel[None])).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"features": mel[None].astype(np.float32)})[0]
    return float(np.abs(expected - got).max())
