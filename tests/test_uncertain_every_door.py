"""Honest confidence in every door (issue 17, item 3): where a bundle's calibration thresholds call an answer
uncertain, predict, analyze (summary, timeline JSON, CSVs), stream, listen, batch, the WebSocket and both upload
routes say so, with one rule (:meth:`Calibration.uncertain` of the shown probabilities) and the same flag for the
same input; a bundle without a calibration block never flags."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from speech_emotion.cli.main import main
from speech_emotion.recognizer import Recognizer
from speech_emotion.recording import predict_recording
from speech_emotion.report import summarize
from speech_emotion.service.app import create_app
from speech_emotion.service.options import ServiceOptions
from speech_emotion.streaming import SegmentEvent, UpdateEvent
from speech_emotion.timeline import WindowTrack, analyze_file
from stream_synth import bursts
from tiny_model import calibrated_copy

RATE = 16000


def _calibrated(tiny_bundle: Path, folder: Path, thresholds: dict[str, float], temperature: float = 1.0) -> Path:
    """A copy of the tiny bundle with a ``calibration`` block of these thresholds and temperature."""
    return calibrated_copy(
        tiny_bundle, folder, {"method": "temperature", "temperature": temperature, "thresholds": thresholds}
    )


@pytest.fixture(scope="module")
def bundles(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``unsure``: every answer is uncertain (min_confidence 1.0); ``sure``: a calibration block whose thresholds
    flag nothing (0.0); ``plain``: no calibration block at all."""
    root = tmp_path_factory.mktemp("bundles")
    return {
        "unsure": _calibrated(tiny_bundle, root / "unsure", {"min_confidence": 1.0}),
        "sure": _calibrated(tiny_bundle, root / "sure", {"min_confidence": 0.0, "min_margin": 0.0}),
        "plain": tiny_bundle,
    }


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three voiced bursts with silence and noise between them: three speech segments, several windows."""
    audio, truth = bursts()
    assert len(truth) == 3
    path = tmp_path_factory.mktemp("audio") / "bursts.wav"
    sf.write(path, audio, RATE)
    return path


EXPECTED = {"unsure": True, "sure": False, "plain": False}


def _predict_json(bundle: Path, wav: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["predict", str(wav), "--model", str(bundle), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("kind", ["unsure", "sure", "plain"])
def test_predict_and_analyze_give_the_same_flag_in_the_json_csv_and_summary(bundles, recording, tmp_path, capsys, kind):
    expected = EXPECTED[kind]
    predicted = _predict_json(bundles[kind], recording, capsys)
    assert predicted["uncertain"] is expected
    out = tmp_path / "analyze"
    assert main(["analyze", str(recording), "--model", str(bundles[kind]), "--out", str(out), "--no-plot"]) == 0
    printed = capsys.readouterr().out
    document = json.loads((out / "bursts.timeline.json").read_text())
    summary = document["summary"]
    assert summary["uncertain"] is predicted["uncertain"] and summary["dominant"] == predicted["label"]
    assert summary["uncertain_share"] == (1.0 if expected else 0.0)
    assert len(document["segments"]) == 3 and document["windows"]
    assert {item["uncertain"] for item in document["segments"] + document["windows"]} == {expected}
    for name in ("bursts.segments.csv", "bursts.windows.csv"):
        rows = list(csv.DictReader((out / name).open()))
        assert list(rows[0])[:5] == ["start", "end", "label", "confidence", "uncertain"]
        assert {row["uncertain"] for row in rows} == {"1" if expected else "0"}
    assert ("(uncertain)" in printed) is expected
    assert ("uncertain segments: 100% of the speech time" in printed) is expected


@pytest.mark.parametrize("kind", ["unsure", "sure", "plain"])
def test_stream_events_carry_the_flag_and_the_text_marks_it_once_explained(bundles, recording, capsys, kind):
    expected = EXPECTED[kind]
    assert main(["stream", str(recording), "--model", str(bundles[kind]), "--jsonl"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["type"] for e in events[:-1]} == {"update", "segment"} and events[-1]["type"] == "end"
    assert {e["uncertain"] for e in events} == {expected}  # the end line: the recording's answer, predict's flag
    assert events[-1]["uncertain"] is _predict_json(bundles[kind], recording, capsys)["uncertain"]
    assert main(["stream", str(recording), "--model", str(bundles[kind])]) == 0
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if "update" in line or "segment " in line]
    assert lines and all((" ?" in line) is expected for line in lines)
    assert text.count("?: uncertain") == (1 if expected else 0)
    assert ("(uncertain)" in text) is expected


def test_predicts_flag_is_analyzes_when_the_threshold_splits_the_answers(tiny_bundle, recording, tmp_path, capsys):
    """Thresholds just above and just below the recording's own confidence: predict's flag and the summary's
    change together (the same speech-time-weighted probabilities, the same rule), while each segment keeps its own
    flag by its own confidence, and the share counts their speech time."""
    confidence = _predict_json(tiny_bundle, recording, capsys)["confidence"]
    for offset, expected in ((1e-6, True), (-1e-6, False)):
        folder = _calibrated(tiny_bundle, tmp_path / f"t{offset}", {"min_confidence": confidence + offset})
        recognizer = Recognizer.load(folder, threads=1)
        predicted = predict_recording(recording, recognizer)
        timeline = analyze_file(recording, recognizer)
        summary = summarize(timeline)
        assert predicted.uncertain is summary["uncertain"] is expected
        for segment in timeline.segments:
            assert segment.uncertain is (segment.confidence < confidence + offset)
        flagged = sum(s.duration for s in timeline.segments if s.uncertain)
        assert summary["uncertain_share"] == pytest.approx(flagged / timeline.speech_s, abs=1e-4)
        for window in timeline.windows:
            assert window.uncertain is recognizer.is_uncertain(window.probabilities)


def test_without_speech_the_summary_is_not_uncertain(bundles, tmp_path):
    recognizer = Recognizer.load(bundles["unsure"], threads=1)
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(2 * RATE, np.float32), RATE)
    summary = summarize(analyze_file(path, recognizer))
    assert summary["verdict"] == "no speech" and summary["uncertain"] is False and summary["uncertain_share"] == 0.0


def test_the_window_track_keeps_each_windows_flag():
    labels = ("a", "b")
    track = WindowTrack(labels)
    flags = [True, False, True] * 30  # past the first allocation (64 rows)
    for i, flag in enumerate(flags):
        track.append(UpdateEvent(0, i, i + 2.0, "a", 0.6, np.array([0.6, 0.4]), labels, 1.0, uncertain=flag))
    assert [w.uncertain for w in track] == flags and track.uncertain.tolist() == flags
    assert track[0].to_dict()["uncertain"] is True and track[1].to_dict()["uncertain"] is False


@pytest.mark.parametrize("kind", ["unsure", "plain"])
def test_batch_rows_carry_the_flag_of_predict(bundles, recording, tmp_path, capsys, kind):
    expected = EXPECTED[kind]
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(recording, folder / "bursts.wav")
    out = tmp_path / "results"
    argv = ["batch", str(folder), "--out", str(out), "--model", str(bundles[kind]), "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    files = pq.read_table(out / "files.parquet").to_pylist()
    segments = pq.read_table(out / "segments.parquet")
    assert segments.column_names[-1] == "uncertain"
    assert [row["uncertain"] for row in files] == [expected]
    assert files[0]["uncertain_share"] == (1.0 if expected else 0.0)
    assert len(segments) == 3 and set(segments["uncertain"].to_pylist()) == {expected}
    predicted = _predict_json(bundles[kind], folder / "bursts.wav", capsys)
    assert files[0]["uncertain"] is predicted["uncertain"] and files[0]["dominant_emotion"] == predicted["label"]


def _client(bundle: Path) -> TestClient:
    recognizer = Recognizer.load(bundle, threads=1)
    return TestClient(create_app(ServiceOptions(warmup=False, allowed_hosts=["testserver"]), recognizer))


def _stream(client: TestClient, audio: np.ndarray) -> list[dict[str, Any]]:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    messages = []
    with client.websocket_connect("/v1/stream") as ws:
        messages.append(ws.receive_json())
        for i in range(0, len(pcm), 3200):
            ws.send_bytes(pcm[i : i + 3200])
        ws.send_text(json.dumps({"type": "end"}))
        while messages[-1]["type"] != "end":
            messages.append(ws.receive_json())
    return messages


@pytest.mark.parametrize("kind", ["unsure", "sure", "plain"])
def test_the_service_says_so_in_every_route(bundles, recording, capsys, kind):
    expected = EXPECTED[kind]
    audio, _ = sf.read(recording, dtype="float32")
    with _client(bundles[kind]) as client:
        messages = _stream(client, audio)
        data = recording.read_bytes()
        predicted = client.post("/v1/predict", files={"file": ("b.wav", data, "audio/wav")})
        analysed = client.post("/v1/analyze", files={"file": ("b.wav", data, "audio/wav")})
    events = [m for m in messages if m["type"] in ("update", "segment")]
    assert {m["type"] for m in events} == {"update", "segment"} and {m["uncertain"] for m in events} == {expected}
    end = messages[-1]
    assert end["uncertain"] is expected and end["uncertain_share"] == (1.0 if expected else 0.0)
    assert end["verdict"].startswith("mostly") or end["verdict"].startswith("mixed")
    assert predicted.status_code == 200 and analysed.status_code == 200
    summary = analysed.json()["summary"]
    assert predicted.json()["uncertain"] is summary["uncertain"] is expected
    assert predicted.json()["uncertain"] is _predict_json(bundles[kind], recording, capsys)["uncertain"]
    assert {s["uncertain"] for s in analysed.json()["segments"] + analysed.json()["windows"]} == {expected}


@pytest.mark.parametrize("kind", ["unsure", "sure"])
def test_each_channel_of_a_split_upload_carries_its_flag(bundles, recording, tmp_path, kind):
    audio, _ = sf.read(recording, dtype="float32")
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([audio, audio[::-1]], axis=1), RATE)
    with _client(bundles[kind]) as client:
        answer = client.post(
            "/v1/predict?channels=split", files={"file": ("s.wav", stereo.read_bytes(), "audio/wav")}
        ).json()
    spoken = [c for c in answer["channels"] if c["status"] == "ok"]
    assert spoken and {c["uncertain"] for c in spoken} == {EXPECTED[kind]}


def test_segment_events_built_by_hand_default_to_certain():
    event = SegmentEvent(0, 0.0, 1.0, "a", 0.9, np.array([0.9, 0.1]), ("a", "b"), 1)
    assert event.uncertain is False and event.to_dict()["uncertain"] is False


def test_batch_parts_written_before_the_uncertain_columns_compact_with_nulls(tmp_path):
    from speech_emotion.batch.state import ResultStore
    from speech_emotion.batch.worker import OK, FileResult, SegmentResult

    labels = ("calm", "angry")

    def result(key: str, uncertain: bool) -> FileResult:
        segment = SegmentResult(0.0, 1.5, "calm", 0.8, [0.8, 0.2], uncertain=uncertain)
        shares = {"calm": 1.0, "angry": 0.0}
        return FileResult(
            key, f"/a/{key}.wav", 10, 1, OK, 5.0, 1.5, "calm", "mostly calm", shares, [segment],
            uncertain=uncertain, uncertain_share=float(uncertain),
        )  # fmt: skip

    with ResultStore(tmp_path, "m", labels) as store:
        store.write_part([result("old", True)])
        for part in store.parts.glob("*.parquet"):  # as a version before the flag wrote it
            table = pq.read_table(part)
            names = [n for n in ("uncertain", "uncertain_share") if n in table.column_names]
            pq.write_table(table.drop_columns(names), part)
        store.write_part([result("new", True)])
        files, segments = store.compact(["old", "new"])
    assert files["uncertain"].to_pylist() == [True, None] and files["uncertain_share"].to_pylist() == [1.0, None]
    assert segments["uncertain"].to_pylist() == [True, None]
    # the columns before them keep their order: the flag comes after the timings
    assert files.column_names.index("uncertain") == files.column_names.index("cpu_s") + 1


@pytest.mark.parametrize("uncertain", [True, False])
def test_listen_marks_an_uncertain_emotion_and_its_segments_and_explains_the_mark(uncertain):
    from rich.console import Console

    from speech_emotion.cli.listen import LiveView

    labels = ("calm", "angry")
    view = LiveView(labels)
    probs = [0.45, 0.55]
    view.update(UpdateEvent(0, 0.0, 2.0, "angry", 0.55, probs, labels, 10.0, uncertain=uncertain))
    view.update(SegmentEvent(0, 0.0, 2.5, "angry", 0.55, probs, labels, 3, uncertain=uncertain))
    console = Console(record=True, width=120)
    console.print(view.render(3.0, speaking=True, in_segment=True))
    text = console.export_text()
    assert text.count("angry ?") == (2 if uncertain else 0)
    assert text.count("?: uncertain") == (1 if uncertain else 0)
