"""Issue 21, items 4-6 and 9: every door complete and consistent. ``predict --json`` prints one object per file
(no speech and bad files included), no speech has one exit-status rule across commands, notes are kept on every
path, ``analyze`` report names cannot collide, a batch folder knows its model by content, two-party calls are split
in every door, and very quiet recordings get a low-level note. All audio is generated here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.cli import main as cli_main
from synth import silence, vowel

ENDED_EARLY = "file ended early: 1.5 s of the announced 3.0 s were read"


def wav(samples: np.ndarray, sample_rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def cut_in_half(data: bytes) -> bytes:
    """The 44-byte header (announcing the whole length) and the first half of the samples."""
    return data[: 44 + (len(data) - 44) // 2]


def talk() -> np.ndarray:
    return np.concatenate([silence(0.3), vowel(2.0, seed=1), silence(0.3)])


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- item 4: machine use of predict ------------------------------------------------------------------------------


def test_predict_json_prints_one_object_per_file_also_without_speech_or_when_unreadable(tiny_bundle, tmp_path, capsys):
    speech, quiet, broken = tmp_path / "speech.wav", tmp_path / "quiet.wav", tmp_path / "broken.wav"
    speech.write_bytes(wav(talk()))
    quiet.write_bytes(wav(silence(2.0)))
    broken.write_bytes(b"RIFF not really a wave file at all")
    missing = tmp_path / "missing.wav"
    files = [str(p) for p in (speech, quiet, broken, missing)]
    code = cli_main.main(["predict", "--json", "--model", str(tiny_bundle), *files])
    out = json_lines(capsys.readouterr().out)
    assert [o["path"] for o in out] == [str(speech), str(quiet), str(broken), str(missing)]
    assert [o["status"] for o in out] == ["ok", "no_speech", "failed", "failed"]
    assert out[0]["label"] in tiny_bundle_labels(tiny_bundle)
    assert out[1]["error"] == "no_speech" and "no speech detected (2.0 s" in out[1]["message"]
    assert out[1]["duration_s"] == 2.0 and out[1]["notes"] == []
    assert out[2]["error"] == "unsupported_audio" and str(broken) in out[2]["message"]
    assert out[3]["error"] == "not_found" and "missing.wav" in out[3]["message"]
    assert code == 1  # two files could not be read


def test_predict_table_lists_every_file_given_with_its_reason_when_it_has_no_emotion(
    tiny_bundle, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # short names: the table folds long paths over lines
    Path("speech.wav").write_bytes(wav(talk()))
    Path("quiet.wav").write_bytes(wav(silence(2.0)))
    code = cli_main.main(["predict", "--model", str(tiny_bundle), "speech.wav", "quiet.wav", "missing.wav"])
    out = capsys.readouterr().out
    names = ("speech.wav", "quiet.wav", "missing.wav")
    rows = {name: line for line in out.splitlines() for name in names if name in line}
    assert set(rows) == {"speech.wav", "quiet.wav", "missing.wav"}  # a row for each, not only those with an emotion
    assert "no speech" in rows["quiet.wav"] and "failed" in rows["missing.wav"]
    assert any(label in rows["speech.wav"] for label in tiny_bundle_labels(tiny_bundle))
    assert code == 1


def tiny_bundle_labels(bundle: Path) -> list[str]:
    return json.loads((bundle / "model.json").read_text())["labels"]


def test_predict_json_error_codes_are_the_services(tiny_bundle, client, tmp_path, capsys):
    broken = b"RIFF not really a wave file at all"
    (tmp_path / "b.wav").write_bytes(broken)
    cli_main.main(["predict", "--json", "--model", str(tiny_bundle), str(tmp_path / "b.wav")])
    cli = json_lines(capsys.readouterr().out)[0]["error"]
    service = client.post("/v1/predict", files={"file": ("b.wav", broken, "audio/wav")}).json()["error"]
    assert cli == service == "unsupported_audio"


def test_predict_json_names_a_missing_path_and_a_folder_apart_from_bad_audio(tiny_bundle, tmp_path, capsys):
    sf.write(tmp_path / "nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    paths = [tmp_path / "missing.wav", tmp_path, tmp_path / "nan.wav"]
    assert cli_main.main(["predict", "--json", "--model", str(tiny_bundle), *map(str, paths)]) == 1
    codes = [line["error"] for line in json_lines(capsys.readouterr().out)]
    assert codes == ["not_found", "not_a_file", "unusable_audio"]


def test_no_speech_is_exit_status_0_in_predict_stream_and_analyze_and_ok_in_batch(tiny_bundle, tmp_path, capsys):
    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(wav(silence(2.0)))
    model = ["--model", str(tiny_bundle)]
    codes = {
        "predict": cli_main.main(["predict", *model, str(quiet)]),
        "predict --json": cli_main.main(["predict", "--json", *model, str(quiet)]),
        "stream": cli_main.main(["stream", *model, str(quiet)]),
        "analyze": cli_main.main(["analyze", *model, "--quiet", "--no-plot", "-o", str(tmp_path / "rep"), str(quiet)]),
        "batch": cli_main.main(["batch", str(quiet), "--out", str(tmp_path / "b"), *model, "--workers", "1", "--json"]),
    }
    assert codes == dict.fromkeys(codes, 0)
    err = capsys.readouterr().err
    assert err.count("no speech detected (2.0 s of silence or noise)") == 4  # predict twice, stream, analyze
    import pyarrow.parquet as pq

    row = pq.read_table(tmp_path / "b" / "files.parquet").to_pylist()[0]
    assert (row["status"], row["verdict"]) == ("ok", "no speech")


def test_readme_states_the_one_exit_status_rule():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "no speech is an answer, not an error" in readme.lower()


def test_truncated_file_without_speech_keeps_its_note_in_predict_and_the_service(tiny_bundle, client, tmp_path, capsys):
    data = cut_in_half(wav(silence(3.0)))
    path = tmp_path / "cut.wav"
    path.write_bytes(data)
    assert cli_main.main(["predict", "--json", "--model", str(tiny_bundle), str(path)]) == 0
    captured = capsys.readouterr()
    assert json_lines(captured.out)[0]["notes"] == [ENDED_EARLY]
    assert f"warning: {path}: {ENDED_EARLY}" in captured.err
    for route in ("/v1/predict", "/v1/analyze"):
        body = client.post(route, files={"file": ("cut.wav", data, "audio/wav")}).json()
        assert body["error"] == "no_speech" and body["notes"] == [ENDED_EARLY], route


# -- item 5: lost or mixed results --------------------------------------------------------------------------------


def test_analyze_of_two_files_with_one_stem_writes_both_reports_and_says_which_is_which(tiny_bundle, tmp_path, capsys):
    folder, other = tmp_path / "a", tmp_path / "b"
    folder.mkdir()
    other.mkdir()
    first, second, third = folder / "x.wav", folder / "x.flac", other / "x.wav"
    first.write_bytes(wav(talk()))
    sf.write(second, silence(2.0), 16000)
    third.write_bytes(wav(talk()))
    out = tmp_path / "rep"
    args = ["analyze", "--model", str(tiny_bundle), "--quiet", "--no-plot", "-o", str(out)]
    assert cli_main.main([*args, str(first), str(second), str(third), str(third)]) == 0
    printed = capsys.readouterr().out
    reports = sorted(p.name for p in out.glob("*.timeline.json"))
    assert len(reports) == 4, reports
    sources = {json.loads((out / r).read_text())["source"] for r in reports}
    assert sources == {str(first), str(second), str(third)}
    for path in (first, second, third):
        assert f"(from {path})" in printed
    assert f"rep/x.flac.timeline.json (from {second})" in printed


def test_batch_resumed_with_another_bundle_of_the_same_name_is_refused_in_one_line(tmp_path, capsys):
    from tiny_model import write_tiny_bundle

    first, second = write_tiny_bundle(tmp_path / "m1", seed=0), write_tiny_bundle(tmp_path / "m2", seed=1)
    assert (
        json.loads((first / "model.json").read_text())["name"]
        == json.loads((second / "model.json").read_text())["name"]
    )
    clip = tmp_path / "in" / "a.wav"
    clip.parent.mkdir()
    clip.write_bytes(wav(talk()))
    out = tmp_path / "results"
    run = ["batch", str(clip.parent), "--out", str(out), "--workers", "1", "--no-progress", "--model"]
    assert cli_main.main([*run, str(first)]) == 0
    capsys.readouterr()
    clip.with_name("b.wav").write_bytes(wav(talk()))
    assert cli_main.main([*run, str(second)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another bundle named 'tiny-test'" in err and "another --out folder" in err
    assert cli_main.main([*run, str(first)]) == 0  # the same bundle (by content) resumes
    run_info = json.loads((out / "run.json").read_text())
    assert run_info["model_sha256"].startswith("sha256:") and len(run_info["model_sha256"]) == 7 + 64


# -- item 6: two-party calls --------------------------------------------------------------------------------------


def two_party_call() -> np.ndarray:
    """``(frames, 2)``: party 0 speaks in the first half, party 1 (another voice) in the second."""
    out = np.zeros((16000 * 6, 2), dtype=np.float32)
    out[4000 : 4000 + 32000, 0] = vowel(2.0, f0=120.0, seed=1)
    out[52000 : 52000 + 32000, 1] = vowel(2.0, f0=230.0, seed=2)
    return out


def test_predict_split_gives_each_channel_and_the_whole_call(tiny_bundle, tmp_path, capsys):
    path = tmp_path / "call.wav"
    sf.write(path, two_party_call(), 16000)
    lonely = tmp_path / "lonely.wav"
    sf.write(lonely, np.stack([vowel(2.0, seed=3), np.zeros(32000, np.float32)], axis=1), 16000)
    model = ["--model", str(tiny_bundle)]
    assert cli_main.main(["predict", "--json", "--channels", "split", *model, str(path), str(lonely)]) == 0
    call, one = json_lines(capsys.readouterr().out)
    assert [c["channel"] for c in call["channels"]] == [0, 1]
    assert [c["status"] for c in call["channels"]] == ["ok", "ok"]
    assert all(1.5 < c["speech_s"] < 2.5 for c in call["channels"])
    assert 3.0 < call["speech_s"] < 5.0  # the whole call: both parties
    assert [c["status"] for c in one["channels"]] == ["ok", "no_speech"]
    assert cli_main.main(["predict", *model, str(path)]) == 0  # without split: no per-channel answers
    assert "channel" not in capsys.readouterr().out
    assert cli_main.main(["predict", "--channels", "split", *model, str(path)]) == 0
    table = capsys.readouterr().out
    assert "(channel 0)" in table and "(channel 1)" in table


def test_predict_split_answers_the_channels_when_the_mix_has_no_speech(tiny_bundle, client, tmp_path, capsys):
    """One party's line is loud noise: the mix holds no speech the detector finds, the other channel does. The
    channels' answers are given (they were lost to one ``no speech``), the whole call's fields are empty."""
    noisy = np.stack([talk(), 0.3 * np.random.default_rng(0).standard_normal(len(talk()))], axis=1)
    path = tmp_path / "noisy_line.wav"
    sf.write(path, np.clip(noisy, -1, 1), 16000)
    model = ["--model", str(tiny_bundle)]
    assert cli_main.main(["predict", "--json", "--channels", "split", *model, str(path)]) == 0
    captured = capsys.readouterr()
    (answer,) = json_lines(captured.out)
    assert answer["status"] == "ok" and answer["label"] is None and answer["speech_s"] == 0.0
    assert "no speech detected" in answer["message"] and "in the mix of the channels" in captured.err
    assert [c["status"] for c in answer["channels"]] == ["ok", "no_speech"] and answer["channels"][0]["label"]
    body = client.post("/v1/predict?channels=split", files={"file": ("n.wav", path.read_bytes(), "audio/wav")})
    assert body.status_code == 200, body.text
    served = body.json()
    assert "label" not in served and served["message"].endswith("in the mix of the channels")  # nulls left out
    assert [(c["status"], c.get("label"), c.get("probabilities")) for c in served["channels"]] == [
        (c["status"], c.get("label"), c.get("probabilities")) for c in answer["channels"]
    ]
    assert client.post("/v1/predict", files={"file": ("n.wav", path.read_bytes(), "audio/wav")}).status_code == 422


def test_service_predict_split_is_answered_per_channel_never_ignored(client):
    buf = io.BytesIO()
    sf.write(buf, two_party_call(), 16000, format="WAV")
    files = {"file": ("call.wav", buf.getvalue(), "audio/wav")}
    split = client.post("/v1/predict?channels=split", files=files)
    assert split.status_code == 200
    body = split.json()
    assert [c["channel"] for c in body["channels"]] == [0, 1] and body["label"]
    mixed = client.post("/v1/predict", files=files).json()
    assert mixed.get("channels") is None
    assert {k: body[k] for k in ("label", "probabilities", "speech_s")} == {
        k: mixed[k] for k in ("label", "probabilities", "speech_s")
    }
    assert client.post("/v1/predict?channels=both", files=files).status_code == 422


def test_batch_split_writes_a_row_per_channel_after_the_whole_call(tiny_bundle, tmp_path):
    import pandas as pd

    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "call.wav", two_party_call(), 16000)
    sf.write(folder / "mono.wav", talk(), 16000)
    out = tmp_path / "results"
    argv = ["batch", str(folder), "--out", str(out), "--model", str(tiny_bundle), "--workers", "1", "--no-progress"]
    assert cli_main.main([*argv, "--channels", "split"]) == 0
    files = pd.read_parquet(out / "files.parquet")
    call = files[files.path == str(folder / "call.wav")]
    assert call["channel"].tolist()[0] is None or pd.isna(call["channel"].tolist()[0])
    assert call["channel"].tolist()[1:] == [0, 1]
    whole, first, second = call.to_dict("records")
    assert first["n_segments"] == second["n_segments"] == 1 and whole["n_segments"] == 2  # the mix hears both
    assert first["verdict"].startswith("mostly") and second["verdict"].startswith("mostly")
    segments = pd.read_parquet(out / "segments.parquet")
    assert len(segments[segments.path == str(folder / "call.wav")]) == 4  # the mix's two, then one per channel
    assert len(files[files.path == str(folder / "mono.wav")]) == 2  # the file and its one channel
    assert cli_main.main([*argv, "--channels", "split"]) == 0  # resumed: the same rows, none lost or doubled
    assert pd.read_parquet(out / "files.parquet").equals(files)


def test_batch_split_whole_call_row_is_predict_splits_whole_call_answer(tiny_bundle, tmp_path, capsys):
    import pandas as pd

    folder = tmp_path / "calls"
    folder.mkdir()
    path = folder / "call.wav"
    call = two_party_call()
    call[52000 : 52000 + 32000, 0] = 0.5 * vowel(2.0, f0=180.0, seed=4)  # party 0 talks over party 1's turn
    sf.write(path, call, 16000)
    model = ["--model", str(tiny_bundle)]
    assert cli_main.main(["predict", "--json", "--channels", "split", *model, str(path)]) == 0
    (answer,) = json_lines(capsys.readouterr().out)
    out = tmp_path / "results"
    argv = ["batch", str(folder), "--out", str(out), *model, "--workers", "1", "--no-progress", "--channels", "split"]
    assert cli_main.main(argv) == 0
    rows = pd.read_parquet(out / "files.parquet").to_dict("records")
    whole = next(r for r in rows if pd.isna(r["channel"]))
    assert whole["dominant_emotion"] == answer["label"]
    assert whole["speech_s"] == pytest.approx(answer["speech_s"], abs=1e-3)
    assert whole["n_segments"] == answer["segments"]
    assert {k: whole[f"prob_{k}"] for k in answer["probabilities"]} == pytest.approx(answer["probabilities"], abs=1e-4)
    for row, channel in zip(
        sorted((r for r in rows if not pd.isna(r["channel"])), key=lambda r: r["channel"]), answer["channels"]
    ):
        assert row["dominant_emotion"] == channel["label"]
        assert row["speech_s"] == pytest.approx(channel["speech_s"], abs=1e-3)
        assert {k: row[f"prob_{k}"] for k in channel["probabilities"]} == pytest.approx(
            channel["probabilities"], abs=1e-4
        )


# -- item 7: the page keeps no palette of its own -------------------------------------------------------------------


def test_healthz_serves_the_one_palette_and_the_page_keeps_no_copy(client, tiny):
    from speech_emotion.report import EMOTION_COLORS

    colours = client.get("/healthz").json()["colors"]
    assert colours == {label: EMOTION_COLORS[label] for label in tiny.labels}
    page = (Path(__file__).resolve().parents[1] / "src" / "speech_emotion" / "service" / "web" / "app.js").read_text()
    assert not any(colour.lower() in page.lower() for colour in EMOTION_COLORS.values())
    assert "health.colors" in page


def test_create_app_is_a_short_assembly_of_routers_with_every_route(client):
    import inspect

    from speech_emotion.service import app

    assert len(inspect.getsource(app.create_app).splitlines()) < 80
    assert {"/healthz", "/v1/predict", "/v1/analyze"} <= set(client.app.openapi()["paths"])
    for path in ("/", "/docs", "/static/app.js", "/healthz"):
        assert client.get(path).status_code == 200, path
    with client.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"


# -- item 9: smaller ----------------------------------------------------------------------------------------------


def test_a_very_quiet_recording_gets_a_low_level_note_in_every_door(tiny_bundle, client, tmp_path, capsys):
    samples = talk() / np.abs(talk()).max() * 10 ** (-63 / 20)  # peak -63 dBFS (the issue had speech at -76)
    path = tmp_path / "quiet.flac"
    sf.write(path, samples, 16000, subtype="PCM_24")
    note = "very low level: peak -63 dBFS (below -60 dBFS)"
    model = ["--model", str(tiny_bundle)]
    cli_main.main(["predict", "--json", *model, str(path)])
    captured = capsys.readouterr()
    assert any(note in n for n in json_lines(captured.out)[0]["notes"]), captured.out
    assert f"warning: {path}: {note}" in captured.err
    cli_main.main(["analyze", *model, "--quiet", "--no-plot", "-o", str(tmp_path / "rep"), str(path)])
    assert f"warning: {path}: {note}" in capsys.readouterr().err
    assert any(note in n for n in json.loads((tmp_path / "rep" / "quiet.timeline.json").read_text())["notes"])
    cli_main.main(["stream", *model, str(path)])
    assert f"warning: {path}: {note}" in capsys.readouterr().err
    cli_main.main(["batch", str(path), "--out", str(tmp_path / "b"), *model, "--workers", "1", "--no-progress"])
    import pyarrow.parquet as pq

    assert note in pq.read_table(tmp_path / "b" / "files.parquet").to_pylist()[0]["notes"]
    data = path.read_bytes()
    for route in ("/v1/predict", "/v1/analyze"):
        body = client.post(route, files={"file": ("q.flac", data, "audio/flac")}).json()
        assert any(note in n for n in body["notes"]), (route, body)


def test_loud_sound_without_speech_says_the_detector_may_have_missed_speech_in_predict_and_the_service(
    tiny_bundle, client, tmp_path, capsys
):
    t = np.arange(3 * 16000) / 16000
    data = wav(0.5 * np.sin(2 * np.pi * 440 * t))  # a tone at -6 dBFS: no speech, but not silence either
    path = tmp_path / "tone.wav"
    path.write_bytes(data)
    assert cli_main.main(["predict", "--json", "--model", str(tiny_bundle), str(path)]) == 0
    captured = capsys.readouterr()
    note = "sound peaking at -6 dBFS held no speech for the speech detector"
    assert json_lines(captured.out)[0]["status"] == "no_speech"
    assert any(note in n for n in json_lines(captured.out)[0]["notes"]) and f"warning: {path}: {note}" in captured.err
    body = client.post("/v1/predict", files={"file": ("tone.wav", data, "audio/wav")}).json()
    assert body["error"] == "no_speech" and any(note in n for n in body["notes"])
    quiet = tmp_path / "hiss.wav"  # quieter than -20 dBFS: no such note
    quiet.write_bytes(wav(np.random.default_rng(0).standard_normal(3 * 16000) * 0.01))
    assert cli_main.main(["predict", "--json", "--model", str(tiny_bundle), str(quiet)]) == 0
    assert json_lines(capsys.readouterr().out)[0]["notes"] == []


def test_split_channels_keep_their_own_level_notes_in_stream_and_analyze(tiny_bundle, tmp_path, capsys):
    t = np.arange(3 * 16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "call.flac"
    sf.write(path, np.stack([np.zeros_like(tone), tone], axis=1), 16000)  # silence on channel 0, a tone on 1
    note = "sound peaking at -6 dBFS"
    assert cli_main.main(["stream", "--jsonl", "--channels", "split", "--model", str(tiny_bundle), str(path)]) == 0
    captured = capsys.readouterr()
    ends = {e["channel"]: e["notes"] for e in json_lines(captured.out) if e["type"] == "end"}
    assert ends[0] == [] and any(note in n for n in ends[1])  # each channel its own (both had channel 1's)
    assert f"warning: {path} (channel 1): {note}" in captured.err and "(channel 0)" not in captured.err
    model = ["--model", str(tiny_bundle)]
    assert (
        cli_main.main(
            ["analyze", "--channels", "split", *model, "--quiet", "--no-plot", "-o", str(tmp_path), str(path)]
        )
        == 0
    )
    assert f"warning: {path} (channel 1): {note}" in capsys.readouterr().err  # analyze warned channel 0's only


def test_predict_split_without_speech_on_any_channel_still_answers_each_channel(tiny_bundle, client, tmp_path, capsys):
    """Silence on channel 0, a loud tone on 1: no speech anywhere. Each channel's ``no_speech`` answer, with its own
    notes, is given by the CLI and the service alike (it was one whole-file ``no_speech`` without ``channels``)."""
    t = np.arange(3 * 16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "call.flac"
    sf.write(path, np.stack([np.zeros_like(tone), tone], axis=1), 16000)
    model = ["--model", str(tiny_bundle)]
    assert cli_main.main(["predict", "--json", "--channels", "split", *model, str(path)]) == 0
    captured = capsys.readouterr()
    (answer,) = json_lines(captured.out)
    assert answer["status"] == "no_speech"
    channels = answer["channels"]
    assert [(c["channel"], c["status"]) for c in channels] == [(0, "no_speech"), (1, "no_speech")]
    assert channels[0]["notes"] == [] and any("sound peaking at -6 dBFS" in n for n in channels[1]["notes"])
    assert f"warning: {path} (channel 1): sound peaking at -6 dBFS" in captured.err
    assert cli_main.main(["predict", "--channels", "split", *model, str(path)]) == 0
    table = capsys.readouterr().out
    assert "(channel 0)" in table and "(channel 1)" in table
    body = client.post("/v1/predict?channels=split", files={"file": ("c.flac", path.read_bytes(), "audio/flac")})
    assert body.status_code == 422 and body.json()["error"] == "no_speech"
    assert [(c["status"], c["notes"]) for c in body.json()["channels"]] == [(c["status"], c["notes"]) for c in channels]
    plain = client.post("/v1/predict", files={"file": ("c.flac", path.read_bytes(), "audio/flac")})
    assert plain.status_code == 422 and "channels" not in plain.json()


def test_a_normal_level_recording_has_no_level_note(tiny_bundle, tmp_path, capsys):
    path = tmp_path / "normal.wav"
    path.write_bytes(wav(talk() * 10 ** (-50 / 20) / 0.3))  # peak -50 dBFS: quiet but fine
    cli_main.main(["predict", "--json", "--model", str(tiny_bundle), str(path)])
    assert json_lines(capsys.readouterr().out)[0]["notes"] == []


def test_the_upload_limit_is_named_in_mib_everywhere(client):
    from speech_emotion.service.limits import too_large

    assert "20 MiB limit" in too_large(20).detail
    root = Path(__file__).resolve().parents[1]
    table = (root / "docs" / "service.md").read_text()
    assert "20 MiB" in table and "| 20 MB |" not in table
    page = (root / "src" / "speech_emotion" / "service" / "web" / "app.js").read_text()
    assert " MB" not in page and "MiB" in page


def test_predict_shows_progress_on_a_terminal_only(tiny_bundle, tmp_path, capsys, monkeypatch):
    import speech_emotion.cli.predict as predict_cli

    path = tmp_path / "long.wav"
    path.write_bytes(wav(np.concatenate([talk()] * 6)))  # 15.6 s: read in two blocks
    model = ["--model", str(tiny_bundle)]
    monkeypatch.setattr(predict_cli, "_on_terminal", lambda: True)
    assert cli_main.main(["predict", *model, str(path)]) == 0
    err = capsys.readouterr().err
    assert "long.wav: 100% 16/16 s" in err, err
    assert cli_main.main(["predict", "--json", *model, str(path)]) == 0  # machine output: no bar
    assert "%" not in capsys.readouterr().err
    monkeypatch.setattr(predict_cli, "_on_terminal", lambda: False)  # a pipe or a log
    assert cli_main.main(["predict", *model, str(path)]) == 0
    assert "%" not in capsys.readouterr().err


def test_predict_progress_ends_at_exactly_100_percent_with_no_time_left(tiny_bundle, tmp_path, capsys, monkeypatch):
    import speech_emotion.cli.predict as predict_cli

    path = tmp_path / "sad.wav"
    path.write_bytes(wav(np.concatenate([talk(), vowel(1.44, seed=2)])))  # 4.04 s: not a whole tenth of a second
    monkeypatch.setattr(predict_cli, "_on_terminal", lambda: True)
    assert cli_main.main(["predict", "--model", str(tiny_bundle), str(path)]) == 0
    err = capsys.readouterr().err
    assert "sad.wav: 100% 4/4 s [" in err, err
    assert "101%" not in err and "<-" not in err, err


def test_predict_progress_of_a_file_that_does_not_say_its_length_counts_seconds(
    tiny_bundle, tmp_path, capsys, monkeypatch
):
    """A browser's WebM announces no length (duration 0): the bar counts seconds read instead of a percentage (it
    raised a TypeError formatting a missing total, on a terminal only)."""
    import speech_emotion.cli.predict as predict_cli

    path = tmp_path / "recorded.wav"
    path.write_bytes(wav(talk()))
    real = predict_cli.open_blocks

    def unannounced(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        blocks = real(*args, **kwargs)
        blocks.duration_s = 0.0
        return blocks

    monkeypatch.setattr(predict_cli, "open_blocks", unannounced)
    monkeypatch.setattr(predict_cli, "_on_terminal", lambda: True)
    assert cli_main.main(["predict", "--model", str(tiny_bundle), str(path)]) == 0
    err = capsys.readouterr().err
    assert "recorded.wav: 3 s [" in err and "Traceback" not in err and "%" not in err, err


def test_a_second_websocket_config_is_refused_as_the_docs_say(client):
    from test_service_stream import expect_error, read_until_closed

    with client.websocket_connect("/v1/stream") as ws:
        ws.receive_json()
        ws.send_text(json.dumps({"type": "config", "sample_rate": 16000}))
        assert ws.receive_json()["type"] == "config"
        ws.send_text(json.dumps({"type": "config", "sample_rate": 48000}))
        messages, code = read_until_closed(ws)
    expect_error(messages, code, 1008, "config_repeated")
    docs = (Path(__file__).resolve().parents[1] / "docs" / "service.md").read_text()
    assert "send one JSON config message" in docs and "`config_repeated`" in docs


def test_the_level_note_starts_below_60_dbfs_and_skips_digital_silence():
    from speech_emotion.levels import low_level_note

    assert "peak -76 dBFS" in low_level_note(10 ** (-76 / 20))
    assert low_level_note(10 ** (-59 / 20)) is None and low_level_note(0.0) is None


def test_integer_samples_get_the_low_level_note_as_floats_do(tiny_bundle):
    """A library caller feeding int16 (as read from a sound card) is judged on full scale, as the engine scales it."""
    from speech_emotion.recognizer import Recognizer
    from speech_emotion.streaming import StreamEnd, StreamingRecognizer

    quiet = talk() / np.abs(talk()).max() * 10 ** (-63 / 20)
    ends = []
    for samples in (quiet.astype(np.float32), np.round(quiet * 32767).astype(np.int16)):
        engine = StreamingRecognizer(Recognizer.load(tiny_bundle, threads=1))
        engine.feed(samples, 16000)
        ends += [event for event in engine.close() if isinstance(event, StreamEnd)]
    assert [[n.split(":")[0] for n in end.notes] for end in ends] == [["very low level"]] * 2


def test_float_input_beyond_full_scale_gets_a_clipping_note_in_every_door(tiny_bundle, client, tmp_path, capsys):
    """Float samples beyond [-1, 1] are clipped on the way in (the answer changes): every door says so; an over of a
    few tenths of a dB (a decoded MP3) gets no note."""
    from speech_emotion.levels import over_full_scale_note

    assert over_full_scale_note(1.05) is None and over_full_scale_note(1.0) is None
    samples = talk() / np.abs(talk()).max() * 4.0  # peak +12 dBFS: int16-range values scaled wrongly, say
    path = tmp_path / "loud.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    note = "samples beyond full scale (peak +12.0 dBFS) were clipped to [-1, 1]"
    model = ["--model", str(tiny_bundle)]
    cli_main.main(["predict", "--json", *model, str(path)])
    captured = capsys.readouterr()
    assert any(note in n for n in json_lines(captured.out)[0]["notes"]), captured.out
    assert f"warning: {path}: {note}" in captured.err
    cli_main.main(["stream", *model, str(path)])
    assert f"warning: {path}: {note}" in capsys.readouterr().err
    body = client.post("/v1/predict", files={"file": ("l.wav", path.read_bytes(), "audio/wav")}).json()
    assert any(note in n for n in body["notes"]), body


def test_with_split_channels_only_the_clipped_channel_and_the_whole_call_get_the_clipping_note(
    tiny_bundle, tmp_path, capsys
):
    import pandas as pd

    noisy = 4.0 * np.random.default_rng(0).standard_normal(len(talk()))
    folder = tmp_path / "calls"
    folder.mkdir()
    path = folder / "call.wav"
    sf.write(path, np.stack([talk(), noisy], axis=1), 16000, subtype="FLOAT")
    from speech_emotion.calls import predict_call
    from speech_emotion.recognizer import Recognizer

    call = predict_call(path, Recognizer.load(tiny_bundle, threads=1))
    clipped = [
        any(n.startswith("samples beyond full scale") for n in notes)
        for notes in (
            (call.whole or call.whole_no_speech).notes,
            *((c.prediction or c.no_speech).notes for c in call.channels),
        )
    ]
    assert clipped == [True, False, True]
    model = ["--model", str(tiny_bundle)]
    cli_main.main(["predict", "--channels", "split", *model, str(path)])  # the warning names the channel
    err = capsys.readouterr().err
    assert f"warning: {path} (channel 1): samples beyond full scale" in err and "(channel 0)" not in err
    out = tmp_path / "out"
    cli_main.main(["batch", str(folder), "--out", str(out), "--channels", "split", *model, "--no-progress"])
    rows = pd.read_parquet(out / "files.parquet")
    notes = [str(n).startswith("samples beyond full scale") for n in rows["notes"]]  # the whole call's row, then 0, 1
    assert list(rows["channel"].fillna(-1)) == [-1, 0, 1] and notes == [True, False, True]  # each channel its own


def test_feeding_a_stream_counts_its_audio_once(tiny_bundle):
    """``feed`` conditions and steps the engine: the end's duration is the audio's, and a stream that stops at half
    its announced length gets the "ended early" note (it was counted twice, which hid the note)."""
    from speech_emotion.recognizer import Recognizer
    from speech_emotion.streaming import StreamEnd, StreamingRecognizer

    engine = StreamingRecognizer(Recognizer.load(tiny_bundle, threads=1))
    engine.feed(talk().astype(np.float32), 16000)
    (end,) = [e for e in engine.close(duration_s=2 * len(talk()) / 16000) if isinstance(e, StreamEnd)]
    assert end.duration_s == pytest.approx(len(talk()) / 16000)
    assert any(n.startswith("file ended early") for n in end.notes), end.notes


def test_a_file_without_one_sample_is_unreadable_through_every_door(tiny_bundle, tmp_path, capsys):
    """A WAV header and no samples: predict and analyze said "contains no audio samples" (exit 1), stream said
    "no speech" (exit 0); now every command says the former."""
    path = tmp_path / "zero_samples.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    model = ["--model", str(tiny_bundle)]
    for command in (["predict"], ["stream"], ["stream", "--jsonl"], ["analyze", "--no-plot", "-o", str(tmp_path)]):
        assert cli_main.main([*command, *model, str(path)]) == 1, command
        captured = capsys.readouterr()
        assert f"error: {path}: contains no audio samples" in captured.err, (command, captured.err)
