"""HTTP API of ``speech-emotion serve``: page, health, predict, analyze, limits, auth, errors."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from speech_emotion.recording import predict_recording
from speech_emotion.report import timeline_document
from speech_emotion.service.app import create_app
from speech_emotion.service.options import ServiceConfigError, ServiceOptions, is_loopback
from speech_emotion.timeline import analyze_file
from synth import emotion_clip, silence, vowel

TOKEN = "t0ken-for-tests-0123456789"


def wav_bytes(samples: np.ndarray, sample_rate: int = 16000, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def recognizer(tiny_bundle: Path) -> Recognizer:
    return Recognizer.load(tiny_bundle, threads=1)


def make_client(recognizer: Recognizer, **options: object) -> TestClient:
    """A test client; TestClient addresses the app as ``testserver``, which the Host check must let in."""
    options.setdefault("allowed_hosts", ["testserver"])
    return TestClient(create_app(ServiceOptions(warmup=False, **options), recognizer))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(recognizer: Recognizer) -> Iterator[TestClient]:
    with make_client(recognizer) as c:
        yield c


@pytest.fixture(scope="module")
def talk() -> bytes:
    return wav_bytes(emotion_clip("angry", seed=3))


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body


# -- page, health, docs ---------------------------------------------------------------------------


def test_page_is_served_with_no_outside_dependency(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert client.head("/").status_code == 200
    head, get = client.head("/healthz"), client.get("/healthz")  # a HEAD gets the GET's headers (it said 4 bytes)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"] == str(len(get.content))
    assert "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/static/app.js", "/static/style.css", "/static/capture-worklet.js"):
        r = client.get(asset)
        assert r.status_code == 200, asset
        assert "https://" not in r.text and "http://" not in r.text, asset
    assert "https://" not in page.text and "http://" not in page.text


def test_healthz_reports_model_labels_and_stream_slots(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["model"] == "tiny-test"
    assert body["labels"] == list(EMOTIONS)
    assert body["streams"] == {"active": 0, "max": ServiceOptions().max_streams, "hop_stride": 1}
    assert body["auth"] is False


def documented_health() -> dict:
    """The ``GET /healthz`` example of docs/service.md."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "service.md").read_text()
    block = text[text.index("### `GET /healthz`") :]
    block = block[block.index("```json\n") + len("```json\n") :]
    return json.loads(block[: block.index("```")])


def test_healthz_limits_are_the_documented_numbers_whole_ones_as_integers(recognizer: Recognizer) -> None:
    limits = make_client(recognizer).get("/healthz").json()["limits"]
    documented = documented_health()["limits"]
    assert limits == documented  # the defaults, key for key
    assert {k: type(v) for k, v in limits.items()} == {k: type(v) for k, v in documented.items()}
    assert all(type(v) is int for v in limits.values())  # every default is a whole number
    custom = make_client(recognizer, max_upload_mb=0.5, idle_timeout_s=2.5).get("/healthz").json()["limits"]
    assert custom["max_upload_mb"] == 0.5 and custom["idle_timeout_s"] == 2.5 and type(custom["max_stream_s"]) is int


