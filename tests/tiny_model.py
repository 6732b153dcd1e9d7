"""A tiny but real model bundle built with ``onnx.helper`` (no PyTorch): mean-pooled features -> linear."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from speech_emotion.features import FeatureOptions
from speech_emotion.labels import EMOTIONS


def write_tiny_bundle(folder: Path, seed: int = 0, batch: bool = False) -> Path:
    """Write ``model.json`` + ``model.onnx`` for a random linear classifier over the librosa front end; ``batch``:
    the graph takes a batch of clips (a symbolic first dimension; each row's output depends on that row alone)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    options = FeatureOptions()
    rng = np.random.default_rng(seed)
    weight = rng.normal(0, 0.05, (options.n_features, len(EMOTIONS))).astype(np.float32)
    bias = np.zeros(len(EMOTIONS), dtype=np.float32)
    rows: int | str = "batch" if batch else 1
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["features", "axes"], ["pooled"], keepdims=0),
            helper.make_node("MatMul", ["pooled", "W"], ["scores"]),
            helper.make_node("Add", ["scores", "b"], ["logits"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [rows, "frames", options.n_features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [rows, len(EMOTIONS)])],
        initializer=[
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
            numpy_helper.from_array(weight, "W"),
            numpy_helper.from_array(bias, "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / "model.onnx")
    (folder / "model.json").write_text(
        json.dumps(
            {
                "name": "tiny-test",
                "labels": list(EMOTIONS),
                "frontend": "librosa",
                "frontend_options": {},
                "audio_options": {},
                "onnx": "model.onnx",
            },
            indent=2,
        )
    )
    return folder


def calibrated_copy(tiny_bundle: Path, folder: Path, block: dict) -> Path:
    """A copy of the tiny bundle in ``folder`` whose ``model.json`` (format 2) carries the ``calibration`` ``block``."""
    import shutil

    shutil.copytree(tiny_bundle, folder)
    doc = json.loads((folder / "model.json").read_text())
    doc = {
        "format": 2,
        "name": doc["name"],
        "labels": doc["labels"],
        "sample_rate": 16000,
        "features": doc["frontend"],
        "feature_options": {},
        "preprocessing": {},
        "onnx": "model.onnx",
        "calibration": block,
    }
    (folder / "model.json").write_text(json.dumps(doc))
    return folder
