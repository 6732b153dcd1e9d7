"""Attacks on ``speech-emotion serve`` that once got through, each kept out (loopback only, bounded in count and time).

1. decompression amplification: decode budget on the header, block decoding;
2. requests that never finish: header and body timeouts, connection cap, rate-limited logs;
3. a stream kept open by control messages alone;
4. plain-text 500s: every error is JSON;
5. DNS rebinding: ``Host`` (and WebSocket ``Origin``) checked when no token is set;
and the rest: auth and capacity before the body, ``Content-Length`` with chunked, oversize frames, offline docs.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from speech_emotion.decode import MAX_BLOCK_SAMPLES, open_blocks
from speech_emotion.errors import AudioError
from speech_emotion.recognizer import Recognizer
from speech_emotion.service.app import create_app
from speech_emotion.service.errors import RateLimitedLog
from speech_emotion.service.options import ServiceOptions, available_cores
from speech_emotion.service.server import uvicorn_config
from synth import emotion_clip

TOKEN = "t0ken-for-tests-0123456789"
WAIT_S = 10.0
"""Upper bound on any wait for the server in these tests (they finish far sooner when it behaves)."""


@pytest.fixture(scope="module")
def recognizer(tiny_bundle: Path) -> Recognizer:
    return Recognizer.load(tiny_bundle, threads=1)


def options(**kwargs: Any) -> ServiceOptions:
    kwargs.setdefault("allowed_hosts", ["testserver"])  # TestClient's host name
    return ServiceOptions(warmup=False, **kwargs)


def wav_bytes(samples: np.ndarray, sample_rate: int, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format=fmt)
    return buf.getvalue()


def assert_json_error(response: Any, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code and body["message"]
    return body


# -- a real server on loopback, for what only a socket can show ----------------------------------------------


@contextmanager
def live_server(recognizer: Recognizer, **kwargs: Any) -> Iterator[int]:
    """Run the app on uvicorn on a free loopback port (the settings ``serve`` uses); yields the port."""
    opts = ServiceOptions(warmup=False, **kwargs)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = __import__("uvicorn").Server(uvicorn_config(create_app(opts, recognizer), opts, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        sock.close()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    return s


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP response (read until the server closes or the body is complete)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def closed_by_server(s: socket.socket) -> bool:
    """Whether the server has closed ``s`` (reads EOF or a reset within the wait bound)."""
    try:
        while s.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int, dict[str, Any]]:
    with connect(port) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        status, _, body = read_response(s)
    return status, json.loads(body)


# -- 1. decode budget ---------------------------------------------------------------------------------------


def test_blocks_are_bounded_in_samples_whatever_the_rate_and_channels() -> None:
    # 2 s of 192 kHz 8-channel silence: 10 s blocks would be 15 M samples each
    data = wav_bytes(np.zeros((192000 * 2, 8), dtype=np.int16), 192000, "FLAC")
    blocks = open_blocks(data, block_s=10.0)
    sizes = [block.size for block in blocks]
    assert max(sizes) <= MAX_BLOCK_SAMPLES and sum(sizes) == 192000 * 2 * 8
    whole = sf.read(io.BytesIO(data), dtype="float32")[0]
    np.testing.assert_array_equal(np.concatenate(list(open_blocks(data, block_s=10.0))), whole)


def test_header_over_the_decode_budget_is_refused_before_decoding() -> None:
    # 4 s of 96 kHz 8-channel silence: a FLAC of a few kB asking for 3 M decoded samples
    data = wav_bytes(np.zeros((96000 * 4, 8), dtype=np.float32), 96000, "FLAC")
    assert len(data) < 64 * 1024
    with pytest.raises(AudioError, match="too large to decode"):
        open_blocks(data, max_decoded_samples=1_000_000)  # on the header, before a single block is decoded


def test_upload_over_the_decode_budget_is_413(recognizer: Recognizer) -> None:
    data = wav_bytes(np.zeros((96000 * 4, 8), dtype=np.float32), 96000, "FLAC")
    with TestClient(create_app(options(max_decoded_samples=1_000_000), recognizer)) as c:
        for path in ("/v1/predict", "/v1/analyze"):
            r = c.post(path, files={"file": ("x.flac", data, "audio/flac")})
            assert_json_error(r, 413, "audio_too_large")


# -- 2. requests that never finish ---------------------------------------------------------------------------


def test_stalled_bodies_get_408_and_are_closed_and_health_still_answers(recognizer: Recognizer) -> None:
    with live_server(recognizer, header_timeout_s=0.5, body_timeout_s=0.5, max_connections=64, max_uploads=20) as port:
        stalled = [connect(port) for _ in range(20)]
        for s in stalled:
            s.sendall(
                b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                b"Content-Length: 100000\r\n\r\n--x\r"
            )
        for s in stalled:
            status, headers, body = read_response(s)
            assert status == 408 and headers["content-type"] == "application/json"
            assert json.loads(body)["error"] == "request_timeout"
            assert closed_by_server(s)
            s.close()
        assert get(port, "/healthz")[0] == 200


def test_connection_that_never_completes_its_headers_gets_408_and_is_closed(recognizer: Recognizer) -> None:
    with live_server(recognizer, header_timeout_s=0.5) as port, connect(port) as silent, connect(port) as partial:
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for s in (silent, partial):
            status, _, body = read_response(s)
            assert status == 408 and json.loads(body)["error"] == "request_timeout"
            assert closed_by_server(s)


def test_connections_over_the_cap_are_refused_at_once_with_json_503(recognizer: Recognizer) -> None:
    with live_server(recognizer, header_timeout_s=WAIT_S, max_connections=4, max_streams=1) as port:
        held = [connect(port) for _ in range(4)]
        try:
            with connect(port) as extra:
                status, headers, body = read_response(extra)
                assert status == 503 and headers["retry-after"] == "2"
                assert json.loads(body)["error"] == "too_many_connections"
        finally:
            for s in held:
                s.close()
        for _ in range(100):  # the server notices the closed connections
            if get(port, "/healthz")[0] == 200:
                break
            time.sleep(0.05)
        assert get(port, "/healthz")[0] == 200


def test_repeated_log_lines_are_rate_limited() -> None:
    limiter = RateLimitedLog(burst=5, interval_s=60)
    records = [logging.LogRecord("uvicorn.error", logging.WARNING, "x", 1, "Invalid HTTP request", (), None)] * 1000
    assert sum(limiter.filter(r) for r in records) == 5


def test_the_api_token_in_a_stream_url_never_reaches_the_log(recognizer: Recognizer) -> None:
    from speech_emotion.service.errors import RedactedTokens

    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        "x",
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/v1/stream?x=1&token=s3cret&TOKEN=other"),
        None,
    )
    assert RedactedTokens().filter(record)
    assert "s3cret" not in record.getMessage() and "other" not in record.getMessage()
    assert record.getMessage() == '127.0.0.1:5000 - "WebSocket /v1/stream?x=1&token=***&TOKEN=***" [accepted]'
    encoded = logging.LogRecord("uvicorn.error", logging.INFO, "x", 1, "%s", ("/v1/stream?tok%65n=s3cret",), None)
    assert RedactedTokens().filter(encoded) and encoded.getMessage() == "/v1/stream?tok%65n=***"
    opts = ServiceOptions(warmup=False)
    uvicorn_config(create_app(opts, recognizer), opts)  # uvicorn configures its loggers here: the filter stays on them
    for name in ("uvicorn.error", "uvicorn.access"):
        assert any(isinstance(f, RedactedTokens) for f in logging.getLogger(name).filters)


def test_content_length_with_chunked_transfer_encoding_is_refused(recognizer: Recognizer) -> None:
    with live_server(recognizer) as port, connect(port) as s:
        s.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\n"
        )
        status, _, body = read_response(s)
        assert status == 400 and json.loads(body)["error"] == "bad_request"
        assert closed_by_server(s)


def test_frame_over_the_limit_gets_frame_too_large_before_1009(recognizer: Recognizer) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect as ws_connect

    with (
        live_server(recognizer) as port,
        ws_connect(f"ws://127.0.0.1:{port}/v1/stream", open_timeout=WAIT_S, max_size=None) as ws,
    ):
        assert json.loads(ws.recv(timeout=WAIT_S))["type"] == "ready"
        ws.send(b"\0" * ((1 << 20) + 2))
        error = json.loads(ws.recv(timeout=WAIT_S))
        assert error["type"] == "error" and error["error"] == "frame_too_large"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=WAIT_S)
        assert ws.close_code == 1009


# -- 3. only audio keeps a stream alive -----------------------------------------------------------------------


def test_control_messages_alone_do_not_keep_a_stream_open(recognizer: Recognizer) -> None:
    sent = 8
    with (
        TestClient(create_app(options(idle_timeout_s=0.5), recognizer)) as c,
        c.websocket_connect("/v1/stream") as ws,
    ):
        assert ws.receive_json()["type"] == "ready"
        for _ in range(sent):  # a config every 0.2 s: 1.6 s in all, idle timeout 0.5 s
            ws.send_text(json.dumps({"type": "config", "sample_rate": 16000}))
            time.sleep(0.2)
        messages = []
        while True:
            message = ws.receive()
            if message["type"] == "websocket.close":
                break
            messages.append(json.loads(message["text"]))
    # one config per stream (docs/service.md): the second is refused, so configs cannot keep a stream open
    assert message["code"] == 1008
    assert messages[-1]["error"] == "config_repeated"
    assert sum(m["type"] == "config" for m in messages) == 1


# -- 4. every error is JSON ---------------------------------------------------------------------------------


def test_one_sample_at_48k_is_a_json_4xx(recognizer: Recognizer) -> None:
    data = wav_bytes(np.array([0.5], dtype=np.float32), 48000)
    assert len(data) < 64
    with TestClient(create_app(options(), recognizer)) as c:
        answers = []
        for path in ("/v1/predict", "/v1/analyze"):
            r = c.post(path, files={"file": ("a.wav", data, "audio/wav")})
            assert r.status_code == 422 and r.headers["content-type"].startswith("application/json"), r.text
            answers.append(r.json())
    # not one sample is left at 16 kHz: both doors say so, with the same code and message
    assert answers[0] == answers[1] and answers[0]["error"] == "unusable_audio"
    assert "no audio samples" in answers[0]["message"]


def test_wav_header_claiming_2_ghz_is_415(recognizer: Recognizer) -> None:
    data = bytearray(wav_bytes(emotion_clip("angry", seed=1)[:16000], 16000))
    rate = 2_000_000_000
    data[24:28] = struct.pack("<I", rate)  # fmt chunk: sample rate, then byte rate
    data[28:32] = struct.pack("<I", (rate * 2) & 0xFFFFFFFF)
    with TestClient(create_app(options(), recognizer)) as c:
        for path in ("/v1/predict", "/v1/analyze"):
            r = c.post(path, files={"file": ("a.wav", bytes(data), "audio/wav")})
            assert "sample rate" in assert_json_error(r, 415, "unsupported_audio")["message"]


def test_unexpected_error_is_a_json_500_without_details(
    tiny_bundle: Path, recognizer: Recognizer, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Recognizer.load(tiny_bundle, threads=1)

    def fail(clips: list[np.ndarray], *args: Any) -> Any:
        raise RuntimeError("secret internal detail")

    broken.scores_batch = fail  # type: ignore[method-assign]  # the engine's one model call
    talk = wav_bytes(emotion_clip("angry", seed=3), 16000)
    with TestClient(create_app(options(), broken), raise_server_exceptions=False) as c:
        with caplog.at_level(logging.ERROR):
            r = c.post("/v1/predict", files={"file": ("a.wav", talk, "audio/wav")})
        assert "secret" not in r.text
        assert_json_error(r, 500, "internal_error")
        assert r.headers["x-content-type-options"] == "nosniff"
        assert any("secret internal detail" in (rec.exc_text or "") for rec in caplog.records)
        assert c.get("/healthz").status_code == 200


# -- 5. Host and Origin (DNS rebinding) -----------------------------------------------------------------------


def test_other_host_names_are_refused_without_a_token(recognizer: Recognizer) -> None:
    talk = wav_bytes(emotion_clip("angry", seed=3), 16000)
    files = {"file": ("a.wav", talk, "audio/wav")}
    with TestClient(create_app(ServiceOptions(warmup=False, allowed_hosts=["speech.lan"]), recognizer)) as c:
        assert_json_error(
            c.post("/v1/predict", files=files, headers={"host": "attacker.example"}), 403, "forbidden_host"
        )
        assert_json_error(c.get("/", headers={"host": "attacker.example:8000"}), 403, "forbidden_host")
        for host in ("127.0.0.1:8000", "localhost", "[::1]:8000", "speech.lan:8000"):
            assert c.get("/healthz", headers={"host": host}).status_code == 200, host
        assert c.post("/v1/predict", files=files, headers={"host": "localhost:8000"}).status_code == 200
    with TestClient(create_app(ServiceOptions(warmup=False, token=TOKEN), recognizer)) as c:
        auth = {"host": "speech.example.org", "authorization": f"Bearer {TOKEN}"}
        assert c.post("/v1/predict", files=files, headers=auth).status_code == 200


def ws_error(client: TestClient, headers: dict[str, str]) -> tuple[str, int]:
    with client.websocket_connect("/v1/stream", headers=headers) as ws:
        first = ws.receive_json()
        if first["type"] == "ready":
            return "ready", 0
        close = ws.receive()
    return first["error"], close["code"]


def test_streams_for_other_hosts_or_origins_are_refused_without_a_token(recognizer: Recognizer) -> None:
    with TestClient(create_app(ServiceOptions(warmup=False), recognizer)) as c:
        rebound = {"host": "attacker.example", "origin": "http://attacker.example"}
        assert ws_error(c, rebound) == ("forbidden_host", 1008)
        assert ws_error(c, {"host": "127.0.0.1:8000", "origin": "http://attacker.example"}) == (
            "forbidden_origin",
            1008,
        )
        assert ws_error(c, {"host": "localhost:8000", "origin": "http://localhost:8000"}) == ("ready", 0)


# -- auth and capacity before the body; pools; docs ------------------------------------------------------------


def call_without_reading_the_body(app: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[str, Any]]:
    """Send a POST /v1/predict straight to the ASGI app with a ``receive`` that fails the test if called."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/predict",
        "raw_path": b"/v1/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-length", b"20000000"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))


