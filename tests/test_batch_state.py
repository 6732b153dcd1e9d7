from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from speech_emotion.batch.state import FILES_TABLE, SEGMENTS_TABLE, ResultStore, failed_result
from speech_emotion.batch.worker import OK, FileResult, SegmentResult
from speech_emotion.errors import DataError

LABELS = ("calm", "angry")


def _ok(key: str, label: str = "calm", segments: int = 2) -> FileResult:
    probs = [0.8, 0.2] if label == "calm" else [0.1, 0.9]  # in LABELS order
    return FileResult(
        key,
        f"/a/{key}.wav",
        10,
        1,
        OK,
        duration_s=5.0,
        speech_s=2.0 * segments,
        dominant_emotion=label,
        shares={"calm": 1.0 if label == "calm" else 0.0, "angry": 0.0 if label == "calm" else 1.0},
        segments=[SegmentResult(2.0 * i, 2.0 * i + 1.5, label, max(probs), probs) for i in range(segments)],
    )


def _failed(key: str) -> FileResult:
    job = type("J", (), {"key": key, "path": f"/a/{key}.wav", "size": 10, "mtime_ns": 1})()
    return failed_result(job, f"/a/{key}.wav: cannot decode audio")


def test_statuses_and_tables_keep_only_the_latest_result_of_a_file(tmp_path):
    with ResultStore(tmp_path, "m", LABELS) as store:
        store.write_part([_failed("a"), _ok("b")])
        store.write_part([_ok("a", "angry", segments=1)])
        assert store.statuses() == {"a": "ok", "b": "ok"}
        files, segments = store.compact(["a", "b"])
    assert files["path"].to_pylist() == ["/a/a.wav", "/a/b.wav"]
    assert files["dominant_emotion"].to_pylist() == ["angry", "calm"]
    assert files["error"].to_pylist() == [None, None]
    seg = pd.read_parquet(tmp_path / SEGMENTS_TABLE)
    assert seg.groupby("key").size().to_dict() == {"a": 1, "b": 2}  # the failed try left no segments behind
    assert pq.read_table(tmp_path / FILES_TABLE).num_rows == 2


def test_tables_describe_only_the_jobs_of_the_current_input(tmp_path):
    with ResultStore(tmp_path, "m", LABELS) as store:
        store.write_part([_ok("a"), _ok("b")])
        files, segments = store.compact(["b"])
    assert files["key"].to_pylist() == ["b"]
    assert set(segments["key"].to_pylist()) == {"b"}


def test_segments_part_without_its_files_part_is_a_leftover_and_is_ignored(tmp_path):
    with ResultStore(tmp_path, "m", LABELS) as store:
        store.write_part([_ok("a")])
        # a run killed between the two renames of a chunk: segments committed, files not
        store.write_part([_ok("b")])
        files_part = sorted((tmp_path / "parts").glob("*.files.parquet"))[-1]
        files_part.unlink()
        (tmp_path / "parts" / ".x.files.parquet.123.tmp").write_bytes(b"half")
    with ResultStore(tmp_path, "m", LABELS) as store:
        assert store.statuses() == {"a": "ok"}
        assert len(list((tmp_path / "parts").glob("*.segments.parquet"))) == 1
        assert not list((tmp_path / "parts").glob(".*.tmp"))
        _, segments = store.compact(["a", "b"])
    assert set(segments["key"].to_pylist()) == {"a"}


def test_results_folder_of_another_model_is_refused(tmp_path):
    with ResultStore(tmp_path, "m", LABELS):
        pass
    with pytest.raises(DataError, match="another --out folder"), ResultStore(tmp_path, "other", LABELS):
        pass


def test_two_runs_cannot_write_the_same_results_folder(tmp_path):
    with ResultStore(tmp_path, "m", LABELS), pytest.raises(DataError, match="another batch run"):
        ResultStore(tmp_path, "m", LABELS).open()


def test_manifest_columns_are_joined_and_clashing_names_prefixed(tmp_path):
    extras = pd.DataFrame({"speaker": ["s1", "s2"], "status": ["new", "old"]}, index=pd.Index(["a", "b"], name="key"))
    with ResultStore(tmp_path, "m", LABELS) as store:
        store.write_part([_ok("a"), _failed("b")])
        files, _ = store.compact(["a", "b"], extras)
    assert files["speaker"].to_pylist() == ["s1", "s2"]
    assert files["input_status"].to_pylist() == ["new", "old"]
    assert files["status"].to_pylist() == ["ok", "failed"]


def test_manifest_columns_with_mixed_json_values_are_kept_as_text(tmp_path):
    extras = pd.DataFrame({"meta": [{"queue": 3}, "plain"]}, index=pd.Index(["a", "b"], name="key"))
    with ResultStore(tmp_path, "m", LABELS) as store:
        store.write_part([_ok("a"), _ok("b")])
        files, _ = store.compact(["a", "b"], extras)
    assert files["meta"].to_pylist() == ["{'queue': 3}", "plain"]


@pytest.mark.parametrize("damage", ["missing", "garbage", "not an object"])
def test_a_folder_with_results_but_no_readable_run_json_is_refused(tmp_path, damage):
    """Without run.json the model check had nothing to compare: another model's results were mixed in."""
    with ResultStore(tmp_path, "m", LABELS) as store:
        store.write_part([_ok("a")])
    info = tmp_path / "run.json"
    if damage == "missing":
        info.unlink()
    else:
        info.write_text("{nope" if damage == "garbage" else "[1, 2]")
    with pytest.raises(DataError, match="holds results but its run.json is missing or damaged"):
        ResultStore(tmp_path, "other", LABELS).open()


def test_a_new_folder_gets_its_run_json(tmp_path):
    with ResultStore(tmp_path / "new", "m", LABELS) as store:
        store.write_part([_ok("a")])
    assert (tmp_path / "new" / "run.json").is_file()


def test_a_damaged_part_is_one_error_naming_it(tmp_path):
    with ResultStore(tmp_path, "m", LABELS) as store:
        store.write_part([_ok("a")])
    (part,) = (tmp_path / "parts").glob("*.files.parquet")
    part.write_bytes(part.read_bytes()[:50])
    with ResultStore(tmp_path, "m", LABELS) as store, pytest.raises(DataError, match="damaged results part") as info:
        store.statuses()
    assert str(info.value).startswith(f"{part}: ") and "\n" not in str(info.value)
