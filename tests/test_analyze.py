from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.cli import main as cli_main
from speech_emotion.errors import AudioError
from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from speech_emotion.report import summarize, timeline_document, write_timeline
from speech_emotion.timeline import AnalyzeOptions, analyze_file
from stream_synth import bursts
from synth import silence


@pytest.fixture(scope="module")
def recognizer(tiny_bundle):
    return Recognizer.load(tiny_bundle, threads=1)


@pytest.fixture
def recording(tmp_path):
    samples, truth = bursts(44100)
    path = tmp_path / "call.flac"
    sf.write(path, np.stack([samples, samples], axis=1), 44100)  # stereo, 44.1 kHz
    return path, truth


def run_cli(monkeypatch, argv: list[str]) -> int:
    monkeypatch.setattr(cli_main, "COMMANDS", ["stream", "analyze"])
    return cli_main.main(argv)


def test_timeline_has_one_segment_per_burst_and_a_summary(recognizer, recording):
    path, truth = recording
    progress: list[tuple[float, float]] = []
    options = AnalyzeOptions(block_s=1.0)
    timeline = analyze_file(path, recognizer, options, progress=lambda d, t: progress.append((d, t)))
    assert len(timeline.segments) == len(truth)
    for seg, (start, end) in zip(timeline.segments, truth):
        assert abs(seg.start - start) < 0.2 and abs(seg.end - end) < 0.2
    summary = summarize(timeline)
    assert summary["segments"] == len(truth)
    assert sum(summary["emotion_share"].values()) == pytest.approx(1, abs=1e-3)
    assert summary["speech_s"] == pytest.approx(sum(e - s for s, e in truth), abs=0.4 * len(truth))  # padding
    assert 1 <= len(summary["intense_moments"]) <= 5
    assert progress[-1][0] == pytest.approx(timeline.duration_s) and len(progress) > 10
    assert timeline.windows and all(w.end <= timeline.duration_s for w in timeline.windows)


def test_block_size_does_not_change_the_timeline(recognizer, recording):
    path, _ = recording
    small = timeline_document(analyze_file(path, recognizer, AnalyzeOptions(block_s=0.37)))
    large = timeline_document(analyze_file(path, recognizer, AnalyzeOptions(block_s=60.0)))
    assert small["segments"] == large["segments"] and small["windows"] == large["windows"]


