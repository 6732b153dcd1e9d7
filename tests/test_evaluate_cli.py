from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from speech_emotion.cli.main import main
from synth import emotion_clip, write_ravdess_corpus

OPTIONS = json.dumps(
    {
        "ensemble": 1,
        "model": {"conv_channels": [16], "lstm_hidden": 8},
        "train": {"epochs": 2, "progress": False},
        "data": {"augment": {"copies": 1}, "workers": 1, "progress": False},
    }
)


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    root = write_ravdess_corpus(tmp_path / "corpus", actors=(1, 2, 3), takes=1)
    (root / "FOLDS.tsv").write_text("speaker\tfold\nActor_01\t1\nActor_02\t2\nActor_03\t3\n")
    return root


def test_evaluate_writes_metrics_json_and_exits_0(corpus_dir, tmp_path):
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "--recipe",
            "cnn-lstm",
            "--protocol",
            "actor-6fold",
            "--data",
            str(corpus_dir),
            "--out",
            str(out),
            "--options",
            OPTIONS,
        ]
    )
    assert code == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["model"] == "cnn-lstm" and doc["protocol"] == "actor-6fold" and len(doc["folds"]) == 3
    assert doc["command"].startswith("speech-emotion")
    # calibration of the full 8-way output, per fold and pooled, with its reliability diagram
    assert all({"ece", "brier", "nll", "confident_wrong"} <= set(f["calibration"]) for f in doc["folds"])
    assert doc["calibration"]["n"] == sum(f["n"] for f in doc["folds"]) and "bins" in doc["calibration"]
    assert (out / "reliability.png").is_file()
    # a recipe without a dimensional head: no dimension scores, no plot, no error
    assert "dimensions" not in doc and all("dimensions" not in f for f in doc["folds"])
    assert not (out / "dimensions.png").exists()


def test_evaluate_accepts_another_fold_file(corpus_dir, tmp_path):
    folds = tmp_path / "two.tsv"
    folds.write_text("speaker\tfold\nActor_01\tA\nActor_02\tA\nActor_03\tB\n")
    out = tmp_path / "out"
    code = main(["evaluate", "--data", str(corpus_dir), "--folds", str(folds), "--out", str(out), "--options", OPTIONS])
    assert code == 0
    assert [f["fold"] for f in json.loads((out / "metrics.json").read_text())["folds"]] == ["foldA", "foldB"]


