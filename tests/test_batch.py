"""Batch runs end to end on a generated archive: bad files, both runners (local, Ray), resume after a kill."""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speech_emotion.batch import BatchOptions, run_batch
from speech_emotion.batch.inputs import collect_jobs
from speech_emotion.batch.state import FILES_TABLE, SEGMENTS_TABLE, ResultStore, failed_result
from speech_emotion.cli.main import main
from synth import emotion_clip, silence

GOOD = 24
EMOTIONS = ("happy", "sad", "angry", "calm")
TIMING_COLUMNS = ["process_s", "cpu_s"]
"""Columns that legitimately differ between two runs of the same job."""


def write_archive(root: Path, good: int = GOOD) -> dict[str, Path]:
    """Nested folders of short two-utterance calls, plus one file of each kind of bad input."""
    for i in range(good):
        folder = root / f"2026-0{1 + i % 3}" / f"agent{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        a, b = EMOTIONS[i % 4], EMOTIONS[(i + 1) % 4]
        sr = 16000 if i % 2 else 8000
        clip = np.concatenate([emotion_clip(a, i, sr), silence(0.6, sr), emotion_clip(b, 100 + i, sr)])
        sf.write(folder / f"call{i:03d}.{'flac' if i % 5 == 0 else 'wav'}", clip, sr)
    bad = root / "bad"
    bad.mkdir()
    files = {
        "corrupt": bad / "corrupt.wav",
        "empty": bad / "empty.wav",
        "header_only": bad / "header_only.wav",
        "unsupported": bad / "text.mp3",
        "silent": bad / "silent.flac",
        "unreadable": bad / "unreadable.wav",
    }
    files["corrupt"].write_bytes(os.urandom(3000))
    files["empty"].write_bytes(b"")
    sf.write(files["header_only"], np.zeros(0, dtype=np.float32), 16000)
    files["unsupported"].write_text("this is not audio\n" * 50)
    sf.write(files["silent"], silence(2.0), 16000)
    sf.write(files["unreadable"], emotion_clip("sad", 7), 16000)
    files["unreadable"].chmod(0)
    (root / "README.txt").write_text("not audio: left out\n")
    (root / ".trash").mkdir()
    sf.write(root / ".trash" / "deleted.wav", emotion_clip("sad", 8), 16000)
    return files


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("archive")
    return root, write_archive(root)


@pytest.fixture(scope="module")
def local_run(archive, tiny_bundle, tmp_path_factory):
    """One complete local run over the archive (2 workers): the reference the other tests compare with."""
    out = tmp_path_factory.mktemp("local-out")
    summary = run_batch(BatchOptions(archive[0], out, model=tiny_bundle, workers=2, progress=False))
    return summary, out


def _tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    files = pd.read_parquet(out / FILES_TABLE).drop(columns=TIMING_COLUMNS)
    return files, pd.read_parquet(out / SEGMENTS_TABLE)


def test_local_run_records_every_file_and_bad_files_with_their_reason(archive, local_run):
    root, bad = archive
    summary, out = local_run
    files, segments = _tables(out)
    assert summary.files_total == len(files) == GOOD + len(bad)
    assert files["path"].is_unique and files["path"].is_monotonic_increasing
    errors = dict(zip(files["path"], files["error"]))
    assert "cannot decode audio" in errors[str(bad["corrupt"])]
    assert "file is empty (0 bytes)" in errors[str(bad["empty"])]
    assert "contains no audio samples" in errors[str(bad["header_only"])]
    assert "cannot decode audio" in errors[str(bad["unsupported"])]
    if os.geteuid() != 0:  # root reads a file whatever its permissions
        assert "permission denied" in errors[str(bad["unreadable"])]
    silent = files.set_index("path").loc[str(bad["silent"])]
    assert silent["status"] == "ok" and silent["speech_s"] == 0 and pd.isna(silent["dominant_emotion"])
    good = files[files["path"].str.contains("/agent")]
    assert len(good) == GOOD and (good["status"] == "ok").all()
    assert good["duration_s"].between(3.5, 4.2).all()
    shares = good.filter(like="share_").sum(axis=1)
    assert np.allclose(shares, 1.0, atol=1e-3)
    assert (good["n_segments"] >= 1).all()
    with_speech = files[files["n_segments"] > 0]
    assert segments.groupby("path").size().to_dict() == dict(zip(with_speech["path"], with_speech["n_segments"]))
    assert (segments["end_s"] > segments["start_s"]).all()
    probs = segments.filter(like="prob_").sum(axis=1)
    assert np.allclose(probs, 1.0, atol=1e-3)
    assert summary.files_done + summary.files_failed == len(files)
    assert summary.audio_s == pytest.approx(files["duration_s"].sum())
    assert summary.peak_worker_rss_mb and len(summary.peak_worker_rss_mb) <= 2


