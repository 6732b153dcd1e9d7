"""The model bundle contract: every malformed model.json is one ModelError line naming the bundle and the field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from scripts_loader import load_script
from speech_emotion import available_models
from speech_emotion.bundle import (
    FORMAT_VERSION,
    bundled_models_dir,
    load_bundle,
    read_bundle,
    resolve_model,
    write_bundle,
)
from speech_emotion.cli.main import main
from speech_emotion.errors import ModelError
from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from synth import emotion_clip


def _copy(bundle: Path, target: Path, edit=None) -> Path:
    shutil.copytree(bundle, target)
    if edit is not None:
        doc = json.loads((target / "model.json").read_text())
        edit(doc)
        (target / "model.json").write_text(json.dumps(doc))
    return target


def _delete(key: str):
    return lambda doc: doc.pop(key)


def _set(path: tuple[str, ...], value):
    def edit(doc):
        for key in path[:-1]:
            doc = doc.setdefault(key, {})
        doc[path[-1]] = value

    return edit


MALFORMED = {
    "missing name": (_delete("name"), "name: missing"),
    "unknown feature option": (_set(("frontend_options", "n_mfccs"), 20), "frontend_options: unknown option 'n_mfccs'"),
    "misspelt audio option": (
        _set(("audio_options", "trim_top_bd"), 30.0),
        "audio_options.trim_top_bd: unknown option",
    ),
    "labels not a list": (_set(("labels",), "neutral,calm"), "labels: must be a non-empty list"),
    "unknown emotion": (_set(("labels",), ["neutral", "bored"]), "labels: unknown emotion 'bored'"),
    "repeated labels": (_set(("labels",), ["sad", "sad"]), "labels: names repeat"),
    "a rate other than 16 kHz": (
        _set(("frontend_options", "sample_rate"), 22050),
        "frontend_options.sample_rate: must be 16000 (every model reads 16 kHz audio), got 22050",
    ),
    "audio resampled to another rate": (
        _set(("audio_options", "sample_rate"), 8000),
        "audio_options.sample_rate: must be 16000",
    ),
    "unknown features": (_set(("frontend",), "mfcc-v9"), "frontend: unknown features 'mfcc-v9'"),
    "unknown top-level field": (_set(("colour",), "blue"), "colour: unknown field"),
    "onnx file missing": (_set(("onnx",), "nothere.onnx"), "onnx: model file nothere.onnx missing"),
    "unsupported format": (_set(("format",), 7), "format: unsupported version 7"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_each_malformed_bundle_is_a_model_error_naming_bundle_and_field(tiny_bundle, tmp_path, case):
    edit, message = MALFORMED[case]
    bundle = _copy(tiny_bundle, tmp_path / "b", edit)
    with pytest.raises(ModelError) as info:
        read_bundle(bundle)
    text = str(info.value)
    assert text.startswith(str(bundle / "model.json")) and message in text and "\n" not in text


def test_bad_json_is_a_model_error(tiny_bundle, tmp_path):
    bundle = _copy(tiny_bundle, tmp_path / "b")
    (bundle / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_bundle(bundle)


def test_format_2_keeps_the_sample_rate_in_one_place(tiny_bundle, tmp_path):
    bundle = read_bundle(tiny_bundle)
    target = tmp_path / "v2"
    target.mkdir()
    shutil.copy(tiny_bundle / "model.onnx", target / "model.onnx")
    write_bundle(target, bundle)
    doc = json.loads((target / "model.json").read_text())
    assert doc["format"] == FORMAT_VERSION and doc["sample_rate"] == 16000
    assert "sample_rate" not in doc["feature_options"] and "sample_rate" not in doc["preprocessing"]
    assert read_bundle(target) == bundle
    doc["preprocessing"]["sample_rate"] = 8000
    (target / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="preprocessing.sample_rate: the sample rate belongs in the top-level"):
        read_bundle(target)


@pytest.mark.parametrize("name", ["cnn-lstm", "whisper-base-probe"])
def test_shipped_bundles_read_as_format_1_and_rewrite_to_bit_identical_predictions(name, tmp_path):
    source = bundled_models_dir() / name
    bundle = read_bundle(source)
    raw = json.loads((source / "model.json").read_text())
    assert bundle.format == 1 and bundle.name == raw["name"] and list(bundle.labels) == raw["labels"]
    assert bundle.features == raw["frontend"] and bundle.metadata["recipe"] == raw["recipe"]
    target = tmp_path / name
    target.mkdir()
    (target / bundle.onnx).symlink_to(source / bundle.onnx)
    write_bundle(target, bundle)
    assert read_bundle(target) == bundle
    clip = emotion_clip("angry", 3)
    before = Recognizer(bundle, threads=1).logits(clip)
    after = Recognizer(read_bundle(target), threads=1).logits(clip)
    assert np.array_equal(before, after)


def test_no_shipped_static_int8_graph_has_weights_that_cpus_without_vnni_can_saturate():
    """On x86 CPUs with AVX2 but not VNNI, ONNX Runtime adds pairs of uint8 x int8 products in int16: weights
    beyond +-64 can overflow it, and the static int8 default then got 46 % UA on EMOVO clips instead of its float
    graph's 58 % (docs/inference.md). Every shipped static integer MatMul stores its weights in 7 bits (the older
    graphs' dynamic fc1 was measured to agree with its float graph better as it is: see ``saturating_weights``)."""
    import onnx

    quantize_bundle = load_script("quantize_bundle")
    for name, target in available_models().items():
        if name == target:
            graph = onnx.load(str(load_bundle(name).onnx_path))
            assert quantize_bundle.saturating_weights(graph, dynamic=False) == [], name


