"""Where a live stream's CPU goes: the engine's arithmetic per second of audio, by part and by update hop.

Runs N engines in this process the way the service's scheduler does (``speech_emotion.streaming.step_engines``,
every stream's next 1 s in one step), over the same speech-like audio as ``bench_service.py`` (utterances of
2-3 s, pauses of 0.6-1 s, a voice per stream), at each hop stride the server may use under load (1, 2, 4, 8:
a hop of 0.5, 1, 2, 4 s). It prints, per second of stream audio, the CPU milliseconds (this thread's CPU time,
which depends little on other load) of

- ``vad``: the speech detector (Silero, its two rows per frame, batched across the streams),
- ``model``: the emotion model's runs (the due windows and finished segments of all streams, batched),
- ``rest``: everything else in the step (conditioning, the engines' bookkeeping, events),

the windows and segments classified per second, and the arithmetic ceiling ``1000 / total`` streams per core.
The service adds the WebSocket, JSON and asyncio work on top, and a latency target needs headroom below the
ceiling: this is the floor under ``bench_service.py``'s per-stream CPU, not a capacity.

    python benchmarks/bench_live_cost.py                    # default model, N = 32, 30 s per stream
    python benchmarks/bench_live_cost.py --streams 64 --seconds 60 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_service import RATE, speech_audio  # noqa: E402

os.environ.setdefault("OMP_NUM_THREADS", "1")


class Clock:
    """CPU time of this thread spent inside a wrapped function."""

    def __init__(self, fn):
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        t0 = time.thread_time()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.thread_time() - t0


def one_round(recognizer, tracks: list[np.ndarray], stride: int) -> dict[str, float]:
    import speech_emotion.streaming as streaming
    from speech_emotion.streaming import SegmentEvent, StreamingRecognizer, UpdateEvent

    vad, model = Clock(streaming.classify_streams), Clock(streaming._score)
    streaming.classify_streams, streaming._score = vad, model
    try:
        engines = [StreamingRecognizer(recognizer) for _ in tracks]
        for engine in engines:
            engine.hop_stride = stride
        windows = segments = 0
        t0 = time.thread_time()
        for i in range(0, max(len(t) for t in tracks), RATE):
            inputs = [engine.condition(t[i : i + RATE], RATE) for engine, t in zip(engines, tracks)]
            for events in streaming.step_engines(engines, inputs):
                windows += sum(isinstance(e, UpdateEvent) for e in events)
                segments += sum(isinstance(e, SegmentEvent) for e in events)
        total = time.thread_time() - t0
    finally:
        streaming.classify_streams, streaming._score = vad.fn, model.fn
    audio_s = sum(len(t) for t in tracks) / RATE
    return {
        "vad": 1000 * vad.seconds / audio_s,
        "model": 1000 * model.seconds / audio_s,
        "rest": 1000 * (total - vad.seconds - model.seconds) / audio_s,
        "total": 1000 * total / audio_s,
        "windows": windows / audio_s,
        "segments": segments / audio_s,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="bundled model name or bundle folder (default: bundled default)")
    p.add_argument("--streams", type=int, default=32, help="streams stepped together (default 32)")
    p.add_argument("--seconds", type=float, default=30.0, help="audio per stream (default 30)")
    p.add_argument("--strides", type=int, nargs="+", default=[1, 2, 4, 8], help="hop strides (x 0.5 s)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per stride; medians are printed (default 3)")
    args = p.parse_args()

    from speech_emotion.recognizer import Recognizer

    recognizer = Recognizer.load(args.model, threads=1)
    tracks = [
        np.frombuffer(speech_audio(args.seconds, seed), dtype="<i2").astype(np.float32) / 32768
        for seed in range(args.streams)
    ]
    one_round(recognizer, tracks[:2], 1)  # warm-up
    print(
        f"model: {args.model or 'default'}, {args.streams} streams x {args.seconds:g} s, {args.rounds} rounds"
        f" (medians), load average before: {os.getloadavg()[0]:.1f}"
    )
    print("CPU ms per second of stream audio (one thread)")
    print(
        f"{'hop s':>6} {'vad':>6} {'model':>6} {'rest':>6} {'total':>6} {'windows/s':>10} {'segments/s':>11}"
        f" {'streams/core':>13}"
    )
    for stride in args.strides:
        runs = [one_round(recognizer, tracks, stride) for _ in range(args.rounds)]
        m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{0.5 * stride:>6g} {m['vad']:>6.1f} {m['model']:>6.1f} {m['rest']:>6.1f} {m['total']:>6.1f}"
            f" {m['windows']:>10.2f} {m['segments']:>11.2f} {1000 / m['total']:>13.0f}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
