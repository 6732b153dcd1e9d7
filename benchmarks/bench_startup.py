"""Start-up time of the ``speech-emotion`` command: median wall time of ``--version`` and ``--help``.

Each command runs ``--runs`` times in a fresh interpreter, alternating with ``python -c pass`` (the floor);
prints the medians and the start-up cost above the floor. Run: ``python benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "speech-emotion --version": [sys.executable, "-m", "speech_emotion.cli.main", "--version"],
    "speech-emotion --help": [sys.executable, "-m", "speech_emotion.cli.main", "--help"],
}


def wall_time(command: list[str]) -> float:
    """Seconds one run of ``command`` takes (output discarded)."""
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, command in COMMANDS.items():
            times[name].append(wall_time(command))
    floor = statistics.median(times["python -c pass"])
    for name, values in times.items():
        median = statistics.median(values)
        extra = "" if name == "python -c pass" else f"  (+{median - floor:.3f} s over python -c pass)"
        print(f"{name:<26} median {median:.3f} s over {args.runs} runs{extra}")


if __name__ == "__main__":
    main()
