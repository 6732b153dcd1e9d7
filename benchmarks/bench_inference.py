"""Inference speed of :class:`speech_emotion.Recognizer` (ONNX Runtime) and of the PyTorch path, for one clip.

Prints model load time, median and p95 latency of ``Recognizer.predict`` on a 3 s clip with 1 and 2
threads, and peak memory; then the same for the PyTorch model the bundle was exported from (needs the
``[train]`` and ``[whisper]`` extras; skipped otherwise, or with ``--no-torch``). Each measurement runs in a
fresh process (with BLAS/OpenMP threads limited to the same count) so peak memory is per path. ``cpu ms`` is
the median CPU time of one call (all threads together): on a busy machine it is the better estimate of the
latency on an idle core than the wall-clock median. ``feat ms``: the CPU time of the clip's conditioning and
features alone (part of ``cpu ms``).

``--model`` takes several models (bundled names, bundle folders, or ``.onnx`` files run with the
``model.json`` beside them, else the default bundle's), measured alternately, ``--rounds`` times each (a fresh
process per measurement; the figures are medians over the rounds), so that a busy machine's load falls on all of
them alike. ``--batch B ...`` adds
a second table: the ONNX session alone (features precomputed) on a batch of B 2 s windows (the live engine's)
and of B 3 s clips, CPU ms per window and per clip (a graph with a fixed batch of 1 is reported as such).
``--opt`` sets ONNX Runtime's graph optimisation level (the recognizer's is ``extended``)::

    python benchmarks/bench_inference.py [--model default [M ...]] [--seconds 3] [--runs 50] [--rounds 1]
        [--threads 1 2] [--batch 1 4 16] [--opt basic|extended|all] [--no-torch]
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


OPT_LEVELS = ("disable", "basic", "extended", "all")


def load_recognizer(model: str | None, threads: int, opt: str):  # noqa: ANN201
    """A :class:`Recognizer` for ``model`` (a name, a bundle folder, or an ``.onnx`` file run with the bundle beside
    it, or else the default bundle's features), its session opened at graph optimisation level ``opt``."""
    from dataclasses import replace
    from pathlib import Path

    import onnxruntime as ort

    import speech_emotion.recognizer as inference
    from speech_emotion.bundle import load_bundle

    if model and model.endswith(".onnx"):
        path = Path(model).resolve()
        beside = path.parent / "model.json"
        bundle = replace(load_bundle(beside if beside.is_file() else None), folder=path.parent, onnx=path.name)
    else:
        bundle = load_bundle(model)
    recognizer = inference.Recognizer(bundle, threads=threads)
    if opt != "extended":  # the recognizer's own level; another one: the same graph reopened at that level
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = threads, 1, 3
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[opt]
        recognizer._session = ort.InferenceSession(str(bundle.onnx_path), so, providers=["CPUExecutionProvider"])
    return recognizer


def measure_batches(recognizer, batches: list[int], runs: int) -> dict[str, dict]:  # noqa: ANN001
    """The ONNX session alone on batches of B 2 s windows and of B 3 s clips: CPU and wall ms per item."""
    from speech_emotion.conditioning import prepare

    session, name = recognizer._session, recognizer._session.get_inputs()[0].name
    fixed = session.get_inputs()[0].shape[0]
    result: dict[str, dict] = {}
    for seconds, key in ((2.0, "window"), (3.0, "clip")):
        one = recognizer.model_input(prepare(speechlike(seconds), recognizer.preprocessing, "<bench>", 16000))
        for b in batches:
            if isinstance(fixed, int) and b != fixed:
                result[f"{key}:{b}"] = {"skipped": f"the graph's batch dimension is fixed at {fixed}"}
                continue
            feed = {name: np.repeat(one, b, axis=0)}
            t = timings(lambda feed=feed: session.run(None, feed), max(5, runs // b))
            result[f"{key}:{b}"] = {"cpu_ms": t["cpu_median_ms"] / b, "wall_ms": t["median_ms"] / b}
    return result


def measure_onnx(model: str | None, threads: int, seconds: float, runs: int, batches=(), opt="extended") -> dict:  # noqa: ANN001
    from speech_emotion.conditioning import prepare

    t = time.perf_counter()
    recognizer = load_recognizer(model, threads, opt)
    load_s = time.perf_counter() - t
    clip = speechlike(seconds)
    result = timings(lambda: recognizer.predict(clip, 16000), runs)
    features = timings(lambda: recognizer.model_input(prepare(clip, recognizer.preprocessing, "<bench>", 16000)), runs)
    return {
        "path": "onnxruntime",
        "model": model or recognizer.name,
        "threads": threads,
        "opt": opt,
        "load_s": load_s,
        **result,
        "features_cpu_ms": features["cpu_median_ms"],
        "batches": measure_batches(recognizer, list(batches), runs) if batches else {},
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


def run_job(job: str, model: str | None, args: argparse.Namespace) -> dict | str:
    """One measurement in a fresh process: its result, or the one-line reason it was skipped."""
    cmd = [sys.executable, __file__, "--one", job, "--seconds", str(args.seconds), "--runs", str(args.runs)]
    cmd += ["--opt", args.opt] + (["--model", model] if model else [])
    if args.batch:
        cmd += ["--batch", *map(str, args.batch)]
    threads = job.split(":")[1]
    env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or ["failed"])[-1]
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(rounds: list[dict]) -> dict:
    """The per-round results of one job merged: numbers as their median over the rounds."""
    first = dict(rounds[0])
    for key, value in first.items():
        if isinstance(value, float):
            first[key] = float(np.median([r[key] for r in rounds]))
    for key, value in first.get("batches", {}).items():
        if "cpu_ms" in value:
            first["batches"][key] = {
                m: float(np.median([r["batches"][key][m] for r in rounds])) for m in ("cpu_ms", "wall_ms")
            }
    return first


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--model", nargs="+", default=[None],
        help="bundled model name(s), bundle folder(s) or .onnx file(s) (default: the default model)",
    )  # fmt: skip
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--rounds", type=int, default=1, help="fresh-process measurements per job, alternating models")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="ONNX Runtime intra-op threads")
    p.add_argument("--batch", type=int, nargs="+", default=[], help="also time the session on batches of B")
    p.add_argument("--opt", choices=OPT_LEVELS, default="extended", help="ONNX Runtime graph optimisation level")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: "onnx:1" in a child process
    args = p.parse_args()
    if args.one:
        path, threads = args.one.split(":")
        model = args.model[0]
        if path == "onnx":
            print(json.dumps(measure_onnx(model, int(threads), args.seconds, args.runs, args.batch, args.opt)))
        else:
            print(json.dumps(measure_torch(model, int(threads), args.seconds, args.runs)))
        return
    jobs = [f"onnx:{t}" for t in args.threads] + ([] if args.no_torch else [f"torch:{t}" for t in args.threads])
    load_before = load_average()
    results: dict[tuple[str, str | None], list[dict]] = {}
    skipped: dict[tuple[str, str | None], str] = {}
    for _ in range(args.rounds):
        for job in jobs:
            for model in args.model:
                if (job, model) in skipped:
                    continue
                out = run_job(job, model, args)
                if isinstance(out, str):
                    skipped[(job, model)] = out
                else:
                    results.setdefault((job, model), []).append(out)
    for (job, model), reason in skipped.items():
        print(f"{job} {model or 'default'}: skipped ({reason})")
    rows = [median_of(rounds) for rounds in results.values()]
    print(
        f"{args.seconds:.1f} s clip, {args.runs} runs each, {args.rounds} round(s) (medians over rounds); "
        f"graph optimisation {args.opt}; load average {load_before} before, {load_average()} after"
    )
    head = ("path", "threads", "load s", "median ms", "p95 ms", "cpu ms", "feat ms", "peak MB", "x realtime", "model")
    widths = (26, 8, 9, 11, 9, 8, 9, 9, 12, 2)
    print(
        "".join(
            f"{h:<26}" if i == 0 else f"{h:>{w}}" if i < 9 else f"  {h}" for i, (h, w) in enumerate(zip(head, widths))
        )
    )
    for r in rows:
        rt = args.seconds * 1000 / r["median_ms"]
        feat = f"{r['features_cpu_ms']:>9.1f}" if "features_cpu_ms" in r else f"{'-':>9}"
        print(
            f"{r['path']:<26}{r['threads']:>8}{r['load_s']:>9.2f}{r['median_ms']:>11.1f}{r['p95_ms']:>9.1f}"
            f"{r['cpu_median_ms']:>8.1f}{feat}{r['peak_rss_mb']:>9.0f}{rt:>12.0f}  {r['model']}"
        )
    if rows and rows[0]["path"] == "onnxruntime":
        print(f"model: {rows[0]['model']}; torch imported by the ONNX path: {rows[0]['torch_imported']}")
    batched = [r for r in rows if r.get("batches")]
    if batched:
        print("\nONNX session alone (features precomputed), per item: CPU ms (wall ms)")
        print(f"{'threads':>7}{'batch':>6}{'2 s window':>18}{'3 s clip':>18}  model")
        for r in batched:
            for b in args.batch:
                cells = []
                for key in ("window", "clip"):
                    v = r["batches"][f"{key}:{b}"]
                    cells.append(f"{v['cpu_ms']:.1f} ({v['wall_ms']:.1f})" if "cpu_ms" in v else "fixed batch")
                print(f"{r['threads']:>7}{b:>6}{cells[0]:>18}{cells[1]:>18}  {r['model']}")


if __name__ == "__main__":
    main()
