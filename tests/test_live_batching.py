"""Many live streams at once: the engine steps of several streams run together (the speech detector in lockstep,
the model inputs of all streams in one batched call) and give each stream the events it gets alone: the same
windows, segments and labels, probabilities equal to float32 rounding (a batched matrix product may sum in
another order: differences of about 1e-6 are measured)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from speech_emotion.recognizer import Recognizer
from speech_emotion.service.scheduler import LiveScheduler, SchedulerOptions, _Request
from speech_emotion.streaming import SegmentEvent, StreamEnd, StreamingRecognizer, UpdateEvent, step_engines
from speech_emotion.vad import FrameClassifier, classify_streams
from stream_synth import bursts
from synth import vowel

CHUNK = 1600  # 0.1 s at 16 kHz


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Recognizer:
    from tiny_model import write_tiny_bundle

    return Recognizer.load(write_tiny_bundle(tmp_path_factory.mktemp("tiny-batched"), batch=True), threads=1)


def voices(n: int) -> list[np.ndarray]:
    """``n`` different streams: the standard burst layout, shifted and with another voice each."""
    base, _ = bursts()
    return [
        np.concatenate([np.zeros(800 * i, np.float32), base * (0.6 + 0.1 * i)]).astype(np.float32) for i in range(n)
    ]


def comparable(events: list[Any]) -> list[tuple[Any, ...]]:
    """Everything an event says except the wall-clock latency, probabilities at full precision."""
    out = []
    for e in events:
        d = e.to_dict()
        d.pop("latency_ms", None)
        d.pop("probabilities")
        d.pop("confidence")
        out.append(
            (
                d,
                np.array(e.probabilities, dtype=np.float64),  # in e.labels order
            )
        )
    return out


def assert_same(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for (da, pa), (db, pb) in zip(comparable(a), comparable(b)):
        assert da == db
        np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-5)


def alone(recognizer: Recognizer, audio: np.ndarray) -> list[Any]:
    engine = StreamingRecognizer(recognizer)
    events = []
    for i in range(0, len(audio), CHUNK):
        events += engine.feed(audio[i : i + CHUNK], 16000)
    return events + engine.flush()


def test_a_graph_with_a_symbolic_batch_scores_clips_together_as_one_by_one(batched: Recognizer) -> None:
    assert batched.batched
    clips = [vowel(2.0, seed=i) * 0.3 for i in range(5)] + [vowel(1.5, seed=9) * 0.3]
    together = batched.scores_batch(clips)
    for clip, (probs, _) in zip(clips, together):
        np.testing.assert_allclose(probs, batched.scores(clip)[0], rtol=0, atol=1e-5)


def test_streams_stepped_together_give_the_events_each_gives_alone(batched: Recognizer) -> None:
    streams = voices(4)
    engines = [StreamingRecognizer(batched) for _ in streams]
    together: list[list[Any]] = [[] for _ in streams]
    for i in range(0, max(len(s) for s in streams), CHUNK):
        inputs = [engine.condition(s[i : i + CHUNK], 16000) for engine, s in zip(engines, streams)]
        for got, events in zip(together, step_engines(engines, inputs)):
            got += events
    for engine, got in zip(engines, together):
        got += engine.flush()
    for audio, got in zip(streams, together):
        assert any(isinstance(e, SegmentEvent) for e in got)
        assert_same(got, alone(batched, audio))


def test_the_speech_detector_scores_many_streams_as_each_alone() -> None:
    streams = [s[: len(s) // 512 * 512].reshape(-1, 512) for s in voices(3)]
    streams[1] = streams[1][:40]  # streams of different lengths in one lockstep
    apart = [FrameClassifier().classify(frames) for frames in streams]
    together = classify_streams([FrameClassifier() for _ in streams], streams)
    for a, b in zip(apart, together):
        np.testing.assert_array_equal(a, b)


def test_the_scheduler_serves_concurrent_streams_their_own_events(batched: Recognizer) -> None:
    streams = voices(3)
    scheduler = LiveScheduler(SchedulerOptions(max_stride=1))  # a loaded machine must not widen the hop here

    async def one(audio: np.ndarray) -> list[Any]:
        engine = StreamingRecognizer(batched)
        events = []
        for i in range(0, len(audio), CHUNK):
            events += await scheduler.feed(engine, audio[i : i + CHUNK], 16000)
        *last, end = await scheduler.close(engine)
        assert isinstance(end, StreamEnd) and end.segments > 0
        return events + last

    async def all_streams() -> list[list[Any]]:
        return list(await asyncio.gather(*(one(audio) for audio in streams)))

    try:
        served = asyncio.run(all_streams())
    finally:
        scheduler.stop()
    assert scheduler.steps < sum(-(-len(s) // CHUNK) + 1 for s in streams)  # some steps served several streams
    for audio, got in zip(streams, served):
        assert_same(got, alone(batched, audio))


def test_a_wider_hop_classifies_fewer_windows_of_the_same_grid_no_closing_window_and_keeps_the_segments(
    batched: Recognizer,
) -> None:
    audio = voices(1)[0]
    every = alone(batched, audio)
    engine = StreamingRecognizer(batched)
    engine.hop_stride = 2
    wide = []
    for i in range(0, len(audio), CHUNK):
        wide += engine.feed(audio[i : i + CHUNK], 16000)
    wide += engine.flush()
    ends = {(e.segment, e.end) for e in every if isinstance(e, UpdateEvent)}
    wide_ends = {(e.segment, e.end) for e in wide if isinstance(e, UpdateEvent)}
    segments = [e for e in every if isinstance(e, SegmentEvent)]
    closing = {(s.segment, s.end) for s in segments}
    assert ends & closing  # at the narrow hop, segments end with a closing window
    assert wide_ends < ends and not wide_ends & closing and len(wide_ends) < 0.75 * len(ends)
    wide_segments = [e for e in wide if isinstance(e, SegmentEvent)]
    assert all(w.windows < s.windows for w, s in zip(wide_segments, segments) if s.windows > 2)
    assert_same(
        [dataclasses.replace(e, windows=0) for e in wide_segments],
        [dataclasses.replace(e, windows=0) for e in segments],
    )


class _Meeting:
    """A stand-in engine whose ``feed`` returns only once two feeds run at the same time (on two threads)."""

    def __init__(self, barrier: threading.Barrier) -> None:
        self.barrier = barrier

    def feed(self, audio: np.ndarray, rate: int) -> list[str]:
        self.barrier.wait(timeout=10)
        return [threading.current_thread().name]


def test_two_free_threads_split_the_waiting_streams_and_run_at_the_same_time() -> None:
    """One thread taking every waiting stream would run them one after the other and leave the other core idle:
    the two feeds below meet at a barrier only if two threads run them at once."""
    scheduler = LiveScheduler(workers=2)
    barrier = threading.Barrier(2)
    silence = np.zeros(CHUNK, np.float32)

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(*(scheduler.feed(_Meeting(barrier), silence, 16000) for _ in range(2))))

    try:
        served = asyncio.run(both())
    finally:
        scheduler.stop()
    assert not barrier.broken
    assert {names[0] for names in served} == {"se-live-0", "se-live-1"}


def test_a_free_thread_takes_its_share_of_the_waiting_requests_oldest_first() -> None:
    scheduler = LiveScheduler(workers=3)
    waiting = [object() for _ in range(7)]
    scheduler._pending.extend(waiting)  # type: ignore[arg-type]
    scheduler._idle = 2  # two other threads wait
    assert scheduler._take() == (False, waiting[:3])  # ceil(7 / 3)
    scheduler._idle = 0  # the others are busy: all that wait
    assert scheduler._take() == (False, waiting[3:])


def test_the_model_inputs_of_a_burst_are_taken_oldest_first_in_calls_of_at_most_batch_inputs() -> None:
    scheduler = LiveScheduler(SchedulerOptions(batch_inputs=4), workers=2)
    detected = [SimpleNamespace(inputs=n, submitted=0.1 * i) for i, n in enumerate([2, 1, 1, 3, 5])]
    newer = SimpleNamespace(submitted=0.25)  # arrived after the first three were detected
    scheduler._scoring.extend(detected)  # type: ignore[arg-type]
    scheduler._pending.append(newer)  # type: ignore[arg-type]
    assert scheduler._take() == (True, detected[:3])  # 2 + 1 + 1 inputs
    assert scheduler._take() == (False, [newer])  # older than the next step to score
    assert scheduler._take() == (True, detected[3:4])  # 3 + 5 would pass 4
    assert scheduler._take() == (True, detected[4:])  # a step larger than the limit goes alone


class _Held:
    """A recognizer whose model calls wait until :attr:`release` is set."""

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer
        self.release = threading.Event()
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.recognizer, name)

    def scores_batch(self, clips: list[np.ndarray]) -> Any:
        self.calls += 1
        assert self.release.wait(10)
        return self.recognizer.scores_batch(clips)


def test_a_stream_that_needs_no_model_is_answered_while_another_streams_inputs_are_scored(batched: Recognizer) -> None:
    """Both streams are detected in one step; the one with no window due gets its (empty) events while the other
    stream's model call is still running (one step scoring both would hold both)."""
    held = _Held(batched)
    scheduler = LiveScheduler(workers=1)
    busy, quiet = StreamingRecognizer(held), StreamingRecognizer(held)  # type: ignore[arg-type]

    async def run() -> tuple[list[Any], list[Any]]:
        loop = asyncio.get_running_loop()
        requests = [
            _Request(engine, audio, 16000, loop, loop.create_future(), time.monotonic())
            for engine, audio in ((busy, voices(1)[0]), (quiet, np.zeros(CHUNK, np.float32)))
        ]
        scheduler._pending.extend(requests)
        scheduler.start()
        answered = await asyncio.wait_for(requests[1].future, 5)
        for _ in range(500):  # the other stream's model call starts (and is held)
            if held.calls:
                break
            await asyncio.sleep(0.01)
        assert held.calls == 1 and not requests[0].future.done()
        held.release.set()
        return answered, await asyncio.wait_for(requests[0].future, 10)

    try:
        quiet_events, busy_events = asyncio.run(run())
    finally:
        held.release.set()
        scheduler.stop()
    assert quiet_events == []
    assert any(isinstance(e, UpdateEvent) for e in busy_events)


