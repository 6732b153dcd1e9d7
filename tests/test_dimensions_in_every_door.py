"""Arousal, valence, dominance (issue 20) in every door: the same values through predict, analyze, batch and the
service for the default model, which has them; no such keys (or null columns) for a model without them."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from speech_emotion.batch.inputs import make_job
from speech_emotion.batch.state import SEGMENTS_TABLE, ResultStore, results_to_tables
from speech_emotion.batch.worker import OK, FileResult, SegmentResult, analyze_one
from speech_emotion.bundle import DIMENSIONS, read_bundle
from speech_emotion.cli import main as cli_main
from speech_emotion.errors import ModelError
from speech_emotion.recognizer import Recognizer
from speech_emotion.recording import predict_recording
from speech_emotion.report import summarize, write_timeline
from speech_emotion.service.app import create_app
from speech_emotion.service.options import ServiceOptions
from speech_emotion.streaming import SegmentEvent, StreamingRecognizer, StreamOptions, UpdateEvent
from speech_emotion.timeline import AnalyzeOptions, analyze_file
from stream_synth import events_of
from synth import silence, vowel

RAVDESS_05 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess" / "Actor_05"
ANGRY = RAVDESS_05 / "03-01-05-02-01-01-05.flac"
SAD = RAVDESS_05 / "03-01-04-02-01-01-05.flac"


@pytest.fixture(scope="module")
def real() -> Recognizer:
    if not ANGRY.is_file():
        pytest.skip(f"RAVDESS not present at {RAVDESS_05}")
    return Recognizer.load(None, threads=1)


@pytest.fixture(scope="module")
def tiny(tiny_bundle: Path) -> Recognizer:
    return Recognizer.load(tiny_bundle, threads=1)


@pytest.fixture(scope="module")
def two_utterances(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An angry and a sad RAVDESS sentence with a pause between them: two speech segments."""
    if not ANGRY.is_file():
        pytest.skip(f"RAVDESS not present at {RAVDESS_05}")
    angry, sr = sf.read(ANGRY, dtype="float32")
    sad, _ = sf.read(SAD, dtype="float32")
    path = tmp_path_factory.mktemp("dims") / "angry-then-sad.wav"
    sf.write(path, np.concatenate([angry, np.zeros(sr, np.float32), sad]), sr, subtype="FLOAT")
    return path


def client_for(recognizer: Recognizer) -> TestClient:
    return TestClient(create_app(ServiceOptions(warmup=False, allowed_hosts=["testserver"]), recognizer=recognizer))


def values(d: dict) -> np.ndarray:
    return np.array([d[name] for name in DIMENSIONS])


def test_the_default_model_declares_arousal_valence_dominance(real):
    assert real.dimensions == DIMENSIONS == ("arousal", "valence", "dominance")


def test_the_same_file_gives_the_same_arousal_valence_dominance_in_every_door(real, two_utterances, tmp_path, capsys):
    pred = predict_recording(two_utterances, real)
    assert pred.segments == 2 and pred.dimensions is not None and pred.dimensions.shape == (3,)
    assert np.all((pred.dimensions >= 0) & (pred.dimensions <= 1))
    doors: dict[str, np.ndarray] = {"predict": pred.dimensions, "predict to_dict": values(pred.to_dict())}

    assert cli_main.main(["predict", "--json", str(two_utterances)]) == 0
    doors["predict --json"] = values(json.loads(capsys.readouterr().out))

    timeline = analyze_file(two_utterances, real, AnalyzeOptions(keep_windows=False))
    doors["analyze summary"] = values(summarize(timeline))  # rounded to 4 decimals

    result = analyze_one(make_job(two_utterances), real)
    doors["batch"] = np.array(result.dimensions)
    files, segments = results_to_tables([result], real.labels)
    doors["batch files.parquet"] = np.array([files[name][0].as_py() for name in DIMENSIONS])
    assert segments.num_rows == 2 and segments["arousal"].null_count == 0

    client = client_for(real)
    r = client.post("/v1/predict", files={"file": ("x.wav", two_utterances.read_bytes(), "audio/wav")})
    assert r.status_code == 200
    doors["/v1/predict"] = values(r.json())
    a = client.post("/v1/analyze", files={"file": ("x.wav", two_utterances.read_bytes(), "audio/wav")})
    doors["/v1/analyze summary"] = values(a.json()["summary"])
    assert all(set(DIMENSIONS) <= set(s) for s in a.json()["segments"] + a.json()["windows"])

    for door, v in doors.items():
        tol = 5e-5 if "summary" in door else 1e-9
        np.testing.assert_allclose(v, pred.dimensions, rtol=0, atol=tol, err_msg=door)


