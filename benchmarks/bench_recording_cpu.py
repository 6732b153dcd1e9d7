"""CPU seconds per hour of audio for ``predict`` of a long recording and for ``batch`` over long recordings, before and
after a change (two source trees), with each run's peak memory.

Generates speech-like recordings (voiced utterances of 1-6 s with distinct pitch and formants, separated by pauses of
0.3-2 s: about 75 % speech), then times, in a fresh process per run, with one inference thread:

- ``predict``: :func:`speech_emotion.recording.predict_recording` of one ``--minutes`` recording (``speech-emotion
  predict``, ``POST /v1/predict``);
- ``batch``: :func:`speech_emotion.batch.worker.analyze_one` over ``--files`` recordings of ``--file-minutes``
  each (what every ``batch`` worker runs per file).

Model loading and a warm-up are not counted. It prints the median over ``--repeats`` runs of the CPU seconds per
hour of audio, the before/after ratio and the peak resident memory of the run's process.

    python benchmarks/bench_recording_cpu.py --before /work/main/src             # the default model
    python benchmarks/bench_recording_cpu.py --before /work/main/src --model tests-tiny --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
AFTER = HERE.parent / "src"
RATE = 16000


def write_recording(path: Path, minutes: float, seed: int) -> float:
    """A speech-like recording of ``minutes`` (16 kHz PCM); returns its seconds."""
    import numpy as np
    import soundfile as sf

    sys.path.insert(0, str(HERE.parent / "tests"))
    from synth import EMOTION_VOICES, silence, vowel

    rng = np.random.default_rng(seed)
    voices = list(EMOTION_VOICES.values())
    parts, length = [], 0.0
    while length < minutes * 60:
        f0, formants = voices[int(rng.integers(len(voices)))]
        speech = float(rng.uniform(1.0, 6.0))
        parts.append(vowel(speech, RATE, f0=f0 * rng.uniform(0.95, 1.05), formants=formants, seed=seed))
        pause = float(rng.uniform(0.3, 2.0))
        parts.append(silence(pause, RATE))
        length += speech + pause
    clip = np.concatenate(parts)[: int(minutes * 60 * RATE)]
    sf.write(path, clip, RATE, subtype="PCM_16")
    return len(clip) / RATE


def child(task: str, model: str | None, paths: list[str]) -> None:
    """One timed run in this process (its ``PYTHONPATH`` selects the source tree); prints a JSON line."""
    import numpy as np

    from speech_emotion.recognizer import Recognizer

    recognizer = Recognizer.load(model, threads=1)
    t = np.arange(RATE) / RATE
    recognizer.predict((0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE)  # warm-up, not counted
    if task == "predict":
        from speech_emotion.recording import predict_recording

        def run() -> None:
            for p in paths:
                predict_recording(p, recognizer)
    else:
        from speech_emotion.batch.inputs import make_job
        from speech_emotion.batch.worker import analyze_one

        def run() -> None:
            for p in paths:
                result = analyze_one(make_job(Path(p)), recognizer)
                if result.error:
                    raise SystemExit(result.error)

    cpu, wall = time.process_time(), time.perf_counter()
    run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "peak_rss_mb": rss_mb}))


def timed(tree: Path, task: str, model: str | None, paths: list[Path]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--child", task, *(["--model", model] if model else [])]
    out = subprocess.run([*cmd, *map(str, paths)], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"{task} with {tree} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", type=Path, required=False, help="the source tree to compare with (its src folder)")
    p.add_argument("--model", default=None, help="bundle (default: the bundled default model); tests-tiny: test model")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the predicted recording (default 10)")
    p.add_argument("--files", type=int, default=3, help="recordings for batch (default 3)")
    p.add_argument("--file-minutes", type=float, default=5.0, help="length of each batch recording (default 5)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tasks", nargs="+", default=["predict", "batch"], choices=["predict", "batch"])
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.model, args.paths)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = args.model
        if model == "tests-tiny":
            sys.path.insert(0, str(HERE.parent / "tests"))
            from tiny_model import write_tiny_bundle

            model = str(write_tiny_bundle(root / "tiny"))
        long = root / "long.wav"
        inputs = {"predict": ([long], write_recording(long, args.minutes, seed=1))}
        batch, seconds = [], 0.0
        for i in range(args.files):
            batch.append(root / f"call{i}.wav")
            seconds += write_recording(batch[-1], args.file_minutes, seed=10 + i)
        inputs["batch"] = (batch, seconds)
        trees = {"after": AFTER} if args.before is None else {"before": args.before, "after": AFTER}
        print(f"model: {args.model or 'default'}; {args.repeats} runs each, medians; CPU s per hour of audio")
        print(f"{'task':<8} {'tree':<7} {'audio':>8} {'CPU s/h':>9} {'wall s/h':>9} {'peak MB':>8}")
        for task in args.tasks:
            paths, audio_s = inputs[task]
            per_hour = {}
            for name, tree in trees.items():
                runs = [timed(tree, task, model, paths) for _ in range(args.repeats)]
                cpu = statistics.median(r["cpu_s"] for r in runs) * 3600 / audio_s
                wall = statistics.median(r["wall_s"] for r in runs) * 3600 / audio_s
                rss = max(r["peak_rss_mb"] for r in runs)
                per_hour[name] = cpu
                print(f"{task:<8} {name:<7} {audio_s / 60:>6.1f} m {cpu:>9.1f} {wall:>9.1f} {rss:>8.0f}", flush=True)
            if "before" in per_hour:
                print(f"{task:<8} before/after CPU: {per_hour['before'] / per_hour['after']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
