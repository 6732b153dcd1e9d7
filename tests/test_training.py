from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from speech_emotion.bundle import read_bundle
from speech_emotion.conditioning import prepare
from speech_emotion.corpora import load_corpus
from speech_emotion.evaluation import run as run_module
from speech_emotion.evaluation.run import run_evaluation
from speech_emotion.recognizer import Recognizer
from speech_emotion.training import trainer
from speech_emotion.training.cnn_lstm import CnnLstmRecipe
from speech_emotion.training.data import Example
from speech_emotion.training.models import CnnLstm, CnnLstmOptions
from speech_emotion.training.recipes import make_recipe, recipe_class
from speech_emotion.training.trainer import TrainOptions, train_model
from synth import emotion_clip, write_ravdess_corpus

FAST = {
    "ensemble": 1,
    "model": {"conv_channels": [32, 32], "lstm_hidden": 16, "dropout": 0.1},
    "train": {"epochs": 12, "patience": 12, "progress": False, "lr": 3e-3},
    "data": {"augment": {"copies": 1}, "workers": 1, "progress": False},
}


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    root = write_ravdess_corpus(tmp_path / "corpus", actors=(1, 2, 3, 4), takes=2)
    (root / "FOLDS.tsv").write_text(
        "speaker\tfold\n" + "".join(f"Actor_{a:02d}\t{(a + 1) // 2}\n" for a in (1, 2, 3, 4))
    )
    return root


def _toy_examples(n: int, seed: int) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label = i % 4
        x = rng.normal(size=(int(rng.integers(20, 40)), 6)).astype(np.float32)
        x[:, label] += 2.0
        out.append(Example(x, label, i))
    return out


TOY = TrainOptions(epochs=6, lr=1e-2, batch_size=16, feature_masks=0, progress=False)


def _toy_model() -> CnnLstm:
    torch.manual_seed(0)
    return CnnLstm(CnnLstmOptions(n_features=6, n_classes=4, conv_channels=(8,), lstm_hidden=8))


def test_cnn_lstm_is_a_registered_recipe():
    assert isinstance(make_recipe("cnn-lstm"), CnnLstmRecipe)
    assert recipe_class("cnn-lstm") is CnnLstmRecipe


def test_training_keeps_the_best_epoch_and_writes_checkpoints(tmp_path):
    model = _toy_model()
    history = train_model(model, _toy_examples(64, 0), _toy_examples(16, 1), TOY, tmp_path)
    assert [h["epoch"] for h in history] == list(range(1, 7))
    assert {"epoch", "train_loss", "val_loss", "train_acc", "val_acc"} <= set(history[0])
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, best[name])
    assert max(h["val_acc"] for h in history) > 0.5


def test_early_stopping_ends_training_after_patience_epochs_without_improvement(tmp_path):
    history = train_model(
        _toy_model(),
        _toy_examples(32, 0),
        _toy_examples(8, 1),
        replace(TOY, epochs=50, patience=2, lr=1e-6),
        tmp_path,
    )
    assert len(history) < 50


def test_interrupted_training_resumes_to_the_same_result(tmp_path, monkeypatch):
    options = replace(TOY, epochs=5)
    train, val = _toy_examples(48, 0), _toy_examples(12, 1)
    reference = _toy_model()
    ref_history = train_model(reference, train, val, options, tmp_path / "ref")

    real_evaluate, calls = trainer.evaluate_model, []

    def interrupt_after_three_epochs(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate_model", interrupt_after_three_epochs)
    with pytest.raises(KeyboardInterrupt):
        train_model(_toy_model(), train, val, options, tmp_path / "run")
    monkeypatch.setattr(trainer, "evaluate_model", real_evaluate)
    resumed = _toy_model()
    history = train_model(resumed, train, val, options, tmp_path / "run")
    assert len(history) == 5
    assert [h["val_loss"] for h in history] == pytest.approx([h["val_loss"] for h in ref_history], rel=1e-5)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value)


def test_tiny_end_to_end_evaluation_writes_metrics_plots_and_predictions(corpus_dir, tmp_path, capsys):
    corpus = load_corpus(corpus_dir)
    out = tmp_path / "out"
    doc = run_evaluation("cnn-lstm", corpus, "actor-6fold", corpus_dir / "FOLDS.tsv", out, recipe_options=FAST)
    saved = json.loads((out / "metrics.json").read_text())
    assert {"model", "protocol", "ua", "wa", "macro_f1", "folds", "confusion_matrix", "labels"} <= set(saved)
    assert saved["ua"] == pytest.approx(doc["ua"])
    assert len(saved["folds"]) == 2 and all("ua" in f and "wa" in f and "macro_f1" in f for f in saved["folds"])
    assert saved["wall_time_s"] > 0
    for name in ("confusion.png", "curves.png", "predictions.csv"):
        assert (out / name).stat().st_size > 0
    predictions = (out / "predictions.csv").read_text().splitlines()
    probability_columns = ",".join(f"p_{label}" for label in saved["labels"])  # the calibration figures' input
    assert predictions[0] == "path,speaker,fold,actual,predicted,confidence," + probability_columns
    assert len(predictions) == 1 + len(corpus)
    assert doc["ua"] > 0.4  # synthetic classes are easy; chance is 0.125
    assert "predicted vs actual" in capsys.readouterr().out


