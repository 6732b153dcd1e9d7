"""scripts/quantize_bundle.py: the shipped Whisper graph rewritten (float32, symbolic batch, convolutions as
MatMuls, fc2's outlier channels split off) computes the same function, row by row whatever the batch; its static
int8 graph keeps every row of a batch equal to that window run alone."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "whisper-base-general" / "model.onnx"


@pytest.fixture(scope="module")
def qb():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("quantize_bundle", ROOT / "scripts" / "quantize_bundle.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["quantize_bundle"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def float_model(qb):  # noqa: ANN001, ANN201
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} not in this checkout")
    return qb.float_graph(MODEL)


def windows(n: int, frames: int, seed: int = 0) -> np.ndarray:
    """``n`` log-mel-like inputs ``[n, 80, frames]`` (Whisper's log-mel lies in about [-1.5, 1.5])."""
    return np.clip(np.random.default_rng(seed).normal(0.0, 0.5, (n, 80, frames)), -1.5, 1.5).astype(np.float32)


def outputs(qb, model: onnx.ModelProto, x: np.ndarray, tmp_path: Path, name: str):  # noqa: ANN001, ANN201
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return qb.run(qb.session(path), x)


def test_float_graph_has_a_symbolic_batch_and_only_float_matmuls(qb, float_model) -> None:  # noqa: ANN001
    graph = float_model.graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert all(o.type.tensor_type.shape.dim[0].dim_param == "batch" for o in graph.output)
    ops = {n.op_type for n in graph.node}
    assert "MatMulInteger" not in ops and "DynamicQuantizeLinear" not in ops
    assert len(qb.encoder_matmuls(float_model)) == 16  # qkv, out, fc1, fc2 of 4 blocks


def test_float_graph_rows_of_a_batch_equal_single_runs_and_the_shipped_graph_closely(
    qb, float_model, tmp_path: Path
) -> None:  # noqa: ANN001
    x = windows(4, 200)
    logits, dims = outputs(qb, float_model, x, tmp_path, "float")
    shipped = qb.session(MODEL)
    for i in range(4):
        one_logits, one_dims = outputs(qb, float_model, x[i : i + 1], tmp_path, "float")
        assert np.abs(logits[i] - one_logits[0]).max() < 1e-4 and np.abs(dims[i] - one_dims[0]).max() < 1e-5
        ship_logits, _ = qb.run(shipped, x[i : i + 1])
        # the shipped graph differs only by fc1's dynamic int8 activations
        assert np.abs(ship_logits[0] - one_logits[0]).max() < 0.5


@pytest.mark.parametrize("frames", [200, 301, 57])
def test_rewrites_compute_the_same_function(qb, float_model, tmp_path: Path, frames: int) -> None:  # noqa: ANN001
    x = windows(2, frames, seed=frames)
    reference = outputs(qb, float_model, x, tmp_path, "float")
    convs = qb.convs_as_matmuls(float_model)
    assert not any(n.op_type == "Conv" for n in convs.graph.node)
    split, channels = qb.split_outliers(convs, [windows(1, 200, seed=s) for s in range(4)], ratio=8.0)
    for model, name in ((convs, "convs"), (split, "split")):
        logits, dims = outputs(qb, model, x, tmp_path, name)
        assert np.abs(logits - reference[0]).max() < 1e-3 and np.abs(dims - reference[1]).max() < 1e-4, name


@pytest.mark.slow
def test_static_int8_rows_of_a_batch_equal_single_runs(qb, float_model, tmp_path: Path) -> None:  # noqa: ANN001
    model = qb.convs_as_matmuls(float_model)
    float_path = tmp_path / "float.onnx"
    onnx.save(model, str(float_path))
    calibration = [windows(1, 200, seed=s) for s in range(6)]
    detail = qb.quantize("static", float_path, tmp_path / "int8.onnx", calibration, percentile=99.999)
    int8 = onnx.load(str(tmp_path / "int8.onnx"))
    assert len(detail["nodes"]) == 18  # 16 block MatMuls and the two convolutions
    assert sum(n.op_type == "DequantizeLinear" for n in int8.graph.node) >= 36
    session = qb.session(tmp_path / "int8.onnx")
    x = windows(8, 200, seed=99)
    logits, dims = qb.run(session, x)
    for i in range(8):
        one_logits, one_dims = qb.run(session, x[i : i + 1])
        assert np.abs(logits[i] - one_logits[0]).max() < 1e-4 and np.abs(dims[i] - one_dims[0]).max() < 1e-5


def test_a_graph_without_a_dimensional_head_is_run_and_checked(qb, float_model, tmp_path: Path) -> None:  # noqa: ANN001
    """The models of evaluate's folds have no dimensional head: the script still runs and checks them."""
    model = onnx.ModelProto()
    model.CopyFrom(float_model)
    kept = [o for o in model.graph.output if o.name != "dimensions"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    path = tmp_path / "no-dimensions.onnx"
    onnx.save(model, str(path))
    logits, dims = qb.run(qb.session(path), windows(2, 200))
    assert logits.shape[0] == 2 and dims.shape == (2, 0)
    result = qb.checks(path, path, [(f"clip{i}#window0", windows(1, 200, seed=i)) for i in range(16)])
    assert result["vs_shipped"]["logits_max_abs_diff"] == 0.0
    assert result["batch16_vs_batch1"]["windows"] == 16 and result["batch16_vs_batch1"]["max_abs_diff"] < 1e-4


def test_bias_correction_brings_the_int8_answers_closer_to_the_float_graph(qb, float_model, tmp_path: Path) -> None:  # noqa: ANN001
    model = qb.convs_as_matmuls(float_model)
    float_path = tmp_path / "float.onnx"
    onnx.save(model, str(float_path))
    int8_path = tmp_path / "int8.onnx"
    qb.quantize("static", float_path, int8_path, [windows(1, 200, seed=s) for s in range(6)], percentile=99.999)
    held_out = windows(6, 200, seed=50)
    exact = qb.run(qb.session(float_path), held_out)[0]
    before = np.abs(qb.run(qb.session(int8_path), held_out)[0] - exact).mean()
    done = qb.correct_bias(float_path, int8_path, [windows(1, 200, seed=s) for s in range(10, 22)])
    after = np.abs(qb.run(qb.session(int8_path), held_out)[0] - exact).mean()
    assert done["mean_abs_error_after"] < done["mean_abs_error_before"] and after < before
    assert "linear.bias" in done["method"] and "dimensions.bias" in done["method"]


def test_full_range_int8_weights_are_found_and_stored_in_7_bits_with_nearly_the_same_outputs(
    qb, float_model, tmp_path: Path
) -> None:  # noqa: ANN001
    """int8 weights reaching +-127 can overflow ONNX Runtime's int16 pair sums on x86 CPUs without VNNI; ``rerange``
    halves them (scale doubled), and ``--weights int7`` quantises within +-64 from the start."""
    model = qb.convs_as_matmuls(float_model)
    float_path = tmp_path / "float.onnx"
    onnx.save(model, str(float_path))
    calibration = [windows(1, 200, seed=s) for s in range(6)]
    qb.quantize("static", float_path, tmp_path / "int8.onnx", calibration, percentile=99.999, weights="int8")
    int8 = onnx.load(str(tmp_path / "int8.onnx"))
    assert len(qb.saturating_weights(int8)) == 18  # every weight of an integer MatMul
    reranged, names = qb.rerange(int8)
    assert len(names) == 18 and qb.saturating_weights(reranged) == []
    onnx.save(reranged, str(tmp_path / "int7.onnx"))
    qb.quantize("static", float_path, tmp_path / "fresh7.onnx", calibration, 99.999, weights="int7")
    assert qb.saturating_weights(onnx.load(str(tmp_path / "fresh7.onnx"))) == []
    x = windows(4, 200, seed=7)
    exact = qb.run(qb.session(float_path), x)[0]
    spread = np.abs(exact).max()
    for name in ("int7", "fresh7"):
        assert np.abs(qb.run(qb.session(tmp_path / f"{name}.onnx"), x)[0] - exact).max() < 0.15 * spread


def test_the_dynamic_int8_matmuls_of_an_older_graph_are_found_and_reranged(qb) -> None:  # noqa: ANN001
    if not MODEL.is_file():
        pytest.skip(f"{MODEL} not in this checkout")
    graph = onnx.load(str(MODEL))
    before = qb.saturating_weights(graph)
    if not before:
        pytest.skip("the shipped graph is already stored in 7 bits")
    assert all(name.endswith("_quantized") for name in before)  # MatMulInteger weights (fc1)
    assert qb.saturating_weights(qb.rerange(graph)[0]) == []


def test_a_static_qdq_graph_reads_back_to_float_close_to_its_7_bit_self(qb, tmp_path: Path) -> None:  # noqa: ANN001
    """``float_graph`` of the shipped static default (QDQ: weights dequantised, activation Q/DQ pairs dropped) is the
    reference ``--mode rerange`` checks against."""
    static = ROOT / "models" / "whisper-base-7corpora" / "model.onnx"
    if not static.is_file():
        pytest.skip(f"{static} not in this checkout")
    model = qb.float_graph(static)
    assert not {n.op_type for n in model.graph.node} & {"QuantizeLinear", "DequantizeLinear", "MatMulInteger"}
    x = windows(3, 200, seed=5)
    exact = qb.run(qb.session(static), x)[0]
    back = outputs(qb, model, x, tmp_path, "float")[0]
    assert np.abs(back - exact).max() < 0.15 * np.abs(back).max()
