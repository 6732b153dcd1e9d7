"""The ``cnn-lstm`` recipe: the CNN + LSTM over librosa frame features, optionally a seed ensemble."""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelError
from .options import Allowed, checked_value, options_from


class CnnLstmRecipe:
    """The seed's CNN + LSTM over librosa frame features, trained with augmented copies of the training clips."""

    name = "cnn-lstm"

    def __init__(
        self,
        model: Any = None,
        train: Any = None,
        data: Any = None,
        ensemble: int = 4,
        rotate_validation: bool = True,
        **overrides: Any,
    ) -> None:
        """``model``/``train``/``data``: :class:`CnnLstmOptions`, :class:`TrainOptions`, :class:`DataOptions`
        (or dicts of their fields); ``ensemble``: number of models trained with seeds ``seed``, ``seed + 1``, …
        whose softmax probabilities are averaged; ``rotate_validation``: each member after the first holds out
        other training speakers for its validation (see :func:`~speech_emotion.training.splits.rotate_validation`)
        instead of all sharing ``val``; other keywords override :class:`TrainOptions` fields
        (``epochs=3``)."""
        self.ensemble = checked_value("ensemble", ensemble, 4, Allowed(low=1))
        self.rotate_validation = checked_value("rotate_validation", rotate_validation, True)
        from .data import DataOptions
        from .models import CnnLstmOptions
        from .trainer import TrainOptions

        train_fields = sorted(f.name for f in fields(TrainOptions))
        unknown = sorted(set(overrides) - set(train_fields))
        if unknown:
            raise ModelError(
                f"cnn-lstm: unknown option {unknown[0]!r} (known: model, train, data, ensemble, rotate_validation, "
                f"or a train option: {', '.join(train_fields)})"
            )
        self.model_options = options_from(CnnLstmOptions, model, "model")
        self.train_options = options_from(
            TrainOptions, {**asdict(options_from(TrainOptions, train, "train")), **overrides}
        )
        self.data_options = options_from(DataOptions, data, "data")
        self.model_options = replace(self.model_options, n_features=self.data_options.features.n_features)
        self.model = None
        self._store = None

    @property
    def store(self):
        from .data import FeatureStore

        if self._store is None:
            self._store = FeatureStore(self.data_options)
        return self._store

    def fit(self, corpus: pd.DataFrame, train: np.ndarray, val: np.ndarray, workdir: Path) -> list[dict]:
        """Train one model in ``workdir``, or ``ensemble`` models in ``workdir/member<i>`` (each resumable);
        returns the (first member's) history; ``self.model`` is the model or the :class:`Ensemble`."""
        import torch

        from .data import evaluation_examples, feature_statistics, training_examples
        from .models import CnnLstm, Ensemble
        from .splits import rotate_validation
        from .trainer import train_model

        if self.rotate_validation:
            splits = rotate_validation(corpus, train, val, self.ensemble, seed=self.train_options.seed)
        else:
            splits = [(train, val)] * self.ensemble
        members, histories = [], []
        for i, (member_train, member_val) in enumerate(splits):
            train_set = training_examples(self.store, corpus, member_train)
            val_set = evaluation_examples(self.store, corpus, member_val)
            mean, std = feature_statistics(train_set)
            options = replace(self.train_options, seed=self.train_options.seed + i)
            torch.manual_seed(options.seed)
            member = CnnLstm(self.model_options)
            member.set_normalization(torch.from_numpy(mean), torch.from_numpy(std))
            member_dir = Path(workdir) if self.ensemble == 1 else Path(workdir) / f"member{i}"
            histories.append(train_model(member, train_set, val_set, options, member_dir))
            members.append(member)
        self.model = members[0] if self.ensemble == 1 else Ensemble(members).eval()
        return histories[0]

    def predict_proba(self, corpus: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        from .data import evaluation_examples
        from .trainer import evaluate_model

        if self.model is None:
            raise ModelError("cnn-lstm: fit() must run before predict_proba()")
        probs, _ = evaluate_model(self.model, evaluation_examples(self.store, corpus, rows))
        return probs

    def export(self, bundle_dir: Path) -> None:
        from .export import export_cnn_lstm

        if self.model is None:
            raise ModelError("cnn-lstm: fit() must run before export()")
        export_cnn_lstm(
            Path(bundle_dir),
            self.model,
            self.name,
            self.data_options.features,
            self.data_options.audio,
            metadata={"recipe": self.describe()},
        )

    def describe(self) -> dict[str, Any]:
        """The recipe's options as plain data (for metrics.json and model.json)."""
        data = asdict(self.data_options)
        data.pop("cache_dir", None)
        return {
            "model": asdict(self.model_options),
            "train": asdict(self.train_options),
            "data": data,
            "ensemble": self.ensemble,
            "rotate_validation": self.rotate_validation,
        }
