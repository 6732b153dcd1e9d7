"""Is the shipped int8 as accurate as the float model, speaker-independently? (issue 19's rule: UA within 0.5 points
on ``actor-6fold``, int8 as shipped, and the live-path scores.)

Reads an ``actor-6fold`` run of ``speech-emotion evaluate --recipe ... --live`` (each fold's trained model is kept
as ``folds/foldK/work/bundle-live``, the runner's export), quantizes each fold's model to static int8 exactly as the
default is shipped (``scripts/quantize_bundle.py --mode static --conv`` with the same calibration corpora and
clips), and scores that fold's test speakers with it: whole clips (UA against the run's own float scores of the same
clips, from its ``predictions.csv``, and against the runner's export) and, with ``--live``, the live path
(``speech_emotion.evaluation.live.score_live``: updates, first updates, segments; against the run's live figures,
which come from the runner's export). The activation ranges come from clips of the calibration corpora with no
labels used, as for the shipped model; they may include a fold's test speakers (said in the output).

    python scripts/int8_folds.py --run ../runs/gen7/general-actor-6fold --data ../shared/data/ravdess \\
        --calibration ../shared/data/ravdess ../shared/data/ased ../shared/data/emovo ../corpora/nemo \\
        ../corpora/es-students ../corpora/esd-0020 ../corpora/emospeech-cmd --calibration-clips 60 \\
        --live --out ../runs/s25/int8-folds --report results/int8/whisper-base-7corpora-actor-6fold.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from speech_emotion.corpora import load_corpus
from speech_emotion.evaluation.bundle_score import corpus_logits, logit_columns
from speech_emotion.evaluation.live import score_live
from speech_emotion.evaluation.metrics import compute_metrics
from speech_emotion.labels import EMOTIONS, emotion_index
from speech_emotion.recognizer import Recognizer

QUANTIZE = Path(__file__).resolve().parent / "quantize_bundle.py"


def clip_ua(recognizer: Recognizer, test: pd.DataFrame) -> tuple[float, list[str]]:
    """UA of ``recognizer`` on the clips of ``test`` (8-way argmax) and its label per clip."""
    scored = corpus_logits(recognizer, test, progress_every=0)
    if (scored["skipped"] != "").any():
        raise SystemExit(f"clips could not be scored: {scored.loc[scored['skipped'] != '', 'path'].tolist()}")
    labels = [recognizer.labels[i] for i in scored[logit_columns(recognizer.labels)].to_numpy().argmax(axis=1)]
    truth = [emotion_index(e) for e in test["emotion"]]
    return compute_metrics(truth, [EMOTIONS.index(x) for x in labels])["ua"], labels


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="an actor-6fold run folder of evaluate --live")
    p.add_argument("--data", required=True, help="the corpus the folds test (RAVDESS)")
    p.add_argument("--calibration", nargs="+", required=True, help="corpus folders for the static activation ranges")
    p.add_argument("--calibration-clips", type=int, default=60, help="clips per calibration corpus (default 60)")
    p.add_argument("--live", action="store_true", help="also score the live path with each fold's int8 model")
    p.add_argument("--bias-correct", action="store_true", help="quantize with quantize_bundle.py --bias-correct")
    p.add_argument("--out", type=Path, required=True, help="folder for the int8 fold models")
    p.add_argument("--report", type=Path, help="write the figures here as JSON")
    args = p.parse_args()

    corpus = load_corpus(args.data)
    float_predictions = pd.read_csv(args.run / "predictions.csv")
    folds = sorted(float_predictions["fold"].unique(), key=lambda f: int(f.removeprefix("fold")))
    rows = []
    for fold in folds:
        work = args.run / "folds" / fold / "work" / "bundle-live"
        result = json.loads((args.run / "folds" / fold / "result.json").read_text())
        static = args.out / fold
        subprocess.run(
            [sys.executable, str(QUANTIZE), "--model", str(work), "--mode", "static", "--conv", "--out", str(static),
             "--calibration", *args.calibration, "--calibration-clips", str(args.calibration_clips),
             "--check", args.data, "--check-clips", "80", *(["--bias-correct"] if args.bias_correct else [])],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        ours = float_predictions[float_predictions["fold"] == fold].set_index("path")
        test_rows = np.flatnonzero(corpus["path"].isin(ours.index).to_numpy())
        if len(test_rows) != len(ours):
            raise SystemExit(f"{fold}: {len(ours)} test clips in the run, {len(test_rows)} found in --data")
        test = corpus.iloc[test_rows]
        float_labels = ours.loc[test["path"], "predicted"].tolist()
        float_ua = compute_metrics(
            [emotion_index(e) for e in test["emotion"]], [EMOTIONS.index(x) for x in float_labels]
        )["ua"]
        export_ua, _ = clip_ua(Recognizer.load(work, threads=1), test)
        int8 = Recognizer.load(static, threads=1)
        int8_ua, int8_labels = clip_ua(int8, test)
        row = {
            "fold": fold,
            "clips": len(test),
            "float_ua": float_ua,
            "export_ua": export_ua,
            "int8_ua": int8_ua,
            "int8_vs_float_changed": float(np.mean([a != b for a, b in zip(int8_labels, float_labels)])),
        }
        if args.live:
            live = score_live(int8, corpus, test_rows)
            for kind in ("update", "first_update", "segment"):
                row[f"export_live_{kind}_ua"] = result["live"][f"{kind}_ua"]
                row[f"int8_live_{kind}_ua"] = live[f"{kind}_ua"]
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)

    table = pd.DataFrame(rows)
    mean = {k: float(table[k].mean()) for k in table.columns if k not in ("fold", "clips")}
    print("\nmean over folds (UA %):")
    print(
        f"  whole clips: float {100 * mean['float_ua']:.1f}, runner's export {100 * mean['export_ua']:.1f},"
        f" static int8 as shipped {100 * mean['int8_ua']:.1f} ({100 * (mean['int8_ua'] - mean['float_ua']):+.1f});"
        f" labels changed against float {100 * mean['int8_vs_float_changed']:.1f} %"
    )
    if args.live:
        for kind in ("update", "first_update", "segment"):
            a, b = mean[f"export_live_{kind}_ua"], mean[f"int8_live_{kind}_ua"]
            print(f"  live {kind}: runner's export {100 * a:.1f}, static int8 {100 * b:.1f} ({100 * (b - a):+.1f})")
    print("  (activation ranges from unlabelled clips of the calibration corpora, possibly of a fold's test speakers)")
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "command": "python scripts/int8_folds.py " + shlex.join(sys.argv[1:]),
            "run": str(args.run),
            "folds": rows,
            "mean": mean,
        }
        args.report.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
