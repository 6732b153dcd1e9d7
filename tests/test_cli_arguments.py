"""Bad option values get one line and a non-zero exit before any work starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from speech_emotion.cli.main import main
from synth import write_ravdess_corpus


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('{"nosuch": 1}', "unknown option 'nosuch'"),
        ('{"train": 5}', "option train: expected a JSON object"),
        ('{"train": {"lr": "abc"}}', "option 'train.lr': expected a number like 0.001, got \"abc\""),
        ('{"train": {"epochs": 2.5}}', "option 'train.epochs': expected a whole number"),
        ('{"train": {"nosuch": 1}}', "unknown option 'train.nosuch'"),
        ('{"model": {"dropout": true}}', "option 'model.dropout'"),
    ],
)
def test_bad_recipe_options_are_one_line_before_training(options, message, tmp_path, capsys):
    pytest.importorskip("torch")
    data = tmp_path / "data"
    data.mkdir()
    code = main(
        ["train", "--recipe", "cnn-lstm", "--data", str(data), "--out", str(tmp_path / "b"), "--options", options]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('{"train": {"lr": -1}}', "option 'train.lr': must be greater than 0, got -1.0"),
        ('{"train": {"lr": 1e999}}', "option 'train.lr': must be a finite number and greater than 0, got inf"),
        ('{"train": {"lr": NaN}}', "option 'train.lr': must be a finite number"),
        ('{"train": {"batch_size": 0}}', "option 'train.batch_size': must be at least 1, got 0"),
        ('{"train": {"threads": 0}}', "option 'train.threads': must be at least 1, got 0"),
        ('{"train": {"monitor": "foo"}}', "option 'train.monitor': must be one of val_loss, val_ua, got 'foo'"),
        ('{"train": {"max_frames": 0}}', "option 'train.max_frames': must be at least 1, got 0"),
        ('{"train": {"label_smoothing": 2}}', "option 'train.label_smoothing': must be at least 0 and less than 1"),
        ('{"train": {"epochs": -1}}', "option 'train.epochs': must be at least 1, got -1"),
        ('{"epochs": -1}', "option 'epochs': must be at least 1, got -1"),
        ('{"train": {"seed": -5}}', "option 'train.seed': must be at least 0"),
        ('{"model": {"dropout": 1.5}}', "option 'model.dropout': must be at least 0 and less than 1"),
        ('{"model": {"pooling": "max"}}', "option 'model.pooling': must be one of attention, mean, last"),
        ('{"data": {"workers": 0}}', "option 'data.workers': must be at least 1, got 0"),
        ('{"data": {"augment": {"copies": -1}}}', "option 'data.augment.copies': must be at least 0"),
        ('{"ensemble": 0}', "option 'ensemble': must be at least 1, got 0"),
        ('{"ensemble": "two"}', "option 'ensemble': expected a whole number"),
    ],
)
def test_out_of_range_option_values_are_refused_in_one_line_before_any_work(
    command, options, message, tmp_path, capsys
):
    pytest.importorskip("torch")
    data = write_ravdess_corpus(tmp_path / "data", actors=(1, 2, 3), emotions=("neutral", "angry"), takes=1)
    out = tmp_path / "out"
    code = main([command, "--data", str(data), "--out", str(out), "--options", options])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".train-*"))


def test_a_recipe_made_in_code_refuses_out_of_range_options_too():
    pytest.importorskip("torch")
    from speech_emotion.errors import ModelError
    from speech_emotion.training.recipes import make_recipe

    with pytest.raises(ModelError, match=r"option 'train.lr': must be greater than 0"):
        make_recipe("cnn-lstm", train={"lr": 0})
    with pytest.raises(ModelError, match=r"option 'probe.C': must be greater than 0"):
        make_recipe("whisper-base-multicorpus", probe={"C": 0})
    with pytest.raises(ModelError, match=r"option 'C': must be greater than 0"):
        make_recipe("whisper-base-probe", C=-1.0)


@pytest.mark.parametrize(
    ("recipe", "options", "message"),
    [
        ("whisper-base-probe", '{"score_with": "bogus"}', "'score_with' must be one of torch, onnx, onnx-int8"),
        ("whisper-base-probe", '{"nosuch": 1}', "unknown option 'nosuch' (known: probe, states, copies"),
        ("whisper-base-general", '{"nosuch": 1}', "unknown option 'nosuch' (known: probe, pooled, variants, anchor"),
        ("cnn-lstm", '{"ensembel": 2}', "unknown option 'ensembel' (known: model, train, data, ensemble"),
        ("whisper-base-multicorpus", '{"probe": {"masked": "yes"}}', 'expected true or false like true, got "yes"'),
        ("whisper-base-multicorpus", '{"quantize": "fp8"}', "'quantize' must be one of int8, none"),
        ("whisper-base-multicorpus", '{"probe": {"C": "x"}}', "option 'probe.C': expected a number"),
    ],
)
def test_whisper_recipes_refuse_unknown_options_and_values(recipe, options, message):
    pytest.importorskip("torch")
    import json

    from speech_emotion.errors import ModelError
    from speech_emotion.training.recipes import make_recipe

    with pytest.raises(ModelError, match=re.escape(message)):
        make_recipe(recipe, **json.loads(options))


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--recipe", "cnn-lstm", "--data", "d", "--out", "o", "--epochs", "0"],
        ["train", "--recipe", "cnn-lstm", "--data", "d", "--out", "o", "--epochs", "-1"],
        ["serve", "--port", "99999"],
        ["predict", "--threads", "0", "x.wav"],
        ["predict", "--threads", "100000", "x.wav"],  # more than the cores: it ran for minutes
        ["stream", "--threads", "100000", "x.wav"],
        ["serve", "--threads", "100000"],
        ["batch", "d", "--out", "o", "--workers", "0"],
    ],
)
def test_out_of_range_numbers_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "command", "unknown"),
    [
        (["predict", "--bogus", "x.wav"], "predict", "--bogus"),
        (["predict", "-v", "x.wav"], "predict", "-v"),
        (["stream", "a.flac", "b.flac"], "stream", "b.flac"),
    ],
)
def test_unrecognized_arguments_after_a_command_are_reported_with_that_commands_usage(argv, command, unknown, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: speech-emotion {command} ")
    assert err.endswith(f"speech-emotion {command}: error: unrecognized arguments: {unknown}\n")


@pytest.mark.parametrize("command", ["analyze", "batch", "evaluate", "train"])
def test_an_output_folder_that_is_a_file_is_refused(command, tmp_path: Path, capsys):
    target = tmp_path / "taken.wav"
    target.write_bytes(b"x")
    argv = {
        "analyze": ["analyze", "-o", str(target), "x.wav"],
        "batch": ["batch", str(tmp_path), "--out", str(target)],
        "evaluate": ["evaluate", "--data", str(tmp_path), "--out", str(target)],
        "train": ["train", "--data", str(tmp_path), "--out", str(target)],
    }[command]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def out_argv(command: str, out: str, tmp_path: Path) -> list[str]:
    """``command`` with its output folder option set to ``out`` (other arguments valid enough to reach it)."""
    return {
        "analyze": ["analyze", "-o", out, "x.wav"],
        "batch": ["batch", str(tmp_path), "--out", out],
        "evaluate": ["evaluate", "--data", str(tmp_path), "--out", out],
        "train": ["train", "--data", str(tmp_path), "--out", out],
        "train --workdir": ["train", "--data", str(tmp_path), "--out", str(tmp_path / "b"), "--workdir", out],
    }[command]


UNCREATABLE = [
    pytest.param("FILE/x", "Not a directory", id="under-a-file"),
    pytest.param(
        "/dev/null/x",
        "Not a directory",
        id="dev-null",
        marks=pytest.mark.skipif(not Path("/dev/null").exists(), reason="no /dev/null"),
    ),
    pytest.param(
        "/proc/x",
        "No such file or directory",
        id="proc",
        marks=pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc file system"),
    ),
    pytest.param("n" * 300, "File name too long", id="name-too-long"),
]


@pytest.mark.parametrize("command", ["analyze", "batch", "evaluate", "train", "train --workdir"])
@pytest.mark.parametrize(("out", "reason"), UNCREATABLE)
def test_an_output_folder_that_cannot_be_created_is_refused_in_one_line(command, out, reason, tmp_path, capsys):
    (tmp_path / "file.txt").write_bytes(b"x")
    out = out.replace("FILE", str(tmp_path / "file.txt"))
    with pytest.raises(SystemExit) as exit_info:
        main(out_argv(command, out, tmp_path))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{out}: cannot create folder ({reason})" in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("speech-emotion ")  # argparse: usage, then the one error line


def test_trying_an_output_folder_leaves_nothing_behind(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "out"
    with pytest.raises(SystemExit):
        main(["batch", str(tmp_path), "--out", str(out), "--workers", "0"])  # --out is fine, --workers is not
    assert "--workers" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path, tiny_bundle: Path) -> None:
    import subprocess
    import sys

    import soundfile as sf

    from synth import emotion_clip

    files = []
    for i in range(40):
        files.append(str(tmp_path / f"c{i}.wav"))
        sf.write(files[-1], emotion_clip("happy", seed=i), 16000)
    cmd = [sys.executable, "-m", "speech_emotion.cli.main", "predict", "--json", "--model", str(tiny_bundle), *files]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stdout.readline().startswith(b"{")
        proc.stdout.close()  # like `| head -1`
        err = proc.stderr.read().decode() if proc.stderr else ""
        code = proc.wait(timeout=120)
    assert code in (0, 141)  # 0 only if every line fitted in the pipe before it was closed
    assert "Traceback" not in err and "BrokenPipeError" not in err


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-upload-mb", "0"),
        ("--max-duration", "-1"),
        ("--idle-timeout", "nan"),
        ("--body-timeout", "inf"),
        ("--max-streams", "0"),
        ("--max-connections", "0"),
        ("--upload-workers", "0"),
    ],
)
def test_serve_limits_that_are_not_positive_are_refused_naming_the_flag(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", flag, value])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument {flag}:" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--window", "100"], "--window"),
        (["--window", "0"], "--window"),
        (["--window", "nan"], "--window"),
        (["--hop", "3"], "--hop"),
        (["--chunk-ms", "0"], "--chunk-ms"),
    ],
)
def test_stream_window_options_out_of_range_are_usage_errors_naming_the_flag(args, flag, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    path = tmp_path / "x.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    with pytest.raises(SystemExit) as exit_info:
        main(["stream", str(path), *args])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"speech-emotion stream: error: argument {flag}: ")  # usage, one error


def test_the_default_folder_given_as_a_path_loads_the_model_it_links(capsys):
    from speech_emotion.bundle import bundled_models_dir, resolve_model

    folder = bundled_models_dir() / "default"
    assert resolve_model(folder) == resolve_model("default")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('{"variants": ["nope"]}', "unknown variant 'nope' in option 'variants'"),
        ('{"variants": []}', "option 'variants' must be a non-empty list"),
        ('{"probe": {"layers": [9]}}', "option 'probe.layers' must list states 0-4"),
        ('{"probe": {"layers": []}}', "option 'probe.layers' must list states 0-4"),
    ],
)
def test_general_recipe_options_that_would_start_useless_work_are_refused_in_one_line(options, message):
    pytest.importorskip("torch")
    import json

    from speech_emotion.errors import ModelError
    from speech_emotion.training.recipes import make_recipe

    with pytest.raises(ModelError, match=message.replace("(", r"\(")):
        make_recipe("whisper-base-general", **json.loads(options))


def test_stream_hop_below_10_ms_and_windows_below_a_segment_are_usage_errors(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    path = tmp_path / "x.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    for command in ("stream", "analyze"):
        for args, flag in (
            (["--window", "3", "--hop", "1e-6"], "--hop"),
            (["--window", "0.2", "--hop", "0.1"], "--window"),
        ):
            extra = ["--out", str(tmp_path / "out")] if command == "analyze" else []
            with pytest.raises(SystemExit) as exit_info:
                main([command, str(path), *extra, *args])
            err = capsys.readouterr().err.strip()
            assert exit_info.value.code == 2
            assert err.splitlines()[-1].startswith(f"speech-emotion {command}: error: argument {flag}: ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--recipe", "nosuch"], "unknown recipe 'nosuch'; available: cnn-lstm,"),
        (["--recipe", "whisper-base-probe", "--options", "[1, 2]"], "--options must be a JSON object"),
        (["--recipe", "whisper-base-probe", "--options", "{C: 1}"], "--options is not valid JSON"),
        (["--recipe", "whisper-base-probe"], "needs PyTorch, which is not installed"),
    ],
)
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_without_pytorch_a_typo_is_named_before_the_install_instruction(command, extra, message, tmp_path, capsys):
    """The inference install (``./run``) has no PyTorch: a wrong recipe name or malformed --options is said as such
    (fresh-user trial: every mistake was answered with "install PyTorch")."""
    import importlib.util

    real = importlib.util.find_spec
    missing = pytest.MonkeyPatch()
    missing.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    try:
        code = main([command, "--data", str(tmp_path), "--out", str(tmp_path / "out"), *extra])
    finally:
        missing.undo()
    assert code == (1 if "PyTorch" in message else 2) and message in capsys.readouterr().err


def test_without_pytorch_a_wrong_condition_is_named_before_the_install_instruction(tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    missing = pytest.MonkeyPatch()
    missing.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    try:
        code = main(["evaluate", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--conditions", "phnoe"])
    finally:
        missing.undo()
    err = capsys.readouterr().err
    assert code == 2 and "unknown condition 'phnoe'" in err and "PyTorch" not in err
