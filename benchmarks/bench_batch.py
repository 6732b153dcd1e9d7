"""Batch throughput: real-time factor and files per second of ``speech-emotion batch``.

Generates an archive of speech-like calls (``--minutes`` of audio in ``--files`` files: voiced
utterances with distinct pitch and formants, separated by pauses), then analyses it from
scratch with the local runner at 1 and 2 workers and with Ray on a local instance, and prints
one row per configuration: wall time, real-time factor (wall / audio), files/s, audio hours
per hour, the workers' CPU seconds per second of audio (independent of other load: one
dedicated core analyses ``1 / that`` seconds of audio per second), and the peak resident memory
of each worker process.

Ray is started before the timed run (as on a cluster, where it is already up); its start-up
time is reported on its own. The local runner's timings include starting its workers.

    python benchmarks/bench_batch.py                       # tiny random-weight test model
    python benchmarks/bench_batch.py --model models/default --minutes 30
    python benchmarks/bench_batch.py --configs local:1 local:2 ray:2 --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from speech_emotion.batch import BatchOptions, run_batch  # noqa: E402
from synth import EMOTION_VOICES, silence, vowel  # noqa: E402

RATE = 16000


def write_archive(root: Path, minutes: float, files: int, seed: int = 0) -> float:
    """``files`` calls totalling ``minutes`` of audio in nested folders; returns the seconds written."""
    rng = np.random.default_rng(seed)
    per_file = minutes * 60 / files
    voices = list(EMOTION_VOICES.values())
    total = 0.0
    for i in range(files):
        parts, length = [], 0.0
        while length < per_file:
            f0, formants = voices[int(rng.integers(len(voices)))]
            speech = float(rng.uniform(1.0, 4.0))
            parts.append(vowel(speech, RATE, f0=f0 * rng.uniform(0.95, 1.05), formants=formants, seed=i))
            pause = float(rng.uniform(0.3, 1.5))
            parts.append(silence(pause, RATE))
            length += speech + pause
        clip = np.concatenate(parts)[: int(per_file * RATE)]
        folder = root / f"day{i % 5}" / f"agent{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"call{i:04d}.wav", clip, RATE, subtype="PCM_16")
        total += len(clip) / RATE
    return total


def tiny_model(folder: Path) -> Path:
    from tiny_model import write_tiny_bundle

    return write_tiny_bundle(folder)


def run_config(runner: str, workers: int, archive: Path, model: str, scratch: Path) -> dict:
    out = scratch / f"out-{runner}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    options = BatchOptions(archive, out, model=model, runner=runner, workers=workers, progress=False)
    summary = run_batch(options)
    peaks = sorted(summary.peak_worker_rss_mb.values())
    return {
        "runner": runner,
        "workers": workers,
        "files": summary.files_done + summary.files_failed,
        "failed": summary.files_failed,
        "audio_h": round(summary.audio_hours, 4),
        "wall_s": round(summary.wall_s, 2),
        "rtf": round(summary.real_time_factor or 0.0, 5),
        "files_per_s": round(summary.files_per_s, 3),
        "audio_h_per_h": round(1 / summary.real_time_factor, 1) if summary.real_time_factor else None,
        "cpu_per_audio_s": round(summary.cpu_per_audio_s or 0.0, 5),
        "peak_rss_mb_per_worker": [round(p) for p in peaks],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="model bundle or bundled name (default: tiny random-weight model)")
    p.add_argument("--minutes", type=float, default=30.0, help="audio in the archive (default: 30)")
    p.add_argument("--files", type=int, default=60, help="files in the archive (default: 60)")
    p.add_argument("--configs", nargs="+", default=["local:1", "local:2", "ray:2"], help="runner:workers ...")
    p.add_argument("--scratch", type=Path, default=None, help="work folder (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = p.parse_args()

    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="bench-batch-"))
    scratch.mkdir(parents=True, exist_ok=True)
    archive = scratch / "archive"
    t = time.perf_counter()
    shutil.rmtree(archive, ignore_errors=True)
    seconds = write_archive(archive, args.minutes, args.files)
    print(f"archive: {args.files} files, {seconds / 60:.1f} min of audio ({time.perf_counter() - t:.1f} s to write)")
    model = args.model or str(tiny_model(scratch / "tiny-model"))
    print(f"model: {model}; CPUs: {os.cpu_count()}; load average before: {os.getloadavg()[0]:.1f}")

    rows, ray_started = [], False
    for config in args.configs:
        runner, _, n = config.partition(":")
        workers = int(n or 1)
        if runner == "ray" and not ray_started:
            import ray

            t = time.perf_counter()
            ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR")
            print(f"ray.init (local, {workers} CPUs): {time.perf_counter() - t:.1f} s (not counted below)")
            ray_started = True
        row = run_config(runner, workers, archive, model, scratch)
        row["load_avg_after"] = round(os.getloadavg()[0], 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if ray_started:
        import ray

        ray.shutdown()

    print()
    header = ["runner", "workers", "files", "audio (h)", "wall (s)", "real-time factor", "files/s", "audio h per h"]
    header += ["worker CPU s per audio s"]
    print("| " + " | ".join([*header, "peak RSS per worker (MiB)"]) + " |")
    print("|---" * (len(header) + 1) + "|")
    for r in rows:
        peaks = ", ".join(map(str, r["peak_rss_mb_per_worker"]))
        print(
            f"| {r['runner']} | {r['workers']} | {r['files']} | {r['audio_h']:.2f} | {r['wall_s']:.1f} "
            f"| {r['rtf']:.4f} | {r['files_per_s']:.2f} | {r['audio_h_per_h']} | {r['cpu_per_audio_s']:.4f} | {peaks} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"model": model, "archive_s": seconds, "rows": rows}, indent=1) + "\n")
    if not args.scratch:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
