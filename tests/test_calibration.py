"""Honest confidence: calibration metrics, temperature scaling, bundles with a calibration block, and
``evaluate --model`` scoring a bundle as it is."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scripts_loader import load_script
from speech_emotion.bundle import read_bundle
from speech_emotion.calibration import Calibration
from speech_emotion.cli.main import main
from speech_emotion.errors import ModelError
from speech_emotion.evaluation.calibration import choose_thresholds, fit_temperature, leave_one_corpus_out
from speech_emotion.evaluation.metrics import calibration_metrics, expected_calibration_error, reliability_bins
from speech_emotion.recognizer import Recognizer, softmax
from synth import emotion_clip, write_ravdess_corpus
from tiny_model import calibrated_copy

ROOT = Path(__file__).resolve().parents[1]


def _sampled(n: int, temperature: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from ``softmax(logits / temperature)``: the labels' true temperature is known."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, 8))
    probs = softmax(logits / temperature)
    y = np.array([rng.choice(8, p=p) for p in probs])
    return logits, y


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5, 6.0])
def test_temperature_fit_recovers_the_temperature_the_labels_were_drawn_with(temperature):
    logits, y = _sampled(8000, temperature)
    assert fit_temperature(logits, y) == pytest.approx(temperature, rel=0.1)


def test_labels_drawn_from_the_shown_probabilities_are_calibrated_and_overconfident_ones_are_not():
    logits, y = _sampled(20000, 1.0, seed=1)
    calibrated = calibration_metrics(softmax(logits), y)
    sharpened = calibration_metrics(softmax(logits * 4), y)
    assert calibrated["ece"] < 0.02
    assert sharpened["ece"] > 0.15 and sharpened["confident_wrong"] > calibrated["confident_wrong"]
    assert sharpened["nll"] > calibrated["nll"]


def test_ece_brier_and_nll_match_their_definitions_on_a_small_example():
    from sklearn.metrics import log_loss

    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 0, 1])
    m = calibration_metrics(probs, y, with_bins=True)
    # bins (15 wide): 0.95 -> bin 14 (2 clips, accuracy 0.5), 0.6 -> bin 8, 0.7 -> bin 10 (both right)
    assert m["ece"] == pytest.approx((2 * abs(0.5 - 0.95) + abs(1 - 0.6) + abs(1 - 0.7)) / 4)
    assert m["brier"] == pytest.approx(np.mean(((probs - np.eye(2)[y]) ** 2).sum(axis=1)))
    assert m["nll"] == pytest.approx(log_loss(y, probs))
    assert m["confident_share"] == 0.5 and m["confident_wrong"] == 0.25 and m["confident_precision"] == 0.5
    assert sum(m["bins"]["count"]) == 4 and m["bins"]["count"][14] == 2
    assert expected_calibration_error(probs, y) == m["ece"]


def test_reliability_bins_put_confidence_one_and_one_fifteenth_where_they_belong():
    probs = np.array([[1.0, 0.0], [1 / 15 + 0.5, 0.5 - 1 / 15]])
    bins = reliability_bins(probs, [0, 1])
    assert bins["count"][14] == 1 and bins["count"][8] == 1 and len(bins["edges"]) == 16


def test_thresholds_keep_the_most_answers_that_reach_the_target_accuracy():
    logits, y = _sampled(6000, 1.0, seed=2)
    probs = softmax(logits)
    confidence, margin = choose_thresholds(probs, y, target=0.8)
    kept = ~((probs.max(1) < confidence) | (np.sort(probs, 1)[:, -1] - np.sort(probs, 1)[:, -2] < margin))
    accuracy = (probs.argmax(1) == y)[kept].mean()
    assert accuracy >= 0.8 and 0.01 < kept.mean() < 1
    assert choose_thresholds(probs, y, target=0.0) == (0.0, 0.0)  # everything is kept when anything goes


def test_leave_one_corpus_out_fits_without_the_corpus_it_scores():
    a, ya = _sampled(3000, 3.0, seed=3)
    b, yb = _sampled(3000, 3.0, seed=4)
    c, yc = _sampled(3000, 3.0, seed=5)
    report = leave_one_corpus_out(
        np.vstack([a, b, c]), np.concatenate([ya, yb, yc]), ["a"] * 3000 + ["b"] * 3000 + ["c"] * 3000
    )
    assert set(report["folds"]) == {"a", "b", "c"}
    assert report["folds"]["a"]["fitted_on"] == ["b", "c"]
    for fold in report["folds"].values():
        assert fold["temperature"] == pytest.approx(3.0, rel=0.15)
        assert fold["after"]["ece"] < fold["before"]["ece"]
    assert report["mean"]["after_ece"] < 0.05 < report["mean"]["before_ece"]


def test_a_bundle_with_a_temperature_gives_softened_probabilities_and_the_same_answer(tiny_bundle, tmp_path):
    block = {"method": "temperature", "temperature": 3.0, "fitted_on": ["x"], "thresholds": {"min_confidence": 0.99}}
    calibrated = Recognizer.load(calibrated_copy(tiny_bundle, tmp_path / "cal", block))
    plain = Recognizer.load(tiny_bundle)
    clip = emotion_clip("angry", seed=1)
    before, after = plain.predict(clip, 16000), calibrated.predict(clip, 16000)
    raw = np.log(before.probabilities)  # log-probabilities are logits up to a constant
    expected = softmax(raw / 3.0)
    assert after.label == before.label and after.confidence < before.confidence
    assert after.probabilities.tolist() == pytest.approx(expected.tolist(), abs=1e-6)
    assert after.uncertain and not before.uncertain
    assert after.to_dict()["uncertain"] is True and before.to_dict()["uncertain"] is False
    assert read_bundle(tmp_path / "cal").calibration == Calibration(3.0, 0.99, 0.0, ("x",))


def test_a_calibration_block_survives_write_and_read(tiny_bundle, tmp_path):
    from dataclasses import replace

    from speech_emotion.bundle import write_bundle

    bundle = read_bundle(tiny_bundle)
    shutil.copytree(tiny_bundle, tmp_path / "b")
    cal = Calibration(2.0, 0.4, 0.1, ("nemo", "es-students"), notes="why")
    write_bundle(tmp_path / "b", replace(bundle, calibration=cal))
    assert read_bundle(tmp_path / "b").calibration == cal
    assert json.loads((tmp_path / "b" / "model.json").read_text())["calibration"]["temperature"] == 2.0


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ([], "calibration"),
        ({"method": "platt", "temperature": 2.0}, "calibration.method"),
        ({"method": "temperature"}, "calibration.temperature"),
        ({"method": "temperature", "temperature": 0}, "calibration.temperature"),
        ({"method": "temperature", "temperature": "2"}, "calibration.temperature"),
        ({"method": "temperature", "temperature": 2.0, "scale": 1}, "calibration.scale"),
        ({"method": "temperature", "temperature": 2.0, "fitted_on": "nemo"}, "calibration.fitted_on"),
        ({"method": "temperature", "temperature": 2.0, "thresholds": []}, "calibration.thresholds"),
        (
            {"method": "temperature", "temperature": 2.0, "thresholds": {"min_margin": 1.5}},
            "calibration.thresholds.min_margin",
        ),
        ({"method": "temperature", "temperature": 2.0, "thresholds": {"top": 0.5}}, "calibration.thresholds.top"),
    ],
)
def test_an_invalid_calibration_block_is_one_model_error_line_naming_the_field(tiny_bundle, tmp_path, block, field):
    folder = calibrated_copy(tiny_bundle, tmp_path / "bad", block)
    with pytest.raises(ModelError) as info:
        read_bundle(folder)
    message = str(info.value)
    assert message.startswith(f"{folder / 'model.json'}: {field}: ") and "\n" not in message


@pytest.fixture
def two_corpora(tmp_path: Path) -> list[Path]:
    """Two small generated corpora with manifests (one lacks two emotions, so its argmax is restricted)."""
    a = write_ravdess_corpus(tmp_path / "alpha", actors=(1, 2), takes=1)
    b = write_ravdess_corpus(tmp_path / "beta", actors=(3,), takes=2, emotions=("happy", "sad", "angry", "neutral"))
    return [a, b]


def test_evaluate_model_scores_a_bundle_as_it_is_per_corpus_with_calibration(tiny_bundle, two_corpora, tmp_path):
    out = tmp_path / "scored"
    argv = ["evaluate", "--model", str(tiny_bundle), "--data", *map(str, two_corpora), "--out", str(out)]
    assert main(argv) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["protocol"] == "bundle-as-shipped" and [f["fold"] for f in doc["folds"]] == ["alpha", "beta"]
    beta = doc["folds"][1]
    assert beta["labels_scored"] == ["neutral", "happy", "sad", "angry"] and beta["n"] == 8
    assert set(np.flatnonzero(np.array(beta["confusion_matrix"]).sum(axis=0))) <= {0, 2, 3, 4}  # restricted argmax
    for scores in (doc["calibration"], *(f["calibration"] for f in doc["folds"])):
        assert {"ece", "brier", "nll", "confident_wrong", "bins"} <= set(scores)
    assert doc["calibration"]["n"] == 16 + 8
    assert (out / "reliability.png").stat().st_size > 0 and (out / "confusion.png").is_file()
    import pandas as pd

    predictions = pd.read_csv(out / "predictions.csv")
    assert {"logit_neutral", "logit_surprised", "shown_label", "shown_confidence", "uncertain"} <= set(predictions)
    # the shown answer is the unrestricted 8-way one; its confidence is the softmax of the stored logits
    logits = predictions[[f"logit_{e}" for e in read_bundle(tiny_bundle).labels]].to_numpy()
    assert predictions["shown_confidence"].to_numpy() == pytest.approx(softmax(logits).max(axis=1))
    # a rerun reuses the finished corpora and gives the same document (but its timing)
    assert main(argv) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert {k: v for k, v in again.items() if k != "wall_time_s"} == {
        k: v for k, v in doc.items() if k != "wall_time_s"
    }


def test_evaluate_model_warns_once_that_a_single_emotion_corpus_scores_trivially(tiny_bundle, tmp_path, capsys):
    solo = write_ravdess_corpus(tmp_path / "solo", actors=(1,), takes=2, emotions=("sad",))
    pair = write_ravdess_corpus(tmp_path / "pair", actors=(2,), takes=1, emotions=("sad", "happy"))
    argv = ["evaluate", "--model", str(tiny_bundle), "--data", str(solo), str(pair), "--out", str(tmp_path / "o")]
    assert main(argv) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: solo: one emotion only (sad): its UA, WA and macro-F1 are trivially 1, not a score"]


@pytest.mark.parametrize("extra", [["--protocol", "actor-6fold"], ["--epochs", "3"], ["--live"]])
def test_evaluate_model_refuses_training_options_in_one_line(tiny_bundle, two_corpora, tmp_path, capsys, extra):
    argv = ["evaluate", "--model", str(tiny_bundle), "--data", str(two_corpora[0]), "--out", str(tmp_path / "o")]
    assert main([*argv, *extra]) == 2  # a usage error, as argparse's own
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {extra[0]} trains a recipe") and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_evaluate_model_with_an_unknown_bundle_is_one_line(two_corpora, tmp_path, capsys):
    assert main(["evaluate", "--model", "no-such-model", "--data", str(two_corpora[0]), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no-such-model: not a model folder") and "\n" not in err


def test_model_and_recipe_on_evaluate_are_exclusive(tiny_bundle, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--model", str(tiny_bundle), "--recipe", "cnn-lstm", "--data", "d", "--out", "o"])
    assert info.value.code == 2


def test_calibrate_script_writes_a_bundle_copy_whose_recognizer_applies_the_fitted_map(
    tiny_bundle, two_corpora, tmp_path
):
    out = tmp_path / "scored"
    gamma = write_ravdess_corpus(tmp_path / "gamma", actors=(4,), takes=1)  # scored, not fitted on
    data = [*map(str, two_corpora), str(gamma)]
    assert main(["evaluate", "--model", str(tiny_bundle), "--data", *data, "--out", str(out)]) == 0
    script = _calibrate_script()
    copy, report = tmp_path / "calibrated", tmp_path / "report.json"
    argv = ["--predictions", str(out / "predictions.csv"), "--model", str(tiny_bundle), "--corpora", "alpha", "beta"]
    assert script.main([*argv, "--report", str(report), "--out", str(copy), "--plots", str(tmp_path / "png")]) == 0
    doc = json.loads(report.read_text())
    assert set(doc["leave_one_corpus_out"]["folds"]) == {"alpha", "beta"} and set(doc["not_fitted_on"]) == {"gamma"}
    assert (tmp_path / "png" / "reliability-after.png").is_file()
    assert doc["command"].startswith("python scripts/calibrate_bundle.py --predictions")
    calibration = read_bundle(copy).calibration
    assert calibration is not None and calibration.fitted_on == ("alpha", "beta")
    assert calibration.temperature == pytest.approx(doc["fitted_on_all"]["calibration"]["temperature"])
    clip = emotion_clip("sad", seed=3)
    raw = Recognizer.load(tiny_bundle).predict(clip, 16000)
    shown = Recognizer.load(copy).predict(clip, 16000)
    assert shown.label == raw.label
    expected = softmax(np.log(raw.probabilities) / calibration.temperature)
    assert shown.probabilities.tolist() == pytest.approx(expected.tolist(), abs=1e-6)


def test_predict_says_uncertain_in_its_json_and_table(tiny_bundle, tmp_path, capsys):
    import soundfile as sf

    block = {"method": "temperature", "temperature": 2.0, "thresholds": {"min_confidence": 0.99}}
    unsure = calibrated_copy(tiny_bundle, tmp_path / "unsure", block)
    wav = tmp_path / "x.wav"
    sf.write(wav, emotion_clip("happy", seed=4), 16000)
    assert main(["predict", str(wav), "--model", str(unsure), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["uncertain"] is True
    assert main(["predict", str(wav), "--model", str(tiny_bundle), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["uncertain"] is False
    assert main(["predict", str(wav), "--model", str(unsure)]) == 0
    out = capsys.readouterr().out
    assert " ?" in out and "?: uncertain" in out


def test_leave_one_corpus_out_reports_calibration_per_held_out_corpus(two_corpora, tmp_path):
    options = {
        "ensemble": 1,
        "model": {"conv_channels": [8], "lstm_hidden": 4},
        "train": {"epochs": 1, "progress": False},
        "data": {"augment": {"copies": 0}, "workers": 1, "progress": False},
    }
    out = tmp_path / "loco"
    argv = ["evaluate", "--recipe", "cnn-lstm", "--protocol", "leave-one-corpus-out", "--data", *map(str, two_corpora)]
    assert main([*argv, "--out", str(out), "--options", json.dumps(options)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert [f["fold"] for f in doc["folds"]] == ["alpha", "beta"]
    for fold in doc["folds"]:
        assert fold["calibration"]["n"] == fold["n"] and 0 <= fold["calibration"]["ece"] <= 1
    assert doc["calibration"]["n"] == sum(f["n"] for f in doc["folds"])
    assert (out / "reliability.png").is_file()


def _calibrate_script():
    return load_script("calibrate_bundle")


def test_a_leave_one_corpus_out_run_gives_the_held_out_logits_a_calibration_is_fitted_on(tmp_path):
    import pandas as pd

    from speech_emotion.labels import EMOTIONS

    logits, y = _sampled(600, 3.0, seed=8)
    probs = softmax(logits)
    rows = [
        {
            "fold": "alpha" if i < 300 else "beta",
            "actual": EMOTIONS[int(y[i])],
            **dict(zip((f"p_{e}" for e in EMOTIONS), map(float, probs[i]))),
        }
        for i in range(len(y))
    ]
    predictions = tmp_path / "predictions.csv"
    pd.DataFrame(rows).to_csv(predictions, index=False)
    table = _calibrate_script().read_logits(predictions, EMOTIONS)
    assert table["corpus"].tolist() == [r["fold"] for r in rows]
    recovered = softmax(table[[f"logit_{e}" for e in EMOTIONS]].to_numpy(np.float64))
    np.testing.assert_allclose(recovered, probs, atol=1e-9)  # log p: the logits up to a per-clip constant
    temperature = fit_temperature(table[[f"logit_{e}" for e in EMOTIONS]].to_numpy(np.float64), y)
    assert temperature == pytest.approx(fit_temperature(logits, y), rel=1e-4)


def test_corpus_weights_let_a_small_corpus_count_as_much_as_a_large_one():
    from speech_emotion.evaluation.calibration import corpus_weights

    big, y_big = _sampled(4000, 1.0, seed=6)
    small, y_small = _sampled(400, 4.0, seed=7)
    logits, y = np.vstack([big, small]), np.concatenate([y_big, y_small])
    names = ["big"] * 4000 + ["small"] * 400
    weights = corpus_weights(names)
    assert weights[:4000].sum() == pytest.approx(1.0) and weights[4000:].sum() == pytest.approx(1.0)
    by_clip, by_corpus = fit_temperature(logits, y), fit_temperature(logits, y, weights)
    assert 1.0 < by_clip < by_corpus < 4.0


def test_the_service_says_uncertain_as_predict_does(tiny_bundle, tmp_path):
    import io

    import soundfile as sf
    from fastapi.testclient import TestClient

    from speech_emotion.service.app import create_app
    from speech_emotion.service.options import ServiceOptions

    block = {"method": "temperature", "temperature": 2.0, "thresholds": {"min_confidence": 0.99}}
    unsure = Recognizer.load(calibrated_copy(tiny_bundle, tmp_path / "unsure", block))
    buffer = io.BytesIO()
    sf.write(buffer, emotion_clip("sad", seed=5), 16000, format="WAV")
    with TestClient(create_app(ServiceOptions(warmup=False, allowed_hosts=["testserver"]), unsure)) as client:
        r = client.post("/v1/predict", files={"file": ("x.wav", buffer.getvalue(), "audio/wav")})
    assert r.status_code == 200 and r.json()["uncertain"] is True