def test_the_recording_value_is_the_speech_weighted_mean_of_its_segments(real, two_utterances):
    timeline = analyze_file(two_utterances, real, AnalyzeOptions(keep_windows=False))
    weights = np.array([s.duration for s in timeline.segments])
    per_segment = np.array([s.dimensions for s in timeline.segments])
    pred = predict_recording(two_utterances, real)
    np.testing.assert_allclose(pred.dimensions, weights @ per_segment / weights.sum(), rtol=0, atol=1e-12)


def test_live_updates_carry_smoothed_values_and_segments_the_whole_utterance(real, two_utterances):
    samples, sr = sf.read(two_utterances, dtype="float32")
    events = events_of(StreamingRecognizer(real, StreamOptions(smoothing=0.6)), [(samples, sr)])
    updates = [e for e in events if isinstance(e, UpdateEvent)]
    segments = [e for e in events if isinstance(e, SegmentEvent)]
    assert updates and len(segments) == 2
    for event in updates + segments:
        assert event.dimensions is not None and len(event.dimensions) == 3
        assert all(0.0 <= v <= 1.0 for v in event.dimensions)
        assert set(DIMENSIONS) <= set(event.to_dict())
    raw = StreamingRecognizer(real, StreamOptions(smoothing=0.0))
    unsmoothed = [e for e in events_of(raw, [(samples, sr)]) if isinstance(e, UpdateEvent)]
    first, second = unsmoothed[:2]
    assert first.segment == second.segment == updates[1].segment == 0
    assert updates[0].dimensions == pytest.approx(first.dimensions)  # the first window of a segment is as it came
    expected = 0.6 * np.array(first.dimensions) + 0.4 * np.array(second.dimensions)
    np.testing.assert_allclose(updates[1].dimensions, expected, rtol=0, atol=1e-6)


def test_analyze_writes_the_columns_and_a_plot_panel(real, two_utterances, tmp_path):
    timeline = analyze_file(two_utterances, real)
    written = write_timeline(timeline, tmp_path)
    for key in ("segments_csv", "windows_csv"):
        header, first = written[key].read_text().splitlines()[:2]
        assert header.endswith(",arousal,valence,dominance")
        assert all(0.0 <= float(v) <= 1.0 for v in first.split(",")[-3:])
    document = json.loads(written["json"].read_text())
    assert set(DIMENSIONS) <= set(document["summary"]) and set(DIMENSIONS) <= set(document["windows"][0])
    assert written["png"].stat().st_size > 10_000


def test_predict_table_has_an_avd_column_for_the_default_model_only(real, tiny_bundle, two_utterances, capsys):
    assert cli_main.main(["predict", str(two_utterances)]) == 0
    out = capsys.readouterr().out
    assert "A/V/D" in out and "arousal / valence / dominance" in out
    assert cli_main.main(["predict", "--model", str(tiny_bundle), str(two_utterances)]) == 0
    assert "A/V/D" not in capsys.readouterr().out


# -- a model without dimensions -------------------------------------------------------------------


def test_a_model_without_dimensions_gives_no_such_keys_anywhere(tiny, tmp_path):
    assert tiny.dimensions == ()
    clip = np.concatenate([silence(0.3), vowel(2.2, seed=1), silence(0.6)])
    path = tmp_path / "vowel.wav"
    sf.write(path, clip, 16000)
    probs, dims = tiny.scores(clip)
    assert dims is None and probs.shape == (len(tiny.labels),)
    assert not set(DIMENSIONS) & set(tiny.predict(clip, 16000).to_dict())
    pred = predict_recording(path, tiny)
    assert pred.dimensions is None and not set(DIMENSIONS) & set(pred.to_dict())
    for event in events_of(StreamingRecognizer(tiny), [(clip, 16000)]):
        assert event.dimensions is None and not set(DIMENSIONS) & set(event.to_dict())
    timeline = analyze_file(path, tiny)
    assert not set(DIMENSIONS) & set(summarize(timeline))
    written = write_timeline(timeline, tmp_path / "out", plot=False)
    assert "arousal" not in written["segments_csv"].read_text().splitlines()[0]
    r = client_for(tiny).post("/v1/predict", files={"file": ("x.wav", path.read_bytes(), "audio/wav")})
    assert r.status_code == 200 and not set(DIMENSIONS) & set(r.json())
    files, segments = results_to_tables([analyze_one(make_job(path), tiny)], tiny.labels)
    for table in (files, segments):
        assert all(table[name].null_count == table.num_rows for name in DIMENSIONS)


