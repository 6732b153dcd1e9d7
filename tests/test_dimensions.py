"""The dimensional head (arousal, valence, dominance): anchors, fit, ONNX output, and its scores."""

from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.evaluation.dimensions import ccc, intensity_auc, spearman
from speech_emotion.labels import EMOTIONS

pytest.importorskip("torch")
from speech_emotion.training.dimensions import (  # noqa: E402
    LEXICON,
    DimensionHead,
    DimensionHeadOptions,
    add_dimension_output,
    anchor_targets,
    balanced_weights,
    fit_dimension_head,
    intensity_pairs,
)


def test_anchors_put_neutral_at_half_and_keep_the_lexicon_order_on_every_dimension() -> None:
    targets = anchor_targets()
    assert set(targets) == set(EMOTIONS) == set(LEXICON)
    np.testing.assert_allclose(targets["neutral"], 0.5)
    for j in range(3):
        raw = np.array([LEXICON[e][j] for e in EMOTIONS])
        mapped = np.array([targets[e][j] for e in EMOTIONS])
        assert ((mapped >= 0) & (mapped <= 1)).all()
        assert (np.argsort(raw, kind="stable") == np.argsort(mapped, kind="stable")).all()


def test_balanced_weights_give_every_corpus_and_emotion_the_same_weight() -> None:
    corpus = np.array(["a"] * 6 + ["b"] * 2)
    emotion = np.array(["sad"] * 5 + ["angry"] + ["sad", "angry"])
    w = balanced_weights(corpus, emotion)
    assert w.mean() == pytest.approx(1.0)
    assert w[corpus == "a"].sum() == pytest.approx(w[corpus == "b"].sum())
    assert w[:5].sum() == pytest.approx(w[5])


def test_intensity_pairs_match_strong_and_normal_clips_of_the_same_take() -> None:
    paths = np.array(
        [
            "Actor_01/03-01-05-01-01-01-01.flac",
            "Actor_01/03-01-05-02-01-01-01.flac",
            "Actor_01/03-01-05-02-01-02-01.flac",  # its normal take is missing
            "other/clip.flac",
        ]
    )
    assert intensity_pairs(paths).tolist() == [[1, 0]]


def test_the_head_learns_an_intensity_scale_the_anchors_alone_do_not_give() -> None:
    """Clips of one emotion differ only in a hidden 'intensity' direction: the anchors are equal for all of
    them, so only the ranking loss can teach the head that the strong takes are more aroused."""
    rng = np.random.default_rng(0)
    n, d = 400, 16
    emotion = np.array(["angry", "sad"] * (n // 2))
    strong = np.repeat([True, False], n // 2)
    x = rng.normal(0, 1, (n, d))
    x[:, 0] += np.where(emotion == "angry", 2.0, -2.0)  # the category
    x[:, 1] += np.where(strong, 1.5, -1.5)  # the intensity
    targets = np.stack([anchor_targets()[e] for e in emotion])
    pairs = np.array([[i, i + n // 2] for i in range(n // 2)])
    head = fit_dimension_head(x, targets, np.ones(n), pairs, DimensionHeadOptions(steps=300))
    arousal = head(x)[:, 0]
    for e in ("angry", "sad"):
        mine = emotion == e
        assert intensity_auc(arousal[mine], strong[mine]) > 0.9
    without = fit_dimension_head(x, targets, np.ones(n), np.zeros((0, 2)), DimensionHeadOptions(steps=300))
    assert intensity_auc(without(x)[emotion == "sad", 0], strong[emotion == "sad"]) < 0.75


def test_the_onnx_dimensions_output_equals_the_head(tmp_path) -> None:
    import onnxruntime as ort

    from tiny_model import write_tiny_bundle

    bundle = write_tiny_bundle(tmp_path / "tiny")
    rng = np.random.default_rng(1)
    d = ort.InferenceSession(str(bundle / "model.onnx")).get_inputs()[0].shape[-1]
    head = DimensionHead(weight=rng.normal(0, 0.1, (d, 3)), bias=rng.normal(0, 0.1, 3))
    target = add_dimension_output(bundle / "model.onnx", tmp_path / "with-dims.onnx", head, pooled="pooled")
    session = ort.InferenceSession(str(target))
    features = rng.normal(0, 1, (1, 20, d)).astype(np.float32)
    logits, dims = session.run(["logits", "dimensions"], {"features": features})
    assert logits.shape == (1, len(EMOTIONS)) and dims.shape == (1, 3)
    np.testing.assert_allclose(dims[0], head(features[0].mean(0, keepdims=True))[0], atol=1e-5)
    with pytest.raises(ValueError, match="already has"):
        add_dimension_output(target, tmp_path / "twice.onnx", head, pooled="pooled")


def test_scores_agree_with_their_textbook_definitions() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    x = rng.normal(size=300).round(1)
    y = x + rng.normal(size=300)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0])
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(x, x + 1.0) < 1.0  # a shift is penalised, unlike Pearson's r
    strong = rng.random(300) < 0.4
    u = stats.mannwhitneyu(x[strong], x[~strong]).statistic
    assert intensity_auc(x, strong) == pytest.approx(u / (strong.sum() * (~strong).sum()))


def test_a_bundle_declares_its_dimensions_output_or_is_refused_in_one_line(tmp_path) -> None:
    import json

    from speech_emotion.bundle import DIMENSIONS, read_bundle
    from speech_emotion.errors import ModelError
    from speech_emotion.training.dimensions import attach_dimension_head
    from tiny_model import write_tiny_bundle

    folder = write_tiny_bundle(tmp_path / "tiny")
    assert read_bundle(folder).dimensions == ()
    # the tiny graph pools into "pooled", not the Whisper graph's node: attach through a graph that names it so
    import onnx

    model = onnx.load(str(folder / "model.onnx"))
    for node in model.graph.node:
        node.output[:] = ["/Concat_output_0" if o == "pooled" else o for o in node.output]
        node.input[:] = ["/Concat_output_0" if i == "pooled" else i for i in node.input]
    onnx.save(model, str(folder / "model.onnx"))
    d = model.graph.input[0].type.tensor_type.shape.dim[-1].dim_value
    head = DimensionHead(weight=np.zeros((d, 3)), bias=np.zeros(3))
    attach_dimension_head(folder, head, {"fitted_on": {"test": 1}})
    bundle = read_bundle(folder)
    assert bundle.dimensions == DIMENSIONS
    assert bundle.metadata["dimensions"]["fitted_on"] == {"test": 1}
    doc = json.loads((folder / "model.json").read_text())
    for bad in (["valence", "arousal", "dominance"], "arousal", 3):
        (folder / "model.json").write_text(json.dumps({**doc, "dimensions": bad}))
        with pytest.raises(ModelError, match="dimensions"):
            read_bundle(folder)
