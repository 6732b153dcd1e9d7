"""Scoring a model bundle as it ships: no training, every clip of each corpus through the :class:`Recognizer`.

Per corpus: UA/WA/macro-F1 over the emotions the corpus has (the argmax restricted to them, as
``leave-one-corpus-out`` does) and calibration (:func:`~.metrics.calibration_metrics`) of the bundle's full,
unrestricted output: the probabilities a user is shown, after the bundle's own calibration if it has one.
Each corpus's raw logits are kept in ``predictions.csv`` (``logit_<label>`` columns) so a calibration map can be
fitted on them later (:mod:`.calibration`). A bundle with a dimensional head (arousal, valence, dominance) also gets,
per corpus, their CCC and Spearman against the anchor values of each clip's label and, where the corpus says each
clip's intensity (RAVDESS), the within-emotion intensity AUC of arousal (:mod:`.dimensions`; ``dimensions.png``).
A finished corpus is saved under ``out_dir/corpora/<name>.csv`` and reused on a rerun, so an interrupted run resumes.
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
from ..words import plural
from .dimensions import WEAK_EVIDENCE, anchor_line, dimension_scores, intensity_line
from .metrics import calibration_metrics, compute_metrics, summarize
from .plots import plot_confusion, plot_dimensions, plot_reliability

PROTOCOL = "bundle-as-shipped"
"""The ``protocol`` of a bundle scored without training (``metrics.json``)."""


def logit_columns(labels: tuple[str, ...] | list[str]) -> list[str]:
    """The ``predictions.csv`` columns holding the raw logits, in the bundle's label order."""
    return [f"logit_{label}" for label in labels]


def corpus_logits(recognizer: Recognizer, table: pd.DataFrame, progress_every: int = 500) -> pd.DataFrame:
    """One row per clip of ``table`` (columns ``path``, ``emotion``, ``speaker``, ``corpus``, optionally
    ``intensity``): its raw logits and, for a bundle with them, its dimensions (``arousal``, ``valence``,
    ``dominance`` columns), or the one-line reason it could not be scored (``skipped``; too short, silent,
    undecodable). ``intensity`` is kept when the table has it."""
    rows = []
    start = time.time()
    has_intensity = "intensity" in table
    for i, row in enumerate(table.itertuples()):
        record: dict[str, Any] = {"path": row.path, "corpus": row.corpus, "speaker": row.speaker, "actual": row.emotion}
        if has_intensity:
            record["intensity"] = row.intensity
        try:
            logits, dimensions = recognizer.outputs(prepare(row.path, recognizer.preprocessing))
            record.update(zip(logit_columns(recognizer.labels), map(float, logits)))
            if dimensions is not None:
                record.update(zip(recognizer.dimensions, map(float, dimensions)))
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
    if recognizer.dimensions:
        result["dimensions"] = corpus_dimensions(scored, recognizer.dimensions)
    return result, scored


def corpus_dimensions(scored: pd.DataFrame, dimensions: tuple[str, ...]) -> dict[str, Any]:
    """:func:`~.dimensions.dimension_scores` of one corpus's scored clips (columns ``actual``, the
    ``dimensions`` and, when the corpus has it, ``intensity``)."""
    intensity = scored["intensity"].to_numpy() if "intensity" in scored else None
    return dimension_scores(scored[list(dimensions)].to_numpy(np.float64), scored["actual"].to_numpy(), intensity)


def fitted_on(recognizer: Recognizer) -> list[str]:
    """The corpora the bundle's dimensional head was fitted on, as its ``model.json`` records them
    (``metadata.dimensions.fitted_on``; ``[]`` when it does not say)."""
    provenance = recognizer.bundle.metadata.get("dimensions")
    corpora = provenance.get("fitted_on") if isinstance(provenance, dict) else None
    return sorted(corpora) if isinstance(corpora, dict) else []


def dimension_line(name: str, scores: dict[str, Any], in_sample: bool) -> str:
    """One printed line of a corpus's dimension scores (:func:`corpus_dimensions`)."""
    line = f"{name}: {anchor_line(scores['anchors'])}"
    if "intensity_auc" in scores:
        line += f"; {intensity_line(scores['intensity_auc'])}"
    return line + (" [head fitted on this corpus: not held out]" if in_sample else "")


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
        logits = pd.read_csv(done, dtype={"skipped": str, "speaker": str}) if done.is_file() else None
        if logits is not None and not set(recognizer.dimensions) <= set(logits):
            logits = None  # scored before dimensions were kept: score it again
        if logits is not None:
            print(f"{name}: done ({len(logits)} clips)")
        else:
            table = corpus[corpus["corpus"] == name]
            print(f"{name}: scoring {plural(len(table), 'clip')}", flush=True)
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
        if result["n_skipped"]:
            reasons = logits.loc[logits["skipped"].fillna("") != "", "skipped"]
            print(
                f"  {name}: {result['n_skipped']} clips not scored (e.g. {reasons.iloc[0]}); their reasons are in "
                f"{done}",
                flush=True,
            )
        if "dimensions" in result:
            print("  " + dimension_line(name, result["dimensions"], name in fitted_on(recognizer)), flush=True)
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
            **({"dimensions": dimensions_summary(folds, recognizer)} if recognizer.dimensions else {}),
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
    if recognizer.dimensions:
        seen = sorted({f["fold"] for f in folds} & set(fitted_on(recognizer)))
        plot_dimensions(
            {f["fold"]: f["dimensions"] for f in folds},
            out_dir / "dimensions.png",
            title=f"{recognizer.name} as shipped: arousal, valence, dominance"
            + (f"\n(the head was fitted on {', '.join(seen)}: not held out there)" if seen else ""),
        )
    return doc


def dimensions_summary(folds: list[dict[str, Any]], recognizer: Recognizer) -> dict[str, Any]:
    """The top-level ``dimensions`` of ``metrics.json``: mean over corpora of each dimension's CCC and Spearman
    against the anchors, each corpus's intensity AUC (those that have one), the corpora the head was fitted on
    (scores there are not held out) and what the anchor scores mean (:data:`~.dimensions.WEAK_EVIDENCE`)."""
    means = {
        dim: {key: _mean([f["dimensions"]["anchors"][dim][key] for f in folds]) for key in ("ccc", "spearman")}
        for dim in recognizer.dimensions
    }
    return {
        "anchors_mean_over_corpora": means,
        "intensity_auc": {
            f["fold"]: f["dimensions"]["intensity_auc"] for f in folds if "intensity_auc" in f["dimensions"]
        },
        "head_fitted_on": fitted_on(recognizer),
        "note": WEAK_EVIDENCE,
    }


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None
