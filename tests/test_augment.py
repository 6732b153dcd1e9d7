from __future__ import annotations

import numpy as np

from speech_emotion.corpora import load_corpus
from speech_emotion.training.augment import AugmentOptions, add_noise, augment
from speech_emotion.training.data import (
    DataOptions,
    FeatureStore,
    evaluation_examples,
    item_key,
    training_examples,
)
from speech_emotion.training.splits import make_splits, validation_split
from synth import emotion_clip, write_ravdess_corpus


def test_noise_is_added_at_the_requested_snr():
    clip = emotion_clip("angry", 0)
    noisy = add_noise(clip, 10.0, np.random.default_rng(0))
    noise = noisy - clip
    snr = 10 * np.log10(np.mean(clip.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert abs(snr - 10.0) < 0.2


def test_augmented_copies_are_deterministic_and_differ_from_each_other():
    clip = emotion_clip("calm", 4)
    options = AugmentOptions()
    a0, b0 = augment(clip, 0, "key", options), augment(clip, 0, "key", options)
    a1 = augment(clip, 1, "key", options)
    np.testing.assert_array_equal(a0, b0)
    assert len(a0) != len(a1) or not np.allclose(a0, a1)


def test_only_training_rows_get_augmented_copies(tmp_path):
    root = write_ravdess_corpus(tmp_path / "c", actors=(1, 2, 3, 4), takes=1)
    (tmp_path / "folds.tsv").write_text("speaker\tfold\n" + "".join(f"Actor_{a:02d}\t{a}\n" for a in (1, 2, 3, 4)))
    corpus = load_corpus(root)
    split = make_splits(corpus, "actor-6fold", tmp_path / "folds.tsv")[0]
    train, val = validation_split(corpus, split.train)
    store = FeatureStore(DataOptions(augment=AugmentOptions(copies=2), workers=1, progress=False))
    train_set = training_examples(store, corpus, train)
    val_set = evaluation_examples(store, corpus, val)
    test_set = evaluation_examples(store, corpus, split.test)
    assert len(train_set) == 3 * len(train)
    assert sum(e.augmented for e in train_set) == 2 * len(train)
    assert not any(e.augmented for e in val_set + test_set)
    # nothing augmented was even computed for validation or test clips
    for row in list(val) + list(split.test):
        digest = store.digest(corpus.path.iloc[row])
        assert store.cache.path(item_key(digest, 0, store.options)).is_file()
        for copy in (1, 2):
            assert not store.cache.path(item_key(digest, copy, store.options)).exists()
