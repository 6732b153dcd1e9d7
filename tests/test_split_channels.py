"""``--channels split``: a two-party call with each party on its own channel gets one timeline per channel through
``analyze`` (library and CLI), ``stream``, ``batch`` and the service; events and rows carry ``channel``; the plot has
a panel per channel. The call is generated here: party A on the left, party B on the right, never both at once."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from speech_emotion.batch.inputs import make_job
from speech_emotion.batch.state import results_to_tables
from speech_emotion.batch.worker import analyze_one
from speech_emotion.cli import main as cli_main
from speech_emotion.conditioning import SampleConditioner
from speech_emotion.errors import AudioError
from speech_emotion.recognizer import Recognizer
from speech_emotion.service.app import create_app
from speech_emotion.service.options import ServiceOptions
from speech_emotion.timeline import AnalyzeOptions, analyze_channels
from synth import silence, vowel

RATE = 16000
TURNS = [(0, 0.5, 2.5), (1, 4.0, 6.0), (0, 7.5, 9.0)]
"""(channel, start_s, end_s) of each turn of the call."""
LENGTH_S = 10.0


def call() -> np.ndarray:
    """``(frames, 2)``: each turn voiced on its party's channel only."""
    out = np.zeros((int(LENGTH_S * RATE), 2), dtype=np.float32)
    for i, (channel, start, end) in enumerate(TURNS):
        f0 = 120.0 if channel == 0 else 230.0
        voice = vowel(end - start, RATE, f0=f0, seed=i)
        out[int(start * RATE) : int(start * RATE) + len(voice), channel] = voice
    return out


@pytest.fixture(scope="module")
def tiny(tiny_bundle: Path) -> Recognizer:
    return Recognizer.load(tiny_bundle, threads=1)


@pytest.fixture
def stereo_call(tmp_path: Path) -> Path:
    path = tmp_path / "call.wav"
    sf.write(path, call(), RATE)
    return path


def spans(segments, channel: int) -> list[tuple[float, float]]:
    return [(s.start, s.end) for s in segments if s.channel == channel]


def assert_turns(found: dict[int, list[tuple[float, float]]]) -> None:
    for channel in (0, 1):
        truth = [(s, e) for c, s, e in TURNS if c == channel]
        assert len(found[channel]) == len(truth), (channel, found[channel])
        for (s, e), (ts, te) in zip(found[channel], truth):
            assert abs(s - ts) < 0.3 and abs(e - te) < 0.3


def test_split_gives_one_timeline_per_channel_with_each_partys_turns(tiny, stereo_call):
    timelines = analyze_channels(stereo_call, tiny, AnalyzeOptions(channels="split"))
    assert [t.channel for t in timelines] == [0, 1]
    assert_turns({t.channel: spans(t.segments, t.channel) for t in timelines})
    assert all(w.channel == t.channel for t in timelines for w in t.windows)
    (mixed,) = analyze_channels(stereo_call, tiny)  # the default: one safe mix, which hears both parties
    assert mixed.channel is None and len(mixed.segments) == len(TURNS)


def test_split_on_a_mono_file_is_its_one_channel(tiny, tmp_path):
    path = tmp_path / "mono.wav"
    sf.write(path, np.concatenate([silence(0.3), vowel(1.5), silence(0.5)]), RATE)
    (timeline,) = analyze_channels(path, tiny, AnalyzeOptions(channels="split"))
    assert timeline.channel == 0 and len(timeline.segments) == 1


