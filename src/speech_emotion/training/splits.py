"""Evaluation protocols: how a corpus is split into training and test sets.

``actor-6fold`` (speaker-independent, the EmoBox split) is the headline; with several corpora, the folds
split the corpus the fold file describes and every clip of the other corpora joins each fold's training set.
``leave-one-corpus-out`` trains on all corpora but one and tests on the held-out one, over the emotions it
shares with the training corpora. ``random-80-20`` is the clip-level split of the original design, kept only
to show how speaker leakage inflates accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..corpora.manifest import read_folds
from ..errors import DataError
from .options import SEED_MAX

PROTOCOLS = ("actor-6fold", "leave-one-corpus-out", "random-80-20")


@dataclass(frozen=True)
class Split:
    """Row indices (into the corpus DataFrame) of one fold's training and test clips."""

    name: str
    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray | None = None
    """Emotions a prediction may take, ``(8,)`` bool (``None``: all): the argmax is restricted to them."""


def speaker_folds(corpus: pd.DataFrame, folds: dict[str, str]) -> list[Split]:
    """One split per fold: its speakers are the test set, all other listed speakers train."""
    fold_of = corpus["speaker"].map(folds)
    missing = sorted(corpus.loc[fold_of.isna(), "speaker"].unique())
    if missing:
        raise DataError(f"speakers without a fold: {', '.join(missing[:5])}")
    splits = []
    for name in sorted(set(fold_of), key=lambda f: (len(f), f)):
        test = np.flatnonzero(fold_of.to_numpy() == name)
        train = np.flatnonzero(fold_of.to_numpy() != name)
        splits.append(Split(f"fold{name}", train, test))
    return splits


def random_split(corpus: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0) -> list[Split]:
    """A single clip-level split stratified by emotion (speakers leak across it, by design); :class:`DataError` for
    a corpus too small to split so (each emotion needs clips on both sides) or a seed outside 0 to 2**32 - 1."""
    from sklearn.model_selection import train_test_split

    if not 0 <= seed <= SEED_MAX:
        raise DataError(f"random-80-20: the seed must be 0 to {SEED_MAX}, got {seed}")
    idx = np.arange(len(corpus))
    emotions = corpus["emotion"].to_numpy()
    try:
        train, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=emotions)
    except ValueError as exc:  # too few clips of an emotion, or fewer test clips than emotions
        raise DataError(
            f"random-80-20 cannot split {len(corpus)} clips of {len(set(emotions))} emotions so that each emotion "
            f"is on both sides ({' '.join(str(exc).split())})"
        ) from None
    return [Split("random", np.sort(train), np.sort(test))]


def corpus_folds(corpus: pd.DataFrame) -> list[Split]:
    """``leave-one-corpus-out``: one split per corpus, training on every other corpus and testing on the held-out
    corpus's clips whose emotion some training corpus has; ``labels`` (the argmax's choices) are those emotions:
    the held-out corpus's own labels that training taught."""
    from ..labels import EMOTIONS, emotion_index

    if "corpus" not in corpus or corpus["corpus"].nunique() < 2:
        raise DataError("leave-one-corpus-out needs at least two corpora (--data DIR DIR ...)")
    names = corpus["corpus"].to_numpy()
    y = np.array([emotion_index(e) for e in corpus["emotion"]])
    splits = []
    for held in sorted(set(names)):
        train = np.flatnonzero(names != held)
        labels = np.zeros(len(EMOTIONS), dtype=bool)
        labels[np.intersect1d(y[train], y[names == held])] = True
        test = np.flatnonzero((names == held) & labels[y])
        splits.append(Split(str(held), train, test, labels))
    return splits


def with_other_corpora(corpus: pd.DataFrame, folds: dict[str, str]) -> list[Split]:
    """Speaker folds of the corpus whose speakers ``folds`` lists; clips of other corpora train in every fold."""
    if "corpus" not in corpus or corpus["corpus"].nunique() < 2:
        return speaker_folds(corpus, folds)
    listed = corpus["speaker"].isin(folds)
    primary = set(corpus.loc[listed, "corpus"])
    if len(primary) != 1:
        raise DataError("the fold file must list the speakers of exactly one of the corpora")
    inside = np.flatnonzero(corpus["corpus"].isin(primary).to_numpy())
    outside = np.flatnonzero(~corpus["corpus"].isin(primary).to_numpy())
    return [
        Split(s.name, np.sort(np.concatenate([inside[s.train], outside])), inside[s.test])
        for s in speaker_folds(corpus.iloc[inside], folds)
    ]


def make_splits(
    corpus: pd.DataFrame, protocol: str, folds_file: str | Path | None = None, seed: int = 0
) -> list[Split]:
    """Splits for ``protocol``; ``actor-6fold`` reads ``folds_file`` (default: ``FOLDS.tsv`` beside the data)."""
    if protocol == "random-80-20":
        return random_split(corpus, 0.2, seed)
    if protocol == "actor-6fold":
        if folds_file is None:
            raise DataError("protocol actor-6fold needs a fold file (--folds FOLDS.tsv)")
        splits = with_other_corpora(corpus, read_folds(folds_file))
        for split in splits:
            if not len(split.train):
                raise DataError(f"{folds_file}: fold {split.name[4:]} holds every speaker, leaving none to train on")
        return splits
    if protocol == "leave-one-corpus-out":
        return corpus_folds(corpus)
    raise DataError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")


def validation_split(
    corpus: pd.DataFrame, train: np.ndarray, fraction: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole training speakers for validation (early stopping, checkpoint choice).

    Never touches the test set; with fewer than 3 training speakers, clips are held out instead.
    """
    rng = np.random.default_rng(seed)
    speakers = np.array(sorted(corpus["speaker"].iloc[train].unique()))
    if len(speakers) >= 3:
        n_val = max(1, round(len(speakers) * fraction))
        val_speakers = set(rng.choice(speakers, size=n_val, replace=False))
        is_val = corpus["speaker"].iloc[train].isin(val_speakers).to_numpy()
    else:
        is_val = np.zeros(len(train), dtype=bool)
        is_val[rng.permutation(len(train))[: max(1, round(len(train) * fraction))]] = True
    return train[~is_val], train[is_val]


def rotate_validation(
    corpus: pd.DataFrame, train: np.ndarray, val: np.ndarray, count: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (train, validation) splits of the same rows, the first being ``(train, val)`` itself.

    The others hold out other groups of training speakers, of ``val``'s size, disjoint while speakers
    last (then drawn again), so an ensemble's members are chosen on different speakers and together
    learn from all of them. Clip-level validation (too few speakers) is kept for every member.
    """
    splits = [(train, val)]
    rows = np.sort(np.concatenate([train, val]))
    speaker = corpus["speaker"].to_numpy()
    val_speakers = set(speaker[val])
    if count <= 1 or not val_speakers or val_speakers & set(speaker[train]):
        return splits * max(1, count)
    rng = np.random.default_rng(seed)
    others = list(rng.permutation(sorted(set(speaker[train]))))
    size = len(val_speakers)
    while len(splits) < count:
        if len(others) < size:
            others += list(rng.permutation(sorted(set(speaker[rows]) - set(others))))
        group, others = set(others[:size]), others[size:]
        is_val = np.isin(speaker[rows], list(group))
        splits.append((rows[~is_val], rows[is_val]))
    return splits
