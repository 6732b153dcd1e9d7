"""Issue 21 item 8: training on unusable data is refused in one line (``--force`` trains anyway, with warnings and
no unqualified "validation accuracy 1.000"), ``--epochs`` is refused in one line for the recipes without epochs, and
a single split prints no "± 0.000". No model is trained here: the recipe is replaced where training would start."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from speech_emotion.cli import main as cli_main
from synth import emotion_clip

pytest.importorskip("torch")


def small_corpus(folder: Path, emotions=("angry", "sad"), speakers=("s1",), per_emotion: int = 5) -> Path:
    """A CSV manifest of ``per_emotion`` generated clips per emotion and speaker."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["path,label,speaker"]
    for speaker in speakers:
        for emotion in emotions:
            for i in range(per_emotion):
                path = folder / f"{speaker}-{emotion}-{i}.wav"
                sf.write(path, emotion_clip(emotion, seed=i), 16000)
                rows.append(f"{path.name},{emotion},{speaker}")
    manifest = folder / "clips.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


class FakeRecipe:
    """Stands in for a recipe: a perfect-looking history on any data, and a folder as its bundle."""

    def fit(self, corpus, train, val, workdir):
        Path(workdir).mkdir(parents=True, exist_ok=True)
        return [{"epoch": 1, "train_loss": 0.1, "val_loss": 0.01, "train_acc": 1.0, "val_acc": 1.0}]

    def export(self, out):
        Path(out).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def fake_recipe(monkeypatch):
    import speech_emotion.training.recipes as recipes

    monkeypatch.setattr(recipes, "make_recipe", lambda name, **options: FakeRecipe())


def test_train_on_two_emotions_of_one_speaker_is_refused_in_one_line(tmp_path, capsys, fake_recipe):
    manifest = small_corpus(tmp_path / "data")
    out = tmp_path / "bundle"
    assert cli_main.main(["train", "--data", str(manifest), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "too small to train and validate on" in captured.err
    assert "1 speaker" in captured.err and "angry 1, sad 1" in captured.err and "--force" in captured.err
    assert not out.exists() and "validation accuracy" not in captured.out


def test_train_force_trains_with_warnings_and_qualifies_the_validation_accuracy(tmp_path, capsys, fake_recipe):
    manifest = small_corpus(tmp_path / "data", emotions=("angry",))
    out = tmp_path / "bundle"
    assert cli_main.main(["train", "--data", str(manifest), "--out", str(out), "--force"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: training anyway")]
    assert len(warnings) == 3  # one emotion, one speaker, an emotion of one speaker
    assert "validation accuracy 1.000 on data too small to trust it" in captured.out


def test_train_on_enough_data_says_nothing_about_its_size(tmp_path, capsys, fake_recipe):
    manifest = small_corpus(tmp_path / "data", speakers=("s1", "s2", "s3"), per_emotion=4)  # 12 per emotion
    assert cli_main.main(["train", "--data", str(manifest), "--out", str(tmp_path / "b")]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "too small" not in captured.out


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("recipe", ["whisper-base-probe", "whisper-base-general", "whisper-base-multicorpus"])
def test_epochs_on_a_recipe_without_epochs_is_refused_in_one_line(tmp_path, capsys, command, recipe):
    manifest = small_corpus(tmp_path / "data", per_emotion=1)
    argv = [command, "--recipe", recipe, "--epochs", "3", "--data", str(manifest), "--out", str(tmp_path / "o")]
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"recipe {recipe} has no epochs" in err and "unknown option" not in err


def test_epochs_help_says_which_recipes_have_epochs(capsys):
    with pytest.raises(SystemExit):
        cli_main.main(["train", "--help"])
    assert "cnn-lstm; the whisper-base recipes" in " ".join(capsys.readouterr().out.split())


def test_a_single_split_prints_no_spread(tmp_path, capsys, monkeypatch):
    import speech_emotion.evaluation.run as run_module

    def one_split(*args, **kwargs):
        return {"ua": 0.5, "ua_std": 0.0, "wa": 0.5, "macro_f1": 0.5, "folds": [{"ua": 0.5}]}

    monkeypatch.setattr(run_module, "run_evaluation", one_split)
    manifest = small_corpus(tmp_path / "data", per_emotion=1)
    argv = ["evaluate", "--protocol", "random-80-20", "--data", str(manifest), "--out", str(tmp_path / "o")]
    assert cli_main.main(argv) == 0
    out = capsys.readouterr().out
    assert "±" not in out and "UA 0.500 (one split)" in out
