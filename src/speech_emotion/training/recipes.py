"""Recipes: one model family's way to fit on corpus rows, predict, and export a bundle.

The evaluation runner (:mod:`speech_emotion.evaluation.run`) and the ``train``/``evaluate``
commands only talk to this interface. :data:`RECIPES` is the explicit registry: a recipe name -> the module and
class that implement it, imported only when that recipe is made (so this module imports no recipe, and no recipe
imports it).
"""

from __future__ import annotations

import importlib
import inspect
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


def drop_unusable(recipe: Any, corpus: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``corpus`` without the clips ``recipe`` cannot use (a recipe with a ``usable(corpus)`` mask: clips the
    preprocessing refuses, too short or silent once trimmed), index reset, and the paths left out."""
    usable = getattr(recipe, "usable", None)
    if usable is None:
        return corpus, []
    keep = np.asarray(usable(corpus), dtype=bool)
    dropped = corpus["path"].astype(str)[~keep].tolist()
    return corpus[keep].reset_index(drop=True), dropped


RECIPES: dict[str, str] = {
    "cnn-lstm": "speech_emotion.training.cnn_lstm:CnnLstmRecipe",
    "whisper-base-probe": "speech_emotion.training.whisper.recipe:WhisperProbeRecipe",
    "whisper-base-multicorpus": "speech_emotion.training.whisper.multicorpus:MultiCorpusProbeRecipe",
    "whisper-base-general": "speech_emotion.training.whisper.multicorpus:GeneralProbeRecipe",
}
"""Recipe name -> ``"module:Class"``; the class's keyword arguments are the recipe options."""


def available_recipes() -> list[str]:
    """Names of all registered recipes."""
    return sorted(RECIPES)


def check_recipe_name(name: str) -> None:
    """:class:`ModelError` naming the available recipes when ``name`` is not one (imports no recipe, no PyTorch)."""
    if name not in RECIPES:
        raise ModelError(f"unknown recipe {name!r}; available: {', '.join(available_recipes())}")


def recipe_class(name: str) -> Any:
    """The class implementing recipe ``name``; :class:`ModelError` for an unknown name."""
    check_recipe_name(name)
    module, _, attr = RECIPES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_recipe(name: str, **options: Any) -> Recipe:
    """A fresh recipe ``name`` configured with ``options``; :class:`ModelError` for an unknown name, an unknown
    option or a value of the wrong kind (one line naming it)."""
    cls = recipe_class(name)
    known = [p for p in inspect.signature(cls).parameters.values() if p.kind is not p.VAR_KEYWORD]
    if not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls).parameters.values()):
        unknown = sorted(set(options) - {p.name for p in known})
        if unknown:
            names = ", ".join(p.name for p in known)
            raise ModelError(f"recipe {name}: unknown option {unknown[0]!r} (known: {names})")
    try:
        return cls(**options)
    except TypeError as exc:  # an option the constructor does not take
        raise ModelError(f"recipe {name}: {str(exc).split('() ', 1)[-1]}") from None
