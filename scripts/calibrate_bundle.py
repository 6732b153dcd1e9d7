"""Fit a bundle's confidence map on corpora it never heard, and write a calibrated copy of the bundle.

Reads the ``predictions.csv`` of ``speech-emotion evaluate --model BUNDLE --data ...`` (it keeps each clip's raw
logits) or of a ``--protocol leave-one-corpus-out`` run of the recipe the bundle was trained with (each held-out
corpus scored by a model that never heard it: its ``p_<emotion>`` columns, whose logarithms are the logits up to a
per-clip constant, which neither the temperature nor the thresholds see), keeps the clips of the ``--corpora`` named
(those the model never heard in training), and

1. reports leave-one-corpus-out figures: the temperature and thresholds fitted on all those corpora but one, scored
   on the one left out, in turn (ECE, Brier, NLL, confident and wrong, before and after; answers flagged uncertain
   and the accuracy of the others);
2. fits the temperature (Guo et al. 2017) and the uncertainty thresholds on all of them, and writes a copy of the
   bundle with that ``calibration`` block in its ``model.json`` (``--out``).

Usage::

    python scripts/calibrate_bundle.py --predictions ../runs/calib/whisper-base-general-as-shipped/predictions.csv \\
        --model whisper-base-general --corpora nemo es-students esd-0020 emospeech-cmd \\
        --report results/calibration/whisper-base-general.json --out ../runs/calib/whisper-base-general-calibrated
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from speech_emotion.bundle import load_bundle, write_bundle
from speech_emotion.calibration import Calibration
from speech_emotion.evaluation.bundle_score import logit_columns
from speech_emotion.evaluation.calibration import fit_calibration, kept_scores, leave_one_corpus_out
from speech_emotion.evaluation.metrics import calibration_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--predictions",
        type=Path,
        required=True,
        help="predictions.csv of evaluate --model, or of evaluate --protocol leave-one-corpus-out",
    )
    parser.add_argument("--model", required=True, help="the bundle those predictions came from (name or folder)")
    parser.add_argument("--corpora", nargs="+", required=True, help="corpora to fit on: none of them heard in training")
    parser.add_argument(
        "--target", type=float, default=0.5, help="accuracy the answers not flagged uncertain keep (default 0.5)"
    )
    parser.add_argument(
        "--weigh",
        choices=("corpus", "clip"),
        default="corpus",
        help="temperature fit: every corpus weighs the same (default) or every clip",
    )
    parser.add_argument("--report", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--out", type=Path, default=None, help="write the calibrated bundle copy here")
    parser.add_argument("--plots", type=Path, default=None, help="write reliability diagrams (before/after) here")
    args = parser.parse_args(argv)

    if args.out and args.out.exists():
        sys.exit(f"error: {args.out} exists; give a new --out")
    bundle = load_bundle(args.model)
    table = read_logits(args.predictions, bundle.labels)
    columns = logit_columns(bundle.labels)
    if len(set(args.corpora)) < 2:
        sys.exit("error: --corpora: name at least two corpora (each is held out in turn)")
    unknown = sorted(set(args.corpora) - set(table["corpus"]))
    if unknown:
        sys.exit(f"error: {args.predictions}: no clips of corpus {unknown[0]!r}")
    others = table[~table["corpus"].isin(args.corpora)]
    table = table[table["corpus"].isin(args.corpora)]
    logits = table[columns].to_numpy(np.float64)
    labels = list(bundle.labels)
    y = np.array([labels.index(e) for e in table["actual"]])
    corpora = table["corpus"].to_numpy()

    balance = args.weigh == "corpus"
    loco = leave_one_corpus_out(logits, y, corpora, args.target, balance=balance)
    notes = (
        f"temperature by NLL (Guo et al. 2017), every {args.weigh} weighing the same, on {len(y)} clips of "
        f"{', '.join(sorted(set(corpora)))}; thresholds: "
        f"the pair keeping the most answers that are right at least {args.target:.0%} of the time on those clips"
    )
    calibration = fit_calibration(logits, y, corpora, args.target, notes=notes, balance=balance)
    probs = calibration.probabilities(logits)
    fitted = {
        "calibration": calibration.to_json(),
        "before": calibration_metrics(Calibration().probabilities(logits), y),
        "after_in_sample": calibration_metrics(probs, y),
        **kept_scores(probs, y, calibration.min_confidence, calibration.min_margin),
    }
    other_corpora = {}  # corpora not fitted on (e.g. heard in training): the shipped map applied to them
    for name in sorted(set(others["corpus"])):
        rows = others[others["corpus"] == name]
        z, truth = rows[columns].to_numpy(np.float64), np.array([labels.index(e) for e in rows["actual"]])
        shown = calibration.probabilities(z)
        other_corpora[name] = {
            "before": calibration_metrics(Calibration().probabilities(z), truth),
            "after": calibration_metrics(shown, truth),
            **kept_scores(shown, truth, calibration.min_confidence, calibration.min_margin),
        }
    doc = {
        "command": shlex.join(["python", "scripts/calibrate_bundle.py", *(argv if argv is not None else sys.argv[1:])]),
        "model": bundle.name,
        "predictions": str(args.predictions),
        "n_clips": int(len(y)),
        "leave_one_corpus_out": loco,
        "fitted_on_all": fitted,
        "not_fitted_on": other_corpora,
    }
    for held, fold in loco["folds"].items():
        kept = "-" if fold["kept_accuracy"] is None else f"{fold['kept_accuracy']:.0%}"
        before, after = fold["before"], fold["after"]
        print(
            f"held out {held}: T {fold['temperature']:.2f}; ECE {before['ece']:.3f} -> {after['ece']:.3f}, "
            f"confident and wrong {before['confident_wrong']:.1%} -> {after['confident_wrong']:.1%}, "
            f"NLL {before['nll']:.2f} -> {after['nll']:.2f}; uncertain {fold['uncertain_share']:.0%}, "
            f"the other answers right {kept}"
        )
    mean = loco["mean"]
    print(
        f"mean over held-out corpora: ECE {mean['before_ece']:.3f} -> {mean['after_ece']:.3f}, confident and wrong "
        f"{mean['before_confident_wrong']:.1%} -> {mean['after_confident_wrong']:.1%}"
    )
    print(
        f"fitted on all: T {calibration.temperature:.3f}, min_confidence {calibration.min_confidence}, "
        f"min_margin {calibration.min_margin}"
    )
    for name, scores in other_corpora.items():
        print(
            f"not fitted on, {name}: ECE {scores['before']['ece']:.3f} -> {scores['after']['ece']:.3f}, confident and "
            f"wrong {scores['before']['confident_wrong']:.1%} -> {scores['after']['confident_wrong']:.1%}"
        )
    if args.plots:
        from speech_emotion.evaluation.plots import plot_reliability

        args.plots.mkdir(parents=True, exist_ok=True)
        for when in ("before", "after"):
            panels = {}
            for held in loco["folds"]:
                rows = corpora == held
                probs_held = (
                    Calibration().probabilities(logits[rows])
                    if when == "before"
                    else Calibration(loco["folds"][held]["temperature"]).probabilities(logits[rows])
                )
                panels[held] = calibration_metrics(probs_held, y[rows], with_bins=True)
            how = "as shipped" if when == "before" else "temperature fitted on the others"
            title = f"{bundle.name}, held-out corpora, {how}"
            plot_reliability(panels, args.plots / f"reliability-{when}.png", title=title)
        print(f"reliability diagrams: {args.plots}")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"report: {args.report}")
    if args.out:
        assert bundle.folder is not None
        shutil.copytree(bundle.folder, args.out)
        write_bundle(args.out, replace(bundle, calibration=calibration, folder=args.out))
        print(f"calibrated bundle: {args.out}")
    return 0


def read_logits(path: Path, labels: tuple[str, ...]) -> pd.DataFrame:
    """``predictions.csv`` with ``corpus`` and ``logit_<label>`` columns: as written by ``evaluate --model``, or
    made from a leave-one-corpus-out run's (``fold`` names the held-out corpus; logits = log of ``p_<label>``)."""
    table = pd.read_csv(path, keep_default_na=False)
    columns = logit_columns(labels)
    probabilities = [f"p_{label}" for label in labels]
    if all(c in table for c in columns):
        return table
    if all(c in table for c in probabilities) and "fold" in table:
        table = table.assign(corpus=table["fold"])
        logs = np.log(np.clip(table[probabilities].to_numpy(np.float64), 1e-300, None))
        return table.assign(**dict(zip(columns, logs.T)))
    sys.exit(f"error: {path}: neither logit_<emotion> nor p_<emotion> and fold columns (not from evaluate?)")


if __name__ == "__main__":
    raise SystemExit(main())
