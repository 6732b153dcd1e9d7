from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from speech_emotion.errors import DataError
from speech_emotion.training.splits import make_splits, rotate_validation, validation_split


def _corpus(n_speakers: int = 6, per: int = 8) -> pd.DataFrame:
    rows = [
        {"path": f"s{s}_{i}.wav", "speaker": f"Actor_{s:02d}", "emotion": ["happy", "sad"][i % 2]}
        for s in range(1, n_speakers + 1)
        for i in range(per)
    ]
    return pd.DataFrame(rows)


def test_actor_folds_never_share_a_speaker_between_train_and_test(tmp_path):
    corpus = _corpus()
    folds = tmp_path / "folds.tsv"
    folds.write_text("speaker\tfold\n" + "".join(f"Actor_{s:02d}\t{(s - 1) // 2 + 1}\n" for s in range(1, 7)))
    splits = make_splits(corpus, "actor-6fold", folds)
    assert len(splits) == 3
    for split in splits:
        train_spk = set(corpus.speaker.iloc[split.train])
        test_spk = set(corpus.speaker.iloc[split.test])
        assert not train_spk & test_spk
        tr, va = validation_split(corpus, split.train)
        assert not set(corpus.speaker.iloc[va]) & set(corpus.speaker.iloc[tr])
        assert not set(corpus.speaker.iloc[va]) & test_spk
    assert sorted(i for s in splits for i in s.test) == list(range(len(corpus)))


def test_random_split_holds_out_a_fifth_of_clips():
    corpus = _corpus()
    (split,) = make_splits(corpus, "random-80-20")
    assert len(split.test) == round(0.2 * len(corpus))
    assert not set(split.train) & set(split.test)


def test_fold_file_missing_a_speaker_is_a_data_error(tmp_path):
    folds = tmp_path / "folds.tsv"
    folds.write_text("speaker\tfold\nActor_01\t1\n")
    with pytest.raises(DataError, match="without a fold"):
        make_splits(_corpus(), "actor-6fold", folds)


def test_rotated_validation_gives_each_member_other_speakers_and_keeps_the_first_split():
    corpus = _corpus(n_speakers=20, per=4)
    train, val = validation_split(corpus, np.arange(len(corpus)))
    splits = rotate_validation(corpus, train, val, count=4)
    assert len(splits) == 4
    np.testing.assert_array_equal(splits[0][0], train)
    np.testing.assert_array_equal(splits[0][1], val)
    speaker = corpus["speaker"].to_numpy()
    groups = [frozenset(speaker[v]) for _, v in splits]
    assert all(len(g) == len(groups[0]) for g in groups)
    assert len(set().union(*groups)) == 4 * len(groups[0])  # disjoint validation speakers
    for tr, va in splits:
        assert not set(speaker[tr]) & set(speaker[va])
        np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(len(corpus)))


def test_rotated_validation_repeats_clip_level_validation_when_speakers_are_shared():
    corpus = _corpus(n_speakers=2, per=10)
    train, val = validation_split(corpus, np.arange(len(corpus)))  # too few speakers: clips held out
    splits = rotate_validation(corpus, train, val, count=3)
    assert len(splits) == 3 and all(v is val for _, v in splits)
