"""Start-up time of the ``speech-emotion`` command: median wall time of ``--version``, ``--help`` and
``predict one.wav`` (a generated 3 s 16 kHz WAV, the default model: the whole user-visible time of one answer).

Each command runs ``--runs`` times in a fresh interpreter, alternating with ``python -c pass`` (the floor);
prints the medians (wall and CPU time), the start-up cost above the floor and the 1-minute load average before
and after (on a busy machine wall time grows with the load; CPU time much less).
Run: ``python benchmarks/bench_startup.py`` (``PYTHONPATH=OTHER/src`` measures another checkout's code).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "speech-emotion --version": [sys.executable, "-m", "speech_emotion.cli.main", "--version"],
    "speech-emotion --help": [sys.executable, "-m", "speech_emotion.cli.main", "--help"],
}


def write_one_wav(path: Path) -> Path:
    """3 s: 0.5 s silence, 2 s of a voiced vowel-like tone with vibrato, 0.5 s silence (16 kHz mono)."""
    rate = 16000
    t = np.arange(2 * rate) / rate
    phase = 2 * np.pi * np.cumsum(140 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20)) * np.minimum(1, np.minimum(t, t[-1] - t) / 0.05)
    samples = np.concatenate([np.zeros(rate // 2), 0.3 * voiced / np.abs(voiced).max(), np.zeros(rate // 2)])
    sf.write(path, samples.astype(np.float32), rate)
    return path


def wall_time(command: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command`` (output discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_one_wav(Path(tmp) / "one.wav")
        commands = {
            **COMMANDS,
            "speech-emotion predict one.wav": [*COMMANDS["speech-emotion --version"][:-1], "predict", str(wav)],
        }
        wall_time(commands["speech-emotion predict one.wav"])  # warm the file cache once
        load_before = os.getloadavg()[0]
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                wall, used = wall_time(command)
                times[name].append(wall)
                cpu[name].append(used)
        load_after = os.getloadavg()[0]
    floor = statistics.median(times["python -c pass"])
    for name, values in times.items():
        median = statistics.median(values)
        extra = "" if name == "python -c pass" else f"  (+{median - floor:.3f} s over python -c pass)"
        print(f"{name:<32} median {median:.3f} s wall, {statistics.median(cpu[name]):.3f} s CPU{extra}")
    print(f"medians over {args.runs} runs; CPU = user + system time of the command's process tree")
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
