"""ONNX bundles of Whisper-backbone models: the used encoder blocks and the head(s) in one graph.

Input ``features`` ``[1, n_mels, frames]`` (the ``whisper-logmel`` features, ``frames`` dynamic) ->
``logits`` ``[1, 8]`` (log of the mean class probabilities when several heads are ensembled).
Optionally made smaller and faster by :func:`quantize_int8` (int8 MLP weights, float16 storage of the rest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...bundle import make_bundle, write_bundle
from ...conditioning import AudioOptions
from ...features import LogMelOptions
from ..export import trace_to_onnx


def export_logmel_onnx(model: nn.Module, path: Path, n_mels: int = 80, frames: int = 300) -> Path:
    """Trace ``model`` to ONNX taking log-mel ``[1, n_mels, frames]`` (``frames`` dynamic)."""
    return trace_to_onnx(model, path, torch.zeros(1, n_mels, frames), frames_axis=2)


def quantize_int8(source: Path, target: Path, dynamic: tuple[str, ...] = ("fc1",)) -> Path:
    """The shipped int8 form: MatMuls named in ``dynamic`` (the MLP input projections, whose inputs are
    LayerNorm outputs and quantise well) run in int8 with ONNX Runtime dynamic quantisation; the other
    MLP weights are stored int8 and every other weight float16 (:func:`compress_weights`), computed in
    float32. Quantising every MatMul dynamically costs about 8 UA points: Whisper activations have outliers."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = [
        n.name for n in onnx.load(str(source)).graph.node if n.op_type == "MatMul" and any(x in n.name for x in dynamic)
    ]
    tmp = target.with_suffix(".dynamic.onnx")
    quantize_dynamic(
        str(source), str(tmp), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes
    )
    compress_weights(tmp, target, int8=("fc2",))
    tmp.unlink()
    return target


def export_whisper(
    bundle_dir: Path,
    model: nn.Module,
    name: str,
    audio_options: AudioOptions = AudioOptions(),
    logmel_options: LogMelOptions = LogMelOptions(),
    quantize: str = "int8",
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.onnx`` (float, or int8 when ``quantize == "int8"``) and ``model.json`` into ``bundle_dir``."""
    bundle_dir = Path(bundle_dir)
    bundle_dir.mkdir(parents=True, exist_ok=True)
    target = bundle_dir / "model.onnx"
    if quantize == "int8":
        tmp = bundle_dir / "model.float.onnx"
        export_logmel_onnx(model, tmp, logmel_options.n_mels)
        quantize_int8(tmp, target)
        tmp.unlink()
    else:
        export_logmel_onnx(model, target, logmel_options.n_mels)
    metadata = {"quantization": quantize, **(metadata or {})}
    return write_bundle(bundle_dir, make_bundle(name, "whisper-logmel", logmel_options, audio_options, metadata))


def compress_weights(source: Path, target: Path, int8: tuple[str, ...] = ("fc1", "fc2"), min_size: int = 4096) -> Path:
    """Smaller weights, float32 compute: the weights of MatMul nodes whose name contains one of ``int8`` are
    stored as int8 with one scale per output column (``Cast`` + ``Mul``), every other large float initializer
    as float16 (``Cast``; lossless for the CTranslate2 whisper-base weights, which are float16). ORT folds
    these constants when the session loads, so activations and arithmetic stay float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    int8_names = {
        n.input[1] for n in graph.node if n.op_type == "MatMul" and len(n.input) > 1 and any(x in n.name for x in int8)
    }
    prologue, keep, added = [], [], []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or np.prod(init.dims) < min_size:
            keep.append(init)
            continue
        w = numpy_helper.to_array(init)
        name = init.name
        if name in int8_names and w.ndim == 2:
            scale = (np.maximum(np.abs(w).max(0, keepdims=True), 1e-12) / 127.0).astype(np.float32)
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            added += [numpy_helper.from_array(q, name + "_int8"), numpy_helper.from_array(scale, name + "_scale")]
            prologue.append(helper.make_node("Cast", [name + "_int8"], [name + "_f"], to=TensorProto.FLOAT))
            prologue.append(helper.make_node("Mul", [name + "_f", name + "_scale"], [name]))
        else:
            added.append(numpy_helper.from_array(w.astype(np.float16), name + "_fp16"))
            prologue.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(keep + added)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(prologue + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target
