r"""Turn a shipped Whisper-probe bundle into a faster graph of the same model, with a symbolic batch dimension.

No retraining: the weights of ``--model`` (default: the default bundle) are read back to float32 (the shipped
graph stores them as float16 and int8, with dynamically quantised ``fc1`` activations), the batch dimension is made
symbolic (``features [batch, 80, frames]`` -> ``logits [batch, 8]``, ``dimensions [batch, 3]``), and then one of:

- ``float``: float32 everywhere (the reference; exact per row);
- ``static``: static int8 (QDQ, ONNX Runtime's ``quantize_static``) of the 16 block MatMuls (``--conv``: and of
  the two input convolutions, rewritten as MatMuls): per-channel int8 weights (in 7 bits: ``--weights``), uint8
  activations whose ranges are calibrated once (the 99.999th percentile of |value|) on 2 s windows of clips of the
  ``--calibration`` corpora (every Nth clip by path), float MatMul outputs, and the fc2 input channels with massive
  activations split off in float; so every row of a batch is computed exactly as it would be alone;
- ``dynamic``: dynamic int8 of the block MatMuls (ONNX Runtime's ``quantize_dynamic``): activation scale per
  call, so a row's result depends on the other rows of its batch (for one-clip use only);
- ``rerange``: no new graph: ``--model``'s own graph with the int8 weights of its integer MatMuls stored in 7 bits
  (:func:`rerange`), so that CPUs without VNNI cannot saturate them (:data:`WEIGHTS`); checked against the float
  graph together with the graph it replaces.

The result is a bundle folder (``model.json`` from the source with ``metadata.quantization`` and
``metadata.derived_from`` recording the source graph's SHA-256, the command, the nodes and the calibration clips)
plus ``checks.json``: the candidate against the shipped graph on check clips that are not calibration clips (max
|diff| of logits and dimensions, share of changed labels) and its batch independence (max |diff| between the rows
of a batch of 16 and the same windows run one at a time). Exit 1 when the batch independence check fails for a
mode that promises it (float, static). ``--compare`` and ``--compare-live`` only compare two evaluations or two
bundles' live-path scores (docs/inference.md)::

    PYTHONPATH=src python scripts/quantize_bundle.py --model models/whisper-base-general --mode static --conv \
        --out /work/runs/quant/static-conv \
        --calibration ../shared/data/ravdess ../shared/data/ased ../shared/data/emovo \
        --check ../corpora/nemo ../corpora/es-students ../corpora/esd-0020 ../corpora/emospeech-cmd --check-clips 25
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from speech_emotion.bundle import load_bundle, write_bundle
from speech_emotion.conditioning import SAMPLE_RATE, prepare
from speech_emotion.corpora import load_corpora
from speech_emotion.errors import AudioError
from speech_emotion.recognizer import Recognizer

WINDOW_S = 2.0
"""The live engine's window: calibration also sees 2 s crops, and the batch check runs 2 s windows."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- 1. the shipped graph read back to float32, batch dimension symbolic ------------------------------------------


def _fold_constants(graph: onnx.GraphProto) -> None:
    """Replace every Cast/Mul/Sub of initializers (the float16/int8 weight storage) by its float32 result."""
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    keep = []
    for node in graph.node:
        args = [init.get(name) for name in node.input]
        if node.op_type in ("Cast", "Mul", "Sub") and args and all(a is not None for a in args):
            if node.op_type == "Cast":
                value = args[0].astype(np.float32)
            elif node.op_type == "Mul":
                value = (args[0].astype(np.float32) * args[1].astype(np.float32)).astype(np.float32)
            else:
                value = (args[0].astype(np.float32) - args[1].astype(np.float32)).astype(np.float32)
            init[node.output[0]] = value
            continue
        keep.append(node)
    used = {name for node in keep for name in node.input} | {o.name for o in graph.output}
    del graph.node[:]
    graph.node.extend(keep)
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(np.asarray(v), name) for name, v in init.items() if name in used)


def _dequantize_matmul_integer(graph: onnx.GraphProto) -> int:
    """Replace each DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scale) chain by one float MatMul with the
    dequantized weight ``(W_int8 - zero_point) * scale``; returns how many were replaced."""
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    drop: set[int] = set()
    new_nodes: dict[int, onnx.NodeProto] = {}
    count = 0
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        dql = producer[node.input[0]]
        weight_q, weight_zp = init[node.input[1]], init[node.input[3]]
        weight_name = node.input[1].removesuffix("_quantized")
        scale = init[weight_name + "_scale"]
        weight = ((weight_q.astype(np.float32) - weight_zp.astype(np.float32)) * scale).astype(np.float32)
        cast = consumers[node.output[0]][0]
        out_mul = consumers[cast.output[0]][0]
        scales_mul = producer[out_mul.input[1]]
        init[weight_name] = weight
        graph.initializer.append(numpy_helper.from_array(weight, weight_name))
        matmul = onnx.helper.make_node("MatMul", [dql.input[0], weight_name], [out_mul.output[0]], name=node.name)
        for n in (dql, scales_mul, cast, out_mul):
            drop.add(id(n))
        new_nodes[id(node)] = matmul
        count += 1
    _set_nodes(graph, [new_nodes.get(id(n), n) for n in graph.node if id(n) not in drop])
    return count


