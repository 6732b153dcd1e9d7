"""Scoring a model bundle as it ships: no training, every clip of each corpus through the :class:`Recognizer`.

Per corpus: UA/WA/macro-F1 over the emotions the corpus has (the argmax restricted to them, as
``leave-one-corpus-out`` does) and calibration (:func:`~.metrics.calibration_metrics`) of the bundle's full,
unrestricted output: the probabilities a user is shown, after the bundle's own calibration if it has one.
Each corpus's raw logits are kept in ``predictions.csv`` (``logit_<label>`` columns) so a calibration map can be
fitted on them later (:mod:`.calibration`). A finished corpus is saved under ``out_dir/corpora/<name>.csv`` and
reused on a rerun, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..conditioning import prepare
from ..errors import AudioError, DataError
from ..labels import EMOTIONS
from ..recognizer import Recognizer
from .metrics import calibration_metrics, compute_metrics, summarize
from .plots import plot_confusion, plot_reliability

PROTOCOL = "bundle-as-shipped"
"""The ``protocol`` of a bundle scored without training (``metrics.json``)."""


def logit_columns(labels: tuple[str, ...] | list[str]) -> list[str]:
    """The ``predictions.csv`` columns holding the raw logits, in the bundle's label order."""
    return [f"logit_{label}" for label in labels]


def corpus_logits(recognizer: Recognizer, table: pd.DataFrame, progress_every: int = 500) -> pd.DataFrame:
    """One row per clip of ``table`` (columns ``path``, ``emotion``, ``speaker``, ``corpus``): its raw logits, or
    the one-line reason it could not be scored (``skipped``; too short, silent, undecodable)."""
    rows = []
    start = time.time()
    for i, row in enumerate(table.itertuples()):
        record: dict[str, Any] = {"path": row.path, "corpus": row.corpus, "speaker": row.speaker, "actual": row.emotion}
        try:
            logits = recognizer.logits(prepare(row.path, recognizer.preprocessing))
            record.update(zip(logit_columns(recognizer.labels), map(float, logits)))
            record["skipped"] = ""
        except AudioError as exc:
            record["skipped"] = str(exc)
        rows.append(record)
        if progress_every and (i + 1) % progress_every == 0:
            rate = (time.time() - start) / (i + 1)
            print(f"  {row.corpus}: {i + 1}/{len(table)} clips ({1000 * rate:.0f} ms each)", flush=True)
    return pd.DataFrame(rows)


def score_corpus(predictions: pd.DataFrame, recognizer: Recognizer) -> tuple[dict[str, Any], pd.DataFrame]:
    """Scores of one corpus's logits (:func:`corpus_logits`) and its predictions table.

    UA/WA/F1: the argmax over the labels both the corpus and the bundle have; calibration: the bundle's shown
    probabilities (its calibration applied) over all its labels, on the clips whose emotion the bundle knows.
    """
    labels = list(recognizer.labels)
    scored = predictions[(predictions["skipped"].fillna("") == "") & predictions["actual"].isin(labels)].copy()
    if scored.empty:
        raise DataError(
            f"{predictions['corpus'].iloc[0]}: no clip could be scored (none decodes, or no label the "
            f"bundle knows: {', '.join(labels)})"
        )
    logits = scored[logit_columns(labels)].to_numpy(np.float64)
    probs = recognizer.calibrated(logits)
    truth = np.array([labels.index(e) for e in scored["actual"]])
    present = np.isin(np.arange(len(labels)), truth)
    restricted = np.where(present, probs, -np.inf).argmax(axis=1)
    to_index = np.array([EMOTIONS.index(label) for label in labels])
    metrics = compute_metrics(to_index[truth], to_index[restricted])
    calibration = calibration_metrics(probs, truth, with_bins=True)
    shown = probs.argmax(axis=1)
    scored["predicted"] = [labels[i] for i in restricted]
    scored["confidence"] = probs[np.arange(len(probs)), restricted]
    scored["shown_label"] = [labels[i] for i in shown]
    scored["shown_confidence"] = probs.max(axis=1)
    scored["uncertain"] = [recognizer.is_uncertain(p) for p in probs]
    result = {
        "fold": str(predictions["corpus"].iloc[0]),
        **metrics,
        "labels_scored": [labels[i] for i in np.flatnonzero(present)],
        "n_skipped": int((predictions["skipped"].fillna("") != "").sum()),
        "n_unknown_label": int((~predictions["actual"].isin(labels)).sum()),
        "calibration": calibration,
        "uncertain_share": float(scored["uncertain"].mean()),
    }
    return result, scored


