"""Evaluation of the dimensional head (arousal, valence, dominance): the scores on constructed values, and
``evaluate --model`` on a tiny bundle given a head whose arousal follows pitch, on generated RAVDESS-named clips."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speech_emotion.cli.main import main
from speech_emotion.conditioning import prepare
from speech_emotion.evaluation.dimensions import WEAK_EVIDENCE, anchor_agreement, dimension_scores, intensity_aucs
from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from speech_emotion.training.dimensions import DimensionHead, anchor_matrix, attach_dimension_head
from synth import EMOTION_VOICES, silence, vowel

EMOTIONS_WITH_INTENSITY = ("happy", "sad", "angry")


# -- the scores on constructed values ---------------------------------------------------------------------


def test_intensity_auc_is_per_emotion_with_both_intensities_and_their_mean():
    emotions = ["angry"] * 4 + ["sad"] * 4 + ["neutral"] * 2 + ["happy"] * 2
    intensity = ["normal", "normal", "strong", "strong"] * 2 + ["normal", "normal"] + ["strong", np.nan]
    arousal = [0.1, 0.2, 0.8, 0.9] + [0.9, 0.8, 0.2, 0.1] + [0.5, 0.6] + [0.7, 0.1]
    aucs = intensity_aucs(np.array(arousal), emotions, np.array(intensity, dtype=object))
    # angry: every strong above every normal; sad: the reverse; neutral and happy lack one of the two
    assert aucs == {"sad": 0.0, "angry": 1.0, "mean": 0.5}
    assert list(aucs) == ["sad", "angry", "mean"]  # in label order
    assert intensity_aucs(np.array([0.3, 0.3]), ["angry", "angry"], ["strong", "normal"]) == {"angry": 0.5, "mean": 0.5}
    assert intensity_aucs(np.array(arousal), emotions, [""] * len(emotions)) == {}


def test_anchor_agreement_is_one_for_the_anchors_themselves_and_undefined_for_a_constant():
    emotions = np.array(["angry", "sad", "happy", "neutral", "calm", "fearful"] * 3)
    perfect = anchor_agreement(anchor_matrix(emotions), emotions)
    assert set(perfect) == {"arousal", "valence", "dominance"}
    for scores in perfect.values():
        assert scores["ccc"] == pytest.approx(1.0) and scores["spearman"] == pytest.approx(1.0)
    shifted = anchor_agreement(anchor_matrix(emotions) * 0.5 + 0.25, emotions)  # same order, wrong scale
    assert all(s["spearman"] == pytest.approx(1.0) and 0 < s["ccc"] < 0.95 for s in shifted.values())
    constant = anchor_agreement(np.full((len(emotions), 3), 0.5), emotions)
    assert all(s["spearman"] is None and s["ccc"] == pytest.approx(0.0) for s in constant.values())
    one_emotion = dimension_scores(np.random.default_rng(0).random((5, 3)), ["sad"] * 5)
    assert one_emotion["n"] == 5 and all(s["spearman"] is None for s in one_emotion["anchors"].values())
    assert "intensity_auc" not in one_emotion


# -- evaluate --model on a bundle with and without the head -------------------------------------------------


@pytest.fixture(scope="module")
def intensity_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RAVDESS-named clips of three emotions, two actors: the strong take of each is the same voice 30 % higher."""
    root = tmp_path_factory.mktemp("intensity") / "ravdess-like"
    for actor in (1, 2):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for emotion in EMOTIONS_WITH_INTENSITY:
            f0, formants = EMOTION_VOICES[emotion]
            code = EMOTIONS.index(emotion) + 1
            for statement in (1, 2):
                seed = actor * 100 + code * 10 + statement
                for level, scale in ((1, 1.0), (2, 1.3)):
                    voice = vowel(1.2, f0=f0 * scale * (1 + 0.03 * statement), formants=formants, seed=seed)
                    clip = np.concatenate([silence(0.2), voice, silence(0.2)])
                    name = f"03-01-{code:02d}-{level:02d}-{statement:02d}-01-{actor:02d}.wav"
                    sf.write(folder / name, clip, 16000)
    return root


def pooled_features(recognizer: Recognizer, paths: list[Path]) -> np.ndarray:
    """What the tiny graph's ``pooled`` node computes: the mean over frames of each clip's features."""
    return np.stack([recognizer.model_input(prepare(p, recognizer.preprocessing))[0].mean(0) for p in paths])


def bundle_with_head(tiny_bundle: Path, folder: Path, corpus: Path, sign: float) -> Path:
    """A copy of the tiny bundle whose arousal is ``sign`` x the (standardised) strong-minus-normal direction of the
    corpus's pooled features; valence and dominance constant (0.5)."""
    shutil.copytree(tiny_bundle, folder)
    recognizer = Recognizer.load(folder, threads=1)
    paths = sorted(corpus.rglob("*.wav"))
    x = pooled_features(recognizer, paths)
    strong = np.array([p.stem.split("-")[3] == "02" for p in paths])
    scale = x.std(0) + 1e-6
    direction = (x[strong].mean(0) - x[~strong].mean(0)) / scale**2
    weight = np.zeros((x.shape[1], 3))
    weight[:, 0] = sign * direction / np.abs((x - x.mean(0)) @ direction).max()
    head = DimensionHead(weight=weight, bias=np.array([-(x.mean(0) @ weight[:, 0]), 0.0, 0.0]))
    attach_dimension_head(folder, head, {"fitted_on": {"ravdess-like": len(paths)}}, pooled="pooled")
    return folder