def test_available_models_lists_bundles_and_aliases_with_their_targets():
    models = available_models()
    assert models["cnn-lstm"] == "cnn-lstm" and models["whisper-base-probe"] == "whisper-base-probe"
    assert models["default"] == (bundled_models_dir() / "default" / "LINK").read_text().strip()
    assert resolve_model("default") == bundled_models_dir() / models["default"]


def test_unknown_model_error_lists_the_available_models(capsys):
    assert main(["predict", "--model", "no-such-model", "x.wav"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no-such-model:") and "default (-> " in err and "\n" not in err


@pytest.mark.parametrize(
    "case", ["missing name", "misspelt audio option", "onnx file missing", "a rate other than 16 kHz"]
)
def test_predict_with_a_malformed_bundle_prints_one_line_and_exits_1(tiny_bundle, tmp_path, capsys, case):
    edit, message = MALFORMED[case]
    bundle = _copy(tiny_bundle, tmp_path / "b", edit)
    wav = tmp_path / "x.wav"
    sf.write(wav, emotion_clip("happy", 1), 16000)
    assert main(["predict", "--model", str(bundle), str(wav)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bundle / 'model.json'}") and message in err and "\n" not in err


@pytest.mark.parametrize("case", ["truncated graph", "labels the graph does not score"])
def test_a_corrupt_or_mismatched_onnx_graph_is_one_error_line_not_a_traceback(tiny_bundle, tmp_path, capsys, case):
    if case == "truncated graph":  # an interrupted copy, a Git LFS pointer
        bundle = _copy(tiny_bundle, tmp_path / "b")
        (bundle / "model.onnx").write_bytes((tiny_bundle / "model.onnx").read_bytes()[:200])
        message = "cannot load the ONNX graph"
    else:  # another model's model.json beside this graph
        bundle = _copy(tiny_bundle, tmp_path / "b", _set(("labels",), ["neutral", "happy", "sad"]))
        message = "the graph gives 8 scores, but model.json names 3 labels"
    wav = tmp_path / "x.wav"
    sf.write(wav, emotion_clip("happy", 1), 16000)
    assert main(["predict", "--model", str(bundle), str(wav)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bundle / 'model.onnx'}: ") and message in err and "\n" not in err


def test_labels_follow_the_project_label_map():
    assert set(read_bundle(bundled_models_dir() / "cnn-lstm").labels) <= set(EMOTIONS)


def _v2_copy(tiny_bundle: Path, target: Path, edit) -> Path:
    target.mkdir()
    shutil.copy(tiny_bundle / "model.onnx", target / "model.onnx")
    write_bundle(target, read_bundle(tiny_bundle))
    doc = json.loads((target / "model.json").read_text())
    edit(doc)
    (target / "model.json").write_text(json.dumps(doc))
    return target


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_delete("sample_rate"), "sample_rate: missing"),
        (_set(("sample_rate",), "16k"), "sample_rate: must be 16000 (every model reads 16 kHz audio), got '16k'"),
        (_set(("sample_rate",), 22050), "sample_rate: must be 16000 (every model reads 16 kHz audio), got 22050"),
        (_set(("sample_rate",), 16000.0), "sample_rate: must be 16000"),
        (_set(("feature_options", "hop"), 160), "feature_options: unknown option 'hop'"),
        (_set(("preprocessing", "normalise"), True), "preprocessing.normalise: unknown option"),
        (_set(("metadata",), []), "metadata: must be a JSON object"),
        (_set(("frontend",), "librosa"), "frontend: unknown field"),
    ],
)
def test_malformed_format_2_bundles_are_model_errors_too(tiny_bundle, tmp_path, edit, message):
    bundle = _v2_copy(tiny_bundle, tmp_path / "v2", edit)
    with pytest.raises(ModelError) as info:
        read_bundle(bundle)
    assert str(info.value).startswith(str(bundle / "model.json")) and message in str(info.value)


def test_every_bundled_model_has_a_card_with_its_data_licences_and_responsible_use():
    for name, target in available_models().items():
        if name != target:
            continue  # an alias
        card = (bundled_models_dir() / name / "MODEL_CARD.md").read_text()
        assert "## Licences" in card and "non-commercial" in card and "## Responsible use" in card, name
        assert "Art. 5(1)(f)" in card, name


def test_the_default_model_is_trained_on_every_corpus_its_card_names():
    bundle = load_bundle("default")
    recipe = bundle.metadata["recipe"]
    card = (bundled_models_dir() / available_models()["default"] / "MODEL_CARD.md").read_text()
    assert bundle.name == available_models()["default"]
    for corpus in ("RAVDESS", "ASED", "EMOVO"):
        assert corpus in card
    assert "anchor" in str(recipe)  # the mixed probe, not the RAVDESS-only one


def test_recipes_recorded_with_a_16_khz_sample_rate_still_load_and_another_rate_is_refused():
    """Runs and bundles written before 16 kHz became a constant hold ``sample_rate`` in their feature options."""
    pytest.importorskip("torch")
    from speech_emotion.training.recipes import make_recipe

    run = json.loads((Path(__file__).parents[1] / "results" / "cnn-lstm-actor-6fold.json").read_text())
    assert run["recipe"]["data"]["features"]["sample_rate"] == 16000
    assert make_recipe(run["model"], **run["recipe"]) is not None
    run["recipe"]["data"]["features"]["sample_rate"] = 22050
    with pytest.raises(ModelError, match="'data.features.sample_rate': must be 16000"):
        make_recipe(run["model"], **run["recipe"])


def test_audio_options_hold_neither_the_rate_nor_a_deployment_limit(tiny_bundle):
    from dataclasses import fields

    from speech_emotion.conditioning import AudioOptions

    names = {f.name for f in fields(AudioOptions)}
    assert "sample_rate" not in names and "max_duration_s" not in names
    assert read_bundle(tiny_bundle).sample_rate == 16000  # the bundle still states the one rate
