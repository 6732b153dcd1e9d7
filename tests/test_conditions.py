"""Recording conditions (phone lines, codecs, rooms, noise, babble) for augmentation and test-time scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speech_emotion.training import conditions as C
from synth import emotion_clip


def _band_energy(x: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / 16000)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum() / spectrum.sum())


@pytest.fixture
def clip() -> np.ndarray:
    return emotion_clip("angry", seed=1, duration_s=2.0).astype(np.float32)


@pytest.mark.parametrize("name", sorted(C.TEST_CONDITIONS))
def test_every_condition_keeps_length_level_and_finiteness(name, clip):
    others = [emotion_clip("sad", seed=s, duration_s=1.5) for s in range(3)]
    out = C.TEST_CONDITIONS[name](clip, others, 7)
    assert out.shape == clip.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out))
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(clip**2)), rel=0.05)
    assert np.array_equal(out, C.TEST_CONDITIONS[name](clip, others, 7))  # deterministic


@pytest.mark.parametrize("law", ["ULAW", "GSM610"])
def test_a_phone_line_removes_everything_above_its_band(law):
    x = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    assert _band_energy(x, 4000, 8000) > 0.4
    assert _band_energy(C.phone(x, law), 4000, 8000) < 0.01


def test_mixing_at_an_snr_sets_the_noise_level_against_the_speech_not_the_pauses():
    rng = np.random.default_rng(0)
    speech = np.concatenate([np.zeros(16000), rng.standard_normal(16000) * 0.1]).astype(np.float32)
    noise = rng.standard_normal(32000).astype(np.float32)
    mixed = C.mix_at_snr(speech, noise, 10.0)
    noise_only, speech_plus_noise = np.std(mixed[:16000]), np.std(mixed[16000:])
    # speech power 10x the noise power: (speech + noise) / noise = 11 in power
    assert 20 * np.log10(speech_plus_noise / noise_only) == pytest.approx(10 * np.log10(11), abs=0.3)


def test_a_reverberant_room_spreads_a_click_over_about_its_rt60():
    click = np.zeros(16000, dtype=np.float32)
    click[100] = 1.0
    tail = C.reverb(click, 0.6, seed=3)
    energy = np.cumsum(tail[::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(energy / energy[0] + 1e-12)
    t20 = np.argmax(decay_db < -20) / 16000
    assert 0.1 < 3 * t20 < 1.2  # Schroeder decay, RT60 extrapolated from -20 dB


def test_random_chains_differ_between_draws_but_repeat_for_the_same_seed(clip):
    a = C.random_channel(clip, [], np.random.default_rng(1))
    b = C.random_channel(clip, [], np.random.default_rng(2))
    assert not np.array_equal(a, b)
    assert np.array_equal(a, C.random_channel(clip, [], np.random.default_rng(1)))


def test_babble_voices_come_from_other_speakers_of_the_same_fold():
    corpus = pd.DataFrame(
        {
            "path": [f"{s}_{i}.wav" for s in "abcd" for i in range(3)],
            "speaker": [s for s in "abcd" for _ in range(3)],
            "fold": [{"a": 1, "b": 1, "c": 1, "d": 2}[s] for s in "abcd" for _ in range(3)],
            "corpus": "x",
        }
    )
    voices = C.other_talkers(corpus, 0, "babble10")
    assert voices and all(v.startswith(("b_", "c_")) for v in voices)
    assert C.other_talkers(corpus, 9, "babble10") == ()  # d is alone in its fold


def test_test_condition_files_are_written_once_and_only_for_test_rows(tmp_path):
    from speech_emotion.evaluation.conditions import condition_corpus

    paths = []
    for i in range(3):
        p = tmp_path / f"clip{i}.wav"
        sf.write(p, emotion_clip("happy", seed=i), 16000)
        paths.append(str(p))
    corpus = pd.DataFrame({"path": paths, "speaker": ["a", "b", "c"], "emotion": "happy"})
    out = condition_corpus(corpus, np.array([1, 2]), "phone", cache_dir=tmp_path / "cache")
    assert out["path"].iloc[0] == paths[0]
    degraded = out["path"].iloc[1]
    assert degraded != paths[1] and sf.info(degraded).samplerate == 16000
    stamp = (tmp_path / "cache").stat().st_mtime_ns
    again = condition_corpus(corpus, np.array([1, 2]), "phone", cache_dir=tmp_path / "cache")
    assert again["path"].tolist() == out["path"].tolist()
    assert (tmp_path / "cache").stat().st_mtime_ns == stamp