def test_the_scheduler_widens_the_hop_when_streams_wait_and_narrows_it_when_they_do_not() -> None:
    scheduler = LiveScheduler(SchedulerOptions(max_stride=4, widen_after_s=0.0, narrow_below_s=0.1, settle_s=0.0))
    scheduler._changed -= 1.0
    scheduler._adapt(0.5)
    assert scheduler.stride == 2
    scheduler._changed -= 1.0
    scheduler._adapt(0.5)
    scheduler._changed -= 1.0
    scheduler._adapt(0.5)
    assert scheduler.stride == 4  # never past max_stride
    scheduler._changed -= 1.0
    scheduler._adapt(0.0)
    assert scheduler.stride == 2


def test_an_idle_scheduler_starts_the_next_streams_at_the_engines_own_hop() -> None:
    scheduler = LiveScheduler(SchedulerOptions(max_stride=4, widen_after_s=0.1, settle_s=0.05), workers=1)
    scheduler._changed -= 1.0
    scheduler._adapt(0.5)
    assert scheduler.stride == scheduler.current_stride == 2  # widened under load
    time.sleep(0.1)  # no work for longer than settle_s
    assert scheduler.current_stride == 1  # what /healthz reports while idle

    async def one() -> list[str]:
        return await scheduler.feed(_Meeting(threading.Barrier(1)), np.zeros(CHUNK, np.float32), 16000)

    try:
        asyncio.run(one())
    finally:
        scheduler.stop()
    assert scheduler.stride == 1


def test_serve_processes_share_one_port(tmp_path: Path) -> None:
    """``serve --processes 2``: two servers answer on the one port, and both end on SIGTERM."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from tiny_model import write_tiny_bundle

    bundle = write_tiny_bundle(tmp_path / "tiny")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "speech_emotion.cli.main",
            "serve",
            "--port",
            str(port),
            "--processes",
            "2",
            "--model",
            str(bundle),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = __import__("json").loads(r.read())
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        assert health["processes"] == 2
        children = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == server.pid]
        assert len(children) == 2
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "2 server processes share the port" in err


def _parent(pid: int) -> int | None:
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None