def test_writers_produce_json_csv_and_png(recognizer, recording, tmp_path):
    path, truth = recording
    written = write_timeline(analyze_file(path, recognizer), tmp_path / "out")
    data = json.loads(written["json"].read_text())
    assert data["labels"] == list(EMOTIONS) and len(data["segments"]) == len(truth)
    rows = list(csv.DictReader(written["segments_csv"].open()))
    assert len(rows) == len(truth) and rows[0]["label"] in EMOTIONS
    assert set(rows[0]) == {"start", "end", "label", "confidence", "uncertain", *(f"p_{e}" for e in EMOTIONS)}
    assert rows[0]["uncertain"] == "0"  # a bundle without calibration thresholds is never uncertain
    assert len(list(csv.DictReader(written["windows_csv"].open()))) == len(data["windows"])
    assert written["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_silence_only_gives_an_empty_timeline(recognizer, tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, silence(4.0), 16000)
    timeline = analyze_file(path, recognizer)
    assert timeline.segments == [] and summarize(timeline)["dominant"] is None
    assert write_timeline(timeline, tmp_path / "out")["png"].is_file()


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"this is not audio at all" * 10, "format not recognised"), (None, "no such file")],
)
def test_bad_files_raise_one_line_audio_errors(recognizer, tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as info:
        analyze_file(path, recognizer)
    assert "\n" not in str(info.value)


def test_file_ending_mid_frame_is_analysed(recognizer, recording, tmp_path):
    path, _ = recording
    wav = tmp_path / "cut.wav"
    samples, _ = bursts()
    sf.write(wav, samples, 16000, subtype="PCM_16")
    data = wav.read_bytes()
    wav.write_bytes(data[: len(data) // 2 + 1])  # cut inside a sample frame
    timeline = analyze_file(wav, recognizer)
    assert 0 < timeline.duration_s < len(samples) / 16000
    assert len(timeline.segments) >= 1


def test_analyze_command(monkeypatch, recording, tiny_bundle, tmp_path, capsys):
    path, truth = recording
    out = tmp_path / "report"
    code = run_cli(monkeypatch, ["analyze", str(path), "--model", str(tiny_bundle), "-o", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "segments" in printed and "wrote" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "call.segments.csv",
        "call.timeline.json",
        "call.timeline.png",
        "call.windows.csv",
    ]


def test_analyze_command_reports_bad_files_and_goes_on(monkeypatch, recording, tiny_bundle, tmp_path, capsys):
    path, _ = recording
    code = run_cli(
        monkeypatch,
        ["analyze", str(tmp_path / "missing.wav"), str(path), "--model", str(tiny_bundle), "-o", str(tmp_path)],
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "error: " in captured.err and "missing.wav: no such file" in captured.err
    assert (tmp_path / "call.timeline.json").is_file()


def test_stream_command_jsonl(monkeypatch, recording, tiny_bundle, capsys):
    path, truth = recording
    assert run_cli(monkeypatch, ["stream", str(path), "--model", str(tiny_bundle), "--jsonl"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["type"] for e in events].count("segment") == len(truth)
    assert all(e["type"] in ("update", "segment") for e in events[:-1])
    end = events[-1]  # the recording's answer last, as the WebSocket's end message
    assert end["type"] == "end" and end["segments"] == len(truth) and end["verdict"].startswith(("mostly", "mixed"))
    assert end["uncertain"] is False and end["uncertain_share"] == 0.0  # the tiny bundle has no calibration
    monkeypatch.setattr(cli_main, "COMMANDS", ["predict"])
    assert cli_main.main(["predict", str(path), "--model", str(tiny_bundle), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out.splitlines()[0])  # the same audio's answer through predict
    assert end["dominant"] == answer["label"]
    assert end["probabilities"] == pytest.approx(answer["probabilities"], abs=1e-4)


def test_stream_command_realtime_paces_the_file(monkeypatch, tiny_bundle, tmp_path, capsys):
    path = tmp_path / "short.wav"
    samples, _ = bursts(layout=(("silence", 0.3), ("voice", 0.9), ("silence", 0.8)))
    sf.write(path, samples, 16000)
    sleeps: list[float] = []
    monkeypatch.setattr("speech_emotion.cli.stream.time.sleep", sleeps.append)
    assert run_cli(monkeypatch, ["stream", str(path), "--model", str(tiny_bundle), "--realtime"]) == 0
    assert sum(sleeps) > 1.0  # it waited for the audio to "arrive"
    out = capsys.readouterr().out
    assert "segment" in out and "1 segment," in out
    sleeps.clear()  # one chunk longer than the file: it waits for the whole file (it waited for none of it)
    argv = ["stream", str(path), "--model", str(tiny_bundle), "--realtime", "--chunk-ms", "100000"]
    assert run_cli(monkeypatch, argv) == 0
    assert sum(sleeps) == pytest.approx(len(samples) / 16000, abs=0.3)


def test_stream_command_silence_and_bad_file(monkeypatch, tiny_bundle, tmp_path, capsys):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, silence(2.0), 16000)
    assert run_cli(monkeypatch, ["stream", str(quiet), "--model", str(tiny_bundle)]) == 0
    assert "no speech detected" in capsys.readouterr().err
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert run_cli(monkeypatch, ["stream", str(text), "--model", str(tiny_bundle), "--jsonl"]) == 1
    (line,) = capsys.readouterr().out.splitlines()  # a reader of the lines gets the error too
    assert json.loads(line) == {
        "type": "error",
        "error": "unsupported_audio",
        "message": f"{text}: cannot decode audio (format not recognised)",
    }
    assert run_cli(monkeypatch, ["stream", str(text), "--model", str(tiny_bundle)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "format not recognised" in err and err.count("\n") == 1
