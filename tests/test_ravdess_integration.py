"""Integration tests on the shared RAVDESS copy (skipped with a reason where it is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.corpora import load_corpus
from speech_emotion.evaluation.metrics import compute_metrics
from speech_emotion.labels import emotion_index
from speech_emotion.training.recipes import make_recipe
from speech_emotion.training.splits import validation_split

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_short_training_on_six_actors_beats_chance_on_two_unseen_actors(ravdess_dir, tmp_path):
    corpus = load_corpus(ravdess_dir)
    corpus = corpus[corpus.actor <= 8].reset_index(drop=True)
    test = np.flatnonzero(corpus.actor.isin([7, 8]).to_numpy())
    train, val = validation_split(corpus, np.flatnonzero(corpus.actor <= 6))
    recipe = make_recipe(
        "cnn-lstm",
        ensemble=1,
        model={"utterance_norm": True},
        train={"epochs": 15, "patience": 15, "progress": False},
        data={"augment": {"copies": 0}, "progress": False},
    )
    recipe.fit(corpus, train, val, tmp_path)
    probs = recipe.predict_proba(corpus, test)
    y_true = [emotion_index(e) for e in corpus.emotion.iloc[test]]
    metrics = compute_metrics(y_true, probs.argmax(axis=1))
    assert metrics["ua"] > 0.25, metrics["ua"]  # chance is 0.125


def test_fold_file_covers_every_ravdess_speaker(ravdess_dir):
    from speech_emotion.training.splits import make_splits

    corpus = load_corpus(ravdess_dir)
    splits = make_splits(corpus, "actor-6fold", ravdess_dir / "FOLDS.tsv")
    assert len(corpus) == 1440 and len(splits) == 6
    assert sorted(i for s in splits for i in s.test) == list(range(len(corpus)))
