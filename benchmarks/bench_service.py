"""Load benchmark of ``WS /v1/stream``: N concurrent real-time streams on loopback.

Starts ``speech-emotion serve`` in a subprocess, then for N = 1, 2, 4, 8, ... opens N WebSocket
streams at once. Each sends speech-like audio (16 kHz PCM16, 100 ms frames) at real-time pace for
``--seconds``, then ends the stream and checks that the server accounted for every sample
(``received == sent``, ``processed + dropped == received``). The update delay of an ``update`` event
is the time from sending the frame after which the engine can emit it to receiving it: the
benchmark first runs the same engine locally over the same 100 ms frames to learn that frame for
every update, so the delay is the service's own (queueing, inference, transport), not the engine's
by-design wait for the end of an utterance. Stops once p95 passes ``--stop-ms`` (500); with ``--refine`` it then
bisects for the largest N whose p95 stays within ``--target-ms`` (200).

    python benchmarks/bench_service.py --model models/default --seconds 20
    taskset -c 0,1 python benchmarks/bench_service.py ...   # pin everything to 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from synth import silence, vowel  # noqa: E402

RATE = 16000
FRAME_S = 0.1
FRAME = int(FRAME_S * RATE)
VOICES = 4
"""Distinct audio tracks; stream i sends track i % VOICES."""


@dataclass
class StreamResult:
    delays_ms: list[float] = field(default_factory=list)
    updates: int = 0
    sent: int = 0
    errors: list[str] = field(default_factory=list)
    dropped: int = 0


@dataclass
class Round:
    n: int
    results: list[StreamResult]
    cpu_s: float
    wall_s: float

    @property
    def delays(self) -> list[float]:
        return [d for r in self.results for d in r.delays_ms]

    def pct(self, q: float) -> float:
        d = sorted(self.delays)
        return d[min(len(d) - 1, int(round(q / 100 * (len(d) - 1))))] if d else float("nan")

    @property
    def errors(self) -> list[str]:
        return [e for r in self.results for e in r.errors]


def speech_audio(seconds: float, seed: int) -> bytes:
    """Utterances of 2-3 s with 0.6-1 s pauses, a different voice per stream."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    total = 0
    while total < seconds * RATE:
        parts.append(vowel(rng.uniform(2.0, 3.0), f0=rng.uniform(100, 240), seed=int(rng.integers(1 << 30))))
        parts.append(silence(rng.uniform(0.6, 1.0)))
        total += len(parts[-1]) + len(parts[-2])
    audio = np.concatenate(parts)[: int(seconds * RATE)]
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


@dataclass
class Track:
    audio: bytes
    emitted_after: list[int]
    """For the k-th update event of the stream: the index of the frame whose feed emits it."""


