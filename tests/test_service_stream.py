"""``WS /v1/stream``: events from generated audio, formats, accounting, limits, errors and isolation."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from speech_emotion.service.app import create_app
from speech_emotion.service.options import ServiceOptions
from synth import silence, vowel

TOKEN = "t0ken-for-tests-0123456789"


@pytest.fixture(scope="module")
def recognizer(tiny_bundle: Path) -> Recognizer:
    return Recognizer.load(tiny_bundle, threads=1)


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Two utterances with pauses: two speech segments for the engine."""
    return np.concatenate([silence(0.3), vowel(2.6, f0=130), silence(1.0), vowel(2.2, f0=210, seed=1), silence(0.6)])


def pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def client_for(recognizer: Recognizer, engine_factory: Any = None, **options: Any) -> TestClient:
    options.setdefault("allowed_hosts", ["testserver"])  # TestClient addresses the app as ``testserver``
    options.setdefault("max_hop_s", 0.5)  # events compared with the engine's: a loaded test machine must not widen
    app = create_app(ServiceOptions(warmup=False, **options), recognizer, engine_factory)
    return TestClient(app)


@pytest.fixture(scope="module")
def client(recognizer: Recognizer) -> Iterator[TestClient]:
    with client_for(recognizer) as c:
        yield c


def read_until_closed(ws: Any) -> tuple[list[dict[str, Any]], int]:
    """All JSON messages until the server closes, and the close code."""
    messages = []
    while True:
        message = ws.receive()
        if message["type"] == "websocket.close":
            return messages, message["code"]
        messages.append(json.loads(message["text"]))


def send_audio(ws: Any, data: bytes, chunk: int = 3200) -> None:
    for i in range(0, len(data), chunk):
        ws.send_bytes(data[i : i + chunk])


def stream(client: TestClient, data: bytes, config: dict[str, Any] | None = None, **kwargs: Any):
    with client.websocket_connect("/v1/stream", **kwargs) as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready"
        if config is not None:
            ws.send_text(json.dumps(config))
        send_audio(ws, data)
        ws.send_text(json.dumps({"type": "end"}))
        return read_until_closed(ws)


def of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


def expect_error(messages: list[dict[str, Any]], code: int, expected_code: int, error: str) -> dict[str, Any]:
    assert code == expected_code, messages
    assert messages[-1]["type"] == "error" and messages[-1]["error"] == error, messages
    assert messages[-1]["message"]
    return messages[-1]


# -- the happy path -------------------------------------------------------------------------------