def _set_nodes(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    """Make ``nodes`` the graph's nodes and drop the initializers none of them reads."""
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for n in nodes for name in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def _strip_qdq(graph: onnx.GraphProto) -> int:
    """Replace each DequantizeLinear of a stored weight by the float32 weight ``(q - zero_point) * scale`` (per
    tensor, or per channel along its ``axis``) and drop each QuantizeLinear -> DequantizeLinear pair on an
    activation (a static QDQ graph read back to float); returns how many weights were dequantized."""
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    rename: dict[str, str] = {}
    keep, count = [], 0
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in init:
            q = init[node.input[0]].astype(np.float32)
            scale = init[node.input[1]].astype(np.float32)
            zero = init[node.input[2]].astype(np.float32) if len(node.input) > 2 and node.input[2] else 0.0
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * q.ndim
            if np.ndim(scale):
                shape[axis % q.ndim] = -1
            weight = ((q - np.reshape(zero, shape if np.ndim(zero) else ())) * np.reshape(scale, shape)).astype(
                np.float32
            )
            init[node.output[0]] = weight
            graph.initializer.append(numpy_helper.from_array(weight, node.output[0]))
            count += 1
            continue
        source = producer.get(node.input[0]) if node.input else None
        if node.op_type == "DequantizeLinear" and source is not None and source.op_type == "QuantizeLinear":
            rename[node.output[0]] = source.input[0]
            continue
        if node.op_type == "QuantizeLinear":
            continue
        keep.append(node)
    for node in keep:
        for i, name in enumerate(node.input):
            node.input[i] = rename.get(name, name)
    for output in graph.output:
        output.name = rename.get(output.name, output.name)
    _set_nodes(graph, keep)
    return count


def float_graph(source: Path) -> onnx.ModelProto:
    """The graph of ``source`` with float32 weights, float MatMuls only, and a symbolic ``batch`` first dimension
    on its input and outputs (no stored intermediate shapes)."""
    model = onnx.load(str(source))
    graph = model.graph
    _dequantize_matmul_integer(graph)
    _strip_qdq(graph)
    _fold_constants(graph)
    for value in list(graph.input) + list(graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "batch"
    del graph.value_info[:]
    left = {n.op_type for n in graph.node} & {"MatMulInteger", "DynamicQuantizeLinear"}
    indices = (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64)  # int64: shapes and indices (a static graph's im2col)
    if left or any(t.data_type not in indices for t in graph.initializer if t.dims):
        raise SystemExit(f"{source}: could not read every weight back to float32 ({left or 'non-float weights'})")
    onnx.checker.check_model(model)
    return model


# -- 2. calibration and check inputs ------------------------------------------------------------------------------


def clip_table(corpora: list[str], per_corpus: int, offset: int):  # noqa: ANN201
    """Every Nth clip of each corpus (sorted by path), N = len // per_corpus, starting at ``offset`` (mod N): a
    deterministic spread over speakers and emotions; ``offset`` 0 and N // 2 give disjoint sets."""
    table = load_corpora(corpora).sort_values(["corpus", "path"]).reset_index(drop=True)
    picked = []
    for _, rows in table.groupby("corpus", sort=True):
        step = max(1, len(rows) // per_corpus)
        picked.append(rows.iloc[(offset % step) :: step].head(per_corpus))
    import pandas as pd

    return pd.concat(picked, ignore_index=True)


def model_inputs(recognizer: Recognizer, table, windows: int = 1) -> Iterator[tuple[str, np.ndarray]]:  # noqa: ANN001
    """``(name, features [1, 80, frames])`` for each clip of ``table``: the whole clip, and ``windows`` 2 s crops
    (the middle one for 1; else evenly spaced from the start to the end) when it is longer than 2 s."""
    n = int(WINDOW_S * SAMPLE_RATE)
    for row in table.itertuples():
        try:
            audio = prepare(row.path, recognizer.preprocessing)
        except AudioError:
            continue
        yield row.path, recognizer.model_input(audio)
        if audio.size > n and windows > 0:
            starts = [(audio.size - n) // 2] if windows == 1 else np.linspace(0, audio.size - n, windows).astype(int)
            for k, start in enumerate(sorted(set(int(s) for s in starts))):
                yield f"{row.path}#window{k}", recognizer.model_input(audio[start : start + n])


class Reader:
    """ONNX Runtime's CalibrationDataReader over precomputed features."""

    def __init__(self, name: str, features: list[np.ndarray]) -> None:
        self.name, self.features, self.i = name, features, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= len(self.features):
            return None
        self.i += 1
        return {self.name: self.features[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0


# -- 3. smoothing (SmoothQuant, Xiao et al. 2023): exact in float, easier activation ranges for int8 --------------


def weight_matmuls(model: onnx.ModelProto) -> list[str]:
    """The MatMul nodes whose second input is a weight (an initializer): the projections, not attention's QK/AV."""
    names = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in names]


def encoder_matmuls(model: onnx.ModelProto) -> list[str]:
    """The encoder's weight MatMuls (qkv, out, fc1, fc2 of each block); the probe heads and the float part of a
    split fc2 (:func:`split_outliers`) stay float."""
    return [name for name in weight_matmuls(model) if name.startswith("/encoder/") and "/outliers/" not in name]


def channel_absmax(model: onnx.ModelProto, tensors: list[str], inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Max |value| per last-axis channel of each of ``tensors`` over ``inputs`` (float graph ``model``)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in tensors:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    top = {name: np.zeros(0) for name in tensors}
    for x in inputs:
        for name, value in zip(tensors, sess.run(tensors, {model.graph.input[0].name: x})):
            m = np.abs(value).reshape(-1, value.shape[-1]).max(axis=0)
            top[name] = m if top[name].size == 0 else np.maximum(top[name], m)
    return top


def _editable(model: onnx.ModelProto) -> tuple[onnx.ModelProto, onnx.GraphProto, dict, dict, dict]:
    """A copy of ``model`` to rewrite, its graph, and its initializers, tensor producers and constants by name."""
    model_out = onnx.ModelProto()
    model_out.CopyFrom(model)
    graph = model_out.graph
    init = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    constants = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}
    return model_out, graph, init, producer, constants


def smooth(model: onnx.ModelProto, inputs: list[np.ndarray], alpha: float) -> onnx.ModelProto:
    """Per input channel j of each block MatMul ``X @ W``: ``X[:, j] / s_j`` and ``W[j, :] * s_j`` with
    ``s_j = max|X_j|^alpha / max|W_j|^(1 - alpha)`` (max over ``inputs``), the division folded into what makes
    ``X`` so that no op is added: the LayerNorm's weight and bias (qkv, fc1), the value columns of the block's qkv
    projection (out; attention mixes frames, not channels), the GELU's final constant factor (fc2). The same
    function in exact arithmetic; in float32 it moves the results by rounding only."""
    model_out, graph, init, producer, constants = _editable(model)
    nodes = {n.name: n for n in graph.node}
    names = [name for name in encoder_matmuls(model_out) if "/layers." in name]
    stats = channel_absmax(model_out, [nodes[n].input[0] for n in names], inputs)

    def scale_init(name: str, factor: np.ndarray, axis: int = -1) -> None:
        value = numpy_helper.to_array(init[name]).astype(np.float32)
        shape = [1] * value.ndim
        shape[axis] = -1
        init[name].CopyFrom(numpy_helper.from_array((value * factor.reshape(shape)).astype(np.float32), name))

    for name in names:
        node = nodes[name]
        w = numpy_helper.to_array(init[node.input[1]])
        s = stats[node.input[0]] ** alpha / np.maximum(np.abs(w).max(axis=1), 1e-8) ** (1 - alpha)
        s = np.clip(s, 1e-4, 1e4).astype(np.float32)
        made_by = producer[node.input[0]]
        if made_by.op_type == "LayerNormalization":
            scale_init(made_by.input[1], 1 / s)
            scale_init(made_by.input[2], 1 / s)
        elif made_by.op_type == "Reshape":  # attention output: softmax(QK) @ V, channels are V's columns
            qkv = nodes[name.replace("/out/MatMul", "/qkv/MatMul")]
            qkv_add = next(n for n in graph.node if n.op_type == "Add" and qkv.output[0] in n.input)
            bias = next(i for i in qkv_add.input if i in init)
            width = s.size
            v = np.ones(3 * width, np.float32)
            v[2 * width :] = 1 / s
            scale_init(qkv.input[1], v)
            scale_init(bias, v)
        elif made_by.op_type == "Mul":  # GELU's x * 0.5: the constant becomes 0.5 / s per channel
            const = made_by.input[1]  # a scalar Constant, or split_outliers' per-channel factor
            if const in constants:
                value = numpy_helper.to_array(constants[const].attribute[0].t)
            elif const in init:
                value = numpy_helper.to_array(init[const])
            else:
                raise SystemExit(f"{name}: cannot fold the smoothing into {made_by.name}")
            new = f"{made_by.name}_smooth"
            graph.initializer.append(numpy_helper.from_array((value / s).astype(np.float32), new))
            made_by.input[1] = new
        else:
            raise SystemExit(f"{name}: no place to fold the smoothing (input made by {made_by.op_type})")
        scale_init(node.input[1], s, axis=0)
    return model_out


# -- 3. quantisation ------------------------------------------------------------------------------------------------


def split_outliers(model: onnx.ModelProto, inputs: list[np.ndarray], ratio: float) -> tuple[onnx.ModelProto, dict]:
    """Each fc2 (input: GELU output ``g * 0.5``) whose input has channels with max |value| above ``ratio`` times the
    median channel's (Whisper's few massive-activation channels, up to ~75 against ~5 elsewhere) is computed in two
    parts (the LLM.int8() decomposition, with the channel set fixed from ``inputs``): those channels in float32
    (``Gather`` -> ``MatMul`` with their weight rows), and the rest through the int8 MatMul, with the outlier
    channels zeroed by the GELU's constant factor (``0.5`` becomes a per-channel vector with 0 there), so that its
    calibrated range is that of the ordinary channels. The same function: ``x W = x_rest W + x_out W_out``.
    Returns the graph and ``{node: [channels]}``."""
    model_out, graph, init, producer, constants = _editable(model)
    fc2 = [n for n in graph.node if n.name in encoder_matmuls(model_out) and "/fc2/" in n.name]
    stats = channel_absmax(model_out, [n.input[0] for n in fc2], inputs)
    split: dict[str, list[int]] = {}
    for node in fc2:
        top = stats[node.input[0]]
        idx = np.flatnonzero(top > ratio * np.median(top))
        if idx.size == 0:
            continue
        split[node.name] = idx.tolist()
        half = producer[node.input[0]]  # Mul(g, 0.5)
        factor = float(numpy_helper.to_array(constants[half.input[1]].attribute[0].t))
        mask = np.full(top.size, factor, np.float32)
        mask[idx] = 0.0
        base = node.name.rsplit("/", 1)[0] + "/outliers"
        graph.initializer.extend(
            [
                numpy_helper.from_array(mask, f"{base}/factor"),
                numpy_helper.from_array(idx.astype(np.int64), f"{base}/channels"),
                numpy_helper.from_array(
                    (factor * numpy_helper.to_array(init[node.input[1]])[idx]).astype(np.float32), f"{base}/weight"
                ),
            ]
        )
        half.input[1] = f"{base}/factor"
        g = half.input[0]
        result = node.output[0]
        node.output[0] = f"{base}/rest"
        graph.node.extend(
            [
                onnx.helper.make_node("Gather", [g, f"{base}/channels"], [f"{base}/x"], name=f"{base}/Gather", axis=-1),
                onnx.helper.make_node("MatMul", [f"{base}/x", f"{base}/weight"], [f"{base}/y"], name=f"{base}/MatMul"),
                onnx.helper.make_node("Add", [f"{base}/rest", f"{base}/y"], [result], name=f"{base}/Add"),
            ]
        )
    _toposort(graph)
    return model_out, split


def convs_as_matmuls(model: onnx.ModelProto) -> onnx.ModelProto:
    """The two input convolutions (kernel 3, padding 1, strides 1 and 2) as MatMuls, so that the int8 kernels
    that keep a float output (MatMulIntegerToFloat) run them: the features are turned to ``[batch, frames,
    channels]`` once, each convolution is ``Pad`` -> three strided ``Slice`` (taps) -> ``Concat`` -> ``MatMul``
    with the kernel as a ``[3 * in, out]`` matrix -> ``Add`` bias, the GELU between them is elementwise, and the
    encoder's transpose to ``[batch, frames, channels]`` after them becomes an ``Identity``. The same function."""
    model_out = onnx.ModelProto()
    model_out.CopyFrom(model)
    graph = model_out.graph
    init = {t.name: t for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    transpose = next(n for n in graph.node if n.name == "/encoder/Transpose")
    features = graph.input[0].name
    helper, new = onnx.helper, []
    new.append(
        helper.make_node(
            "Transpose", [features], ["/encoder/features_btc"], name="/encoder/features_btc", perm=[0, 2, 1]
        )
    )
    graph.initializer.append(numpy_helper.from_array(np.array([0, 1, 0, 0, 1, 0], np.int64), "/encoder/im2col/pads"))
    for k in range(3):
        end = np.iinfo(np.int64).max if k == 2 else k - 2
        for name, value in ((f"/encoder/im2col/start{k}", k), (f"/encoder/im2col/end{k}", end)):
            graph.initializer.append(numpy_helper.from_array(np.array([value], np.int64), name))
    graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "/encoder/im2col/axis"))
    for stride in (1, 2):
        graph.initializer.append(numpy_helper.from_array(np.array([stride], np.int64), f"/encoder/im2col/step{stride}"))
    for conv in convs:
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        stride = attrs.get("strides", [1])[0]
        if attrs.get("kernel_shape") != [3] or attrs.get("pads") != [1, 1] or attrs.get("group", 1) != 1:
            raise SystemExit(f"{conv.name}: not a kernel-3, padding-1 convolution ({attrs})")
        base = conv.name.rsplit("/", 1)[0]
        x = "/encoder/features_btc" if conv.input[0] == features else conv.input[0]
        w = numpy_helper.to_array(init[conv.input[1]])  # [out, in, 3]
        graph.initializer.append(
            numpy_helper.from_array(w.transpose(2, 1, 0).reshape(-1, w.shape[0]).astype(np.float32), f"{base}/kernel")
        )
        new.append(helper.make_node("Pad", [x, "/encoder/im2col/pads"], [f"{base}/padded"], name=f"{base}/Pad"))
        taps = []
        for k in range(3):
            taps.append(f"{base}/tap{k}")
            inputs = [f"{base}/padded", f"/encoder/im2col/start{k}", f"/encoder/im2col/end{k}"]
            inputs += ["/encoder/im2col/axis", f"/encoder/im2col/step{stride}"]
            new.append(helper.make_node("Slice", inputs, [taps[-1]], name=f"{base}/Slice{k}"))
        new.append(helper.make_node("Concat", taps, [f"{base}/im2col"], name=f"{base}/Concat", axis=2))
        new.append(
            helper.make_node("MatMul", [f"{base}/im2col", f"{base}/kernel"], [f"{base}/product"], name=f"{base}/MatMul")
        )
        new.append(helper.make_node("Add", [f"{base}/product", conv.input[2]], [conv.output[0]], name=f"{base}/Add"))
    kept = [n for n in graph.node if n.op_type != "Conv" and n is not transpose]
    kept.append(helper.make_node("Identity", [transpose.input[0]], [transpose.output[0]], name=transpose.name))
    del graph.node[:]
    graph.node.extend(kept + new)
    _toposort(graph)
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return model_out


def _toposort(graph: onnx.GraphProto) -> None:
    """Order ``graph.node`` so every node follows the producers of its inputs."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for n in pending:
            if all(i in ready for i in n.input):
                ordered.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise SystemExit("graph has a cycle or a missing input")
        pending = rest
    copies = [onnx.NodeProto() for _ in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


WEIGHTS = {
    "int8": "int8 per output channel",
    "int7": "int8 per output channel, 7-bit range (reduce_range: no int16 saturation on AVX2 without VNNI)",
    "uint8": "uint8 per output channel (U8U8: no int16 saturation on AVX2 without VNNI)",
}
"""``--weights``: how the weights are stored. ONNX Runtime's U8S8 kernels on x86 CPUs with AVX2 or AVX-512 but
without VNNI add pairs of uint8 x int8 products in int16 (``vpmaddubsw``), which saturates when both are large
(ONNX Runtime's quantization guide, FAQ on U8U8: ``reduce_range`` or U8U8 weights avoid it); with
VNNI, int8 is exact."""


def saturating_weights(model: onnx.ModelProto, dynamic: bool = True) -> list[str]:
    """The int8 weights of the graph's integer MatMuls (``QLinearMatMul``, a ``MatMul`` of two ``DequantizeLinear``
    outputs, which ONNX Runtime runs in integers, and with ``dynamic`` the ``MatMulInteger`` of dynamic
    quantisation) holding values beyond +-64: on x86 CPUs without VNNI their uint8 x int8 pairs can overflow int16
    (:data:`WEIGHTS`). Empty for a graph safe everywhere.

    Measured on such a CPU (docs/inference.md, "int8 on CPUs without VNNI"): the static graphs' full-range weights
    changed 30 % of the answers against their float graph; the older graphs' dynamic ``fc1`` (per-tensor weights,
    activations ranged per call) changed 1-3 %, fewer than a 7-bit copy of them (3-4 %)."""
    inits = {t.name: t for t in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    found = []
    for node in model.graph.node:
        if node.op_type == "MatMulInteger" and dynamic:
            weights = [node.input[1]]
        elif node.op_type == "QLinearMatMul":
            weights = [node.input[3]]
        elif node.op_type == "MatMul" and all(
            i in producer and producer[i].op_type == "DequantizeLinear" for i in node.input[:2]
        ):
            weights = [producer[i].input[0] for i in node.input[:2]]
        else:
            continue
        for name in weights:
            q = numpy_helper.to_array(inits[name]) if name in inits else None
            if q is not None and q.dtype == np.int8 and int(np.abs(q.astype(np.int16)).max()) > 64:
                found.append(name)
    return found


def rerange(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` with every weight of :func:`saturating_weights` stored in 7 bits: the int8 values halved
    (rounded, so within +-64) and their scale (per tensor or per channel) doubled, zero points staying 0. The
    activation ranges, heads and everything else are unchanged; each weight moves by at most one of its old steps.
    Raises :class:`ValueError` for a weight with a non-zero zero point or no scale found."""
    model = copy.deepcopy(model)
    inits = {t.name: t for t in model.graph.initializer}
    names = saturating_weights(model)
    for name in names:
        scales = {n.input[1] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == name}
        scales |= {name.removesuffix("_quantized") + "_scale"} & inits.keys() if not scales else set()
        points = {n.input[2] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == name}
        points |= {n.input[3] for n in model.graph.node if n.op_type == "MatMulInteger" and n.input[1] == name}
        if len(scales) != 1 or any(np.any(numpy_helper.to_array(inits[z])) for z in points if z in inits):
            raise ValueError(f"{name}: no single scale, or a non-zero zero point: cannot store it in 7 bits")
        (scale,) = scales
        q = numpy_helper.to_array(inits[name]).astype(np.float32)
        inits[name].CopyFrom(numpy_helper.from_array(np.clip(np.round(q / 2), -64, 64).astype(np.int8), name))
        inits[scale].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[scale]) * 2, scale))
    return model, names


