"""CPU cost of the speech detector per 32 ms window: Silero VAD's own graph window by window (how the detector ran
before) against the two derived graphs :mod:`speech_emotion.silero` runs (the front end of all windows in one call,
the LSTM over each stream's sequence in another).

Three shapes of work, each with the detector's two rows per window (the audio with and without the automatic gain):

- ``file``: one stream, 30 s scored in one call (``predict``, ``analyze``, ``batch``: a block of a file at a time);
- ``live``: 64 streams, 100 ms of each per call (3 windows: the service's scheduler under load);
- ``mic``: one stream, 100 ms per call (``listen``).

Prints the median over ``--rounds`` of this thread's CPU microseconds per window and row, and the ratio::

    python benchmarks/bench_vad_speed.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def original_session():
    import onnxruntime as ort

    from speech_emotion.silero import model_path

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"])


def run_original(session, audio: np.ndarray) -> None:
    """``audio`` ``(calls, windows, streams, rows, 512)`` through the wheel's graph, one call per window position."""
    rows = audio.shape[2] * audio.shape[3]
    state = np.zeros((2, rows, 128), np.float32)
    context = np.zeros((rows, 64), np.float32)
    rate = np.array(16000, np.int64)
    for call in audio:
        for w in call:
            x = np.concatenate([context, w.reshape(rows, 512)], axis=1)
            _, state = session.run(None, {"input": x, "state": state, "sr": rate})
            context = x[:, -64:]


def run_derived(audio: np.ndarray) -> None:
    """The same through :func:`speech_emotion.silero.score_streams`, one call per ``audio[call]``."""
    from speech_emotion import silero

    states = [silero.SileroStream(rows=audio.shape[3]) for _ in range(audio.shape[2])]
    for call in audio:
        silero.score_streams(states, [call[:, i] for i in range(len(states))])


def median_us(run, units: int, rounds: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.thread_time()
        run()
        times.append(time.thread_time() - t0)
    return statistics.median(times) / units * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    session = original_session()
    rng = np.random.default_rng(0)
    shapes = {"file": (1, 938, 1), "live": (64, 3, 10), "mic": (1, 3, 100)}  # streams, windows per call, calls
    print(f"load average before: {os.getloadavg()[0]:.1f}; CPU us per window and row (2 rows), median of {args.rounds}")
    print(f"{'work':>6} {'streams':>8} {'windows/call':>13} {'original':>9} {'derived':>8} {'ratio':>6}")
    for name, (streams, windows, calls) in shapes.items():
        audio = (0.1 * rng.standard_normal((calls, windows, streams, 2, 512))).astype(np.float32)
        units = audio.size // 512
        before = median_us(lambda a=audio: run_original(session, a), units, args.rounds)
        after = median_us(lambda a=audio: run_derived(a), units, args.rounds)
        print(f"{name:>6} {streams:>8} {windows:>13} {before:>9.1f} {after:>8.1f} {before / after:>5.1f}x")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
