"""Speed and memory of the streaming engine and ``analyze`` (figures, not pass/fail tests).

Prints, with the bundled default model unless ``--model`` names another bundle:

1. per-hop processing latency (p50/p95) on one thread: a conversation fed in 0.5 s hops, time
   per ``feed`` call that produced an update (VAD + window inference + smoothing), wall clock and
   CPU time (the latter does not depend on how busy the machine is);
2. end-to-end delay from the arrival of the audio that completes a window to its ``update``
   event: 48 kHz audio in 20 ms blocks as from a microphone; the delay counts the blocks the
   streaming resampler holds back plus the processing time of the block that emits the event;
3. ``analyze`` throughput (real-time factor, wall clock and CPU time) as ``speech-emotion analyze``
   runs it: one inference thread (on a shared 2-core machine, a second ONNX Runtime or BLAS
   thread costs more in contention than it gains; measure with ``--threads 2``), and
4. peak memory (max RSS) of ``analyze`` for a short and a 60-minute input, each in a fresh process.

Audio is a synthetic conversation (voiced bursts of 0.5-6 s, pauses of 0.3-2.5 s, faint noise),
written to /tmp block by block, so nothing long is ever held in memory.
Targets: p95 <= 50 ms per 0.5 s hop on one thread; analyze >= 50x real time on 2 cores; memory flat.

    python benchmarks/bench_streaming.py                       # default model, 5 and 60 min
    python benchmarks/bench_streaming.py --model PATH --long-min 60
    taskset -c 0,1 python benchmarks/bench_streaming.py        # pin to 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from speech_emotion.errors import ModelError  # noqa: E402
from speech_emotion.recognizer import Recognizer  # noqa: E402
from speech_emotion.streaming import SegmentEvent, StreamingRecognizer, UpdateEvent  # noqa: E402
from synth import vowel  # noqa: E402


def conversation(seconds: float, sample_rate: int = 16000, seed: int = 0) -> Iterator[np.ndarray]:
    """Speech-like bursts and pauses with faint background noise, yielded piece by piece."""
    rng = np.random.default_rng(seed)
    made = 0
    total = int(seconds * sample_rate)
    while made < total:
        talk = vowel(
            rng.uniform(0.5, 6.0),
            sample_rate,
            f0=rng.uniform(90, 260),
            formants=(rng.uniform(400, 900), rng.uniform(1000, 2000), rng.uniform(2200, 3000)),
            amplitude=rng.uniform(0.05, 0.5),
            seed=int(rng.integers(1 << 30)),
        )
        pause = np.zeros(int(rng.uniform(0.3, 2.5) * sample_rate), dtype=np.float32)
        piece = np.concatenate([talk, pause])
        piece += (0.001 * rng.standard_normal(len(piece))).astype(np.float32)
        piece = piece[: total - made]
        made += len(piece)
        yield piece


def write_conversation(path: Path, seconds: float, sample_rate: int = 16000) -> Path:
    with sf.SoundFile(path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16") as f:
        for piece in conversation(seconds, sample_rate):
            f.write(piece)
    return path


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def bench_hop_latency(model: str | None, seconds: float) -> dict[str, float]:
    recognizer = Recognizer.load(model, threads=1)
    engine = StreamingRecognizer(recognizer)
    engine.warmup()
    hop = int(engine.options.hop_s * 16000)
    audio = np.concatenate(list(conversation(seconds)))
    feed_ms, cpu_ms, infer_ms = [], [], []
    for i in range(0, len(audio), hop):
        t0, c0 = time.perf_counter(), time.thread_time()
        events = engine.feed(audio[i : i + hop], 16000)
        elapsed, cpu = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
        updates = [e for e in events if isinstance(e, UpdateEvent)]
        if updates:
            feed_ms.append(elapsed)
            cpu_ms.append(cpu)
            infer_ms += [u.latency_ms for u in updates]
    return {
        "hops_with_update": len(feed_ms),
        "hop_cpu_p50_ms": pct(cpu_ms, 50),
        "hop_cpu_p95_ms": pct(cpu_ms, 95),
        "hop_p50_ms": pct(feed_ms, 50),
        "hop_p95_ms": pct(feed_ms, 95),
        "window_inference_p50_ms": pct(infer_ms, 50),
        "window_inference_p95_ms": pct(infer_ms, 95),
    }


def bench_end_to_end(model: str | None, seconds: float, rate: int = 48000, block_ms: int = 20) -> dict[str, float]:
    recognizer = Recognizer.load(model, threads=1)
    engine = StreamingRecognizer(recognizer)
    engine.warmup()
    block = rate * block_ms // 1000
    audio = np.concatenate(list(conversation(seconds, rate)))
    delays, closing = [], []
    for k, i in enumerate(range(0, len(audio), block)):
        t0 = time.perf_counter()
        events = engine.feed(audio[i : i + block], rate)
        processing = (time.perf_counter() - t0) * 1000
        segment_ends = {round(e.end, 6) for e in events if isinstance(e, SegmentEvent)}
        for e in events:
            if isinstance(e, UpdateEvent):
                completing_block = int(np.ceil(e.end * rate / block)) - 1  # block holding the window's last sample
                delay = (k - completing_block) * block_ms + processing
                # the last window of an utterance can only be known once the VAD hangover has passed
                (closing if round(e.end, 6) in segment_ends else delays).append(delay)
    return {
        "updates": len(delays),
        "e2e_p50_ms": pct(delays, 50),
        "e2e_p95_ms": pct(delays, 95),
        "closing_updates": len(closing),
        "closing_p50_ms": pct(closing, 50),
    }


def child_analyze(path: Path, model: str | None, threads: int, out: Path) -> None:
    """Run in a fresh process: analyze + write, print timing and peak RSS as JSON."""
    from speech_emotion.report import write_timeline
    from speech_emotion.timeline import analyze_file

    recognizer = Recognizer.load(model, threads=threads)
    t_start = time.perf_counter()
    StreamingRecognizer(recognizer).warmup()  # one-off JIT compilation of the feature code
    warmup = time.perf_counter() - t_start
    t0, c0 = time.perf_counter(), time.process_time()
    timeline = analyze_file(path, recognizer)
    analyzed, cpu = time.perf_counter() - t0, time.process_time() - c0
    write_timeline(timeline, out)
    total = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "audio_s": timeline.duration_s,
                "analyze_s": analyzed,
                "with_writing_s": total,
                "rtf": timeline.duration_s / analyzed,
                "cpu_s": cpu,
                "warmup_s": warmup,
                "peak_rss_mb": rss_mb,
                "segments": len(timeline.segments),
            }
        )
    )


def run_child(path: Path, model: str | None, threads: int, out: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", str(path), "--threads", str(threads), "--out", str(out)]
    if model:
        cmd += ["--model", model]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # BLAS/numba thread pools only add contention here
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model bundle (default: the bundled default model)")
    parser.add_argument("--latency-s", type=float, default=120.0, help="seconds of audio for the latency runs")
    parser.add_argument("--short-min", type=float, default=5.0, help="short analyze input (minutes)")
    parser.add_argument("--long-min", type=float, default=60.0, help="long analyze input (minutes)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads for analyze (default 1)")
    parser.add_argument("--skip-analyze", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    try:
        recognizer = Recognizer.load(args.model)
    except ModelError as exc:
        print(f"error: {exc}\nthe default model is not installed: pass --model PATH to a model bundle", file=sys.stderr)
        return 2
    if args.child:
        child_analyze(args.child, args.model, args.threads, args.out)
        return 0

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"model: {recognizer.name} ({recognizer.bundle}); cpus: {os.cpu_count()}; load: {os.getloadavg()[0]:.1f}")
    hop = bench_hop_latency(args.model, args.latency_s)
    print(
        f"per-hop latency, 1 thread ({hop['hops_with_update']} hops): p50 {hop['hop_p50_ms']:.1f} ms, "
        f"p95 {hop['hop_p95_ms']:.1f} ms (target p95 <= 50 ms); CPU time p50 {hop['hop_cpu_p50_ms']:.1f} / "
        f"p95 {hop['hop_cpu_p95_ms']:.1f} ms; window inference alone "
        f"p50 {hop['window_inference_p50_ms']:.1f} / p95 {hop['window_inference_p95_ms']:.1f} ms"
    )
    e2e = bench_end_to_end(args.model, min(args.latency_s, 60.0))
    print(
        f"end-to-end delay, 48 kHz in 20 ms blocks ({e2e['updates']} updates): "
        f"p50 {e2e['e2e_p50_ms']:.1f} ms, p95 {e2e['e2e_p95_ms']:.1f} ms; the closing update of each "
        f"utterance ({e2e['closing_updates']}) comes with the segment after the VAD hangover: "
        f"p50 {e2e['closing_p50_ms']:.0f} ms"
    )
    if args.skip_analyze:
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        rows = []
        for minutes in (args.short_min, args.long_min):
            path = write_conversation(Path(tmp) / f"conversation-{minutes:g}min.wav", minutes * 60)
            result = run_child(path, args.model, args.threads, Path(tmp) / "out")
            rows.append((minutes, result))
            path.unlink()
            print(
                f"analyze {minutes:g} min, {args.threads} threads: {result['rtf']:.0f}x real time "
                f"({result['analyze_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU; "
                f"{result['with_writing_s']:.1f} s with JSON/CSV/PNG; +{result['warmup_s']:.1f} s one-off warm-up), "
                f"{result['segments']} segments, peak RSS {result['peak_rss_mb']:.0f} MB"
            )
        (m1, r1), (m2, r2) = rows
        growth = r2["peak_rss_mb"] - r1["peak_rss_mb"]
        print(
            f"peak memory: {r1['peak_rss_mb']:.0f} MB for {m1:g} min, {r2['peak_rss_mb']:.0f} MB for {m2:g} min "
            f"({growth:+.0f} MB); target: analyze >= 50x real time, memory flat"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
