"""The issue-11 scripts run (no timing asserted): the RAVDESS no-speech count on a generated corpus, and the
predict memory benchmark on a short generated recording."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from synth import silence, vowel

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_count_no_speech_counts_the_clips_without_speech(tmp_path):
    actor = tmp_path / "Actor_01"
    actor.mkdir()
    sf.write(actor / "03-01-01-01-01-01-01.flac", np.concatenate([silence(0.3), vowel(1.5), silence(0.3)]), 16000)
    sf.write(actor / "03-01-02-01-01-01-01.flac", 0.0005 * np.random.default_rng(0).standard_normal(32000), 16000)
    proc = run("scripts/count_no_speech.py", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "2 clips, 1 with no speech" in proc.stdout
    assert "03-01-02-01-01-01-01.flac" in proc.stdout and "03-01-01-01-01-01-01.flac" not in proc.stdout


def test_predict_memory_benchmark_prints_a_row_per_length(tiny_bundle):
    proc = run("benchmarks/bench_predict_memory.py", "--minutes", "0.2", "--model", str(tiny_bundle))
    assert proc.returncode == 0, proc.stderr
    row = proc.stdout.strip().splitlines()[-1].split()
    assert row[0] == "0.2" and float(row[2]) > 0 and float(row[4]) > 0
