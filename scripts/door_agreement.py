"""The product's answer against the model's whole-clip answer, clip by clip, for the clips of an ``evaluate --model``
run:

    speech-emotion evaluate --model default --data CORPUS... --out RUN
    python scripts/door_agreement.py --model default --predictions RUN/predictions.csv --out doors.json

``evaluate --model`` scores each clip whole, trimmed and normalised as training saw it
(:func:`~speech_emotion.conditioning.prepare`), so that its figures are the model's and its logits can be calibrated.
``predict`` (and analyze, batch, the service) answers a recording through the speech detector: each speech segment
scored, the segments' probabilities weighted by their speech time
(:func:`~speech_emotion.recording.predict_recording`); a clip where the detector finds no speech gets no emotion.
This script runs every clip of ``predictions.csv`` through that door with the same bundle and prints, per corpus:
clips, clips with no speech found, UA over the corpus's labels (argmax restricted to them, as ``evaluate``) of the
whole clip and of predict (a clip without an answer counts as wrong; also over the answered clips alone), and
how often the two answers agree. ``--out`` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from speech_emotion.errors import AudioError, SpeechEmotionError
from speech_emotion.recognizer import Recognizer
from speech_emotion.recording import predict_recording
from speech_emotion.streaming import NoSpeechError
from speech_emotion.training.trainer import unweighted_accuracy


def corpus_figures(rows: pd.DataFrame, labels: list[str]) -> dict[str, float | int]:
    """Figures of one corpus's rows (columns ``actual``, ``predicted`` (whole clip, restricted argmax) and
    ``door``: predict's probabilities ``(len(labels),)`` or ``None`` where it gave no emotion)."""
    present = np.isin(labels, rows["actual"].unique())
    truth = np.array([labels.index(a) for a in rows["actual"]])
    whole = np.array([labels.index(p) for p in rows["predicted"]])
    answered = rows["door"].notna().to_numpy()
    door = np.array([int(np.where(present, p, -np.inf).argmax()) if p is not None else -1 for p in rows["door"]])

    def ua(selected: np.ndarray, predicted: np.ndarray) -> float | None:  # None: no clip answered
        return round(100 * unweighted_accuracy(truth[selected], predicted[selected]), 1) if selected.any() else None

    every = np.ones(len(rows), dtype=bool)
    return {
        "clips": len(rows),
        "no_answer": int((~answered).sum()),
        "ua_whole_clip": ua(every, whole),
        "ua_predict": ua(every, door),
        "ua_predict_answered": ua(answered, door),
        "ua_whole_clip_same_clips": ua(answered, whole),
        "agree_pct": round(100 * float(np.mean(whole == door)), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the bundle of the evaluate --model run (name or folder)")
    parser.add_argument("--predictions", type=Path, required=True, help="predictions.csv of that run")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if not args.predictions.is_file():
        parser.error(f"{args.predictions}: {'a folder, not a' if args.predictions.is_dir() else 'no such'} file")
    if args.out is not None:  # checked before any clip is scored
        if args.out.is_dir():
            parser.error(f"--out {args.out}: a folder; give a file name")
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            parser.error(f"--out {args.out}: {exc.strerror or exc}")
        if not os.access(args.out.parent, os.W_OK):
            parser.error(f"--out {args.out}: cannot write there")
    try:
        table = pd.read_csv(args.predictions, dtype={"speaker": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        parser.error(f"{args.predictions}: not a CSV file ({str(exc).splitlines()[0]})")
    missing = {"path", "corpus", "actual", "predicted"} - set(table)
    if missing:
        parser.error(f"{args.predictions}: not an evaluate --model predictions.csv (no {', '.join(sorted(missing))})")
    if table.empty:
        parser.error(f"{args.predictions}: no clips")
    blank = table[["path", "corpus", "actual", "predicted"]].isna().any(axis=1)
    if blank.any():
        parser.error(
            f"{args.predictions}: {int(blank.sum())} rows with a blank path, corpus or label (first: line "
            f"{int(blank.to_numpy().argmax()) + 2})"
        )
    try:
        recognizer = Recognizer.load(args.model, threads=1)
    except SpeechEmotionError as exc:
        parser.error(str(exc))
    run = args.predictions.parent / "bundle.json"  # written by evaluate --model beside its predictions
    if run.is_file():
        try:
            scored_with = json.loads(run.read_text()).get("model")
        except (ValueError, AttributeError, UnicodeDecodeError):
            parser.error(f"{run}: not the bundle.json of an evaluate --model run")
        if scored_with != recognizer.name:
            parser.error(f"{args.predictions}: scored with {scored_with}, not {recognizer.name}")
    labels = list(recognizer.labels)
    unknown = sorted((set(table["actual"].astype(str)) | set(table["predicted"].astype(str))) - set(labels))
    if unknown:
        parser.error(f"{args.predictions}: labels {recognizer.name} does not have: {', '.join(unknown)}")
    door, no_speech, unreadable = [], [], []
    for path in tqdm(table["path"], desc="predict", unit="clip", file=sys.stderr):
        try:
            door.append(predict_recording(path, recognizer).probabilities)
        except NoSpeechError:  # before AudioError, which it is
            door.append(None)
            no_speech.append(path)
        except AudioError as exc:
            door.append(None)
            unreadable.append(str(exc))
    if unreadable:  # the figures would count them as unanswered
        print(
            f"error: {len(unreadable)} of {len(table)} clips could not be read (e.g. {unreadable[0]}; run this where "
            "evaluate ran: the paths are as it read them)",
            file=sys.stderr,
        )
        return 1
    table["door"] = door
    figures = {name: corpus_figures(rows, labels) for name, rows in table.groupby("corpus")}
    header = "corpus clips no-answer UA-whole UA-predict UA-predict-answered UA-whole-same-clips agree%"
    print(header)
    for name, f in figures.items():
        print(name, *("-" if v is None else v for v in f.values()))
    if args.out:
        command = ["python", "scripts/door_agreement.py", *(argv if argv is not None else sys.argv[1:])]
        doc = {
            "command": shlex.join(command),
            "model": recognizer.name,
            "predictions": str(args.predictions),
            "corpora": figures,
            "no_speech_clips": no_speech,
        }
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
