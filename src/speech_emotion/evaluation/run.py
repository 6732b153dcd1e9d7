"""The evaluation runner: every fold of a protocol through a recipe, then metrics, plots and predictions.

Each finished fold is saved under ``out_dir/folds/<fold>/result.json`` and skipped on a rerun, and
each fold's training checkpoints live beside it, so an interrupted run resumes where it stopped.

A recipe that also learns arousal, valence and dominance offers ``predict_dimensions(corpus, rows)`` (``(len(rows),
3)`` in [0, 1], or ``None`` when it was configured without them); its test rows' values are then scored against the
anchors of their labels and, where the corpus says each clip's intensity (RAVDESS), by the within-emotion intensity
test (:mod:`.dimensions`; ``dimensions.png``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..bundle import DIMENSIONS
from ..errors import DataError
from ..labels import EMOTIONS, emotion_index
from ..training.options import EXECUTION_ONLY
from ..training.recipes import drop_unusable, make_recipe
from ..training.splits import make_splits, validation_split
from .conditions import condition_corpus
from .dimensions import WEAK_EVIDENCE, dimension_scores
from .live import score_live
from .metrics import calibration_metrics, compute_metrics, summarize
from .plots import plot_confusion, plot_dimensions, plot_history, plot_reliability

LOCK = "running.lock"
SCORE_KEYS = ("ua", "wa", "macro_f1")
"""The scores kept per test condition."""


def run_fold(
    recipe_name: str,
    corpus: pd.DataFrame,
    split: Any,
    fold_dir: Path,
    recipe_options: dict[str, Any] | None = None,
    seed: int = 0,
    conditions: tuple[str, ...] = (),
    live: bool = False,
) -> dict[str, Any]:
    """Fit on the split's training speakers (validation held out from them), score its test rows: clean,
    under each of ``conditions`` (:mod:`.conditions`) and, with ``live``, through the streaming engine
    (:mod:`.live`, on the exported bundle)."""
    start = time.time()
    recipe = make_recipe(recipe_name, **(recipe_options or {}))
    train, val = validation_split(corpus, split.train, seed=seed)
    history = recipe.fit(corpus, train, val, fold_dir / "work")
    allowed = np.ones(len(EMOTIONS), dtype=bool) if split.labels is None else np.asarray(split.labels, bool)
    y_true = np.array([emotion_index(e) for e in corpus["emotion"].iloc[split.test]])

    def predict(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        probs = recipe.predict_proba(table, split.test)
        return probs, np.where(allowed, probs, -np.inf).argmax(axis=1)

    probs, y_pred = predict(corpus)
    dimensions = predict_dimensions(recipe, corpus, split.test)
    metrics = compute_metrics(y_true, y_pred)
    calibration = calibration_metrics(probs, y_true)  # the full 8-way output, as the product shows it
    by_condition = {}
    for name in conditions:
        _, pred = predict(condition_corpus(corpus, split.test, name))
        by_condition[name] = {k: v for k, v in compute_metrics(y_true, pred).items() if k in SCORE_KEYS}
    live_scores = None
    if live:
        from ..recognizer import Recognizer

        bundle = fold_dir / "work" / "bundle-live"
        recipe.export(bundle)
        live_scores = score_live(Recognizer.load(bundle, threads=1), corpus, split.test, allowed)
    test = corpus.iloc[split.test]
    predictions = [
        {
            "path": row.path,
            "speaker": row.speaker,
            "fold": split.name,
            "actual": row.emotion,
            "predicted": EMOTIONS[int(p)],
            "confidence": float(probs[i, int(p)]),
            **{f"p_{label}": float(probs[i, j]) for j, label in enumerate(EMOTIONS)},
            **({} if dimensions is None else dict(zip(DIMENSIONS, map(float, dimensions[i])))),
            **({"intensity": row.intensity} if dimensions is not None and "intensity" in test else {}),
        }
        for i, (row, p) in enumerate(zip(test.itertuples(), y_pred))
    ]
    return {
        "fold": split.name,
        **metrics,
        "calibration": calibration,
        "n_train": int(len(train)),
        "n_val": int(len(val)),
        "val_speakers": sorted(corpus["speaker"].iloc[val].unique().tolist()),
        "test_speakers": sorted(test["speaker"].unique().tolist()),
        **({"conditions": by_condition} if conditions else {}),
        **({"live": live_scores} if live_scores is not None else {}),
        **({"dimensions": dimensions_of(pd.DataFrame(predictions))} if dimensions is not None else {}),
        "recipe": describe_recipe(recipe),
        "wall_time_s": round(time.time() - start, 1),
        "started_at": round(start, 1),
        "finished_at": round(time.time(), 1),
        "history": history,
        "predictions": predictions,
    }


def run_evaluation(
    recipe_name: str,
    corpus: pd.DataFrame,
    protocol: str,
    folds_file: str | Path | None,
    out_dir: str | Path,
    recipe_options: dict[str, Any] | None = None,
    seed: int = 0,
    command: str | None = None,
    show_samples: int = 10,
    wait_s: float = 15.0,
    conditions: tuple[str, ...] = (),
    live: bool = False,
) -> dict[str, Any]:
    """Run ``protocol`` with recipe ``recipe_name`` and write ``metrics.json``, ``confusion.png``,
    ``curves.png`` and ``predictions.csv`` into ``out_dir``; returns the metrics document.

    Folds already finished in ``out_dir`` are reused. A fold being trained by another process on
    the same ``out_dir`` (its lock file names a live process) is waited for, so starting the same
    command twice trains two folds at a time; a stale lock from a killed run is taken over.
    """
    out_dir = Path(out_dir)
    instance = make_recipe(recipe_name, **(recipe_options or {}))
    recipe = describe_recipe(instance)
    corpus, unusable = drop_unusable(instance, corpus)
    if unusable:
        print(f"left out {len(unusable)} clips the preprocessing refuses (too short or silent once trimmed)")
    splits = make_splits(corpus, protocol, folds_file, seed=seed)  # a bad fold file or split: before out_dir exists
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, Any]] = {}
    while len(results) < len(splits):
        waiting = []
        for split in splits:
            if split.name in results:
                continue
            fold_dir = out_dir / "folds" / split.name
            done = fold_dir / "result.json"
            if done.exists():
                results[split.name] = json.loads(done.read_text())
                if not _same_recipe(results[split.name].get("recipe", recipe), recipe):
                    raise DataError(
                        f"{done}: this fold was trained with other recipe options; "
                        "give the same options to resume it, or a new --out"
                    )
                print(f"{split.name}: done (UA {results[split.name]['ua']:.3f})")
            elif _claim(fold_dir):
                print(f"{split.name}: training on {len(split.train)} clips, testing on {len(split.test)}")
                result = run_fold(recipe_name, corpus, split, fold_dir, recipe_options, seed, conditions, live)
                tmp = done.with_suffix(".tmp")
                tmp.write_text(json.dumps(result, indent=1))
                tmp.replace(done)
                (fold_dir / LOCK).unlink(missing_ok=True)
                results[split.name] = result
                print(f"{split.name}: UA {result['ua']:.3f}  WA {result['wa']:.3f}  macro-F1 {result['macro_f1']:.3f}")
            else:
                waiting.append(split.name)
        if waiting and len(results) < len(splits):
            print(f"waiting for {', '.join(waiting)} (run by another process)", flush=True)
            time.sleep(wait_s)
    results = [results[split.name] for split in splits]
    for result in results:
        missing = [c for c in conditions if c not in result.get("conditions", {})]
        if missing or (live and "live" not in result):
            raise DataError(
                f"{out_dir}: fold {result['fold']} was run without {', '.join(missing) or 'live scoring'}; "
                "use a new --out"
            )
    folds = [{k: v for k, v in r.items() if k not in ("history", "predictions", "recipe")} for r in results]
    extra = {
        "command": command,
        "wall_time_s": _run_wall_time(results, out_dir),
        "fold_wall_time_s": round(sum(r["wall_time_s"] for r in results), 1),
        "n_clips": int(len(corpus)),
        "unusable_clips": unusable,
        "recipe": recipe,
    }
    doc = summarize(recipe_name, protocol, folds, extra=extra)
    if conditions:
        doc["conditions"] = {
            c: {k: float(np.mean([f["conditions"][c][k] for f in folds])) for k in SCORE_KEYS} for c in conditions
        }
    if live:
        keys = [k for k in folds[0]["live"] if k.endswith(("_ua", "_wa"))]
        doc["live"] = {k: float(np.mean([f["live"][k] for f in folds])) for k in keys}
    predictions = pd.DataFrame([p for r in results for p in r["predictions"]])
    calibrated = all("calibration" in f for f in folds)  # folds trained before calibration was scored lack it
    if calibrated:
        probs = predictions[[f"p_{label}" for label in EMOTIONS]].to_numpy(np.float64)
        truth = np.array([emotion_index(e) for e in predictions["actual"]])
        doc["calibration"] = calibration_metrics(probs, truth, with_bins=True)
    if all("dimensions" in f for f in folds):  # each test clip once: held-out speakers, or each held-out corpus
        doc["dimensions"] = {"all_test_clips": dimensions_of(predictions), "note": WEAK_EVIDENCE}
    (out_dir / "metrics.json").write_text(json.dumps(doc, indent=2) + "\n")
    predictions.to_csv(out_dir / "predictions.csv", index=False)
    title = f"{recipe_name}, {protocol}: UA {doc['ua']:.1%}, WA {doc['wa']:.1%}"
    plot_confusion(doc["confusion_matrix"], EMOTIONS, out_dir / "confusion.png", title=title)
    plot_history({r["fold"]: r["history"] for r in results}, out_dir / "curves.png", title=f"{recipe_name}, {protocol}")
    if calibrated:
        panels = {"all folds": doc["calibration"]}
        if protocol == "leave-one-corpus-out":  # one panel per held-out corpus
            for r in results:
                rows = predictions["fold"] == r["fold"]
                truth_r = np.array([emotion_index(e) for e in predictions.loc[rows, "actual"]])
                panels[r["fold"]] = calibration_metrics(probs[rows.to_numpy()], truth_r, with_bins=True)
        plot_reliability(panels, out_dir / "reliability.png", title=f"{recipe_name}, {protocol}: calibration (8-way)")
    if "dimensions" in doc:
        panels = {f["fold"]: f["dimensions"] for f in folds}
        panels["all test clips"] = doc["dimensions"]["all_test_clips"]
        by_corpus = protocol == "leave-one-corpus-out"  # else one corpus's speaker folds: its AUCs pooled over them
        plot_dimensions(
            panels,
            out_dir / "dimensions.png",
            title=f"{recipe_name}, {protocol}: test clips only",
            intensity_of=None if by_corpus else ["all test clips"],
        )
    if show_samples:
        print_samples(predictions, show_samples, seed)
    return doc


def predict_dimensions(recipe: Any, corpus: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
    """The recipe's arousal, valence and dominance ``(len(rows), 3)`` of ``corpus`` rows ``rows`` (after ``fit``);
    ``None`` for a recipe without a dimensional head."""
    method = getattr(recipe, "predict_dimensions", None)
    values = method(corpus, rows) if callable(method) else None
    return None if values is None else np.asarray(values, np.float64).reshape(len(rows), len(DIMENSIONS))


def dimensions_of(predictions: pd.DataFrame) -> dict[str, Any]:
    """:func:`~.dimensions.dimension_scores` of test predictions (columns ``actual``, :data:`DIMENSIONS` and, where
    the corpus has it, ``intensity``)."""
    intensity = predictions["intensity"].to_numpy() if "intensity" in predictions else None
    values = predictions[list(DIMENSIONS)].to_numpy(np.float64)
    return dimension_scores(values, predictions["actual"].to_numpy(), intensity)


def describe_recipe(recipe: Any) -> dict[str, Any]:
    """A recipe's options as JSON data (``{}`` for recipes that cannot describe themselves)."""
    return json.loads(json.dumps(recipe.describe())) if hasattr(recipe, "describe") else {}