def score_bundle(
    model: str | Path,
    corpus: pd.DataFrame,
    out_dir: str | Path,
    command: str | None = None,
    threads: int | None = 1,
) -> dict[str, Any]:
    """Score bundle ``model`` (a bundled name or a folder) on every corpus of ``corpus`` (a table with a ``corpus``
    column, :func:`~speech_emotion.corpora.load_corpora`); writes ``metrics.json``, ``predictions.csv``,
    ``confusion.png`` and ``reliability.png`` into ``out_dir`` and returns the metrics document.

    Corpora finished by an earlier run on ``out_dir`` with the same bundle are reused; another bundle's is a
    :class:`DataError` (use a new ``--out``)."""
    out_dir = Path(out_dir)
    recognizer = Recognizer.load(model, threads=threads)
    if "corpus" not in corpus:
        corpus = corpus.assign(corpus="data")
    identity = {"model": recognizer.name, "folder": str(recognizer.bundle.folder), "labels": list(recognizer.labels)}
    (out_dir / "corpora").mkdir(parents=True, exist_ok=True)
    marker = out_dir / "bundle.json"
    if marker.is_file() and json.loads(marker.read_text()) != identity:
        raise DataError(f"{out_dir}: scored with another bundle ({marker}); use a new --out")
    marker.write_text(json.dumps(identity, indent=1) + "\n")
    start = time.time()
    folds, tables = [], []
    for name in sorted(corpus["corpus"].unique()):
        done = out_dir / "corpora" / f"{name}.csv"
        if done.is_file():
            logits = pd.read_csv(done, dtype={"skipped": str, "speaker": str})
            print(f"{name}: done ({len(logits)} clips)")
        else:
            table = corpus[corpus["corpus"] == name]
            print(f"{name}: scoring {len(table)} clips", flush=True)
            logits = corpus_logits(recognizer, table)
            logits.to_csv(done.with_suffix(".tmp"), index=False)
            done.with_suffix(".tmp").replace(done)
        result, scored = score_corpus(logits, recognizer)
        cal = result["calibration"]
        print(
            f"{name}: UA {result['ua']:.3f} over {len(result['labels_scored'])} labels, WA {result['wa']:.3f}; "
            f"8-way accuracy {cal['accuracy']:.3f}, ECE {cal['ece']:.3f}, confident and wrong "
            f"{cal['confident_wrong']:.1%}",
            flush=True,
        )
        folds.append(result)
        tables.append(scored)
    predictions = pd.concat(tables, ignore_index=True)
    labels = list(recognizer.labels)
    probs = recognizer.calibrated(predictions[logit_columns(labels)].to_numpy(np.float64))
    truth = np.array([labels.index(e) for e in predictions["actual"]])
    doc = summarize(
        recognizer.name,
        PROTOCOL,
        folds,
        extra={
            "command": command,
            "bundle": identity["folder"],
            "bundle_calibration": recognizer.bundle.calibration.to_json() if recognizer.bundle.calibration else None,
            "n_clips": int(len(corpus)),
            "wall_time_s": round(time.time() - start, 1),
            "calibration": calibration_metrics(probs, truth, with_bins=True),
            "uncertain_share": float(predictions["uncertain"].mean()),
        },
    )
    (out_dir / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n")
    predictions.to_csv(out_dir / "predictions.csv", index=False)
    title = f"{recognizer.name} as shipped: UA {doc['ua']:.1%} (mean over corpora)"
    plot_confusion(doc["confusion_matrix"], EMOTIONS, out_dir / "confusion.png", title=title)
    panels = {f["fold"]: f["calibration"] for f in folds}
    if len(panels) > 1:
        panels["all corpora"] = doc["calibration"]
    plot_reliability(panels, out_dir / "reliability.png", title=f"{recognizer.name}: shown confidence vs accuracy")
    return doc
