from __future__ import annotations

import json
import os

import pytest
import soundfile as sf

from speech_emotion.batch import BatchSummary
from speech_emotion.batch.inputs import collect_jobs, make_job
from speech_emotion.cli.batch import print_summary
from speech_emotion.cli.main import main
from speech_emotion.errors import DataError
from synth import vowel


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_input_finds_audio_recursively_and_lists_every_file_it_leaves_out_with_the_reason(tmp_path):
    a = _touch(tmp_path / "2024" / "jan" / "a.wav")
    b = _touch(tmp_path / "b.FLAC")
    c = _touch(tmp_path / "c.M4A")
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / "empty.dat", b"")
    _touch(tmp_path / ".trash" / "c.wav")
    _touch(tmp_path / ".d.wav")
    os.symlink(tmp_path / "2024", tmp_path / "link")
    jobs = collect_jobs(tmp_path)
    assert sorted(j.path for j in jobs.jobs) == sorted([str(a), str(b), str(c)])
    assert sorted((item.path, item.reason) for item in jobs.left_out) == [
        (str(tmp_path / ".d.wav"), "hidden file"),
        (str(tmp_path / ".trash"), "hidden folder (not searched)"),
        (str(tmp_path / "empty.dat"), "file is empty (0 bytes)"),
        (str(tmp_path / "link"), "linked folder (not followed)"),
        (str(tmp_path / "notes.txt"), "cannot decode audio (format not recognised)"),
    ]
    assert jobs.extras is None


def test_glob_input_takes_every_matching_file(tmp_path):
    _touch(tmp_path / "x" / "one.wav")
    _touch(tmp_path / "y" / "two.wav")
    _touch(tmp_path / "y" / "three.ogg")
    jobs = collect_jobs(str(tmp_path / "**" / "*.wav"))
    assert sorted(os.path.basename(j.path) for j in jobs.jobs) == ["one.wav", "two.wav"]


def test_csv_manifest_resolves_relative_paths_and_carries_extra_columns(tmp_path):
    _touch(tmp_path / "audio" / "a.wav")
    (tmp_path / "m.csv").write_text("path,speaker,score\naudio/a.wav,s1,07\naudio/missing.wav,s2,3\n")
    jobs = collect_jobs(tmp_path / "m.csv")
    assert [j.path for j in jobs.jobs] == [str(tmp_path / "audio" / "a.wav"), str(tmp_path / "audio" / "missing.wav")]
    assert jobs.jobs[1].size == -1  # listed but absent: still a job, it will fail with its reason
    assert jobs.extras.loc[jobs.jobs[0].key].to_dict() == {"speaker": "s1", "score": "07"}


