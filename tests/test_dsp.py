"""The numpy DSP of the default model's path equals the library calls it replaced (librosa, scipy.signal)."""

from __future__ import annotations

import numpy as np
import pytest

from speech_emotion import dsp
from speech_emotion.features import logmel
from speech_emotion.features.logmel import log_mel
from synth import emotion_clip, noise, silence, vowel

RNG = np.random.default_rng(7)


def _clips() -> dict[str, np.ndarray]:
    """Varied test signals: speech-like with silent edges, noise, quiet hiss, DC, clicks, very short clips."""
    speechy = np.concatenate([silence(0.4), vowel(1.0), silence(0.2), vowel(0.5, f0=220, seed=1), silence(0.6)])
    return {
        "speech with silent edges": speechy,
        "speech with hiss": speechy + noise(len(speechy) / 16000, level=0.001, seed=2),
        "emotion clip": emotion_clip("angry", 3),
        "white noise": noise(2.0, level=0.1, seed=3),
        "fade in": (np.linspace(0, 1, 24000) ** 3 * RNG.standard_normal(24000)).astype(np.float32),
        "click in silence": np.concatenate([silence(0.5), np.ones(10, np.float32) * 0.5, silence(0.5)]),
        "dc offset and tone": (0.3 + 0.1 * np.sin(2 * np.pi * 200 * np.arange(16000) / 16000)).astype(np.float32),
        "all zeros": silence(1.0),
        "shorter than a frame": vowel(0.03),
        "one sample": np.array([0.2], dtype=np.float32),
        "float64 speech": speechy.astype(np.float64),
    }


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filter_bank_equals_librosa(n_mels):
    librosa = pytest.importorskip("librosa")
    ours = dsp.mel_filters(16000, 400, n_mels)
    theirs = librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels)
    assert ours.shape == (n_mels, 201) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() <= 1e-6


@pytest.mark.parametrize("name", ["speech with silent edges", "speech with hiss", "emotion clip", "white noise"])
def test_whisper_log_mel_equals_the_features_computed_with_librosas_filter_bank(name, monkeypatch):
    librosa = pytest.importorskip("librosa")
    x = _clips()[name].astype(np.float32)
    ours = log_mel(x)
    monkeypatch.setattr(logmel, "mel_filters", lambda n_mels: librosa.filters.mel(sr=16000, n_fft=400, n_mels=n_mels))
    before = log_mel(x)  # the features as computed before the numpy filter bank
    assert ours.shape == before.shape == (80, len(x) // 160)
    assert np.abs(ours - before).max() <= 1e-5


@pytest.mark.parametrize("top_db", [20.0, 30.0, 60.0])
@pytest.mark.parametrize("name", sorted(_clips()))
def test_silence_trimming_equals_librosa_effects_trim(name, top_db):
    librosa = pytest.importorskip("librosa")
    x = _clips()[name]
    theirs, index = librosa.effects.trim(x, top_db=top_db, frame_length=1024, hop_length=256)
    assert dsp.trim_bounds(x, top_db) == (int(index[0]), int(index[1]))
    ours = dsp.trim_silence(x, top_db)
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


@pytest.mark.parametrize("block_frames", [1, 7, 2048])
def test_silence_trimming_equals_librosa_whatever_the_block_of_frames(block_frames, monkeypatch):
    librosa = pytest.importorskip("librosa")
    monkeypatch.setattr(dsp, "TRIM_BLOCK_FRAMES", block_frames)
    x = np.concatenate([silence(1.0), noise(9.0, level=0.05, seed=5) * np.linspace(0, 1, 144000) ** 4, silence(2)])
    for top_db in (20.0, 60.0):
        _, index = librosa.effects.trim(x, top_db=top_db, frame_length=1024, hop_length=256)
        assert dsp.trim_bounds(x, top_db) == (int(index[0]), int(index[1]))


def test_trimming_keeps_the_loud_part_and_cuts_the_silent_edges():
    x = np.concatenate([silence(1.0), vowel(1.0), silence(1.0)])
    start, end = dsp.trim_bounds(x, 30.0)
    assert 16000 - 1024 <= start <= 16000 and 32000 <= end <= 32000 + 1024


SPLITS = {
    "whole": [],
    "one sample first": [1],
    "ragged": [1, 2, 100, 5000, 5001, 17777],
    "every 160": list(range(160, 48000, 160)),
    "long blocks": [20000, 40000],
}


@pytest.mark.parametrize("cutoff_hz", [5.0, 30.0, 80.0, 300.0])
@pytest.mark.parametrize("split", sorted(SPLITS))
def test_high_pass_equals_scipy_sosfilt_for_any_block_split(cutoff_hz, split):
    signal = pytest.importorskip("scipy.signal")
    x = (np.concatenate([vowel(1.5), noise(1.5, level=0.2, seed=4)]) + 0.25).astype(np.float32)
    sos = signal.butter(2, cutoff_hz, btype="highpass", fs=16000, output="sos")
    ref, _ = signal.sosfilt(sos, x, zi=signal.sosfilt_zi(sos) * float(x[0]))
    highpass = dsp.HighPass(cutoff_hz, 16000)
    ours = np.concatenate([highpass(block) for block in np.split(x, SPLITS[split])])
    assert ours.dtype == np.float32 and ours.shape == x.shape
    assert np.abs(ours - ref).max() <= 1e-6


def test_high_pass_design_equals_scipy_butter():
    signal = pytest.importorskip("scipy.signal")
    for cutoff_hz in (5.0, 100.0, 3000.0):
        b, a = dsp.butter2_highpass(cutoff_hz, 16000)
        ref_b, ref_a = signal.butter(2, cutoff_hz, btype="highpass", fs=16000)
        assert np.allclose(b, ref_b, rtol=1e-12, atol=1e-15) and np.allclose(a, ref_a, rtol=1e-12, atol=1e-15)


def test_high_pass_removes_a_dc_offset_without_a_transient_and_skips_empty_blocks():
    highpass = dsp.HighPass(5.0, 16000)
    assert highpass(np.zeros(0, np.float32)).shape == (0,)
    out = np.concatenate([highpass(np.full(1000, 0.4, np.float32)), highpass(np.zeros(0)), highpass(np.full(9, 0.4))])
    assert np.abs(out).max() < 1e-6


def test_high_pass_refuses_a_cutoff_outside_the_band():
    for cutoff_hz in (0.0, -1.0, 8000.0):
        with pytest.raises(ValueError, match="high-pass cutoff"):
            dsp.HighPass(cutoff_hz, 16000)
