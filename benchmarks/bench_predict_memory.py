"""Peak memory of ``speech-emotion predict`` against recording length: it must stay flat (issue 11).

Writes generated call-like audio (voiced bursts and pauses, 48 kHz stereo by default) of each length to a
temporary folder, block by block, then runs ``predict --json`` on it in a fresh process per length and prints
that process's peak resident memory (ru_maxrss), wall time and the answer's speech seconds::

    python benchmarks/bench_predict_memory.py [--minutes 1 10] [--rate 48000] [--channels 2] [--model default]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synth import vowel  # noqa: E402  (speech-like voice the VAD accepts)

CHILD = """
import json, resource, sys, io, contextlib
from speech_emotion.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["predict", "--json", *sys.argv[1:]])
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"code": code, "answer": out.getvalue(), "peak_mb": peak_mb}))
"""


def write_call(path: Path, minutes: float, rate: int, channels: int, block_s: float = 10.0) -> None:
    """Voiced bursts (1-4 s) and pauses (0.3-1.5 s), the same on every channel, written a block at a time."""
    rng = np.random.default_rng(0)
    total = int(minutes * 60 * rate)
    with sf.SoundFile(path, "w", rate, channels, "PCM_16") as f:
        done = 0
        t0 = 0
        while done < total:
            n = min(int(block_s * rate), total - done)
            voice = vowel((n + 0.5) / rate, rate, amplitude=1.0, seed=t0 // rate)[:n]
            gate = np.zeros(n)
            i = 0
            while i < n:
                on, off = int(rng.uniform(1, 4) * rate), int(rng.uniform(0.3, 1.5) * rate)
                gate[i : i + on] = 1.0
                i += on + off
            block = (0.1 * voice * gate + 0.001 * rng.standard_normal(n)).astype(np.float32)
            f.write(np.repeat(block[:, None], channels, axis=1))
            done += n
            t0 += n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0], help="recording lengths")
    parser.add_argument("--rate", type=int, default=48000, help="sample rate of the generated files (Hz)")
    parser.add_argument("--channels", type=int, default=2, help="channels of the generated files")
    parser.add_argument("--model", default=None, help="bundled model name or bundle folder")
    args = parser.parse_args()
    model = ["--model", args.model] if args.model else []
    print(f"predict --json on generated {args.rate} Hz, {args.channels}-channel audio; one fresh process per length")
    print(f"{'minutes':>8} {'file MB':>8} {'peak RSS MB':>12} {'wall s':>7} {'speech s':>9}  label")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            path = Path(tmp) / f"call-{minutes:g}min.wav"
            write_call(path, minutes, args.rate, args.channels)
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), *model], capture_output=True, text=True, check=False
            )
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                sys.exit(f"predict failed on {path}: {proc.stderr.strip().splitlines()[-1:]}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            answer = json.loads(result["answer"])
            size = path.stat().st_size / 2**20
            print(
                f"{minutes:8g} {size:8.0f} {result['peak_mb']:12.0f} {wall:7.1f} {answer['speech_s']:9.1f}"
                f"  {answer['label']}",
                flush=True,
            )
            path.unlink()


if __name__ == "__main__":
    main()
