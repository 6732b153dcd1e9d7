"""``speech-emotion evaluate``: train and test a model under an evaluation protocol; writes metrics and plots."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..errors import DataError
from . import plain
from .arguments import folder, seed
from .train import add_data_option, add_epochs_option, add_recipe_option, load_data, recipe_options, require_torch

PROTOCOLS = ("actor-6fold", "leave-one-corpus-out", "random-80-20")
"""The protocols of :data:`speech_emotion.training.splits.PROTOCOLS` (here so ``--help`` imports no training code)."""
CONDITIONS = ("phone", "gsm", "babble10", "babble0", "reverb", "noise10")
"""The names of :data:`speech_emotion.training.conditions.TEST_CONDITIONS` (same reason)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="train and test a model under an evaluation protocol", description=plain(__doc__)
    )
    add_recipe_option(p, "recipe to evaluate")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="actor-6fold",
        help="actor-6fold: speaker-independent folds (headline; other corpora join every fold's training set); "
        "leave-one-corpus-out: test on each corpus after training on the others; random-80-20: clip-level split",
    )
    add_data_option(p)
    p.add_argument(
        "--conditions",
        default=None,
        help=f"also score test clips under these conditions, comma-separated or 'all' ({', '.join(CONDITIONS)})",
    )
    p.add_argument(
        "--live", action="store_true", help="also score the live path (test clips joined into calls, streamed)"
    )
    p.add_argument("--folds", type=Path, default=None, help="speaker/fold TSV (default: the first DATA's FOLDS.tsv)")
    p.add_argument("--out", type=folder, required=True, help="output folder (rerun to resume an interrupted run)")
    add_epochs_option(p)
    p.add_argument("--options", default=None, help='recipe options as JSON, e.g. \'{"train": {"lr": 0.002}}\'')
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    require_torch("evaluate")
    from ..corpora import FOLDS, corpus_folder
    from ..evaluation.run import run_evaluation
    from ..training.recipes import make_recipe

    make_recipe(args.recipe, **recipe_options(args))  # bad options fail before any data is read
    conditions = _conditions(args.conditions)
    corpus = load_data(args.data)
    folds = args.folds
    if args.protocol == "actor-6fold" and folds is None:
        folds = corpus_folder(args.data[0]) / FOLDS  # beside MANIFEST.tsv when --data names that file
        if not folds.is_file():
            raise DataError(f"{folds}: no fold file; pass --folds FILE (columns speaker, fold)")
    if folds is not None and not Path(folds).is_file():
        raise DataError(f"{folds}: no such fold file")
    doc = run_evaluation(
        args.recipe,
        corpus,
        args.protocol,
        folds,
        args.out,
        recipe_options=recipe_options(args),
        seed=args.seed,
        command=shlex.join(["speech-emotion", *sys.argv[1:]]),
        conditions=conditions,
        live=args.live,
    )
    spread = f" ± {doc['ua_std']:.3f}" if len(doc.get("folds", ())) > 1 else " (one split)"  # no spread of one
    print(
        f"{args.recipe} {args.protocol}: UA {doc['ua']:.3f}{spread}, WA {doc['wa']:.3f}, "
        f"macro-F1 {doc['macro_f1']:.3f}  ({args.out / 'metrics.json'})"
    )
    for name, scores in doc.get("conditions", {}).items():
        print(f"  {name}: UA {scores['ua']:.3f}")
    for name, value in doc.get("live", {}).items():
        print(f"  live {name}: {value:.3f}")
    return 0


def _conditions(value: str | None) -> tuple[str, ...]:
    """The test conditions ``--conditions`` names (``()`` when it is not given; each named once, in order);
    :class:`DataError` naming the valid ones for an unknown name or a list with none (``--conditions ''``)."""
    if value is None:
        return ()
    choose = f"choose from {', '.join(CONDITIONS)} or 'all'"
    names = CONDITIONS if value.strip() == "all" else tuple(dict.fromkeys(v.strip() for v in value.split(",")))
    names = tuple(n for n in names if n)
    if not names:
        raise DataError(f"--conditions {value!r} names no condition; {choose}")
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise DataError(f"unknown condition {unknown[0]!r}; {choose}")
    return names
