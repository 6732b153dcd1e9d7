"""benchmarks/bench_inference.py prints latency, load time and memory for the ONNX and PyTorch paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_inference.py"


@pytest.mark.slow
def test_benchmark_reports_onnx_rows_without_importing_torch(tiny_bundle: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(tiny_bundle), "--runs", "3", "--seconds", "1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    lines = out.splitlines()
    assert any(line.startswith("onnxruntime") and line.split()[1] == "1" for line in lines)
    assert any(line.startswith("onnxruntime") and line.split()[1] == "2" for line in lines)
    assert "median ms" in out and "peak MB" in out
    assert "torch imported by the ONNX path: False" in out


@pytest.mark.slow
@pytest.mark.parametrize("model", ["whisper-base-general", "whisper-base-probe"])
def test_benchmark_times_the_pytorch_path_of_format_1_and_format_2_whisper_bundles(model: str) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("ctranslate2")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", model, "--one", "torch:1", "--runs", "1", "--seconds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-500:]  # the default's format-2 bundle was a KeyError: 'recipe'
    assert '"path": "pytorch (encoder, fp32)"' in out.stdout and f'"model": "{model}"' in out.stdout


@pytest.mark.slow
def test_benchmark_compares_models_alternately_and_times_batches(tiny_bundle: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(tiny_bundle), str(tiny_bundle / "model.onnx")]
        + ["--threads", "1", "--batch", "1", "2", "--rounds", "2", "--runs", "3", "--seconds", "1", "--no-torch"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    rows = [line for line in out.splitlines() if line.startswith("onnxruntime")]
    assert len(rows) == 2 and rows[0].endswith(str(tiny_bundle)) and rows[1].endswith("model.onnx")
    assert "2 round(s)" in out and "load average" in out
    table = out.split("per item: CPU ms (wall ms)")[1].splitlines()[2:]
    assert [line.split()[:2] for line in table] == [["1", "1"], ["1", "2"]] * 2  # threads, batch per model
    assert all("(" in line or "fixed batch" in line for line in table)
