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
    python benchmarks/bench_service.py --stagger 2 --n 64 80   # streams starting within 2 s; N = 64 and 80 only
    python benchmarks/bench_service.py --soak 30     # 30 minutes of churn and attacks, RSS/handles/p95 over time
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
    hop_s: float = 0.0
    """The widest update hop the server reported."""


@dataclass
class Round:
    n: int
    results: list[StreamResult]
    cpu_s: float
    """Server CPU seconds (all its processes)."""
    wall_s: float
    client_cpu_s: float = 0.0
    """This benchmark's own CPU seconds (the clients, on the same cores)."""

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
    emitted_after: dict[tuple[int, float], int]
    """For each update window (segment, end in s) of the engine's hop grid: the index of the frame whose feed emits
    it. A server under load classifies every 2nd or 4th of them (a wider hop): those are still found here."""


def make_track(seconds: float, seed: int, model: str | None) -> Track:
    from speech_emotion.recognizer import Recognizer
    from speech_emotion.streaming import StreamingRecognizer, UpdateEvent

    audio = speech_audio(seconds, seed)
    engine = StreamingRecognizer(Recognizer.load(model, threads=1))
    samples = np.frombuffer(audio, dtype="<i2")
    emitted: dict[tuple[int, float], int] = {}
    for i in range(0, len(samples), FRAME):
        for e in engine.feed(samples[i : i + FRAME], RATE):
            if isinstance(e, UpdateEvent):
                emitted[(e.segment, round(e.end, 3))] = i // FRAME
    return Track(audio, emitted)


async def one_stream(url: str, track: Track, token: str | None, delay_s: float = 0.0) -> StreamResult:
    import websockets

    await asyncio.sleep(delay_s)
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
                        index = track.emitted_after.get((message["segment"], round(message["end"], 3)))
                        if index is not None and index < len(sent_at):  # not those of the final flush
                            result.delays_ms.append((now - sent_at[index]) * 1000)
                        result.updates += 1
                        result.hop_s = max(result.hop_s, message.get("hop_s", 0.0))
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


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone meanwhile
        return None


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its child processes (``serve --processes``), Linux."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    children = [c for c in pids if (fields := _stat(c)) is not None and fields[1] == str(pid)]
    total = 0.0
    for fields in (_stat(p) for p in [pid, *children]):
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def run_round(
    url: str, n: int, tracks: list[Track], token: str | None, pid: int, stagger_s: float = 0.0
) -> Round:
    """``n`` streams at once, stream ``i`` sending track ``i % len(tracks)``; with ``stagger_s``, each starts after
    its own random delay in ``[0, stagger_s)`` (calls that do not all begin in the same 100 ms)."""
    starts = np.random.default_rng(n).uniform(0.0, stagger_s, n)  # all 0 without a stagger
    cpu0, client0, t0 = process_cpu_s(pid), time.process_time(), time.perf_counter()
    results = await asyncio.gather(
        *(one_stream(url, tracks[i % len(tracks)], token, float(starts[i])) for i in range(n))
    )
    wall = time.perf_counter() - t0
    return Round(n, list(results), process_cpu_s(pid) - cpu0, wall, time.process_time() - client0)


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
        str(args.max_streams),
        "--max-connections",
        str(args.max_streams + 64),
        "--processes",
        str(args.processes),
        "--max-hop",
        str(args.max_hop),
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


HEADER = (
    f"{'N':>5} {'updates':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'dropped':>8} {'errors':>6} "
    f"{'srv CPU':>8} {'per strm':>8} {'client':>7} {'hop s':>6}"
)