def test_predict_split_on_a_mono_file_lists_it_once_in_the_table_and_its_channel_in_the_json(
    tiny_bundle, tmp_path, monkeypatch, capsys
):
    from speech_emotion.cli.main import main

    path = tmp_path / "mono.wav"
    sf.write(path, np.concatenate([silence(0.3), vowel(1.5), silence(0.5)]), RATE)
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["predict", "--channels", "split", "--model", str(tiny_bundle), str(path)]) == 0
    assert "(channel 0)" not in capsys.readouterr().out  # the whole file's row only: channel 0 would repeat it
    assert main(["predict", "--json", "--channels", "split", "--model", str(tiny_bundle), str(path)]) == 0
    (answer,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [c["channel"] for c in answer["channels"]] == [0] and answer["channels"][0]["label"] == answer["label"]


def test_analyze_cli_split_without_speech_on_any_channel_still_summarises_each_channel(tiny_bundle, tmp_path, capsys):
    from speech_emotion.cli.main import main

    path = tmp_path / "quiet_call.wav"
    sf.write(path, np.zeros((RATE * 2, 2), np.float32), RATE)
    assert (
        main(
            ["analyze", "--channels", "split", "--model", str(tiny_bundle), "--no-plot", "-o", str(tmp_path), str(path)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "(channel 0)" in out and "(channel 1)" in out  # as with speech on one channel (it printed one line)
    assert main(["stream", "--channels", "split", "--model", str(tiny_bundle), str(path)]) == 0
    out = capsys.readouterr().out
    assert "(channel 0)" in out and "(channel 1)" in out


def test_analyze_cli_split_writes_channel_rows_and_a_panel_per_channel(tiny_bundle, stereo_call, tmp_path):
    model = ["--model", str(tiny_bundle), "--quiet"]
    assert (
        cli_main.main(["analyze", str(stereo_call), "-o", str(tmp_path / "split"), "--channels", "split", *model]) == 0
    )
    assert cli_main.main(["analyze", str(stereo_call), "-o", str(tmp_path / "mix"), *model]) == 0
    doc = json.loads((tmp_path / "split" / "call.timeline.json").read_text())
    assert [c["channel"] for c in doc["channels"]] == [0, 1]
    assert all(s["channel"] == c["channel"] for c in doc["channels"] for s in c["segments"])
    rows = pd.read_csv(tmp_path / "split" / "call.segments.csv")
    assert_turns({c: list(zip(g["start"], g["end"])) for c, g in rows.groupby("channel")})
    assert set(pd.read_csv(tmp_path / "split" / "call.windows.csv")["channel"]) == {0, 1}
    assert "channel" not in pd.read_csv(tmp_path / "mix" / "call.segments.csv").columns
    split_png = matplotlib.image.imread(tmp_path / "split" / "call.timeline.png")
    mix_png = matplotlib.image.imread(tmp_path / "mix" / "call.timeline.png")
    assert split_png.shape[0] > 1.5 * mix_png.shape[0]  # two panels (probabilities + segments) per channel


def test_stream_cli_split_events_carry_their_channel(tiny_bundle, stereo_call, capsys):
    assert (
        cli_main.main(["stream", str(stereo_call), "--jsonl", "--channels", "split", "--model", str(tiny_bundle)]) == 0
    )
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["channel"] for e in events} == {0, 1}
    segments = [e for e in events if e["type"] == "segment"]
    assert_turns({c: [(e["start"], e["end"]) for e in segments if e["channel"] == c] for c in (0, 1)})


def test_text_output_numbers_channels_as_the_json_does(tiny_bundle, stereo_call, tmp_path, capsys):
    model = ["--model", str(tiny_bundle), "--channels", "split"]
    assert cli_main.main(["analyze", str(stereo_call), "-o", str(tmp_path), "--no-plot", *model]) == 0
    said = re.findall(r"\(channel (\d+)\)", capsys.readouterr().out)
    doc = json.loads((tmp_path / "call.timeline.json").read_text())
    assert [int(n) for n in said] == [c["channel"] for c in doc["channels"]] == [0, 1]
    assert cli_main.main(["stream", str(stereo_call), *model]) == 0
    out = capsys.readouterr().out
    assert {int(n) for n in re.findall(r"^ch(\d+) ", out, re.MULTILINE)} == {0, 1}
    assert [int(n) for n in re.findall(r"\(channel (\d+)\)", out)] == [0, 1]


def test_asking_for_a_channel_the_audio_lacks_names_it_as_the_json_would():
    with pytest.raises(AudioError, match=r"no channel 1 \(0 = the first\)"):
        SampleConditioner(channel=1).push(np.zeros(1600, dtype=np.float32), RATE)


def test_batch_split_rows_carry_the_channel(tiny, stereo_call):
    result = analyze_one(make_job(stereo_call), tiny, "split")
    assert result.status == "ok" and result.error is None
    _, segments = results_to_tables([result], tiny.labels)
    table = segments.to_pandas()
    assert_turns({c: list(zip(g["start_s"], g["end_s"])) for c, g in table.groupby("channel")})
    mixed = results_to_tables([analyze_one(make_job(stereo_call), tiny)], tiny.labels)[1].to_pandas()
    assert mixed["channel"].isna().all() and len(mixed) == len(TURNS)


def test_batch_cli_split_and_resume_with_other_channels_is_refused(tiny_bundle, stereo_call, tmp_path, capsys):
    out = tmp_path / "results"
    argv = ["batch", str(stereo_call.parent), "--out", str(out), "--model", str(tiny_bundle), "--workers", "1"]
    assert cli_main.main([*argv, "--channels", "split", "--no-progress"]) == 0
    channel = pd.read_parquet(out / "segments.parquet")["channel"]
    assert set(channel.dropna()) == {0, 1} and channel.isna().any()  # each party's segments and the whole call's
    assert cli_main.main([*argv, "--no-progress"]) == 1
    assert "--channels split" in capsys.readouterr().err


def test_service_analyze_split_gives_a_timeline_per_channel(tiny):
    client = TestClient(create_app(ServiceOptions(warmup=False, allowed_hosts=["testserver"]), recognizer=tiny))
    buf = io.BytesIO()
    sf.write(buf, call(), RATE, format="WAV")
    files = {"file": ("call.wav", buf.getvalue(), "audio/wav")}
    split = client.post("/v1/analyze?channels=split", files=files)
    assert split.status_code == 200
    channels = split.json()["channels"]
    assert [c["channel"] for c in channels] == [0, 1]
    assert_turns({c["channel"]: [(s["start"], s["end"]) for s in c["segments"]] for c in channels})
    mixed = client.post("/v1/analyze", files=files).json()
    assert "channels" not in mixed and len(mixed["segments"]) == len(TURNS)
    assert client.post("/v1/analyze?channels=both", files=files).status_code == 422