def test_random_80_20_protocol_runs_one_split(tmp_path):
    corpus_dir = write_ravdess_corpus(tmp_path / "corpus", actors=(1, 2, 3), takes=2)  # >= 8 test clips
    code = main(
        [
            "evaluate",
            "--protocol",
            "random-80-20",
            "--data",
            str(corpus_dir),
            "--out",
            str(tmp_path / "o"),
            "--options",
            OPTIONS,
        ]
    )
    assert code == 0
    assert len(json.loads((tmp_path / "o" / "metrics.json").read_text())["folds"]) == 1


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--data", "/no/such/dir"], "no such file", 1),
        (["--recipe", "no-such-recipe"], "unknown recipe", 2),
        (["--folds", "/no/such/folds.tsv"], "no such fold file", 1),
        (["--options", "{not json"], "not valid JSON", 2),
    ],
)
def test_evaluate_user_errors_are_one_line_exit_1_for_data_2_for_options(
    corpus_dir, tmp_path, capsys, args, message, code
):
    base = {"--data": str(corpus_dir), "--out": str(tmp_path / "o")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    argv = ["evaluate"] + [x for kv in base.items() for x in kv]
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(128, 256)) * 8, "cannot read fold file (not UTF-8 text)"),
        (b"", "cannot read fold file (the file is empty)"),
        (b"who\twhere\nActor_01\t1\n", "fold file needs columns 'speaker' and 'fold'"),
    ],
    ids=["binary", "empty", "other-columns"],
)
@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".bin"])
def test_a_fold_file_that_is_not_a_fold_table_is_refused_in_one_line(
    corpus_dir, tmp_path, capsys, content, message, suffix
):
    folds = tmp_path / f"folds{suffix}"
    folds.write_bytes(content if suffix == ".tsv" else content.replace(b"\t", b","))
    out = tmp_path / "o"
    assert main(["evaluate", "--data", str(corpus_dir), "--folds", str(folds), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {folds}: {message}"
    assert not out.exists()


def test_a_fold_holding_every_speaker_is_refused_in_one_line(corpus_dir, tmp_path, capsys):
    """Fresh-user trial: a fold file putting all speakers in one fold trained on 0 clips and ended in a traceback."""
    folds = tmp_path / "one-fold.tsv"
    folds.write_text("speaker\tfold\nActor_01\t1\nActor_02\t1\nActor_03\t1\n")
    out = tmp_path / "o"
    assert main(["evaluate", "--data", str(corpus_dir), "--folds", str(folds), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {folds}: fold 1 holds every speaker, leaving none to train on"
    assert not out.exists()


def test_a_binary_folds_tsv_beside_a_manifest_is_refused_in_one_line(tmp_path, capsys):
    import soundfile as sf

    root = tmp_path / "c"
    root.mkdir()
    for i in range(4):
        sf.write(root / f"clip{i}.wav", emotion_clip("sad", seed=i), 16000)
    rows = [f"clip{i}.wav\tsad\ts{i}" for i in range(4)]
    (root / "MANIFEST.tsv").write_text("path\temotion\tspeaker\n" + "\n".join(rows) + "\n")
    (root / "FOLDS.tsv").write_bytes(bytes(range(128, 256)))
    assert main(["train", "--data", str(root), "--out", str(tmp_path / "b")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {root / 'FOLDS.tsv'}: cannot read fold file (not UTF-8 text)"


@pytest.mark.parametrize("command", ["evaluate", "train"])
@pytest.mark.parametrize("value", ["-5", "4294967296", "x"])
def test_a_seed_outside_what_numpy_and_sklearn_take_is_refused_by_the_parser(
    command, value, corpus_dir, tmp_path, capsys
):
    argv = [command, "--data", str(corpus_dir), "--out", str(tmp_path / "o"), "--seed", value]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--protocol", "random-80-20"] if command == "evaluate" else argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --seed:" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_random_80_20_on_too_few_clips_is_one_data_error_line(tmp_path, capsys):
    root = write_ravdess_corpus(tmp_path / "c", actors=(1, 2, 3), takes=1)  # 24 clips: 5 test clips for 8 emotions
    out = tmp_path / "o"
    assert main(["evaluate", "--protocol", "random-80-20", "--data", str(root), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: random-80-20 cannot split 24 clips of 8 emotions") and "\n" not in err
    assert not out.exists()


def test_random_split_refuses_a_negative_seed_as_a_data_error():
    import pandas as pd

    from speech_emotion.errors import DataError
    from speech_emotion.training.splits import random_split

    corpus = pd.DataFrame({"emotion": ["happy", "sad"] * 10, "speaker": ["a"] * 20, "path": ["x"] * 20})
    assert len(random_split(corpus, seed=0)[0].test) == 4
    with pytest.raises(DataError, match="seed must be 0 to 4294967295, got -5"):
        random_split(corpus, seed=-5)


@pytest.mark.parametrize("value", ["", " ", ",", " , "])
def test_empty_conditions_are_refused_in_one_line_naming_the_valid_ones(corpus_dir, tmp_path, capsys, value):
    from speech_emotion.cli.evaluate import CONDITIONS

    out = tmp_path / "o"
    assert main(["evaluate", "--data", str(corpus_dir), "--out", str(out), "--conditions", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --conditions {value!r} names no condition; choose from {', '.join(CONDITIONS)} or 'all'"
    assert not out.exists()


def test_evaluate_without_fold_file_exits_1(tmp_path, capsys):
    root = write_ravdess_corpus(tmp_path / "c", actors=(1, 2, 3), takes=1)
    assert main(["evaluate", "--data", str(root), "--out", str(tmp_path / "o")]) == 1
    assert "FOLDS.tsv" in capsys.readouterr().err


def test_unknown_protocol_is_a_usage_error_exit_2(corpus_dir, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--protocol", "leave-none-out", "--data", str(corpus_dir), "--out", str(tmp_path)])
    assert exc.value.code == 2


def test_train_exports_a_bundle_that_predict_loads(corpus_dir, tmp_path, capsys):
    import soundfile as sf

    bundle = tmp_path / "bundle"
    assert main(["train", "--data", str(corpus_dir), "--out", str(bundle), "--options", OPTIONS]) == 0
    assert (bundle / "model.json").is_file() and (bundle / "model.onnx").is_file()
    wav = tmp_path / "x.wav"
    sf.write(wav, emotion_clip("sad", 9), 16000)
    capsys.readouterr()
    assert main(["predict", str(wav), "--model", str(bundle), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["label"] in line["probabilities"]


def test_model_on_train_is_a_deprecated_spelling_of_recipe_and_on_evaluate_names_a_bundle(capsys):
    from speech_emotion.cli.main import build_parser

    argv = ["train", "--model", "whisper-base-probe", "--data", "d", "--out", "o"]
    args = build_parser(argv).parse_args(argv)
    assert args.recipe == "whisper-base-probe"
    assert "deprecated; use --recipe" in capsys.readouterr().err
    argv = ["evaluate", "--model", "whisper-base-probe", "--data", "d", "--out", "o"]
    args = build_parser(argv).parse_args(argv)
    assert args.model == "whisper-base-probe" and args.recipe is None
    assert capsys.readouterr().err == ""


def test_a_logged_warning_is_a_lowercase_warning_line_that_names_the_folder_first(tiny_bundle, tmp_path):
    data = tmp_path / "in"  # a folder named "in": the line once read "skipped 2 clip(s) in in with labels ..."
    for label in ("sad", "happy", "boredom", "boredom2"):
        (data / label).mkdir(parents=True)
        sf.write(data / label / "a.wav", emotion_clip("sad", seed=1), 16000)
    argv = ["evaluate", "--model", str(tiny_bundle), "--data", "in", "--out", "out"]
    done = subprocess.run([sys.executable, "-m", "speech_emotion", *argv], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "warning: in: skipped 2 clip(s) with labels outside neutral/calm/" in done.stderr
    assert "WARNING" not in done.stderr