def test_second_run_skips_everything_and_rewrites_identical_tables(archive, local_run, tiny_bundle):
    _, out = local_run
    before = _tables(out)
    summary = run_batch(BatchOptions(archive[0], out, model=tiny_bundle, workers=2, progress=False))
    assert summary.files_skipped == summary.files_total and summary.files_done == summary.files_failed == 0
    after = _tables(out)
    pd.testing.assert_frame_equal(before[0], after[0])
    pd.testing.assert_frame_equal(before[1], after[1])


def test_the_driver_prepares_the_features_before_any_worker_starts(archive, tiny_bundle, tmp_path, monkeypatch):
    """The tiny bundle's librosa features: their numba kernels are compiled once by the driver, not by every worker
    at the same moment (which can corrupt numba's cache for good: numba#10128)."""
    from speech_emotion.batch import runner

    events = []
    monkeypatch.setattr(runner, "prepare_for_processes", lambda name, options: events.append(("prepare", name)))

    class Recording:
        workers = 1

        def run(self, jobs, model, on_result):
            events.append(("run", len(jobs)))

    monkeypatch.setattr(runner, "make_runner", lambda options, workers: Recording())
    run_batch(BatchOptions(archive[0] / "2026-01" / "agent0", tmp_path, model=tiny_bundle, progress=False))
    assert [e[0] for e in events] == ["prepare", "run"] and events[0][1] == "librosa"


def test_failed_files_are_kept_as_failed_unless_retry_failed(archive, tiny_bundle, tmp_path):
    root, _ = archive
    jobs = collect_jobs(root / "2026-01" / "agent0")
    with ResultStore(tmp_path, "tiny-test", _labels(tiny_bundle)) as store:  # as if an earlier run failed them
        store.write_part([failed_result(j, f"{j.path}: transient NFS error") for j in jobs.jobs])
    options = BatchOptions(root / "2026-01" / "agent0", tmp_path, model=tiny_bundle, workers=1, progress=False)
    summary = run_batch(options)
    assert summary.files_skipped == len(jobs.jobs) and summary.table_failed == len(jobs.jobs)
    options.retry_failed = True
    summary = run_batch(options)
    assert summary.files_done == len(jobs.jobs) and summary.table_ok == len(jobs.jobs)
    files = pd.read_parquet(tmp_path / FILES_TABLE)
    assert files["error"].isna().all() and len(files) == len(jobs.jobs)


def test_cli_manifest_run_carries_extra_columns_and_prints_a_summary(archive, tiny_bundle, tmp_path, capsys):
    root, bad = archive
    listed = sorted(root.glob("2026-02/*/*"))[:4]
    rows = [f"{p.relative_to(root)},agent-{i},{i * 10}" for i, p in enumerate(listed)]
    rows += ["bad/corrupt.wav,agent-x,99", "missing/gone.wav,agent-y,0"]
    manifest = root / "manifest.csv"
    manifest.write_text("path,agent,queue_seconds\n" + "\n".join(rows) + "\n")
    out = tmp_path / "results"
    code = main(["batch", str(manifest), "--out", str(out), "--model", str(tiny_bundle), "--workers", "1"])
    assert code == 1  # every file tried, then the failures said in the exit status
    captured = capsys.readouterr()
    printed = captured.out
    assert "files: 4 done, 2 failed, 0 skipped" in printed
    assert captured.err.strip().splitlines()[-1].startswith("error: 2 of 6 files failed")
    assert "real-time factor" in printed and "gone.wav: no such file" in printed
    files = pd.read_parquet(out / FILES_TABLE).set_index("path")
    assert list(files.columns[-2:]) == ["agent", "queue_seconds"]
    assert files.loc[str(listed[1]), "agent"] == "agent-1" and files.loc[str(listed[1]), "queue_seconds"] == "10"
    assert files.loc[str(root / "missing" / "gone.wav"), "status"] == "failed"


