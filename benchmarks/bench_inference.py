"""Inference speed of :class:`speech_emotion.Recognizer` (ONNX Runtime) and of the PyTorch path, for one clip.

Prints model load time, median and p95 latency of ``Recognizer.predict`` on a 3 s clip with 1 and 2
threads, and peak memory; then the same for the PyTorch model the bundle was exported from (needs the
``[train]`` and ``[whisper]`` extras; skipped otherwise). Each measurement runs in a fresh process (with
BLAS/OpenMP threads limited to the same count) so peak memory is per path. ``cpu ms`` is the median CPU
time of one call (all threads together): on a busy machine it is the better estimate of the latency on an
idle core than the wall-clock median::

    python benchmarks/bench_inference.py [--model default] [--seconds 3] [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

WIDTHS = (26, 8, 9, 11, 9, 8, 9, 12)


def speechlike(seconds: float, sample_rate: int = 16000) -> np.ndarray:
    """A voiced, amplitude-modulated test signal (content does not matter for speed)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 150 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    rng = np.random.default_rng(0)
    return (0.1 * voice * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.003 * rng.standard_normal(t.size)).astype(
        np.float32
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timings(fn, runs: int, warmup: int = 3) -> dict[str, float]:  # noqa: ANN001
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {
        "median_ms": float(np.median(times)),
        "p95_ms": float(np.percentile(times, 95)),
        "cpu_median_ms": float(np.median(cpu)),
    }


def measure_onnx(model: str | None, threads: int, seconds: float, runs: int) -> dict:
    import speech_emotion.recognizer as inference

    t = time.perf_counter()
    recognizer = inference.Recognizer.load(model, threads=threads)
    load_s = time.perf_counter() - t
    clip = speechlike(seconds)
    result = timings(lambda: recognizer.predict(clip, 16000), runs)
    return {
        "path": "onnxruntime",
        "model": recognizer.name,
        "threads": threads,
        "load_s": load_s,
        **result,
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": "torch" in sys.modules,
    }


def measure_torch(model: str | None, threads: int, seconds: float, runs: int) -> dict:
    import torch

    from speech_emotion.bundle import load_bundle
    from speech_emotion.conditioning import prepare
    from speech_emotion.features.logmel import log_mel
    from speech_emotion.training.whisper.checkpoint import load_encoder_state
    from speech_emotion.training.whisper.encoder import WhisperEncoder

    torch.set_num_threads(threads)
    bundle = load_bundle(model)  # format 1 or 2: the one bundle reader
    layers = bundle.metadata["recipe"]["probe"]["layers"]
    t = time.perf_counter()
    encoder = WhisperEncoder.from_state(load_encoder_state(), layers=max(layers))
    load_s = time.perf_counter() - t
    options = bundle.feature_options
    clip = speechlike(seconds)

    def run() -> None:
        mel = torch.from_numpy(log_mel(prepare(clip, sample_rate=16000), options)[None])
        with torch.inference_mode():
            encoder(mel, layers=layers)  # the probe's linear layer on the pooled stats costs microseconds

    result = timings(run, runs)
    return {
        "path": "pytorch (encoder, fp32)",
        "model": bundle.name,
        "threads": threads,
        "load_s": load_s,
        **result,
        "peak_rss_mb": peak_rss_mb(),
        "torch_imported": True,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="bundled model name or bundle folder (default: the default model)")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: "onnx:1" in a child process
    args = p.parse_args()
    if args.one:
        path, threads = args.one.split(":")
        fn = measure_onnx if path == "onnx" else measure_torch
        print(json.dumps(fn(args.model, int(threads), args.seconds, args.runs)))
        return
    rows = []
    for job in ("onnx:1", "onnx:2", "torch:1", "torch:2"):
        cmd = [sys.executable, __file__, "--one", job, "--seconds", str(args.seconds), "--runs", str(args.runs)]
        if args.model:
            cmd += ["--model", args.model]
        threads = job.split(":")[1]
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"{job}: skipped ({reason})")
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    print(f"{args.seconds:.1f} s clip, {args.runs} runs each; load average {load}")
    head = ("path", "threads", "load s", "median ms", "p95 ms", "cpu ms", "peak MB", "x realtime")
    print("".join(f"{h:<26}" if i == 0 else f"{h:>{w}}" for i, (h, w) in enumerate(zip(head, WIDTHS))))
    for r in rows:
        rt = args.seconds * 1000 / r["median_ms"]
        print(
            f"{r['path']:<26}{r['threads']:>8}{r['load_s']:>9.2f}{r['median_ms']:>11.1f}{r['p95_ms']:>9.1f}"
            f"{r['cpu_median_ms']:>8.1f}{r['peak_rss_mb']:>9.0f}{rt:>12.0f}"
        )
    if rows and rows[0]["path"] == "onnxruntime":
        print(f"model: {rows[0]['model']}; torch imported by the ONNX path: {rows[0]['torch_imported']}")


if __name__ == "__main__":
    main()