def test_a_bundle_declaring_dimensions_its_graph_lacks_is_refused_in_one_line(tiny_bundle, tmp_path):
    bundle = tmp_path / "claims-dimensions"
    shutil.copytree(tiny_bundle, bundle)
    claims = dataclasses.replace(read_bundle(tiny_bundle), dimensions=DIMENSIONS)
    (bundle / "model.json").write_text(json.dumps(claims.to_json()))
    with pytest.raises(ModelError, match="no 'dimensions' output") as err:
        Recognizer.load(bundle)
    assert "\n" not in str(err.value)


# -- batch tables: parts from before the columns ----------------------------------------------------


def test_batch_parts_written_before_the_columns_still_compact_with_nulls(tmp_path):
    labels = ("calm", "angry")

    def result(key: str, dims: list[float] | None) -> FileResult:
        segment = SegmentResult(0.0, 1.5, "calm", 0.8, [0.8, 0.2], dimensions=dims)  # in label order
        return FileResult(
            key, f"/a/{key}.wav", 10, 1, OK, 5.0, 1.5, "calm", "mostly calm", {"calm": 1.0, "angry": 0.0},
            [segment], dimensions=dims,
        )  # fmt: skip

    with ResultStore(tmp_path, "m", labels) as store:
        store.write_part([result("old", [0.1, 0.2, 0.3])])
        for part in store.parts.glob("*.parquet"):  # as a version before arousal/valence/dominance wrote it
            table = pq.read_table(part)
            pq.write_table(table.drop_columns([n for n in DIMENSIONS if n in table.column_names]), part)
        store.write_part([result("new", [0.6, 0.5, 0.4])])
        files, segments = store.compact(["old", "new"])
    assert files["path"].to_pylist() == ["/a/new.wav", "/a/old.wav"]
    assert files["arousal"].to_pylist() == [0.6, None]
    assert segments["dominance"].to_pylist() == [0.4, None]
    assert files.column_names.index("arousal") == files.column_names.index("share_angry") + 1
    assert pq.read_table(tmp_path / SEGMENTS_TABLE).column_names[-4:] == [*DIMENSIONS, "uncertain"]


def test_websocket_events_carry_the_values(real, two_utterances):
    samples, sr = sf.read(two_utterances, dtype="float32")
    with client_for(real) as client, client.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_text(json.dumps({"type": "config", "sample_rate": sr, "live": False}))
        data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        for i in range(0, len(data), 16000):
            ws.send_bytes(data[i : i + 16000])
        ws.send_text(json.dumps({"type": "end"}))
        messages = []
        while (m := ws.receive())["type"] != "websocket.close":
            messages.append(json.loads(m["text"]))
    emotion = [m for m in messages if m["type"] in ("update", "segment")]
    assert emotion, messages[-3:]
    assert emotion and all(0.0 <= m[name] <= 1.0 for m in emotion for name in DIMENSIONS)


@pytest.mark.parametrize("dims", [(0.62, 0.41, 0.55), None])
def test_listen_shows_the_values_beside_the_emotion_and_its_segments_when_the_model_has_them(dims):
    from rich.console import Console

    from speech_emotion.cli.listen import LiveView

    labels = ("calm", "angry")
    view = LiveView(labels)
    probs = [0.3, 0.7]
    view.update(UpdateEvent(0, 0.0, 2.0, "angry", 0.7, probs, labels, 10.0, dimensions=dims))
    view.update(SegmentEvent(0, 0.0, 2.5, "angry", 0.7, probs, labels, 3, dimensions=dims))
    console = Console(record=True, width=100)
    console.print(view.render(3.0, speaking=True, in_segment=True))
    text = console.export_text()
    assert ("arousal/valence/dominance 0.62/0.41/0.55" in text) == (dims is not None)
    assert text.count("0.62/0.41/0.55") == (2 if dims else 0)


def test_stream_lines_and_jsonl_carry_the_values(real, two_utterances, capsys):
    assert cli_main.main(["stream", "--jsonl", str(two_utterances)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert events and all(set(DIMENSIONS) <= set(e) for e in events if e["type"] in ("update", "segment"))
    assert cli_main.main(["stream", str(two_utterances)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "segment " in line or "update " in line]
    assert lines and all("A/V/D " in line for line in lines)
