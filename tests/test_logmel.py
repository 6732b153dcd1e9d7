"""The numpy Whisper log-mel equals Whisper's torch reference computation."""

from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.features import build_features
from speech_emotion.features.logmel import log_mel, mel_filters


def _reference_log_mel(x: np.ndarray) -> np.ndarray:
    """OpenAI whisper.audio.log_mel_spectrogram, without the 30 s padding."""
    torch = pytest.importorskip("torch")
    audio = torch.from_numpy(x)
    stft = torch.stft(audio, 400, 160, window=torch.hann_window(400), return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    mel = torch.from_numpy(mel_filters(80)) @ magnitudes
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def test_log_mel_matches_whisper_reference() -> None:
    x = (np.random.default_rng(1).standard_normal(16000 * 2) * 0.1).astype(np.float32)
    ours = log_mel(x)
    assert ours.shape == (80, 200)
    assert np.abs(ours - _reference_log_mel(x)).max() < 1e-4


def test_whisper_logmel_front_end_is_registered() -> None:
    frontend = build_features("whisper-logmel", {"n_mels": 80})
    out = frontend(np.zeros(8000, np.float32) + 0.01)
    assert out.shape == (80, 50) and out.dtype == np.float32