def make_track(seconds: float, seed: int, model: str | None) -> Track:
    from speech_emotion.recognizer import Recognizer
    from speech_emotion.streaming import StreamingRecognizer, UpdateEvent

    audio = speech_audio(seconds, seed)
    engine = StreamingRecognizer(Recognizer.load(model, threads=1))
    samples = np.frombuffer(audio, dtype="<i2")
    emitted = []
    for i in range(0, len(samples), FRAME):
        events = engine.feed(samples[i : i + FRAME], RATE)
        emitted += [i // FRAME for e in events if isinstance(e, UpdateEvent)]
    return Track(audio, emitted)


async def one_stream(url: str, track: Track, token: str | None) -> StreamResult:
    import websockets

    result = StreamResult()
    audio = track.audio
    frames = [audio[i : i + 2 * FRAME] for i in range(0, len(audio), 2 * FRAME)]
    sent_at: list[float] = []
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        async with websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=30) as ws:
            ready = json.loads(await ws.recv())
            if ready.get("type") != "ready":
                result.errors.append(f"refused: {ready.get('error')}")
                return result

            async def receive() -> dict:
                while True:
                    message = json.loads(await ws.recv())
                    kind = message.get("type")
                    if kind == "update":
                        now = time.perf_counter()
                        if result.updates < len(track.emitted_after):  # not those of the final flush
                            index = track.emitted_after[result.updates]
                            result.delays_ms.append((now - sent_at[index]) * 1000)
                        result.updates += 1
                    elif kind == "error":
                        result.errors.append(f"{message['error']}: {message['message']}")
                        return message
                    elif kind == "end":
                        return message

            receiver = asyncio.create_task(receive())
            start = time.perf_counter()
            for i, frame in enumerate(frames):
                due = start + (i + 1) * FRAME_S  # a frame is sent once it has been "recorded"
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                sent_at.append(time.perf_counter())
                await ws.send(frame)
                result.sent += len(frame) // 2
            await ws.send(json.dumps({"type": "end"}))
            end = await asyncio.wait_for(receiver, timeout=120)
            if end.get("type") == "end":
                result.dropped = end["dropped_samples"]
                if end["received_samples"] != result.sent:
                    result.errors.append(f"server received {end['received_samples']} of {result.sent} samples")
                if end["processed_samples"] + end["dropped_samples"] != end["received_samples"]:
                    result.errors.append("processed + dropped != received")
    except Exception as exc:  # a benchmark reports failures rather than stopping
        result.errors.append(f"{type(exc).__name__}: {exc}")
    return result


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_round(url: str, n: int, tracks: list[Track], token: str | None, pid: int) -> Round:
    cpu0, t0 = process_cpu_s(pid), time.perf_counter()
    results = await asyncio.gather(*(one_stream(url, tracks[i % len(tracks)], token) for i in range(n)))
    return Round(n, list(results), process_cpu_s(pid) - cpu0, time.perf_counter() - t0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "speech_emotion.cli.main",
        "serve",
        "--port",
        str(port),
        "--max-streams",
        "4096",
        "--workers",
        str(args.workers),
        "--threads",
        "1",
        "--log-level",
        "warning",
    ]
    if args.model:
        command += ["--model", str(args.model)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()  # "open http://...": printed before uvicorn starts
    if not line.startswith("open "):
        server.kill()
        raise SystemExit(f"server did not start: {line!r}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("server did not open its port")


def report(r: Round) -> str:
    dropped = sum(x.dropped for x in r.results)
    cpu = 100 * r.cpu_s / r.wall_s
    return (
        f"{r.n:>5} {len(r.delays):>8} {r.pct(50):>8.0f} {r.pct(95):>8.0f} {max(r.delays, default=0):>8.0f} "
        f"{dropped:>8} {len(r.errors):>6} {cpu:>8.0f}%"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="bundled model name or bundle folder (default: bundled default)")
    p.add_argument("--seconds", type=float, default=20.0, help="audio per stream (default 20)")
    p.add_argument("--workers", type=int, default=2, help="server inference threads (default 2)")
    p.add_argument("--target-ms", type=float, default=200.0)
    p.add_argument("--stop-ms", type=float, default=500.0)
    p.add_argument("--max-n", type=int, default=1024)
    p.add_argument("--refine", action="store_true", help="bisect for the largest N within --target-ms")
    p.add_argument("--url", default=None, help="an already running server's ws URL (default: start one)")
    p.add_argument("--token", default=os.environ.get("SPEECH_EMOTION_TOKEN"))
    args = p.parse_args()

    server = None
    if args.url:
        url, pid = args.url, os.getpid()
    else:
        port = free_port()
        server = start_server(args, port)
        url, pid = f"ws://127.0.0.1:{port}/v1/stream", server.pid
    print(
        f"cores: {len(os.sched_getaffinity(0))}, model: {args.model or 'default'}, {args.seconds:g} s per stream,"
        f" server workers: {args.workers}, load average before: {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'N':>5} {'updates':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'dropped':>8} {'errors':>6} {'srv CPU':>9}"
    )
    rounds: dict[int, Round] = {}
    tracks = [make_track(args.seconds, seed, args.model) for seed in range(VOICES)]
    try:
        asyncio.run(run_round(url, 1, [make_track(3.0, 99, args.model)], args.token, pid))  # warm-up
        n = 1
        while n <= args.max_n:
            r = rounds[n] = asyncio.run(run_round(url, n, tracks, args.token, pid))
            print(report(r), flush=True)
            for e in sorted(set(r.errors))[:3]:
                print(f"      error: {e}")
            if r.pct(95) > args.stop_ms or not r.delays:
                break
            n *= 2
        if args.refine:
            ok = [k for k, r in rounds.items() if r.pct(95) <= args.target_ms and not r.errors]
            bad = [k for k, r in rounds.items() if not (r.pct(95) <= args.target_ms and not r.errors)]
            lo, hi = (max(ok) if ok else 0), (min(bad) if bad else None)
            while hi is not None and hi - lo > 1:
                mid = (lo + hi) // 2
                r = rounds[mid] = asyncio.run(run_round(url, mid, tracks, args.token, pid))
                print(report(r), flush=True)
                if r.pct(95) <= args.target_ms and not r.errors:
                    lo = mid
                else:
                    hi = mid
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    held = [k for k, r in rounds.items() if r.pct(95) <= args.target_ms and not r.errors]
    print(f"largest N with p95 <= {args.target_ms:g} ms and no errors: {max(held) if held else 0}")
    lost = sum(x.dropped for r in rounds.values() for x in r.results)
    errors = sum(len(r.errors) for r in rounds.values())
    print(
        f"audio dropped (reported by the server): {lost} samples; errors: {errors}; "
        f"load average after: {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