def test_token_is_checked_before_the_body_is_read(recognizer: Recognizer) -> None:
    app = create_app(ServiceOptions(warmup=False, token=TOKEN, max_upload_mb=50), recognizer)
    status, body = call_without_reading_the_body(app, [(b"authorization", b"Bearer wrong-token-0123456789")])
    assert (status, body["error"]) == (401, "unauthorized")
    # on a socket: the 401 comes before any of the 20 MB is sent, and the server closes rather than drain it
    with live_server(recognizer, token=TOKEN, body_timeout_s=WAIT_S * 3) as port, connect(port) as s:
        s.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong-token-0123456789\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 20000000\r\n\r\n"
        )
        status, _, body = read_response(s)
        assert status == 401 and json.loads(body)["error"] == "unauthorized"
        assert closed_by_server(s)


def test_uploads_over_capacity_are_refused_before_their_body_is_read(recognizer: Recognizer) -> None:
    app = create_app(ServiceOptions(warmup=False, max_uploads=2, max_upload_mb=50), recognizer)
    assert app.state.uploads.acquire() and app.state.uploads.acquire()
    status, body = call_without_reading_the_body(app, [])
    assert (status, body["error"]) == (503, "busy")


def test_pools_are_sized_from_the_cores_and_reported(recognizer: Recognizer) -> None:
    with TestClient(create_app(options(), recognizer)) as c:
        workers = c.get("/healthz").json()["workers"]
    assert workers == {"upload": max(2, available_cores() // 2)}


def test_api_docs_are_served_from_the_package(recognizer: Recognizer) -> None:
    with TestClient(create_app(options(), recognizer)) as c:
        page = c.get("/docs")
        assert page.status_code == 200
        assert "http://" not in page.text and "https://" not in page.text and "//cdn" not in page.text
        for asset in ("/static/docs/swagger-ui-bundle.js", "/static/docs/swagger-ui.css", "/static/docs/LICENSE"):
            assert asset.rsplit("/", 1)[1] in page.text or asset.endswith("LICENSE")
            assert c.get(asset).status_code == 200, asset
        assert "Apache License" in c.get("/static/docs/LICENSE").text
        assert c.get("/redoc").status_code == 404  # ReDoc would load from a CDN


def test_a_body_trickled_a_byte_at_a_time_is_cut_off_after_the_grace_period() -> None:
    import asyncio

    from speech_emotion.service.errors import ApiError
    from speech_emotion.service.limits import BodyLimit

    async def app(scope, receive, send) -> None:  # noqa: ANN001 - a bare ASGI app that reads its whole body
        while (await receive()).get("more_body"):
            pass

    async def trickle() -> dict:
        await asyncio.sleep(0.05)  # well under the gap limit, far under the rate floor
        return {"type": "http.request", "body": b"x", "more_body": True}

    scope = {"type": "http", "headers": [(b"content-length", b"1000000")]}
    middleware = BodyLimit(app, limit_mb=10, timeout_s=0.3)
    with pytest.raises(ApiError) as refused:
        asyncio.run(asyncio.wait_for(middleware(scope, trickle, None), 5.0))  # type: ignore[arg-type]
    assert refused.value.status_code == 408 and refused.value.code == "request_timeout"


def test_an_error_answered_before_the_body_is_all_read_closes_the_connection() -> None:
    from speech_emotion.service.limits import BodyLimit

    async def app(scope, receive, send) -> None:  # noqa: ANN001 - answers 400 after the first piece of the body
        if scope["method"] == "POST":
            await receive()
        await send({"type": "http.response.start", "status": 400 if scope["method"] == "POST" else 404, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    def answer(method: str, headers: list[tuple[bytes, bytes]]) -> dict[str, bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(
            BodyLimit(app, limit_mb=10, timeout_s=5)(
                {"type": "http", "method": method, "headers": headers}, receive, send
            )
        )
        return dict(sent[0]["headers"])

    # a chunked upload still arriving: the server must not read and discard the rest to keep the connection
    assert answer("POST", [(b"transfer-encoding", b"chunked")])[b"connection"] == b"close"
    assert answer("POST", [(b"content-length", b"100000")])[b"connection"] == b"close"
    assert b"connection" not in answer("GET", [])  # a request without a body keeps its connection