def test_rerun_skips_folds_that_finished(corpus_dir, tmp_path, monkeypatch):
    corpus = load_corpus(corpus_dir)
    options = {**FAST, "train": {**FAST["train"], "epochs": 1}}
    first = run_evaluation(
        "cnn-lstm", corpus, "actor-6fold", corpus_dir / "FOLDS.tsv", tmp_path, recipe_options=options
    )

    def no_training(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(run_module, "run_fold", no_training)
    second = run_evaluation(
        "cnn-lstm", corpus, "actor-6fold", corpus_dir / "FOLDS.tsv", tmp_path, recipe_options=options
    )
    assert second["ua"] == first["ua"]


def test_rerun_with_other_recipe_options_is_refused_but_execution_options_may_change(corpus_dir, tmp_path):
    from speech_emotion.errors import DataError

    corpus = load_corpus(corpus_dir)
    options = {**FAST, "train": {**FAST["train"], "epochs": 1}}
    first = run_evaluation(
        "cnn-lstm", corpus, "actor-6fold", corpus_dir / "FOLDS.tsv", tmp_path, recipe_options=options
    )
    assert first["recipe"]["train"]["epochs"] == 1
    quieter = {**options, "data": {**options["data"], "workers": 2}, "train": {**options["train"], "threads": 2}}
    again = run_evaluation(
        "cnn-lstm", corpus, "actor-6fold", corpus_dir / "FOLDS.tsv", tmp_path, recipe_options=quieter
    )
    assert again["ua"] == first["ua"]
    longer = {**options, "train": {**options["train"], "epochs": 2}}
    with pytest.raises(DataError, match="other recipe options"):
        run_evaluation("cnn-lstm", corpus, "actor-6fold", corpus_dir / "FOLDS.tsv", tmp_path, recipe_options=longer)


def test_wall_time_spans_all_folds_whichever_process_trained_them(corpus_dir, tmp_path):
    corpus = load_corpus(corpus_dir)
    options = {**FAST, "train": {**FAST["train"], "epochs": 1}}
    run_evaluation("cnn-lstm", corpus, "actor-6fold", corpus_dir / "FOLDS.tsv", tmp_path, recipe_options=options)
    for fold, (begin, end) in {"fold1": (1000.0, 1200.0), "fold2": (1100.0, 1600.0)}.items():
        path = tmp_path / "folds" / fold / "result.json"
        result = json.loads(path.read_text())
        result.update(started_at=begin, finished_at=end)  # as if another process had trained it then
        path.write_text(json.dumps(result))
    doc = run_evaluation("cnn-lstm", corpus, "actor-6fold", corpus_dir / "FOLDS.tsv", tmp_path, recipe_options=options)
    assert doc["wall_time_s"] == 600.0


def test_exported_bundle_predicts_like_the_trained_model(corpus_dir, tmp_path):
    corpus = load_corpus(corpus_dir)
    recipe = make_recipe("cnn-lstm", **{**FAST, "train": {**FAST["train"], "epochs": 2}})
    rows = np.arange(len(corpus))
    recipe.fit(corpus, rows[:48], rows[48:], tmp_path / "work")
    recipe.export(tmp_path / "bundle")
    config = json.loads((tmp_path / "bundle" / "model.json").read_text())
    assert config["name"] == "cnn-lstm" and len(config["labels"]) == 8
    recognizer = Recognizer.load(tmp_path / "bundle")
    expected = recipe.predict_proba(corpus, rows[:3])
    for i in range(3):
        probs = recognizer.probabilities(prepare(corpus.path.iloc[i], recognizer.preprocessing))
        np.testing.assert_allclose(probs, expected[i], atol=1e-4)
    assert recognizer.predict(emotion_clip("happy", 3), 16000).label in config["labels"]


def test_fold_lock_held_by_a_live_process_is_respected_and_a_stale_one_taken_over(tmp_path):
    import os
    import subprocess
    import sys

    from speech_emotion.evaluation.run import LOCK, _claim

    fold = tmp_path / "fold1"
    fold.mkdir()
    (fold / LOCK).write_text(str(os.getppid()))  # a live process that is not us
    assert not _claim(fold)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (fold / LOCK).write_text(finished.stdout.strip())  # a process that has exited
    assert _claim(fold)
    assert (fold / LOCK).read_text() == str(os.getpid())


def test_seed_ensemble_exports_one_graph_that_predicts_like_the_recipe(corpus_dir, tmp_path):
    import onnx

    from speech_emotion.training.models import Ensemble

    corpus = load_corpus(corpus_dir)
    recipe = make_recipe("cnn-lstm", **{**FAST, "ensemble": 3, "train": {**FAST["train"], "epochs": 2}})
    rows = np.arange(len(corpus))
    history = recipe.fit(corpus, rows[:48], rows[48:], tmp_path / "work")
    assert len(history) == 2
    assert all((tmp_path / "work" / f"member{i}" / "best.pt").exists() for i in range(3))
    assert isinstance(recipe.model, Ensemble) and len(recipe.model.members) == 3
    first, *others = [m.state_dict()["head.1.weight"] for m in recipe.model.members]
    assert all(not torch.allclose(first, other) for other in others)  # different seeds, different members
    recipe.export(tmp_path / "bundle")
    graph = onnx.load(str(tmp_path / "bundle" / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["features"] and [o.name for o in graph.output] == ["logits"]
    assert read_bundle(tmp_path / "bundle").metadata["recipe"]["ensemble"] == 3
    recognizer = Recognizer.load(tmp_path / "bundle")
    expected = recipe.predict_proba(corpus, rows[:3])
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, atol=1e-5)
    for i in range(3):
        probs = recognizer.probabilities(prepare(corpus.path.iloc[i], recognizer.preprocessing))
        np.testing.assert_allclose(probs, expected[i], atol=1e-4)
    with torch.no_grad():  # the wrapper is the log of the members' mean softmax
        x = torch.randn(2, 30, recipe.model_options.n_features)
        mean = torch.stack([torch.softmax(m(x), dim=1) for m in recipe.model.members]).mean(0)
        torch.testing.assert_close(torch.softmax(recipe.model(x), dim=1), mean, atol=1e-6, rtol=1e-5)