def quantize(
    mode: str,
    float_path: Path,
    out_path: Path,
    calibration: list[np.ndarray],
    percentile: float,
    weights: str = "int7",
) -> dict:
    """Quantise the graph at ``float_path`` into ``out_path``: every encoder MatMul with a weight (with the
    convolutions when :func:`convs_as_matmuls` made them MatMuls); attention's activation-by-activation MatMuls
    and the probe heads stay float. ``weights``: a key of :data:`WEIGHTS`."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    model = onnx.load(str(float_path))
    matmuls = encoder_matmuls(model)
    weight_type = QuantType.QUInt8 if weights == "uint8" else QuantType.QInt8
    reduce_range = weights == "int7"
    if mode == "dynamic":
        quantize_dynamic(
            str(float_path), str(out_path), weight_type=weight_type, per_channel=True, reduce_range=reduce_range,
            nodes_to_quantize=matmuls, op_types_to_quantize=["MatMul"],
        )  # fmt: skip
        return {"nodes": matmuls, "weights": WEIGHTS[weights], "activations": "uint8, range per call"}
    nodes = matmuls
    quantize_static(
        str(float_path),
        str(out_path),
        Reader(model.graph.input[0].name, calibration),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=weight_type,
        nodes_to_quantize=nodes,
        op_types_to_quantize=["MatMul"],
        calibrate_method=CalibrationMethod.Percentile if percentile else CalibrationMethod.MinMax,
        extra_options={
            # the int8 products go on as float (MatMulIntegerToFloat): no second rounding of each output
            "OpTypesToExcludeOutputQuantization": ["MatMul"],
            **({"CalibPercentile": percentile, "CalibMaxIntermediateOutputs": 16} if percentile else {}),
        },
    )
    ranges = f"the {percentile} percentile of |value|" if percentile else "min-max"
    return {
        "nodes": nodes,
        "weights": WEIGHTS[weights],
        "activations": f"uint8 per tensor, fixed ranges ({ranges} over the calibration windows)",
    }


def pooled_tensor(model: onnx.ModelProto) -> str:
    """The tensor the probe heads read (the pooled statistics ``[batch, features]``): the first input of the MatMul
    whose result, plus a bias, is ``logits``."""
    producers = {out: node for node in model.graph.node for out in node.output}
    add = producers["logits"]
    matmul = next(producers[i] for i in add.input if i in producers and producers[i].op_type == "MatMul")
    return matmul.input[0]


def _outputs_of(path: Path, tensor: str, inputs: list[np.ndarray], tmp: Path) -> np.ndarray:
    """``tensor`` of the graph at ``path`` for each input (batch of one), stacked ``[len(inputs), features]``."""
    model = onnx.load(str(path))
    model.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    probe = tmp / f"{path.stem}-with-{len(model.graph.output)}-outputs.onnx"
    onnx.save(model, str(probe))
    sess = session(probe)
    return np.concatenate([sess.run([tensor], {sess.get_inputs()[0].name: x})[0] for x in inputs])


def correct_bias(float_path: Path, int8_path: Path, inputs: list[np.ndarray]) -> dict:
    """Bias correction of the int8 graph (Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and
    Bias Correction", sec. 4.2, here with calibration data): the mean difference between the float and the int8
    graph's pooled statistics over ``inputs`` (features ``[1, 80, frames]``) is added back inside the probe heads'
    biases (``bias += shift @ W`` for every head MatMul reading the statistics), so it costs nothing at run time.
    Rewrites ``int8_path``; returns what was done."""
    model = onnx.load(str(int8_path))
    tensor = pooled_tensor(model)
    with tempfile.TemporaryDirectory() as tmp:
        exact = _outputs_of(float_path, tensor, inputs, Path(tmp))
        rounded = _outputs_of(int8_path, tensor, inputs, Path(tmp))
    shift = (exact - rounded).mean(axis=0)
    inits = {init.name: init for init in model.graph.initializer}
    heads = []
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[0] != tensor or node.input[1] not in inits:
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        add = next(n for n in model.graph.node if n.op_type == "Add" and node.output[0] in n.input)
        bias_name = next(i for i in add.input if i in inits)
        bias = numpy_helper.to_array(inits[bias_name]) + (shift @ weight).astype(np.float32)
        inits[bias_name].CopyFrom(numpy_helper.from_array(bias.astype(np.float32), bias_name))
        heads.append(bias_name)
    onnx.save(model, str(int8_path))
    return {
        "method": "bias correction of the pooled statistics (mean float - int8 over the inputs), folded into "
        + ", ".join(heads),
        "inputs": len(inputs),
        "features": int(shift.size),
        "mean_abs_shift": float(np.abs(shift).mean()),
        "mean_abs_error_before": float(np.abs(exact - rounded).mean()),
        "mean_abs_error_after": float(np.abs(exact - rounded - shift).mean()),
    }


# -- 4. checks ------------------------------------------------------------------------------------------------------


def session(path: Path):  # noqa: ANN201
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run(sess, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    """Logits and dimensions (``(batch, 0)`` for a graph without a dimensional head)."""
    if "dimensions" not in {o.name for o in sess.get_outputs()}:
        (logits,) = sess.run(["logits"], {sess.get_inputs()[0].name: features})
        return logits, np.zeros((len(logits), 0), np.float32)
    logits, dims = sess.run(["logits", "dimensions"], {sess.get_inputs()[0].name: features})
    return logits, dims


def checks(candidate: Path, shipped: Path, inputs: list[tuple[str, np.ndarray]]) -> dict:
    """The candidate against the shipped graph (batch of one each) on ``inputs``, and its batch independence on the
    2 s windows among them (batches of 16 against the same windows one at a time; none for a graph of batch 1)."""
    cand, ship = session(candidate), session(shipped)
    dl, dd, changed = [], [], 0
    for _, x in inputs:
        a, b = run(cand, x), run(ship, x)
        dl.append(float(np.abs(a[0] - b[0]).max()))
        dd.append(float(np.abs(a[1] - b[1]).max(initial=0.0)))
        changed += int(a[0].argmax() != b[0].argmax())
    batched = not isinstance(cand.get_inputs()[0].shape[0], int)  # an older graph takes one input at a time
    windows = [x for name, x in inputs if "#window" in name] if batched else []
    batch_diff = []
    for i in range(0, len(windows) - 15, 16):
        stack = np.concatenate(windows[i : i + 16])
        logits, dims = run(cand, stack)
        for j, x in enumerate(windows[i : i + 16]):
            one = run(cand, x)
            batch_diff.append(
                max(float(np.abs(logits[j] - one[0][0]).max()), float(np.abs(dims[j] - one[1][0]).max(initial=0.0)))
            )
    return {
        "check_inputs": len(inputs),
        "saturating_weights": len(saturating_weights(onnx.load(str(candidate)))),
        "vs_shipped": {
            "logits_max_abs_diff": max(dl),
            "logits_median_max_abs_diff": float(np.median(dl)),
            "dimensions_max_abs_diff": max(dd),
            "argmax_changed_share": changed / len(inputs),
        },
        "batch16_vs_batch1": {"windows": len(batch_diff), "max_abs_diff": max(batch_diff) if batch_diff else None},
    }


def compare(shipped: Path, candidate: Path) -> None:
    """Print, per corpus, the UA of two ``speech-emotion evaluate --model`` runs (their ``metrics.json``), the
    difference in points, and the share of clips whose predicted label (over the corpus's emotions) changed."""
    import pandas as pd

    docs = [json.loads((d / "metrics.json").read_text()) for d in (shipped, candidate)]
    preds = [pd.read_csv(d / "predictions.csv") for d in (shipped, candidate)]
    both = preds[0].merge(preds[1], on="path", suffixes=("_a", "_b"))
    print(f"{'corpus':<15}{'UA shipped':>11}{'UA cand.':>10}{'diff pt':>9}{'changed':>9}{'clips':>7}")
    ua = [{f["fold"]: f["ua"] for f in doc["folds"]} for doc in docs]
    corpora = sorted(set(ua[0]) & set(ua[1]))  # a candidate scored on some corpora only: those
    for corpus in corpora:
        rows = both[both["corpus_a"] == corpus]
        changed = float((rows["predicted_a"] != rows["predicted_b"]).mean())
        a, b = ua[0][corpus], ua[1][corpus]
        print(f"{corpus:<15}{100 * a:>11.1f}{100 * b:>10.1f}{100 * (b - a):>+9.2f}{changed:>9.1%}{len(rows):>7}")
    a, b = (float(np.mean([u[c] for c in corpora])) for u in ua)
    rows = both[both["corpus_a"].isin(corpora)]
    changed = float((rows["predicted_a"] != rows["predicted_b"]).mean())
    print(f"{'mean':<15}{100 * a:>11.1f}{100 * b:>10.1f}{100 * (b - a):>+9.2f}{changed:>9.1%}{len(rows):>7}")


def compare_live(shipped: str, candidate: str, corpora: list[str], every: int) -> None:
    """Print the live-path UA (:func:`speech_emotion.evaluation.live.score_live`: each corpus's clips, every
    ``every``-th by path, joined into per-speaker calls and streamed through the engine) of two bundles, the
    argmax restricted to each corpus's emotions."""
    from speech_emotion.corpora import load_corpus
    from speech_emotion.evaluation.live import score_live
    from speech_emotion.labels import EMOTIONS

    keys = ("update_ua", "first_update_ua", "segment_ua")
    print(f"{'corpus':<15}{'model':<40}" + "".join(f"{k:>17}" for k in keys) + f"{'updates':>9}")
    for source in corpora:
        corpus = load_corpus(source).sort_values("path").reset_index(drop=True)
        rows = np.arange(0, len(corpus), every)
        allowed = np.isin(EMOTIONS, corpus["emotion"].unique())
        for model in (shipped, candidate):
            scores = score_live(Recognizer.load(model, threads=1), corpus, rows, allowed)
            cells = "".join(f"{100 * scores[k]:>17.1f}" for k in keys)
            print(f"{Path(source).name:<15}{model[-39:]:<40}{cells}{scores['n_updates']:>9}", flush=True)


def write_card(bundle, out: Path) -> None:  # noqa: ANN001
    """Copy the source bundle's ``MODEL_CARD.md`` (when it has one) into ``out``."""
    card = bundle.folder / "MODEL_CARD.md" if bundle.folder else None
    if card and card.is_file():
        shutil.copy(card, out / "MODEL_CARD.md")


def rerange_bundle(bundle, recognizer: Recognizer, out: Path, check_table) -> None:  # noqa: ANN001
    """``--mode rerange``: ``bundle`` with its graph through :func:`rerange`, model.json's metadata adding
    ``weights_7bit``; ``checks.json`` holds the new and the old graph each against the float graph (on the check
    clips when there are any; on this machine's CPU, which decides whether the old one saturates)."""
    from dataclasses import replace

    started = time.time()
    source = bundle.onnx_path
    graph, names = rerange(onnx.load(str(source)))
    onnx.save(graph, str(out / "model.onnx"))
    note = {
        "weights": WEIGHTS["int7"],
        "method": "the int8 values of each weight halved (rounded) and its scale doubled: scripts/quantize_bundle.py "
        "rerange()",
        "tensors": len(names),
        "source_sha256": sha256(source),
        "command": "python " + " ".join(sys.argv),
        "sha256": sha256(out / "model.onnx"),
    }
    if names or "weights_7bit" not in bundle.metadata:  # a second run changes nothing: the first record stays
        write_bundle(out, replace(bundle, metadata={**bundle.metadata, "weights_7bit": note}))
    else:
        write_bundle(out, bundle)
    write_card(bundle, out)
    print(f"{out}: {len(names)} weight tensors in 7 bits", flush=True)
    if check_table is None:
        return
    import platform

    inputs = list(model_inputs(recognizer, check_table))
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "float.onnx"
        onnx.save(float_graph(source), str(reference))
        result = {
            "cpu": platform.processor() or platform.machine(),
            "vnni": _has_vnni(),
            "new_vs_float": checks(out / "model.onnx", reference, inputs),
            "old_vs_float": checks(source, reference, inputs),
            "seconds": round(time.time() - started, 1),
        }
    (out / "checks.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _has_vnni() -> bool | None:
    """Whether this x86 CPU has VNNI (``/proc/cpuinfo``: avx512_vnni or avx_vnni); ``None`` where it cannot tell."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return "avx512_vnni" in flags or "avx_vnni" in flags


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default", help="source bundle (name or folder; default: the default model)")
    p.add_argument("--mode", choices=("float", "static", "dynamic", "rerange"), help="what to make (the list above)")
    p.add_argument("--out", help="output bundle folder (created; replaced if it exists)")
    p.add_argument("--calibration", nargs="+", default=[], help="corpus folders for the static activation ranges")
    p.add_argument("--calibration-clips", type=int, default=100, help="clips per calibration corpus (default 100)")
    p.add_argument("--conv", action="store_true", help="static: the two input convolutions as int8 MatMuls too")
    p.add_argument(
        "--outlier-ratio", type=float, default=8.0,
        help="static: fc2 input channels whose max |value| exceeds this times the median channel's stay float "
        "(default 8; 0: none)",
    )  # fmt: skip
    p.add_argument(
        "--percentile", type=float, default=99.999,
        help="static: activation range = this percentile of |value| over the calibration windows (default 99.999; "
        "0: min-max)",
    )  # fmt: skip
    p.add_argument("--smooth", type=float, default=0.0, help="static: SmoothQuant alpha (default 0: off)")
    p.add_argument(
        "--bias-correct", action="store_true",
        help="add the mean float - int8 difference of the pooled statistics over the calibration clips and windows "
        "back in the probe heads' biases (free at run time)",
    )  # fmt: skip
    p.add_argument(
        "--weights", choices=tuple(WEIGHTS), default="int7",
        help="how the int8 weights are stored: int7 (default: exact on every x86 CPU), int8 (saturates on CPUs "
        "without VNNI) or uint8 (no saturation, but not the VNNI kernels); see WEIGHTS",
    )  # fmt: skip
    p.add_argument("--windows", type=int, default=1, help="static: 2 s calibration windows per clip (default 1)")
    p.add_argument("--check", nargs="+", default=[], help="corpus folders for the checks (default: --calibration)")
    p.add_argument("--check-clips", type=int, default=40, help="check clips per corpus, none of them calibration")
    p.add_argument(
        "--compare", nargs=2, metavar=("SHIPPED_EVAL", "CANDIDATE_EVAL"),
        help="only compare two 'speech-emotion evaluate --model' output folders (UA per corpus, changed labels)",
    )  # fmt: skip
    p.add_argument(
        "--compare-live", nargs=2, metavar=("SHIPPED", "CANDIDATE"),
        help="only compare two bundles' live-path UA on the --check corpora (every --live-every-th clip)",
    )  # fmt: skip
    p.add_argument("--live-every", type=int, default=1, help="--compare-live: every Nth clip of each corpus")
    args = p.parse_args()
    if args.compare_live:
        compare_live(*args.compare_live, args.check, args.live_every)
        return
    if args.compare:
        compare(Path(args.compare[0]), Path(args.compare[1]))
        return
    if not args.mode or not args.out:
        p.error("--mode and --out are required (or --compare)")

    if args.mode == "static" and not args.calibration:
        p.error("--mode static needs --calibration CORPUS...")
    bundle = load_bundle(args.model)
    source = bundle.onnx_path
    recognizer = Recognizer(bundle, threads=1)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.time()
    if args.mode == "rerange":
        rerange_bundle(
            bundle, recognizer, out, clip_table(args.check, args.check_clips, offset=1) if args.check else None
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        float_path = Path(tmp) / "float.onnx"
        graph = float_graph(source)
        calib_table, calibration, detail = None, [], {"weights": "float32"}
        if args.mode == "static":
            calib_table = clip_table(args.calibration, args.calibration_clips, offset=0)
            calib_inputs = list(model_inputs(recognizer, calib_table, args.windows))
            calibration = [x for name, x in calib_inputs if "#window" in name]
            print(f"calibration: {len(calib_table)} clips, {len(calibration)} 2 s windows", flush=True)
            split: dict = {}
            if args.conv:
                graph = convs_as_matmuls(graph)
            if args.outlier_ratio > 0:
                graph, split = split_outliers(graph, calibration, args.outlier_ratio)
            if args.smooth > 0:
                graph = smooth(graph, calibration, args.smooth)
        onnx.save(graph, str(float_path))
        if args.mode == "float":
            shutil.copy(float_path, out / "model.onnx")
        else:
            detail = quantize(args.mode, float_path, out / "model.onnx", calibration, args.percentile, args.weights)
            if args.bias_correct:
                if calib_table is None:
                    sys.exit("--bias-correct needs --calibration CORPUS...")
                detail["bias_correction"] = correct_bias(float_path, out / "model.onnx", [x for _, x in calib_inputs])
                print(json.dumps(detail["bias_correction"], indent=2), flush=True)
        if args.mode == "static":
            detail["float_outlier_channels"] = split
            detail["smoothing_alpha"] = args.smooth or None
            detail["convolutions"] = "int8 MatMuls (im2col)" if args.conv else "float"
    derived = {
        "source": str(source),
        "source_sha256": sha256(source),
        "mode": args.mode,
        **detail,
        "calibration": None
        if calib_table is None
        else {
            "corpora": sorted(calib_table["corpus"].unique()),
            "clips": len(calib_table),
            "selection": f"every Nth clip by path, {args.calibration_clips} per corpus; {args.windows} 2 s window(s) "
            "of each clip longer than 2 s (middle; or evenly spaced from start to end)",
            "windows": len(calibration),
            "sha256_of_paths": hashlib.sha256("\n".join(calib_table["path"]).encode()).hexdigest(),
        },
        "command": "python " + " ".join(sys.argv),
        "sha256": sha256(out / "model.onnx"),
    }
    label = {"float": "float32", "static": "int8-static-qdq", "dynamic": "int8-dynamic"}[args.mode]
    from dataclasses import replace

    metadata = {**bundle.metadata, "quantization": label, "derived_from": derived}
    write_bundle(out, replace(bundle, metadata=metadata))
    write_card(bundle, out)
    check_table = clip_table(args.check or args.calibration or [], args.check_clips, offset=1)
    if calib_table is not None:
        check_table = check_table[~check_table["path"].isin(set(calib_table["path"]))]
    result = checks(out / "model.onnx", source, list(model_inputs(recognizer, check_table)))
    result["seconds"] = round(time.time() - started, 1)
    (out / "checks.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    batch = result["batch16_vs_batch1"]["max_abs_diff"]
    if args.mode != "dynamic" and (batch is None or batch > 1e-4):
        sys.exit(f"batch independence failed: rows of a batch of 16 differ from batch-1 runs by {batch}")


if __name__ == "__main__":
    main()
