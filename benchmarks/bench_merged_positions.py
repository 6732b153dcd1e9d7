"""What merging the encoder's positions in pairs would save on the shipped graph (issue 19): CPU per model call.

Takes a Whisper bundle's ONNX graph as shipped (static int8 for the default) and inserts the merge of
:func:`speech_emotion.training.whisper.encoder.merge_pairs` (each two neighbouring positions averaged) before
encoder block ``K + 1``, so blocks ``K + 1`` and above run on half the positions, as a bundle trained with
``pooled.merge_after [K]`` would. Only the cost is measured: the probe of the shipped graph was not trained on
merged statistics, so the modified graph's outputs mean nothing. Each graph runs in ONNX Runtime with the
recognizer's settings (one thread, extended optimisation), on log-mel inputs of 2 s and 3 s; figures are CPU ms
per call, medians over ``--runs`` calls, then the median over ``--rounds`` alternating rounds.

    python benchmarks/bench_merged_positions.py --model default --after 0 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def merged_graph(source: Path, target: Path, after: int) -> None:
    """Write ``source`` with the merge inserted on the input of block ``after + 1`` (layers.{after})."""
    import onnx
    from onnx import helper

    model = onnx.load(str(source))
    graph = model.graph
    prefix = f"/encoder/layers.{after}/"
    norm = next((n for n in graph.node if n.name == f"{prefix}attn_norm/LayerNormalization"), None)
    if norm is None:
        raise SystemExit(f"{source}: no encoder block {after + 1} (not a Whisper bundle's graph, or fewer blocks)")
    tensor = norm.input[0]  # the embedding (after 0) or block ``after``'s output
    nodes = [
        helper.make_node("Transpose", [tensor], ["merge_t"], perm=[0, 2, 1]),
        helper.make_node("AveragePool", ["merge_t"], ["merge_p"], kernel_shape=[2], strides=[2], ceil_mode=1),
        helper.make_node("Transpose", ["merge_p"], ["merge_out"], perm=[0, 2, 1]),
    ]
    for node in graph.node:
        if node.name.startswith(prefix):
            node.input[:] = ["merge_out" if i == tensor else i for i in node.input]
    at = next(i for i, n in enumerate(graph.node) if n.name.startswith(prefix))
    for k, node in enumerate(nodes):
        graph.node.insert(at + k, node)
    del graph.value_info[:]  # shapes below the merge change: let ONNX Runtime infer them
    onnx.save(model, str(target))


def cpu_ms(path: Path, frames: int, runs: int) -> float:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = 0.3 * np.random.default_rng(0).standard_normal((1, 80, frames)).astype(np.float32)
    for _ in range(5):
        session.run(None, {name: x})
    times = []
    for _ in range(runs):
        start = time.process_time()
        session.run(None, {name: x})
        times.append(time.process_time() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="a bundled name or bundle folder (a Whisper bundle)")
    parser.add_argument(
        "--after", type=int, nargs="+", default=[0, 1], choices=range(4), help="merge after layer K (0: embedding)"
    )
    parser.add_argument("--frames", type=int, nargs="+", default=[200, 300], help="log-mel frames (100 a second)")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from speech_emotion.bundle import load_bundle

    shipped = load_bundle(args.model).onnx_path
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {"shipped": shipped}
        for k in args.after:
            graphs[f"merged after layer {k}"] = Path(tmp) / f"merged{k}.onnx"
            merged_graph(shipped, graphs[f"merged after layer {k}"], k)
        print(f"model: {args.model} ({shipped}); CPU ms per call, one thread")
        print("| graph | " + " | ".join(f"{f / 100:g} s ({f} frames)" for f in args.frames) + " | vs shipped |")
        print("|---|" + "---|" * (len(args.frames) + 1))
        found = {g: {f: [] for f in args.frames} for g in graphs}
        for _ in range(args.rounds):
            for g, path in graphs.items():
                for f in args.frames:
                    found[g][f].append(cpu_ms(path, f, args.runs))
        base = {f: float(np.median(found["shipped"][f])) for f in args.frames}
        for g in graphs:
            ms = {f: float(np.median(found[g][f])) for f in args.frames}
            ratio = np.mean([ms[f] / base[f] for f in args.frames])
            print(f"| {g} | " + " | ".join(f"{ms[f]:.1f}" for f in args.frames) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main()
