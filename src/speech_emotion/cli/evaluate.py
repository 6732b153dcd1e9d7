"""``speech-emotion evaluate``: train and test a recipe under an evaluation protocol (``--recipe``), or score a
finished model bundle as it is, without training (``--model``); writes metrics, calibration and plots."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..errors import DataError, UsageError
from . import plain, warn
from .arguments import folder, seed
from .train import (
    RECIPE_NAMES,
    add_data_option,
    add_epochs_option,
    checked_recipe_options,
    configured_recipe,
    load_data,
    require_torch,
)

PROTOCOLS = ("actor-6fold", "leave-one-corpus-out", "random-80-20")
"""The protocols of :data:`speech_emotion.training.splits.PROTOCOLS` (here so ``--help`` imports no training code)."""
CONDITIONS = ("phone", "gsm", "babble10", "babble0", "reverb", "noise10")
"""The names of :data:`speech_emotion.training.conditions.TEST_CONDITIONS` (same reason)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="train and test a recipe under a protocol, or score a bundle as shipped",
        description=plain(__doc__),
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--recipe",
        default=None,
        metavar="NAME",
        help=f"recipe to train and test under --protocol: {', '.join(RECIPE_NAMES)} (default: cnn-lstm)",
    )
    which.add_argument(
        "--model",
        default=None,
        metavar="BUNDLE",
        help="score this model bundle as it is, without training (a bundled name such as default, or a bundle "
        "folder): per corpus UA/WA/F1 over the corpus's labels and calibration of its full output "
        "(ECE, Brier, NLL, confident and wrong, reliability.png); logits kept in predictions.csv; for a bundle "
        "with arousal/valence/dominance, their CCC and Spearman against the label's anchor values and RAVDESS's "
        "within-emotion intensity AUC (dimensions.png). "
        "Before this release --model meant --recipe here",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=None,
        help="with --recipe: actor-6fold (default; speaker-independent folds, the headline; other corpora join every "
        "fold's training set); leave-one-corpus-out: test on each corpus after training on the others; "
        "random-80-20: clip-level split",
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


TRAINING_ONLY = ("protocol", "folds", "epochs", "options", "seed", "conditions", "live")
"""Options that only mean something when a recipe is trained (refused with ``--model``)."""


def run(args: argparse.Namespace) -> int:
    if args.model is not None:
        return score(args)
    args.recipe = args.recipe or "cnn-lstm"
    args.protocol = args.protocol or "actor-6fold"
    options = checked_recipe_options(args)
    conditions = _conditions(args.conditions)  # a mistake is named before PyTorch is asked for
    require_torch("evaluate")
    from ..corpora import FOLDS, corpus_folder
    from ..evaluation.run import run_evaluation

    configured_recipe(args.recipe, options)
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
        recipe_options=options,
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
    if "calibration" in doc:
        cal = doc["calibration"]
        print(
            f"  calibration (8-way, all test clips): ECE {cal['ece']:.3f}, Brier {cal['brier']:.3f}, "
            f"NLL {cal['nll']:.3f}, confident (>= 0.9) and wrong {cal['confident_wrong']:.1%}"
        )
    for name, scores in doc.get("conditions", {}).items():
        print(f"  {name}: UA {scores['ua']:.3f}")
    for name, value in doc.get("live", {}).items():
        print(f"  live {name}: {value:.3f}")
    if "dimensions" in doc:
        from ..evaluation.dimensions import anchor_line, intensity_line

        parts = {"all test clips": doc["dimensions"]["all_test_clips"]}
        if args.protocol == "leave-one-corpus-out":  # each held-out corpus's own figures first
            parts = {f"held-out {f['fold']}": f["dimensions"] for f in doc["folds"]} | parts
        for name, scores in parts.items():
            print(f"  dimensions, {name}: {anchor_line(scores['anchors'])}")
            if "intensity_auc" in scores:
                print(f"    {intensity_line(scores['intensity_auc'])}")
        print(f"  note: {doc['dimensions']['note']}  ({args.out / 'dimensions.png'})")
    return 0


def score(args: argparse.Namespace) -> int:
    """``evaluate --model BUNDLE``: the bundle scored as it is on every corpus of ``--data`` (no PyTorch needed)."""
    defaults = {"seed": 0, "live": False}
    given = [name for name in TRAINING_ONLY if getattr(args, name) not in (None, defaults.get(name))]
    if given:
        raise UsageError(
            f"--{given[0]} trains a recipe (--recipe); --model scores a finished bundle as it is, without training"
        )
    from ..bundle import resolve_model
    from ..evaluation.bundle_score import PROTOCOL, score_bundle

    resolve_model(args.model)  # an unknown bundle fails before any data is read
    sources = args.data
    corpus = load_data(sources)
    if "corpus" not in corpus:
        from ..corpora import corpus_folder

        corpus = corpus.assign(corpus=corpus_folder(sources[0]).resolve().name)
    doc = score_bundle(args.model, corpus, args.out, command=shlex.join(["speech-emotion", *sys.argv[1:]]))
    cal = doc["calibration"]
    print(
        f"{doc['model']} {PROTOCOL}: UA {doc['ua']:.3f} (mean over {len(doc['folds'])} corpora), WA {doc['wa']:.3f}, "
        f"macro-F1 {doc['macro_f1']:.3f}; all clips, 8-way: accuracy {cal['accuracy']:.3f}, mean confidence "
        f"{cal['mean_confidence']:.3f}, ECE {cal['ece']:.3f}, Brier {cal['brier']:.3f}, NLL {cal['nll']:.3f}, "
        f"confident (>= 0.9) and wrong {cal['confident_wrong']:.1%}  ({args.out / 'metrics.json'})"
    )
    for fold in doc["folds"]:
        if len(fold["labels_scored"]) < 2:  # the argmax is restricted to the corpus's emotions: it cannot miss
            only = fold["labels_scored"][0]
            warn(fold["fold"], [f"one emotion only ({only}): its UA, WA and macro-F1 are trivially 1, not a score"])
    if "dimensions" in doc:
        _print_dimensions(doc, args.out)
    return 0


def _print_dimensions(doc: dict, out: Path) -> None:
    """The summary of ``metrics.json``'s ``dimensions`` (a bundle with a dimensional head); the per-corpus lines were
    printed as each corpus finished."""
    from ..evaluation.dimensions import intensity_line

    dims = doc["dimensions"]
    means = ", ".join(
        f"{name} {'n/a' if s['spearman'] is None else format(s['spearman'], '.3f')}"
        for name, s in dims["anchors_mean_over_corpora"].items()
    )
    print(f"  dimensions: Spearman vs the anchors of each clip's label, mean over {len(doc['folds'])} corpora: {means}")
    for corpus, aucs in dims["intensity_auc"].items():
        print(f"  {corpus}: {intensity_line(aucs)}")
    seen = sorted({f["fold"] for f in doc["folds"]} & set(dims["head_fitted_on"]))
    if seen:
        print(f"  the dimensional head was fitted on {', '.join(seen)}: its scores there are not held out")
    print(f"  note: {dims['note']}  ({out / 'dimensions.png'})")


def _conditions(value: str | None) -> tuple[str, ...]:
    """The test conditions ``--conditions`` names (``()`` when it is not given; each named once, in order);
    :class:`UsageError` naming the valid ones for an unknown name or a list with none (``--conditions ''``)."""
    if value is None:
        return ()
    choose = f"choose from {', '.join(CONDITIONS)} or 'all'"
    names = CONDITIONS if value.strip() == "all" else tuple(dict.fromkeys(v.strip() for v in value.split(",")))
    names = tuple(n for n in names if n)
    if not names:
        raise UsageError(f"--conditions {value!r} names no condition; {choose}")
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise UsageError(f"unknown condition {unknown[0]!r}; {choose}")
    return names
