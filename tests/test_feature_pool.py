"""The feature cache's worker pool ends with the process that started it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from test_batch import _descendants, _wait_gone

SCRIPT = """
import sys, time
import numpy as np
from speech_emotion.training.cache import ClipStore, FeatureCache

def slow(job):
    time.sleep(600)  # a clip that takes for ever: the run is killed meanwhile
    return np.zeros(1)

if __name__ == "__main__":
    clips = [sys.argv[2]] * 8
    store = ClipStore(FeatureCache(sys.argv[1], "k"), lambda d, c: f"{d}-{c}", slow, None, workers=2,
                      progress=False, start_method="spawn")
    store.get(clips, list(range(8)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_killing_a_run_ends_its_feature_workers(tmp_path: Path) -> None:
    """A run stopped with SIGKILL (or SIGTERM) left its two spawn workers waiting for ever, holding their memory."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(SCRIPT))
    clip = tmp_path / "clip.bin"
    clip.write_bytes(b"x")
    run = subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache"), str(clip)])
    try:
        deadline = time.monotonic() + 60
        while len(workers := _descendants(run.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers) >= 2, "the pool never started"
        time.sleep(2)  # the workers are past their initializer, in the slow job
        run.send_signal(signal.SIGKILL)
        run.wait(10)
        _wait_gone(workers, 20)
    finally:
        run.kill()