def _same_recipe(a: Any, b: Any) -> bool:
    """Equal recipe descriptions, ignoring :data:`EXECUTION_ONLY` options."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = (set(a) | set(b)) - set(EXECUTION_ONLY)
        return all(_same_recipe(a.get(k), b.get(k)) for k in keys)
    return a == b


def _run_wall_time(results: list[dict[str, Any]], out_dir: Path) -> float:
    """Seconds from the first fold's start to the last fold's end, whichever processes trained them.

    Folds written before ``started_at``/``finished_at`` were recorded are dated by their
    ``result.json`` modification time less their own ``wall_time_s``.
    """
    spans = []
    for r in results:
        if "started_at" in r:
            spans.append((r["started_at"], r["finished_at"]))
        else:
            end = (out_dir / "folds" / str(r["fold"]) / "result.json").stat().st_mtime
            spans.append((end - r["wall_time_s"], end))
    return round(max(end for _, end in spans) - min(begin for begin, _ in spans), 1)


def _claim(fold_dir: Path) -> bool:
    """Take the fold's lock file for this process; ``False`` while a live process holds it."""
    fold_dir.mkdir(parents=True, exist_ok=True)
    lock = fold_dir / LOCK
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            pid = 0
        if pid and pid != os.getpid() and _alive(pid):
            return False
        lock.unlink(missing_ok=True)  # left by a run that was killed: resume it here
        return _claim(fold_dir)
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def print_samples(predictions: pd.DataFrame, n: int, seed: int = 0) -> None:
    """A small predicted-vs-actual table of random test clips."""
    from rich.console import Console
    from rich.table import Table

    sample = predictions.sample(min(n, len(predictions)), random_state=seed).sort_values("path")
    table = Table(title="predicted vs actual (random test clips)")
    for column in ("clip", "speaker", "actual", "predicted", "confidence"):
        table.add_column(column)
    for row in sample.itertuples():
        mark = "" if row.actual == row.predicted else " ✗"
        table.add_row(Path(row.path).name, row.speaker, row.actual, row.predicted + mark, f"{row.confidence:.0%}")
    Console().print(table)