def report(r: Round) -> str:
    """One row: server CPU in % of one core (all processes), per stream, the clients' own CPU, the widest hop."""
    dropped = sum(x.dropped for x in r.results)
    cpu = 100 * r.cpu_s / r.wall_s
    hop = max((x.hop_s for x in r.results), default=0.0)
    return (
        f"{r.n:>5} {sum(x.updates for x in r.results):>8} {r.pct(50):>8.0f} {r.pct(95):>8.0f} "
        f"{max(r.delays, default=0):>8.0f} {dropped:>8} {len(r.errors):>6} {cpu:>7.0f}% {cpu / r.n:>7.2f}% "
        f"{100 * r.client_cpu_s / r.wall_s:>6.0f}% {hop:>6.2g}"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="bundled model name or bundle folder (default: bundled default)")
    p.add_argument("--seconds", type=float, default=20.0, help="audio per stream (default 20)")
    p.add_argument("--processes", type=int, default=1, help="server processes (serve --processes; default 1)")
    p.add_argument("--max-hop", type=float, default=2.0, help="serve --max-hop: widest hop under load (default 2)")
    p.add_argument("--target-ms", type=float, default=200.0)
    p.add_argument("--stop-ms", type=float, default=500.0)
    p.add_argument("--max-n", type=int, default=1024)
    p.add_argument("--n", type=int, nargs="+", default=None, help="run these N only, each once (no doubling)")
    p.add_argument("--refine", action="store_true", help="bisect for the largest N within --target-ms")
    p.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        metavar="S",
        help="each stream starts after a random delay in [0, S) seconds (default 0: all at once, the worst case:"
        " streams of the same track then need the model at the same moments)",
    )
    p.add_argument("--url", default=None, help="an already running server's ws URL (default: start one)")
    p.add_argument("--token", default=os.environ.get("SPEECH_EMOTION_TOKEN"))
    p.add_argument(
        "--soak",
        type=float,
        default=None,
        metavar="MINUTES",
        help="soak instead: streams joining and leaving, uploads and attacks at low rate for MINUTES",
    )
    p.add_argument("--soak-streams", type=int, default=4, help="concurrent streams during the soak (default 4)")
    args = p.parse_args()
    args.max_streams = 4096 if args.soak is None else args.soak_streams + 4  # room for the attacks' streams
    if args.soak is not None:
        return run_soak(args)

    server = None
    if args.url:
        url, pid = args.url, os.getpid()
    else:
        port = free_port()
        server = start_server(args, port)
        url, pid = f"ws://127.0.0.1:{port}/v1/stream", server.pid
    print(
        f"cores: {len(os.sched_getaffinity(0))}, model: {args.model or 'default'}, {args.seconds:g} s per stream,"
        f" server processes: {args.processes}, max hop {args.max_hop:g} s, starts staggered over {args.stagger:g} s,"
        f" load average before:"
        f" {os.getloadavg()[0]:.1f}"
    )
    print(HEADER)
    rounds: dict[int, Round] = {}
    tracks = [make_track(args.seconds, seed, args.model) for seed in range(VOICES)]
    try:
        asyncio.run(run_round(url, 1, [make_track(3.0, 99, args.model)], args.token, pid))  # warm-up
        for n in args.n or []:
            r = rounds[n] = asyncio.run(run_round(url, n, tracks, args.token, pid, args.stagger))
            print(report(r), flush=True)
        n = 1
        while args.n is None and n <= args.max_n:
            r = rounds[n] = asyncio.run(run_round(url, n, tracks, args.token, pid, args.stagger))
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
                r = rounds[mid] = asyncio.run(run_round(url, mid, tracks, args.token, pid, args.stagger))
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


# -------------------------------------------------------------------------------------------------- soak

ATTACKS = (
    "stalled_body",
    "slow_headers",
    "amplification",
    "tiny_wav",
    "absurd_rate",
    "foreign_host",
    "smuggling",
    "oversize_frame",
    "config_only_stream",
    "connect_disconnect",
)
"""The attacks of issue 12, one every ``ATTACK_EVERY_S``, in turn; each expects a JSON refusal or a close."""
ATTACK_EVERY_S = 3.0
UPLOAD_EVERY_S = 2.0
REPORT_EVERY_S = 15.0