def test_openapi_docs_list_the_endpoints(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/analyze", "/healthz"} <= set(paths)


def test_unknown_path_is_a_json_404(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")


def test_a_method_the_path_does_not_take_is_a_json_405_naming_the_allowed_one(client: TestClient) -> None:
    response = client.get("/v1/predict")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    health = client.post("/healthz")  # two routes (GET, and HEAD answered without a body): both named
    assert_error(health, 405, "method_not_allowed")
    assert health.headers["allow"] == "GET, HEAD"


def test_the_stream_asked_for_over_plain_http_is_a_json_426_saying_it_is_a_websocket(client: TestClient) -> None:
    response = client.get("/v1/stream")
    assert_error(response, 426, "upgrade_required")
    assert "WebSocket" in response.json()["message"] and response.headers["upgrade"] == "websocket"
    assert client.head("/v1/stream").status_code == 426 and client.post("/v1/stream").headers["allow"] == "GET, HEAD"
    with client.websocket_connect("/v1/stream") as ws:  # the WebSocket itself is unchanged
        assert ws.receive_json()["type"] == "ready"


# -- predict --------------------------------------------------------------------------------------


def test_predict_returns_label_confidence_and_all_probabilities(
    client: TestClient, recognizer: Recognizer, talk: bytes
) -> None:
    r = client.post("/v1/predict", files={"file": ("talk.wav", talk, "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["probabilities"]) == set(EMOTIONS)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["confidence"] == pytest.approx(body["probabilities"][body["label"]])
    assert body["model"] == "tiny-test"
    expected = predict_recording(talk, recognizer)  # the library's whole-file predict: the same answer
    assert [body["probabilities"][k] for k in recognizer.labels] == pytest.approx(expected.probabilities, abs=1e-9)


def test_predict_accepts_other_formats_and_rates(client: TestClient) -> None:
    flac = wav_bytes(emotion_clip("sad", seed=1, sample_rate=44100), 44100, fmt="FLAC")
    r = client.post("/v1/predict", files={"file": ("x.flac", flac, "audio/flac")})
    assert r.status_code == 200, r.text


def test_client_file_names_never_touch_the_file_system(
    client: TestClient, talk: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    name = "../sub/evil.wav"
    ok = client.post("/v1/predict", files={"file": (name, talk, "audio/wav")})
    bad = client.post("/v1/predict", files={"file": (name, b"RIFF....WAVEjunk", "audio/wav")})
    assert ok.status_code == 200 and bad.status_code == 415
    assert "evil" not in ok.text and "evil" not in bad.text
    assert list(tmp_path.rglob("*")) == [tmp_path / "sub"]


def test_corrupt_audio_is_415(client: TestClient) -> None:
    body = assert_error(
        client.post("/v1/predict", files={"file": ("a.wav", b"not audio at all" * 40, "audio/wav")}),
        415,
        "unsupported_audio",
    )
    assert "cannot decode" in body["message"]


def test_empty_upload_is_400(client: TestClient) -> None:
    assert_error(client.post("/v1/predict", files={"file": ("a.wav", b"", "audio/wav")}), 400, "empty_upload")


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/analyze"])
def test_silent_audio_is_422_no_speech_on_predict_and_analyze(client: TestClient, route: str) -> None:
    body = assert_error(
        client.post(route, files={"file": ("a.wav", wav_bytes(silence(1.0)), "audio/wav")}),
        422,
        "no_speech",
    )
    assert "no speech" in body["message"]


def test_missing_file_field_is_422(client: TestClient) -> None:
    body = assert_error(client.post("/v1/predict", data={"other": "x"}), 422, "invalid_request")
    assert "file" in body["message"]
    text = assert_error(client.post("/v1/predict", data={"file": "hello"}), 422, "invalid_request")  # curl -F file=x
    assert text["message"] == "file: expected an uploaded file (a multipart form field with a file name), got text"
    raw = client.post("/v1/predict", content=b"RIFF....WAVE", headers={"Content-Type": "audio/wav"})  # --data-binary
    assert assert_error(raw, 422, "invalid_request")["message"] == (
        "file: missing: send the audio as a multipart form field named 'file' (curl -F file=@call.wav URL)"
    )


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/analyze"])
def test_another_form_field_is_refused_not_ignored(client: TestClient, talk: bytes, route: str) -> None:
    """``-F channels=split`` analysed the mix: options are query parameters."""
    sent = client.post(route, files={"file": ("a.wav", talk, "audio/wav")}, data={"channels": "split"})
    body = assert_error(sent, 400, "unknown_field")
    assert "'channels'" in body["message"] and "?channels=" in body["message"]
    misspelt = client.post(f"{route}?channel=split", files={"file": ("a.wav", talk, "audio/wav")})
    assert "'channel'" in assert_error(misspelt, 400, "unknown_parameter")["message"]
    hostile = client.post(f"{route}?{'a' * 5000}=1", files={"file": ("a.wav", talk, "audio/wav")})
    assert len(assert_error(hostile, 400, "unknown_parameter")["message"]) < 200  # the name is not echoed whole
    other = assert_error(
        client.post(route, files={"file": ("a.wav", talk, "audio/wav")}, data={"x": "1"}), 400, "unknown_field"
    )
    assert "?channels=" in other["message"] and "?x=" not in other["message"]  # the hint names real options only
    twice = client.post(f"{route}?channels=split&channels=mix", files={"file": ("a.wav", talk, "audio/wav")})
    assert "'channels'" in assert_error(twice, 400, "duplicate_parameter")["message"]


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/analyze"])
def test_two_file_fields_are_refused_naming_the_field(client: TestClient, talk: bytes, route: str) -> None:
    twice = [("file", ("a.wav", talk, "audio/wav")), ("file", ("b.wav", talk, "audio/wav"))]
    body = assert_error(client.post(route, files=twice), 400, "duplicate_field")
    assert "'file'" in body["message"] and "2" in body["message"]
    assert client.post(route, files=twice[:1]).status_code == 200  # one is fine


def test_recording_longer_than_the_limit_is_413(recognizer: Recognizer) -> None:
    with make_client(recognizer, max_duration_s=1.0) as c:
        long_clip = wav_bytes(vowel(2.0))
        for path in ("/v1/predict", "/v1/analyze"):
            body = assert_error(c.post(path, files={"file": ("a.wav", long_clip, "audio/wav")}), 413, "audio_too_long")
            assert "limit is 1 s" in body["message"]


def test_oversize_upload_is_413_before_it_is_read(recognizer: Recognizer) -> None:
    with make_client(recognizer, max_upload_mb=0.05) as c:
        big = wav_bytes(vowel(8.0))  # 256 kB > 50 kB + multipart slack
        first = c.post("/v1/predict", files={"file": ("a.wav", big, "audio/wav")})
        body = assert_error(first, 413, "upload_too_large")
        assert body["message"] == "request body larger than the 0.05 MiB limit"  # the limit as configured
        boundary = "b0undary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
                f"Content-Type: audio/wav\r\n\r\n"
            ).encode()
            + big
            + f"\r\n--{boundary}--\r\n".encode()
        )

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for i in range(0, len(body), 16384):
                yield body[i : i + 16384]

        r = c.post(
            "/v1/analyze", content=chunked(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
        assert_error(r, 413, "upload_too_large")
        assert r.content == first.content  # byte for byte, whether the limit is seen in Content-Length or counted
        small = wav_bytes(emotion_clip("calm", seed=2))
        assert c.post("/v1/predict", files={"file": ("a.wav", small, "audio/wav")}).status_code == 200


# -- analyze --------------------------------------------------------------------------------------


def test_analyze_returns_the_same_timeline_as_the_cli(
    client: TestClient, recognizer: Recognizer, tmp_path: Path
) -> None:
    audio = np.concatenate([silence(0.4), vowel(2.5, f0=130), silence(1.0), vowel(2.0, f0=220, seed=1), silence(0.5)])
    path = tmp_path / "call.wav"
    sf.write(path, audio, 16000)
    r = client.post("/v1/analyze", files={"file": ("call.wav", path.read_bytes(), "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = json.loads(json.dumps(timeline_document(analyze_file(path, recognizer))))
    assert body["source"] == "upload"
    expected["source"] = "upload"
    assert body == expected
    assert body["summary"]["segments"] == 2
    assert [s["label"] in EMOTIONS for s in body["segments"]] == [True, True]


def test_analyze_rejects_corrupt_audio(client: TestClient) -> None:
    assert_error(
        client.post("/v1/analyze", files={"file": ("a.ogg", b"OggS" + b"\0" * 300, "audio/ogg")}),
        415,
        "unsupported_audio",
    )


def test_a_bad_upload_does_not_disturb_the_next(client: TestClient, talk: bytes) -> None:
    assert client.post("/v1/predict", files={"file": ("a.wav", b"junk" * 100, "audio/wav")}).status_code == 415
    assert client.post("/v1/predict", files={"file": ("b.wav", talk, "audio/wav")}).status_code == 200


def test_uploads_beyond_the_maximum_in_progress_get_503(tiny_bundle: Path, talk: bytes) -> None:
    slow = Recognizer.load(tiny_bundle, threads=1)
    entered, release = threading.Event(), threading.Event()
    real = slow.scores_batch  # the engine's one model call

    def blocking(clips: list[np.ndarray], *args: Any):
        entered.set()
        release.wait(10)
        return real(clips, *args)

    slow.scores_batch = blocking  # type: ignore[method-assign]
    with make_client(slow, max_uploads=1) as c:
        files = {"file": ("a.wav", talk, "audio/wav")}
        first: dict = {}
        thread = threading.Thread(target=lambda: first.setdefault("r", c.post("/v1/predict", files=files)))
        thread.start()
        assert entered.wait(10)
        r = c.post("/v1/predict", files=files)
        release.set()
        thread.join(10)
        assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "2"
        assert first["r"].status_code == 200
        assert c.post("/v1/predict", files=files).status_code == 200


# -- auth, CORS, settings -------------------------------------------------------------------------


def test_token_guards_the_api_but_not_the_page(recognizer: Recognizer, talk: bytes) -> None:
    with make_client(recognizer, token=TOKEN) as c:
        files = {"file": ("a.wav", talk, "audio/wav")}
        assert_error(c.post("/v1/predict", files=files), 401, "unauthorized")
        assert_error(c.post("/v1/analyze", files=files, headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        assert_error(c.post("/v1/predict", files=files, params={"token": TOKEN}), 401, "unauthorized")  # header only
        assert c.post("/v1/predict", files=files, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.get("/").status_code == 200
        assert c.get("/healthz").json()["auth"] is True


def test_no_cors_unless_configured(recognizer: Recognizer) -> None:
    with make_client(recognizer) as c:
        r = c.get("/healthz", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in r.headers
    with make_client(recognizer, cors_origins=["https://app.example"]) as c:
        r = c.options("/v1/predict", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        r = c.get("/healthz", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in r.headers


def test_binding_beyond_loopback_requires_a_token(recognizer: Recognizer) -> None:
    with pytest.raises(ServiceConfigError, match="token"):
        create_app(ServiceOptions(host="0.0.0.0", warmup=False), recognizer)
    with pytest.raises(ServiceConfigError, match="16 characters"):
        ServiceOptions(host="0.0.0.0", token="short").check()
    ServiceOptions(host="0.0.0.0", token=TOKEN).check()
    with pytest.raises(ServiceConfigError, match="token"):
        ServiceOptions(cors_origins=["*"]).check()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"short\n", "the token is 5 characters, at least 16 are needed"),
        ("abcdefghijklmnop\n".encode("utf-16"), "the token file is not UTF-8 text"),  # PowerShell's echo: a traceback
        (
            b"abcdefgh\nijklmnopqrst\n",
            "the token may hold only printable ASCII without spaces",
        ),  # a token no header could carry
        (b"abcdefgh ijklmnopqrst", "the token may hold only printable ASCII without spaces"),
        (b" \n", "the token file is empty"),
    ],
)
def test_a_token_file_no_client_could_use_is_refused_in_one_line_naming_it(tmp_path, content, reason) -> None:
    from speech_emotion.cli.serve import read_token

    path = tmp_path / "token.txt"
    path.write_bytes(content)
    with pytest.raises(ServiceConfigError) as refused:
        read_token(path)
    assert str(refused.value).startswith(f"{path}: {reason}")
    with pytest.raises(ServiceConfigError, match="cannot read the token file"):
        read_token(tmp_path / "missing.txt")


def test_a_token_saved_with_a_bom_or_a_newline_is_the_token_a_client_sends(tmp_path, monkeypatch) -> None:
    """Both started a server whose every request got 401: the BOM (a file) and the newline (the environment)
    were part of its token."""
    from speech_emotion.cli.serve import read_token

    path = tmp_path / "token.txt"
    path.write_bytes("\ufeffabcdefghijklmnop\r\n".encode())
    assert read_token(path) == ("abcdefghijklmnop", False)
    monkeypatch.setenv("SPEECH_EMOTION_TOKEN", "abcdefghijklmnop\n")
    assert read_token(None) == ("abcdefghijklmnop", False)
    monkeypatch.setenv("SPEECH_EMOTION_TOKEN", "short")
    with pytest.raises(ServiceConfigError, match="SPEECH_EMOTION_TOKEN: the token is 5 characters"):
        read_token(None)
    monkeypatch.setenv("SPEECH_EMOTION_TOKEN", "")
    assert read_token(None) == (None, False)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_cli_prints_the_page_address(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tiny_bundle: Path
) -> None:
    import uvicorn

    import speech_emotion.threads
    from speech_emotion.cli.main import main

    ran = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: ran.update(config=self.config))
    monkeypatch.setattr(speech_emotion.threads, "limit_native_threads", lambda: None)  # keep pytest's threads
    assert main(["serve", "--model", str(tiny_bundle), "--port", "8123"]) == 0
    assert "open http://127.0.0.1:8123/" in capsys.readouterr().out
    assert ran["config"].host == "127.0.0.1"
    assert main(["serve", "--model", str(tiny_bundle), "--host", "0.0.0.0"]) == 2
    assert "token" in capsys.readouterr().err
    assert main(["serve", "--model", str(tiny_bundle), "--port", "0"]) == 0  # the system's choice, printed
    printed = int(capsys.readouterr().out.split("open http://127.0.0.1:")[1].split("/")[0])
    assert printed > 0 and ran["config"].port == printed