def test_stream_pushes_updates_segments_status_and_an_accounted_end(client: TestClient, speech: np.ndarray) -> None:
    messages, code = stream(client, pcm16(speech))
    assert code == 1000
    updates, segments, statuses = of_type(messages, "update"), of_type(messages, "segment"), of_type(messages, "status")
    assert len(updates) >= 4
    assert len(segments) == 2
    for event in updates + segments:
        assert event["label"] in EMOTIONS
        assert set(event["probabilities"]) == set(EMOTIONS)
        assert sum(event["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert [u["end"] for u in updates] == sorted(u["end"] for u in updates)
    assert segments[0]["end"] <= segments[1]["start"]
    assert {s["speech"] for s in statuses} == {True, False}
    end = messages[-1]
    assert end["type"] == "end"
    assert end["received_samples"] == speech.size == end["processed_samples"]
    assert end["dropped_samples"] == end["unprocessed_samples"] == 0
    assert end["events"] == len(updates) + len(segments)
    assert end["segments"] == len(segments) and end["notes"] == []
    assert end["speech_s"] == pytest.approx(sum(s["duration"] for s in segments), abs=0.01)


def test_the_end_of_a_very_quiet_stream_says_its_emotions_are_unreliable(
    client: TestClient, speech: np.ndarray
) -> None:
    messages, code = stream(client, pcm16(speech * 10 ** (-66 / 20) / np.max(np.abs(speech))))
    end = of_type(messages, "end")[0]
    assert code == 1000 and end["segments"] > 0
    assert [note.split(":")[0] for note in end["notes"]] == ["very low level"]


def test_float32_beyond_full_scale_gets_the_clipping_note_every_door_gives(
    client: TestClient, speech: np.ndarray
) -> None:
    loud = (speech * 4.0 / np.max(np.abs(speech))).astype("<f4")  # peak +12 dBFS
    messages, code = stream(client, loud.tobytes(), {"type": "config", "format": "float32"})
    end = of_type(messages, "end")[0]
    assert code == 1000 and end["segments"] > 0
    assert [note.split(" (")[0] for note in end["notes"]] == ["samples beyond full scale"], end["notes"]


def test_stream_matches_the_engine_fed_directly(client: TestClient, recognizer: Recognizer, speech: np.ndarray) -> None:
    from speech_emotion.streaming import StreamingRecognizer
    from stream_synth import events_of

    messages, _ = stream(client, pcm16(speech))
    samples = np.frombuffer(pcm16(speech), dtype="<i2").astype(np.float32) / 32768
    direct = [e.to_dict() for e in events_of(StreamingRecognizer(recognizer), [(samples, 16000)])]
    served = [m for m in messages if m["type"] in ("update", "segment")]
    assert {m.pop("hop_s") for m in served if m["type"] == "update"} == {0.5}  # the engine's hop, never widened
    for d in direct + served:
        d.pop("latency_ms", None)
    assert served == direct


def test_float32_at_48k_declared_in_the_first_message(client: TestClient, speech: np.ndarray) -> None:
    import soxr

    audio48 = soxr.resample(speech, 16000, 48000).astype("<f4")
    messages, code = stream(client, audio48.tobytes(), {"type": "config", "sample_rate": 48000, "format": "float32"})
    assert code == 1000
    assert messages[0] == {"type": "config", "sample_rate": 48000, "format": "float32", "live": False}
    assert len(of_type(messages, "segment")) == 2
    assert messages[-1]["received_samples"] == audio48.size == messages[-1]["processed_samples"]


def test_silence_gives_no_emotion_events(client: TestClient) -> None:
    messages, code = stream(client, pcm16(silence(2.0)))
    assert code == 1000
    assert not of_type(messages, "update") and not of_type(messages, "segment")
    assert messages[-1]["processed_samples"] == 32000


# -- malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "payload", "close", "error"),
    [
        (None, b"\x01\x02\x03", 1007, "malformed_frame"),
        ({"format": "float32"}, np.array([0.1, np.nan], "<f4").tobytes(), 1007, "malformed_frame"),
        ({"format": "float32"}, b"\0" * 6, 1007, "malformed_frame"),
        ({"format": "mp3"}, None, 1003, "unsupported_format"),
        ({"sample_rate": 1000}, None, 1003, "unsupported_format"),
        ({"sample_rate": "16000"}, None, 1003, "unsupported_format"),
        ({"channels": 2}, None, 1003, "unsupported_format"),
        ({"samplerate": 48000}, None, 1003, "unsupported_format"),  # misspelt: never silently read as 16 kHz
    ],
)
def test_malformed_frames_and_configs_close_with_a_reason(
    client: TestClient, config: dict | None, payload: bytes | None, close: int, error: str
) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        if config is not None:
            ws.send_text(json.dumps({"type": "config", **config}))
        if payload is not None:
            ws.send_bytes(payload)
        messages, code = read_until_closed(ws)
    expect_error(messages, code, close, error)


@pytest.mark.parametrize(
    ("text", "close", "error"),
    [
        ("not json", 1007, "malformed_message"),
        ("[1, 2]", 1007, "malformed_message"),
        ("[" * 100_000, 1007, "malformed_message"),  # nested past Python's recursion limit
        ('{"type": "config", "sample_rate": ' + "9" * 5000 + "}", 1007, "malformed_message"),  # int digit limit
        ('{"type": "dance"}', 1003, "unknown_message"),
    ],
    ids=["not-json", "not-an-object", "deeply-nested", "huge-number", "unknown-type"],
)
def test_bad_text_messages_close_with_a_reason(client: TestClient, text: str, close: int, error: str) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_text(text)
        messages, code = read_until_closed(ws)
    expect_error(messages, code, close, error)


def test_config_after_audio_is_refused(client: TestClient) -> None:
    with client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_bytes(pcm16(silence(0.1)))
        ws.send_text(json.dumps({"type": "config", "sample_rate": 48000}))
        messages, code = read_until_closed(ws)
    error = expect_error(messages, code, 1008, "config_after_audio")
    assert error["received_samples"] == 1600


# -- limits ---------------------------------------------------------------------------------------


def test_frame_larger_than_the_limit_is_1009(recognizer: Recognizer) -> None:
    with client_for(recognizer, max_frame_bytes=1000) as c, c.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_bytes(b"\0" * 2000)
        expect_error(*read_until_closed(ws), 1009, "frame_too_large")


def test_streams_beyond_the_maximum_are_refused_with_1013(recognizer: Recognizer, speech: np.ndarray) -> None:
    with client_for(recognizer, max_streams=1) as c:
        with c.websocket_connect("/v1/stream") as first:
            assert first.receive_json()["type"] == "ready"
            assert c.get("/healthz").json()["streams"] == {"active": 1, "max": 1, "hop_stride": 1}
            with c.websocket_connect("/v1/stream") as second:
                expect_error(*read_until_closed(second), 1013, "too_many_streams")
            first.send_text(json.dumps({"type": "end"}))
            assert read_until_closed(first)[1] == 1000
        messages, code = stream(c, pcm16(speech))  # the slot is free again
        assert code == 1000 and of_type(messages, "segment")


def test_idle_stream_is_closed_with_4408(recognizer: Recognizer) -> None:
    with client_for(recognizer, idle_timeout_s=0.3) as c, c.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_bytes(pcm16(silence(0.2)))
        error = expect_error(*read_until_closed(ws), 4408, "idle_timeout")
        assert error["received_samples"] == error["processed_samples"] == 3200
        assert error["unprocessed_samples"] == 0


def test_empty_frames_do_not_keep_an_idle_stream_open(recognizer: Recognizer) -> None:
    with client_for(recognizer, idle_timeout_s=0.5) as c, c.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        for _ in range(8):  # 0.8 s of empty frames: no audio, so the idle timeout runs on
            ws.send_bytes(b"")
            time.sleep(0.1)
        ws.send_bytes(pcm16(silence(0.2)))  # too late: the stream was closed at 0.5 s
        error = expect_error(*read_until_closed(ws), 4408, "idle_timeout")
        assert error["received_samples"] == 0


@pytest.mark.parametrize("channels", [True, 1.0, 2])
def test_a_config_with_channels_other_than_the_integer_1_is_refused(recognizer: Recognizer, channels: Any) -> None:
    with client_for(recognizer) as c, c.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_json({"type": "config", "channels": channels})
        expect_error(*read_until_closed(ws), 1003, "unsupported_format")


def test_stream_longer_than_the_limit_is_closed_with_4413(recognizer: Recognizer) -> None:
    with client_for(recognizer, max_stream_s=0.5) as c, c.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        send_audio(ws, pcm16(silence(1.0)))
        expect_error(*read_until_closed(ws), 4413, "stream_too_long")


def test_a_stream_url_with_a_query_parameter_other_than_the_token_or_one_given_twice_is_refused(
    recognizer: Recognizer,
) -> None:
    """``?sample_rate=48000`` read nowhere would stream 48 kHz audio taken as 16 kHz: one line, close 1008."""
    with client_for(recognizer, token=TOKEN) as c:
        with c.websocket_connect(f"/v1/stream?token={TOKEN}&sample_rate=48000") as ws:
            message = expect_error(*read_until_closed(ws), 1008, "unknown_parameter")
        with c.websocket_connect(f"/v1/stream?token=wrong&token={TOKEN}") as ws:  # the last value alone passed
            expect_error(*read_until_closed(ws), 1008, "duplicate_parameter")
        with c.websocket_connect(f"/v1/stream?token={TOKEN}") as ws:
            assert ws.receive_json()["type"] == "ready"
    assert "'sample_rate'" in message["message"] and "config message" in message["message"]


# -- auth and origin ------------------------------------------------------------------------------


def test_stream_needs_the_token_when_one_is_set(recognizer: Recognizer, speech: np.ndarray) -> None:
    with client_for(recognizer, token=TOKEN) as c:
        with c.websocket_connect("/v1/stream") as ws:
            expect_error(*read_until_closed(ws), 1008, "unauthorized")
        with c.websocket_connect("/v1/stream?token=wrong") as ws:
            expect_error(*read_until_closed(ws), 1008, "unauthorized")
        with c.websocket_connect(f"/v1/stream?token={TOKEN}") as ws:
            assert ws.receive_json()["type"] == "ready"
        with c.websocket_connect("/v1/stream", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            assert ws.receive_json()["type"] == "ready"
        with c.websocket_connect("/v1/stream", subprotocols=["speech-emotion", f"bearer.{TOKEN}"]) as ws:
            assert ws.accepted_subprotocol == "speech-emotion"
            assert ws.receive_json()["type"] == "ready"


def test_cross_site_browser_streams_are_refused(client: TestClient, recognizer: Recognizer) -> None:
    with client.websocket_connect("/v1/stream", headers={"Origin": "https://evil.example"}) as ws:
        expect_error(*read_until_closed(ws), 1008, "forbidden_origin")
    with client.websocket_connect("/v1/stream", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "ready"
    with (
        client_for(recognizer, cors_origins=["https://app.example"]) as c,
        c.websocket_connect("/v1/stream", headers={"Origin": "https://app.example"}) as ws,
    ):
        assert ws.receive_json()["type"] == "ready"


# -- backlog, failures and isolation (with stand-in engines) ------------------------------------------


class SlowEngine:
    """Takes ``delay`` seconds per fed chunk and reports every chunk as one event."""

    def __init__(self, delay: float = 0.05, fail_after: int | None = None) -> None:
        self.delay = delay
        self.fail_after = fail_after
        self.fed = 0

    def feed(self, chunk: np.ndarray, sample_rate: int) -> list[dict[str, Any]]:
        time.sleep(self.delay)
        if self.fail_after is not None and self.fed >= self.fail_after:
            raise RuntimeError("engine exploded")
        self.fed += chunk.size
        return [{"type": "update", "fed": self.fed}]

    def flush(self) -> list[dict[str, Any]]:
        if self.fail_after is not None and self.fed >= self.fail_after:
            raise RuntimeError("engine exploded")
        return [{"type": "segment", "fed": self.fed}]


def test_fast_sender_is_held_back_not_dropped(recognizer: Recognizer) -> None:
    with client_for(recognizer, lambda: SlowEngine(0.02), max_backlog_s=0.2) as c:
        messages, code = stream(c, pcm16(silence(3.0)))
    assert code == 1000
    end = messages[-1]
    assert end["received_samples"] == end["processed_samples"] == 48000 and end["dropped_samples"] == 0
    assert of_type(messages, "segment")[0]["fed"] == 48000


def test_live_stream_drops_what_it_cannot_keep_up_with_and_reports_it(recognizer: Recognizer) -> None:
    with client_for(recognizer, lambda: SlowEngine(0.2), max_backlog_s=0.2) as c:
        messages, code = stream(c, pcm16(silence(3.0)), {"type": "config", "live": True})
    assert code == 1000
    end = messages[-1]
    assert end["dropped_samples"] > 0
    assert end["received_samples"] == 48000 == end["processed_samples"] + end["dropped_samples"]
    warnings = of_type(messages, "warning")
    assert {w["warning"] for w in warnings} == {"audio_dropped"}
    assert warnings[-1]["dropped_s"] == end["dropped_s"]  # the warnings' last total is the stream's, never less
    assert of_type(messages, "segment")[0]["fed"] == end["processed_samples"]


def test_engine_failure_closes_only_that_stream(recognizer: Recognizer, speech: np.ndarray) -> None:
    engines = iter([SlowEngine(0.0, fail_after=3200), None])

    def factory() -> Any:
        engine = next(engines)
        if engine is None:
            from speech_emotion.streaming import StreamingRecognizer

            return StreamingRecognizer(recognizer)
        return engine

    with client_for(recognizer, factory) as c:
        with c.websocket_connect("/v1/stream") as bad:
            bad.receive_json()
            send_audio(bad, pcm16(silence(1.0)))
            # The server may hand queued chunks to the engine in one call, so the failure may come only at the end.
            bad.send_text(json.dumps({"type": "end"}))
            expect_error(*read_until_closed(bad), 1011, "internal_error")
        messages, code = stream(c, pcm16(speech))
        assert code == 1000 and len(of_type(messages, "segment")) == 2


def test_a_bad_client_does_not_disturb_a_concurrent_one(client: TestClient, speech: np.ndarray) -> None:
    data = pcm16(speech)
    results: dict[str, Any] = {}

    def good() -> None:
        results["good"] = stream(client, data)

    with client.websocket_connect("/v1/stream") as bad:
        bad.receive_json()
        thread = threading.Thread(target=good)
        thread.start()
        bad.send_bytes(b"\x00" * 3201)
        results["bad"] = read_until_closed(bad)
        thread.join(30)
    assert results["bad"][1] == 1007
    messages, code = results["good"]
    assert code == 1000
    assert len(of_type(messages, "segment")) == 2
    assert messages[-1]["received_samples"] == speech.size == messages[-1]["processed_samples"]
