from __future__ import annotations

import json
import os

import pytest

from speech_emotion.batch.inputs import collect_jobs, make_job
from speech_emotion.errors import DataError


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_input_finds_audio_recursively_and_leaves_out_other_and_hidden_files(tmp_path):
    a = _touch(tmp_path / "2024" / "jan" / "a.wav")
    b = _touch(tmp_path / "b.FLAC")
    _touch(tmp_path / "notes.txt")
    _touch(tmp_path / ".trash" / "c.wav")
    _touch(tmp_path / ".d.wav")
    jobs = collect_jobs(tmp_path)
    assert sorted(j.path for j in jobs.jobs) == sorted([str(a), str(b)])
    assert jobs.skipped == [str(tmp_path / "notes.txt")]
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