def wav_bytes(samples: np.ndarray, rate: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def multipart(data: bytes, name: str = "a.wav") -> tuple[bytes, str]:
    boundary = "soakboundary0123456789"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def http(port: int, raw: bytes, hold_s: float = 0.0) -> tuple[int, bytes]:
    """Send ``raw`` (a whole request, or a part of one), then read until the server closes; ``(status, body)``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(-1), timeout=60)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body
    except (IndexError, ValueError):
        return 0, data


def post(path: str, data: bytes, host: str = "127.0.0.1", name: str = "a.wav") -> bytes:
    body, ctype = multipart(data, name)
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n"
    ).encode() + body


@dataclass
class SoakStats:
    delays_ms: list[float] = field(default_factory=list)
    uploads: dict[int, int] = field(default_factory=dict)
    attacks: dict[str, str] = field(default_factory=dict)
    """Last outcome of each attack (status or close code)."""
    unexpected: list[str] = field(default_factory=list)
    streams: int = 0
    stream_errors: list[str] = field(default_factory=list)


async def attack(kind: str, port: int, payloads: dict[str, bytes]) -> str:
    """Run one attack; the outcome as ``"<status or close> <error code>"``."""
    import websockets

    if kind == "stalled_body":
        head = b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        status, body = await http(port, head + b"Content-Length: 100000\r\n\r\n--x\r")
    elif kind == "slow_headers":
        status, body = await http(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    elif kind in ("amplification", "tiny_wav", "absurd_rate"):
        status, body = await http(port, post("/v1/predict", payloads[kind]))
    elif kind == "foreign_host":
        status, body = await http(port, post("/v1/predict", payloads["tiny_wav"], host="attacker.example"))
    elif kind == "smuggling":
        status, body = await http(
            port,
            b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\n",
        )
    elif kind == "connect_disconnect":
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()
        return "closed"
    else:
        url = f"ws://127.0.0.1:{port}/v1/stream"
        async with websockets.connect(url, max_size=None, open_timeout=30) as ws:
            await ws.recv()
            if kind == "oversize_frame":
                await ws.send(b"\0" * ((1 << 20) + 2))
            else:  # config_only_stream: a config every 5 s, never audio
                for _ in range(100):
                    await ws.send(json.dumps({"type": "config", "sample_rate": 16000}))
                    try:
                        await asyncio.wait_for(ws.wait_closed(), 5)
                        break
                    except asyncio.TimeoutError:
                        continue
            last = ""
            try:
                async for message in ws:
                    if isinstance(message, str):
                        last = json.loads(message).get("error", last)
            except websockets.ConnectionClosed:
                pass
            return f"{ws.close_code} {last}"
    try:
        code = json.loads(body).get("error", "?")
    except ValueError:
        code = "not-json"
    return f"{status} {code}"


EXPECTED: dict[str, tuple[str, ...]] = {
    "stalled_body": ("408 request_timeout",),
    "slow_headers": ("408 request_timeout",),
    "amplification": ("413 audio_too_large",),
    "tiny_wav": ("422 no_speech", "422 unusable_audio"),  # no speech, or no samples left at 16 kHz
    "absurd_rate": ("415 unsupported_audio",),
    "foreign_host": ("403 forbidden_host",),
    "smuggling": ("400 bad_request",),
    "oversize_frame": ("1009 frame_too_large",),
    # a second config is refused since issue 21 (1008 config_repeated); either way control messages keep no slot
    "config_only_stream": ("4408 idle_timeout", "1008 config_repeated"),
    "connect_disconnect": ("closed",),
}


def soak_payloads() -> dict[str, bytes]:
    import io
    import struct

    import soundfile as sf

    buf = io.BytesIO()  # 160 s of 192 kHz stereo silence: 61 M samples, over the default budget, in ~0.1 MB
    with sf.SoundFile(buf, "w", 192000, 2, format="FLAC") as f:
        for _ in range(160):
            f.write(np.zeros((192000, 2), dtype=np.int16))
    amp = buf.getvalue()
    wav = bytearray(wav_bytes(np.full(16000, 0.1, dtype=np.float32), 16000))
    wav[24:28] = struct.pack("<I", 2_000_000_000)
    return {"amplification": amp, "tiny_wav": wav_bytes(np.array([0.5], np.float32), 48000), "absurd_rate": bytes(wav)}


def server_usage(pid: int) -> tuple[float, int]:
    """RSS in MB and open file handles of the server: its process and its child processes (``--processes``)."""
    pids = [pid] + [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (_stat(int(p.name)) or ["", ""])[1] == str(pid)
    ]
    rss, handles = 0, 0
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text().splitlines()
            rss += next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
            handles += len(os.listdir(f"/proc/{p}/fd"))
        except (OSError, StopIteration):  # gone meanwhile
            continue
    return rss / 1024, handles


async def soak(args: argparse.Namespace, port: int, pid: int) -> SoakStats:
    stats = SoakStats()
    url = f"ws://127.0.0.1:{port}/v1/stream"
    loop = asyncio.get_running_loop()
    end = loop.time() + args.soak * 60
    rng = np.random.default_rng(0)
    tracks = [make_track(float(s), seed, args.model) for seed, s in enumerate((6, 10, 15, 20))]
    payloads = soak_payloads()
    talk = wav_bytes(np.frombuffer(tracks[0].audio, dtype="<i2")[: 3 * RATE], RATE)

    async def streamer() -> None:  # streams joining and leaving: each sends one track, then another joins
        while loop.time() < end:
            result = await one_stream(url, tracks[int(rng.integers(len(tracks)))], args.token)
            stats.delays_ms += result.delays_ms
            stats.streams += 1
            stats.stream_errors += result.errors

    async def uploader() -> None:
        while loop.time() < end:
            status, _ = await http(port, post("/v1/predict", talk))
            stats.uploads[status] = stats.uploads.get(status, 0) + 1
            await asyncio.sleep(UPLOAD_EVERY_S)

    async def attacker() -> None:
        i = 0
        pending: set[asyncio.Task] = set()
        while loop.time() < end:
            kind = ATTACKS[i % len(ATTACKS)]
            i += 1

            async def one(kind: str = kind) -> None:
                try:
                    outcome = await attack(kind, port, payloads)
                except Exception as exc:  # noqa: BLE001 - reported, not fatal
                    outcome = f"{type(exc).__name__}"
                stats.attacks[kind] = outcome
                if outcome not in EXPECTED[kind]:
                    stats.unexpected.append(f"{kind}: {outcome}")

            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(ATTACK_EVERY_S)
        await asyncio.gather(*pending)

    async def reporter() -> None:
        t0, seen = loop.time(), 0
        print(
            f"{'min':>6} {'RSS MB':>8} {'handles':>8} {'streams':>8} {'p95 ms':>8} {'uploads':>16} {'unexpected':>10}"
        )
        while loop.time() < end + REPORT_EVERY_S:
            rss, fds = server_usage(pid)
            window = sorted(stats.delays_ms[seen:])
            seen = len(stats.delays_ms)
            p95 = window[int(0.95 * (len(window) - 1))] if window else float("nan")
            print(
                f"{(loop.time() - t0) / 60:>6.1f} {rss:>8.0f} {fds:>8} {stats.streams:>8} {p95:>8.0f} "
                f"{str(dict(sorted(stats.uploads.items()))):>16} {len(stats.unexpected):>10}",
                flush=True,
            )
            if loop.time() >= end:
                break
            await asyncio.sleep(REPORT_EVERY_S)

    await asyncio.gather(reporter(), uploader(), attacker(), *(streamer() for _ in range(args.soak_streams)))
    return stats


def run_soak(args: argparse.Namespace) -> int:
    port = free_port()
    server = start_server(args, port)
    print(
        f"soak: {args.soak:g} min, {args.soak_streams} streams joining and leaving, an upload every "
        f"{UPLOAD_EVERY_S:g} s, an attack every {ATTACK_EVERY_S:g} s; cores: {len(os.sched_getaffinity(0))}, "
        f"load average before: {os.getloadavg()[0]:.1f}"
    )
    try:
        stats = asyncio.run(soak(args, port, server.pid))
        time.sleep(2)
        rss, fds = server_usage(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    d = sorted(stats.delays_ms)
    p95 = d[int(0.95 * (len(d) - 1))] if d else float("nan")
    print(
        f"streams: {stats.streams}, update p95 over the soak: {p95:.0f} ms, stream errors: {len(stats.stream_errors)}"
    )
    for e in sorted(set(stats.stream_errors))[:5]:
        print(f"      stream error: {e}")
    print(f"uploads by status: {dict(sorted(stats.uploads.items()))}")
    print("attacks (last outcome, expected):")
    for kind in ATTACKS:
        print(f"  {kind:<20} {stats.attacks.get(kind, '-'):<24} {' or '.join(EXPECTED[kind])}")
    print(f"unexpected outcomes: {len(stats.unexpected)} {sorted(set(stats.unexpected))[:5]}")
    print(f"server at the end: RSS {rss:.0f} MB, {fds} handles; load average after: {os.getloadavg()[0]:.1f}")
    return 1 if stats.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