def _start_and_stop(cmd: list[str], parts: Path, sig: int, after_parts: int) -> subprocess.Popen:
    """Start a CLI run and send it ``sig`` once ``after_parts`` committed parts exist."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list(parts.glob("*.files.parquet"))) < after_parts and proc.poll() is None:
        assert time.monotonic() < deadline, "no results committed within 60 s"
        time.sleep(0.01)
    proc.descendants = _descendants(proc.pid)  # type: ignore[attr-defined]
    proc.send_signal(sig)
    proc.wait()
    return proc


def _descendants(pid: int) -> set[int]:
    """Processes below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _wait_gone(pids: set[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (alive := {p for p in pids if Path(f"/proc/{p}").exists()}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"processes left behind: {alive}"


def test_interrupted_and_killed_runs_resume_without_losing_or_duplicating_files(
    archive, local_run, tiny_bundle, tmp_path
):
    root, _ = archive
    out = tmp_path / "results"
    cmd = [sys.executable, "-m", "speech_emotion.cli.main", "batch", str(root), "--out", str(out)]
    cmd += ["--model", str(tiny_bundle), "--workers", "1", "--commit-every", "2", "--no-progress"]

    stopped = _start_and_stop(cmd, out / "parts", signal.SIGTERM, after_parts=1)  # like Ctrl-C
    stderr = stopped.stderr.read().decode()
    assert stopped.returncode == 143 and "run the same command again to resume" in stderr, stderr  # 128 + SIGTERM
    first = len(list((out / "parts").glob("*.files.parquet")))

    killed = _start_and_stop(cmd, out / "parts", signal.SIGKILL, after_parts=first + 1)  # no clean-up
    assert killed.returncode == -signal.SIGKILL
    _wait_gone(killed.descendants, timeout_s=15)  # its workers and fork server end by themselves
    assert not (out / FILES_TABLE).exists() and not (out / SEGMENTS_TABLE).exists()  # never a partial table
    with ResultStore(out, "tiny-test", _labels(tiny_bundle)) as store:
        committed = len(store.statuses())
    assert 0 < committed < GOOD

    summary = run_batch(BatchOptions(root, out, model=tiny_bundle, workers=1, progress=False))
    assert summary.files_skipped == committed
    assert summary.files_done + summary.files_failed == summary.files_total - committed
    resumed, reference = _tables(out), _tables(local_run[1])
    pd.testing.assert_frame_equal(resumed[0], reference[0])
    pd.testing.assert_frame_equal(resumed[1], reference[1])


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_batch_exits_130_after_ctrl_c_and_143_after_sigterm(sig, status, tmp_path, monkeypatch, capsys):
    import speech_emotion.cli.batch as batch_cli
    from speech_emotion.batch.runner import _sigterm_as_interrupt

    def signalled_run(options: BatchOptions) -> None:  # the signal arrives while the runner runs
        with _sigterm_as_interrupt():
            os.kill(os.getpid(), sig)
            time.sleep(10)  # the handler interrupts this

    monkeypatch.setattr(batch_cli, "run_batch", signalled_run)
    # a suite started in the background (`nohup ./test &`) inherits SIGINT ignored: give this test Python's own handler
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert main(["batch", str(tmp_path), "--out", str(tmp_path / "results")]) == status
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "run the same command again to resume" in capsys.readouterr().err


def test_worker_crash_is_recorded_for_that_file_and_the_run_goes_on(archive, tiny_bundle, tmp_path, monkeypatch):
    from speech_emotion.batch import local

    root, _ = archive
    jobs = collect_jobs(root / "2026-03")
    victim = jobs.jobs[2].path
    real = local.analyze_one

    def crashing(job, recognizer, channels="mix"):
        if job.path == victim:
            os._exit(1)  # like a segfault in a native decoder
        return real(job, recognizer, channels)

    monkeypatch.setattr(local, "analyze_one", crashing)  # seen by forked workers
    for module in local.PRELOAD:  # what the fork server would have imported: forks inherit it
        importlib.import_module(module)
    results = []
    local.LocalRunner(workers=2, start_method="fork").run(jobs.jobs, str(tiny_bundle), results.append)
    assert sorted(r.path for r in results) == sorted(j.path for j in jobs.jobs)
    failed = [r for r in results if r.status == "failed"]
    assert [r.path for r in failed] == [victim] and "worker process died" in failed[0].error


def test_ctrl_c_during_a_long_file_ends_the_run_at_once(archive, tiny_bundle, monkeypatch):
    """Workers ignore Ctrl-C and may be minutes into a long file: the runner stops them rather than waiting, which
    could hang the exit for good (fresh-user trial: 3 of 6 Ctrl-Cs never returned). A forked worker must also not
    inherit the driver's SIGTERM-as-Ctrl-C handler, which made it survive being terminated."""
    from speech_emotion.batch import local
    from speech_emotion.batch.runner import _sigterm_as_interrupt

    root, _ = archive
    jobs = collect_jobs(root / "2026-03").jobs[:3]
    monkeypatch.setattr(local, "analyze_one", lambda job, recognizer, channels="mix": time.sleep(600))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a CLI's Ctrl-C, whatever ran before
    for module in local.PRELOAD:
        importlib.import_module(module)
    children_before = set(multiprocessing.active_children())
    workers = []

    def ctrl_c() -> None:  # while the workers are busy
        workers.extend(set(multiprocessing.active_children()) - children_before)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Timer(2.0, ctrl_c).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        try:
            with _sigterm_as_interrupt():  # as run_batch runs it
                local.LocalRunner(workers=2, start_method="fork").run(jobs, str(tiny_bundle), lambda result: None)
        finally:
            signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 20
    assert len(workers) == 2
    assert [w.exitcode for w in workers] == [-signal.SIGTERM] * 2  # ended by terminate(), not by the kill after it
    assert not [p for p in multiprocessing.active_children() if p not in children_before and p.is_alive()]


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance for this module's Ray tests (the runner joins it instead of starting its own)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install .[distributed])")
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, logging_level="ERROR")
    yield ray
    ray.shutdown()


def test_ray_runner_gives_the_same_tables_as_the_local_runner(archive, local_run, tiny_bundle, tmp_path, local_ray):
    options = BatchOptions(archive[0], tmp_path, model=tiny_bundle, runner="ray", workers=2, progress=False)
    summary = run_batch(options)
    assert summary.runner == "ray" and summary.files_done + summary.files_failed == summary.files_total
    ray_tables, local_tables = _tables(tmp_path), _tables(local_run[1])
    pd.testing.assert_frame_equal(ray_tables[0], local_tables[0])
    pd.testing.assert_frame_equal(ray_tables[1], local_tables[1])


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SPEECH_EMOTION_SLOW_TESTS"),
    reason="~40 s of Ray actor restarts on 2 cores; set SPEECH_EMOTION_SLOW_TESTS=1 to run",
)
def test_ray_worker_crash_is_recorded_for_that_file_only(archive, tiny_bundle, local_ray, monkeypatch):
    from speech_emotion.batch import ray_runner

    jobs = collect_jobs(archive[0] / "2026-01").jobs[:4]
    victim = jobs[1].path

    class Crashing(ray_runner._RayAnalyzer):  # defined here: shipped to the actors by value
        def __call__(self, batch):
            if victim in [str(p) for p in batch["path"]]:
                os._exit(1)  # like a segfault in a native decoder
            return super().__call__(batch)

    monkeypatch.setattr(ray_runner, "_RayAnalyzer", Crashing)
    results = []
    ray_runner.RayRunner(workers=2, batch_size=2).run(jobs, str(tiny_bundle), results.append)
    assert sorted(r.path for r in results) == sorted(j.path for j in jobs)
    failed = [r for r in results if r.status == "failed"]
    assert [r.path for r in failed] == [victim] and "Ray worker died" in failed[0].error


def test_ray_runner_without_ray_installed_says_how_to_install_it(monkeypatch):
    from speech_emotion.batch.ray_runner import import_ray
    from speech_emotion.errors import SpeechEmotionError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(SpeechEmotionError, match=r"pip install \.\[distributed\]"):
        import_ray()


def _labels(bundle: Path) -> tuple[str, ...]:
    from speech_emotion.batch.runner import model_info

    return model_info(bundle)[2]


def test_batch_tries_every_file_then_exits_1_saying_how_many_failed(tiny_bundle, tmp_path, capsys):
    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "a.wav", emotion_clip("sad", 1), 16000)
    (folder / "b.wav").write_bytes(os.urandom(3000))
    sf.write(folder / "c.wav", emotion_clip("happy", 2), 16000)
    argv = ["batch", str(folder), "--out", str(tmp_path / "out"), "--model", str(tiny_bundle), "--workers", "1"]
    assert main([*argv, "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "files: 2 done, 1 failed" in out  # the good files after the bad one were analysed all the same
    assert err.strip().splitlines()[-1].startswith("error: 1 of 3 files failed")
    assert main([*argv, "--no-progress"]) == 1  # resumed: the failure is still there (until --retry-failed)
    out, err = capsys.readouterr()
    assert "error: 1 of 3 files failed" in err
    # the summary says which file failed before (it said "0 failed" and named none)
    assert "0 failed, 3 skipped (done before, 1 of them failed)" in out
    assert f"  failed earlier: {folder / 'b.wav'}" in out
    (folder / "b.wav").unlink()
    sf.write(folder / "b.wav", emotion_clip("angry", 3), 16000)
    assert main([*argv, "--no-progress", "--retry-failed"]) == 0
    assert "failed" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--address", "ray://head:10001"], "--address ray://head:10001 is a Ray cluster's address: add --runner ray"),
        (["--path-column", "audio"], "--path-column names a manifest's column"),
        (["--out", "CALLS"], "is the input folder: give the results a folder of their own"),
    ],
)
def test_batch_options_that_would_be_ignored_are_usage_errors(extra, message, tiny_bundle, tmp_path, capsys):
    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "a.wav", emotion_clip("sad", 1), 16000)
    extra = [str(folder) if arg == "CALLS" else arg for arg in extra]
    argv = ["batch", str(folder), "--out", str(tmp_path / "out"), "--model", str(tiny_bundle), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out" / "files.parquet").exists()


def test_a_missing_manifest_with_path_column_is_named_missing(tiny_bundle, tmp_path, capsys):
    argv = ["batch", str(tmp_path / "calls.csv"), "--out", str(tmp_path / "o"), "--path-column", "audio"]
    assert main([*argv, "--model", str(tiny_bundle)]) == 1
    err = capsys.readouterr().err
    assert "no such folder, manifest or file" in err and "--path-column" not in err


def test_batch_engine_is_the_old_name_of_runner_and_still_works_saying_so(tiny_bundle, tmp_path, capsys):
    from speech_emotion.cli.main import build_parser

    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "a.wav", emotion_clip("sad", 1), 16000)
    argv = ["batch", str(folder), "--out", str(tmp_path / "out"), "--model", str(tiny_bundle), "--workers", "1"]
    assert main([*argv, "--engine", "local", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["runner"] == "local"
    assert err.strip() == "speech-emotion batch: --engine is deprecated, use --runner local"
    help_text = build_parser(["batch"])._subparsers._group_actions[0].choices["batch"].format_help()
    assert "--runner" in help_text and "--engine" not in help_text


def test_a_ctrl_c_while_workers_are_submitted_is_held_until_the_submits_are_done():
    """A submit may start a worker; an interrupt between the fork and the pool registering it left a worker that
    nobody stopped (it printed a traceback once the run's queues were gone)."""
    from speech_emotion.batch.local import _interrupts_held

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = []
    try:
        with pytest.raises(KeyboardInterrupt), _interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # Python runs a handler here: it must not raise inside the block
            done.append("all submitted")
        assert done == ["all submitted"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_forkserver_and_its_workers_ignore_ctrl_c_from_their_first_instruction():
    """A terminal's Ctrl-C reaches every process of the run: the server importing the workers' modules and a worker
    still starting printed a KeyboardInterrupt traceback each (fresh-user trial); the driver stops them itself."""
    code = (
        "import multiprocessing, signal\n"
        "from multiprocessing import forkserver\n"
        "from speech_emotion.batch.local import _start_forkserver_deaf_to_ctrl_c\n"
        "multiprocessing.set_start_method('forkserver')\n"
        "_start_forkserver_deaf_to_ctrl_c()\n"
        "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
        "pid = forkserver._forkserver._forkserver_pid\n"
        "mask = next(l for l in open(f'/proc/{pid}/status') if l.startswith('SigIgn:')).split()[1]\n"
        "print(int(mask, 16) >> (signal.SIGINT - 1) & 1)\n"
    )
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc (Linux)")

    def default_ctrl_c() -> None:  # as from a terminal, also when the suite runs in the background with SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, preexec_fn=default_ctrl_c
    )
    assert out.stdout.strip() == "1"


def test_a_rerun_on_part_of_the_input_says_the_other_results_are_left_out_of_the_tables(tiny_bundle, tmp_path, capsys):
    folder = tmp_path / "calls"
    folder.mkdir()
    for i, emotion in enumerate(("sad", "happy", "angry")):
        sf.write(folder / f"{emotion}.wav", emotion_clip(emotion, i), 16000)
    argv = ["batch", "--out", str(tmp_path / "out"), "--model", str(tiny_bundle), "--workers", "1", "--no-progress"]
    assert main([argv[0], str(folder), *argv[1:]]) == 0
    capsys.readouterr()
    assert main([argv[0], str(folder / "s*.wav"), *argv[1:]]) == 0
    out = capsys.readouterr().out
    assert "earlier results not in this input: 2 files" in out and "still kept under parts/" in out
    assert len(pd.read_parquet(tmp_path / "out" / FILES_TABLE)) == 1  # the tables hold the current input's files
    assert main([argv[0], str(folder), *argv[1:]]) == 0  # the whole input again: all three, nothing analysed again
    out = capsys.readouterr().out
    assert "0 done, 0 failed, 3 skipped" in out and "not in this input" not in out
    assert len(pd.read_parquet(tmp_path / "out" / FILES_TABLE)) == 3
