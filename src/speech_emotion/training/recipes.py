"""Recipes: one model family's way to fit on corpus rows, predict, and export a bundle.

The evaluation runner (:mod:`speech_emotion.evaluation.run`) and the ``train``/``evaluate``
commands only talk to this interface, so any model family can plug in by registering a factory
in :data:`RECIPES` (``@register_recipe("name")``) in a module listed in :data:`RECIPE_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..errors import ModelError


class Recipe(Protocol):
    """A trainable model family."""

    name: str

    def fit(self, corpus: pd.DataFrame, train: np.ndarray, val: np.ndarray, workdir: Path) -> list[dict]:
        """Train on ``corpus`` rows ``train``, choosing epochs/checkpoints on ``val``; returns the per-epoch history
        (``epoch``, ``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``), ``[]`` for non-epoch models.
        ``workdir`` holds checkpoints so an interrupted fit resumes."""
        ...

    def predict_proba(self, corpus: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        """Class probabilities ``(len(rows), 8)`` in :data:`~speech_emotion.labels.EMOTIONS` order."""
        ...

    def export(self, bundle_dir: Path) -> None:
        """Write a model bundle (``model.json`` + ``model.onnx``) the recognizer can load."""
        ...


EXECUTION_ONLY = ("threads", "progress", "workers")
"""Option names (at any depth of a recipe's options) that change how fast it trains, not what it learns."""

RECIPES: dict[str, Callable[..., Recipe]] = {}
"""Recipe factories by name; keyword arguments of a factory are recipe options."""

RECIPE_MODULES: tuple[str, ...] = ("speech_emotion.whisper", "speech_emotion.whisper.recipe")
"""Optional modules that register more recipes when imported (skipped when absent or not installable)."""


def register_recipe(name: str) -> Callable[[Callable[..., Recipe]], Callable[..., Recipe]]:
    """Decorator adding a recipe factory to :data:`RECIPES`."""

    def wrap(factory: Callable[..., Recipe]) -> Callable[..., Recipe]:
        RECIPES[name] = factory
        return factory

    return wrap


def available_recipes() -> list[str]:
    """Names of all registered recipes, after importing the optional recipe modules."""
    for module in RECIPE_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
    return sorted(RECIPES)


def make_recipe(name: str, **options: Any) -> Recipe:
    """A fresh recipe ``name`` configured with ``options``; :class:`ModelError` for an unknown name."""
    if name not in RECIPES:
        available_recipes()
    if name not in RECIPES:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(available_recipes())}")
    return RECIPES[name](**options)


@register_recipe("cnn-lstm")
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
        other training speakers for its validation (see :func:`~speech_emotion.evaluation.protocols.rotate_validation`)
        instead of all sharing ``val``; other keywords override :class:`TrainOptions` fields
        (``epochs=3``)."""
        if ensemble < 1:
            raise ModelError(f"cnn-lstm: ensemble must be >= 1, got {ensemble}")
        self.ensemble = int(ensemble)
        self.rotate_validation = bool(rotate_validation)
        from ..models import CnnLstmOptions
        from .data import DataOptions
        from .trainer import TrainOptions

        self.model_options = _options(CnnLstmOptions, model)
        self.train_options = replace(_options(TrainOptions, train), **overrides)
        self.data_options = _options(DataOptions, data)
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

        from ..evaluation.protocols import rotate_validation
        from ..models import CnnLstm, Ensemble
        from .data import evaluation_examples, feature_statistics, training_examples
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
        from .export import write_bundle

        if self.model is None:
            raise ModelError("cnn-lstm: fit() must run before export()")
        write_bundle(
            Path(bundle_dir),
            self.model,
            self.name,
            self.data_options.features,
            self.data_options.audio,
            extra={"recipe": self.describe()},
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


def _options(cls: type, value: Any) -> Any:
    """An options dataclass from ``None`` (defaults), an instance, or a dict (nested dataclass fields as dicts)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    defaults = cls()
    kwargs = {}
    for f in fields(cls):
        if f.name not in value:
            continue
        item = value[f.name]
        default = getattr(defaults, f.name)
        if is_dataclass(default) and isinstance(item, dict):
            item = _options(type(default), item)
        elif isinstance(default, tuple) and isinstance(item, list):
            item = tuple(item)
        kwargs[f.name] = item
    return cls(**kwargs)
