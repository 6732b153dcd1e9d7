from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHARED_RAVDESS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ravdess"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own feature cache, so none reads another's results."""
    monkeypatch.setenv("SPEECH_EMOTION_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def ravdess_dir() -> Path:
    """The shared RAVDESS copy; skips the test with a reason where it is absent."""
    if not (SHARED_RAVDESS / "MANIFEST.tsv").is_file():
        pytest.skip(f"RAVDESS not present at {SHARED_RAVDESS} (integration data is optional)")
    return SHARED_RAVDESS


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real ONNX model bundle (random weights) for tests that need a Recognizer, not accuracy."""
    from tiny_model import write_tiny_bundle

    return write_tiny_bundle(tmp_path_factory.mktemp("tiny-model"))