def test_a_file_listed_twice_is_analysed_once_and_the_repeat_is_listed_as_left_out(tmp_path):
    _touch(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("path,speaker\na.wav,s1\n./a.wav,s9\n")
    jobs = collect_jobs(tmp_path / "m.csv")
    assert [j.path for j in jobs.jobs] == [str(tmp_path / "a.wav")]
    assert jobs.extras.loc[jobs.jobs[0].key].to_dict() == {"speaker": "s1"}
    assert [(item.path, item.reason) for item in jobs.left_out] == [
        (str(tmp_path / "a.wav"), "listed again (manifest row 2): analysed once, with the first row's columns")
    ]


def test_tsv_and_jsonl_manifests_and_a_named_path_column(tmp_path):
    _touch(tmp_path / "a.wav")
    (tmp_path / "m.tsv").write_text("audio_file\tagent\na.wav\tbob\n")
    with pytest.raises(DataError, match="no path column"):
        collect_jobs(tmp_path / "m.tsv")
    jobs = collect_jobs(tmp_path / "m.tsv", path_column="audio_file")
    assert list(jobs.extras.columns) == ["agent"]
    (tmp_path / "m.jsonl").write_text(json.dumps({"file": "a.wav", "turns": 3}) + "\n")
    jobs = collect_jobs(tmp_path / "m.jsonl")
    assert jobs.extras.iloc[0].to_dict() == {"turns": 3}


def test_a_file_listed_twice_is_analysed_once(tmp_path):
    _touch(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("path\na.wav\n./a.wav\n")
    assert len(collect_jobs(tmp_path / "m.csv").jobs) == 1


def test_job_key_changes_when_the_file_changes(tmp_path):
    path = _touch(tmp_path / "a.wav", b"12345")
    before = make_job(path)
    assert make_job(path).key == before.key
    path.write_bytes(b"1234567")
    assert make_job(path).key != before.key


def test_missing_input_and_empty_folder_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        collect_jobs(tmp_path / "nope")
    with pytest.raises(DataError, match="no audio files"):
        collect_jobs(tmp_path)
    with pytest.raises(DataError, match="matches no file"):
        collect_jobs(str(tmp_path / "*.wav"))


def test_a_batch_run_counts_and_prints_every_file_it_leaves_out(tiny_bundle, tmp_path, capsys):
    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "call.wav", vowel(1.0), 16000)
    _touch(folder / "notes.txt", b"not audio\n" * 20)
    _touch(folder / "README", b"#!/bin/sh\n")
    _touch(folder / ".DS_Store", b"\0" * 40)
    out = tmp_path / "results"
    assert main(["batch", str(folder), "--out", str(out), "--model", str(tiny_bundle), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "left out: 3 files or folders (not analysed):" in printed
    for line in (
        f"  {folder / '.DS_Store'}: hidden file",
        f"  {folder / 'README'}: cannot decode audio (format not recognised)",
        f"  {folder / 'notes.txt'}: cannot decode audio (format not recognised)",
    ):
        assert line + "\n" in printed
    assert main(["batch", str(folder), "--out", str(out), "--model", str(tiny_bundle), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files_total"] == 1 and summary["files_left_out"] == 3
    assert sorted(summary["left_out"]) == sorted(line.strip() for line in printed.splitlines()[-3:])


def run_into_results_inside_the_input(folder, tiny_bundle, capsys) -> list[str]:  # noqa: ANN001
    """A folder with one call and a first batch run whose results lie inside it; that run's arguments."""
    folder.mkdir()
    sf.write(folder / "call.wav", vowel(1.0), 16000)
    argv = ["batch", str(folder), "--out", str(folder / "results"), "--model", str(tiny_bundle), "--workers", "1"]
    assert main(argv) == 0
    capsys.readouterr()
    return argv


def test_a_results_folder_inside_the_input_folder_is_neither_searched_nor_left_out(tiny_bundle, tmp_path, capsys):
    argv = run_into_results_inside_the_input(tmp_path / "calls", tiny_bundle, capsys)
    assert main([*argv, "--json"]) == 0  # the second run finds the first one's tables, lock and all
    summary = json.loads(capsys.readouterr().out)
    assert summary["files_total"] == 1 and summary["files_skipped"] == 1
    assert summary["files_left_out"] == 0 and summary["left_out"] == []


def test_an_earlier_runs_results_folder_inside_the_input_is_one_left_out_line_not_its_tables(
    tiny_bundle, tmp_path, capsys
):
    folder = tmp_path / "calls"
    run_into_results_inside_the_input(folder, tiny_bundle, capsys)
    again = ["batch", str(folder), "--out", str(folder / "results" / "v2"), "--model", str(tiny_bundle)]
    assert main([*again, "--workers", "1", "--json"]) == 0  # a new --out inside the older results folder
    summary = json.loads(capsys.readouterr().out)
    assert summary["files_total"] == 1
    assert summary["left_out"] == [f"{folder / 'results'}: results folder of an earlier batch run (not searched)"]
    with pytest.raises(DataError, match="the results folder of an earlier batch run"):  # given as the input itself
        collect_jobs(folder / "results")


def test_the_summary_prints_failures_under_the_tables_line_and_the_left_out_list_after_them(capsys):
    summary = BatchSummary(
        files_total=2,
        files_skipped=0,
        files_done=1,
        files_failed=1,
        table_ok=1,
        table_failed=1,
        failures=["calls/bad.wav: file is empty (0 bytes)"],
        files_left_out=1,
        left_out=["calls/notes.txt: cannot decode audio (format not recognised)"],
        files_table="results/files.parquet",
        segments_table="results/segments.parquet",
    )
    print_summary(summary)
    assert capsys.readouterr().out.splitlines()[-4:] == [
        "tables: results/files.parquet (1 ok, 1 failed), results/segments.parquet",
        "  failed: calls/bad.wav: file is empty (0 bytes)",
        "left out: 1 file or folder (not analysed):",
        "  calls/notes.txt: cannot decode audio (format not recognised)",
    ]
