from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, precision_score, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion

from speech_emotion.evaluation.metrics import compute_metrics, summarize
from speech_emotion.labels import EMOTIONS


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 8, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 8, 300))
    m = compute_metrics(y_true, y_pred)
    labels = list(range(8))
    assert m["ua"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["wa"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", labels=labels))
    assert m["macro_precision"] == pytest.approx(
        precision_score(y_true, y_pred, average="macro", labels=labels, zero_division=0)
    )
    assert m["macro_recall"] == pytest.approx(recall_score(y_true, y_pred, average="macro", labels=labels))
    assert m["confusion_matrix"] == sk_confusion(y_true, y_pred, labels=labels).tolist()
    per_f1 = f1_score(y_true, y_pred, average=None, labels=labels)
    for i, name in enumerate(EMOTIONS):
        assert m["per_class"][name]["f1"] == pytest.approx(per_f1[i])


def test_summary_averages_folds_and_pools_confusion():
    a = compute_metrics([0, 1, 1, 2], [0, 1, 0, 2])
    b = compute_metrics([0, 1, 2, 2], [0, 1, 2, 1])
    doc = summarize("m", "p", [a, b])
    assert doc["ua"] == pytest.approx((a["ua"] + b["ua"]) / 2)
    assert np.array(doc["confusion_matrix"]).sum() == 8
    assert {"model", "protocol", "ua", "wa", "macro_f1", "folds", "confusion_matrix", "labels"} <= set(doc)


def test_curves_of_a_recipe_without_epochs_say_so_without_a_matplotlib_warning(tmp_path):
    import warnings

    from speech_emotion.evaluation.plots import plot_history

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "No artists with labels found to put in legend" before
        path = plot_history({"fold1": [], "fold2": []}, tmp_path / "curves.png", title="whisper-base-probe")
    assert path.stat().st_size > 0