def test_evaluate_model_scores_a_bundles_dimensions_per_corpus_with_the_intensity_test(
    tiny_bundle, intensity_corpus, tmp_path, capsys
):
    bundle = bundle_with_head(tiny_bundle, tmp_path / "with-head", intensity_corpus, sign=1.0)
    out = tmp_path / "scored"
    assert main(["evaluate", "--model", str(bundle), "--data", str(intensity_corpus), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "metrics.json").read_text())
    scores = doc["folds"][0]["dimensions"]
    assert scores["n"] == 24 and set(scores["anchors"]) == {"arousal", "valence", "dominance"}
    aucs = scores["intensity_auc"]
    assert list(aucs) == [*EMOTIONS_WITH_INTENSITY, "mean"]
    assert aucs["mean"] >= 0.9  # the head's arousal follows what makes a take strong here
    assert aucs["mean"] == pytest.approx(np.mean([aucs[e] for e in EMOTIONS_WITH_INTENSITY]))
    assert scores["anchors"]["valence"]["spearman"] is None  # a constant output has no rank correlation
    summary = doc["dimensions"]
    assert summary["intensity_auc"] == {"ravdess-like": aucs} and summary["note"] == WEAK_EVIDENCE
    assert summary["head_fitted_on"] == ["ravdess-like"]
    assert (out / "dimensions.png").stat().st_size > 0 and (out / "reliability.png").is_file()
    predictions = pd.read_csv(out / "predictions.csv")
    assert {"arousal", "valence", "dominance", "intensity"} <= set(predictions)
    assert predictions["arousal"].between(0, 1).all() and (predictions["valence"] == 0.5).all()
    assert "intensity AUC (arousal, strong > normal)" in printed and "weak evidence" in printed
    assert "fitted on ravdess-like: its scores there are not held out" in printed

    reverse = bundle_with_head(tiny_bundle, tmp_path / "reversed-head", intensity_corpus, sign=-1.0)
    assert (
        main(["evaluate", "--model", str(reverse), "--data", str(intensity_corpus), "--out", str(tmp_path / "r")]) == 0
    )
    reversed_aucs = json.loads((tmp_path / "r" / "metrics.json").read_text())["folds"][0]["dimensions"]["intensity_auc"]
    assert reversed_aucs["mean"] == pytest.approx(1 - aucs["mean"])


def test_a_corpus_without_intensity_gets_anchor_scores_only(tiny_bundle, intensity_corpus, tmp_path):
    bundle = bundle_with_head(tiny_bundle, tmp_path / "with-head", intensity_corpus, sign=1.0)
    flat = tmp_path / "no-intensity"  # the same clips under names that say no intensity
    flat.mkdir()
    rows = []
    for i, path in enumerate(sorted(intensity_corpus.rglob("*.wav"))):
        shutil.copy(path, flat / f"clip{i:02d}.wav")
        rows.append(f"clip{i:02d}.wav\t{EMOTIONS[int(path.stem.split('-')[2]) - 1]}\t{path.parent.name}\n")
    (flat / "MANIFEST.tsv").write_text("path\temotion\tspeaker\n" + "".join(rows))
    out = tmp_path / "scored"
    assert (
        main(["evaluate", "--model", str(bundle), "--data", str(flat), str(intensity_corpus), "--out", str(out)]) == 0
    )
    doc = json.loads((out / "metrics.json").read_text())
    by_corpus = {f["fold"]: f["dimensions"] for f in doc["folds"]}
    assert "intensity_auc" not in by_corpus["no-intensity"] and "intensity_auc" in by_corpus["ravdess-like"]
    assert set(doc["dimensions"]["intensity_auc"]) == {"ravdess-like"}
    # the two corpora hold the same audio, so the same anchor scores
    assert by_corpus["no-intensity"]["anchors"] == by_corpus["ravdess-like"]["anchors"]


def test_a_bundle_without_dimensions_gets_no_dimension_scores_and_no_error(tiny_bundle, intensity_corpus, tmp_path):
    out = tmp_path / "scored"
    assert main(["evaluate", "--model", str(tiny_bundle), "--data", str(intensity_corpus), "--out", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert "dimensions" not in doc and all("dimensions" not in f for f in doc["folds"])
    assert not (out / "dimensions.png").exists()
    assert not {"arousal", "valence", "dominance"} & set(pd.read_csv(out / "predictions.csv"))


def test_corpora_scored_before_the_bundle_had_its_head_are_scored_again(tiny_bundle, intensity_corpus, tmp_path):
    bundle, out = tmp_path / "bundle", tmp_path / "scored"
    shutil.copytree(tiny_bundle, bundle)
    argv = ["evaluate", "--model", str(bundle), "--data", str(intensity_corpus), "--out", str(out)]
    assert main(argv) == 0 and "dimensions" not in json.loads((out / "metrics.json").read_text())
    shutil.rmtree(bundle)
    bundle_with_head(tiny_bundle, bundle, intensity_corpus, sign=1.0)  # the same bundle folder, now with the head
    assert main(argv) == 0
    assert json.loads((out / "metrics.json").read_text())["folds"][0]["dimensions"]["intensity_auc"]["mean"] >= 0.9
    assert "arousal" in pd.read_csv(out / "corpora" / "ravdess-like.csv")
