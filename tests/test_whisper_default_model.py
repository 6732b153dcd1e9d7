"""The shipped Whisper model bundle: small, loadable as the default, and run without importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[1] / "models"


def _whisper_bundles() -> list[Path]:
    return sorted(p for p in MODELS.glob("whisper-*") if (p / "model.json").is_file())


def test_whisper_bundle_is_under_25_mb_and_has_a_model_card() -> None:
    bundles = _whisper_bundles()
    if not bundles:
        pytest.skip("no whisper bundle committed yet")
    from speech_emotion.bundle import read_bundle

    for bundle in bundles:
        assert read_bundle(bundle).features == "whisper-logmel"  # format 1 or 2, through the one reader
        size = sum(f.stat().st_size for f in bundle.iterdir() if f.is_file())
        assert size <= 25 * 1024 * 1024
        card = (bundle / "MODEL_CARD.md").read_text()
        assert "CC BY-NC-SA 4.0" in card and "MIT" in card


def test_default_model_predicts_without_importing_torch() -> None:
    if not _whisper_bundles():
        pytest.skip("no whisper bundle committed yet")
    code = (
        "import sys, numpy as np\n"
        "from speech_emotion import Recognizer\n"
        "t = np.arange(48000) / 16000\n"
        "clip = (0.1 * np.sin(2 * np.pi * 160 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)\n"
        "p = Recognizer.load(threads=1).predict(clip, 16000)\n"
        "assert abs(p.probabilities.sum() - 1) < 1e-4 and p.label in p.labels\n"
        "print('torch' in sys.modules, 'ctranslate2' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
