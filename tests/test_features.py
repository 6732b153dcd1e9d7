from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.conditioning import prepare
from speech_emotion.features import FeatureOptions, extract_features
from speech_emotion.training.cache import FeatureCache
from speech_emotion.training.data import DataOptions, FeatureStore
from synth import emotion_clip, write_ravdess_corpus


def test_features_have_109_columns_and_one_row_per_20ms():
    clip = emotion_clip("happy", 1)  # 1.6 s
    feats = extract_features(clip)
    assert feats.dtype == np.float32
    assert feats.shape == (len(clip) // 320 + 1, FeatureOptions().n_features) == (81, 109)
    assert np.isfinite(feats).all()


def test_feature_names_match_feature_count():
    options = FeatureOptions(n_mfcc=13, n_mels=40)
    assert (
        len(options.feature_names()) == options.n_features == extract_features(emotion_clip("sad", 2), options).shape[1]
    )


def test_feature_options_key_changes_with_options():
    assert FeatureOptions().key() == FeatureOptions().key()
    assert FeatureOptions().key() != FeatureOptions(n_mels=40).key()


def test_cache_computes_once_then_reads_from_disk(tmp_path):
    cache = FeatureCache(tmp_path, "cfg")
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    first = cache.get_or_compute("abcdef", compute)
    second = FeatureCache(tmp_path, "cfg").get_or_compute("abcdef", compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    assert cache.path("abcdef").is_file()


def test_cache_recomputes_a_corrupt_entry(tmp_path):
    cache = FeatureCache(tmp_path, "cfg")
    cache.path("abcdef").parent.mkdir(parents=True)
    cache.path("abcdef").write_bytes(b"not an npy file")
    value = cache.get_or_compute("abcdef", lambda: np.ones(3, dtype=np.float32))
    np.testing.assert_array_equal(value, np.ones(3))


@pytest.mark.parametrize("workers", [1, 2])
def test_feature_store_matches_direct_extraction_and_fills_the_cache(tmp_path, workers):
    root = write_ravdess_corpus(tmp_path / "c", actors=(1,), takes=1)
    paths = sorted(str(p) for p in root.rglob("*.wav"))
    options = DataOptions(workers=workers, progress=False, cache_dir=str(tmp_path / "cache"))
    store = FeatureStore(options)
    feats = store.get(paths, [0] * len(paths))
    np.testing.assert_allclose(feats[0], extract_features(prepare(paths[0])), atol=1e-5)
    assert len(list(store.cache.root.rglob("*.npy"))) == len(paths)
    again = FeatureStore(options).get(paths, [0] * len(paths))
    for a, b in zip(feats, again):
        np.testing.assert_array_equal(a, b)


def test_preparing_librosa_features_for_processes_writes_numba_cache_before_any_worker(tmp_path):
    """Processes that compile librosa's numba kernels at once can write an inconsistent cache that then crashes
    every process (numba#10128, seen here: a cold batch run of the seed model segfaulted in all workers): the
    parent compiles and caches them first. Run in a fresh interpreter with an empty cache."""
    import os
    import subprocess
    import sys

    code = (
        "from speech_emotion.features import FeatureOptions, LogMelOptions, prepare_for_processes\n"
        "import sys\n"
        "prepare_for_processes('whisper-logmel', LogMelOptions())\n"
        "assert 'librosa' not in sys.modules, 'the default path imported librosa'\n"
        "prepare_for_processes('librosa', FeatureOptions())\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=300)
    assert list(tmp_path.rglob("*.nbi")), "no numba kernel was compiled and cached"


def test_feature_store_compiles_kernels_once_in_the_parent_before_its_pool(tmp_path, monkeypatch):
    from speech_emotion.training import data

    calls = []
    monkeypatch.setattr(data, "compile_kernels", lambda options: calls.append(options))
    root = write_ravdess_corpus(tmp_path / "c", actors=(1,), takes=1)
    paths = sorted(str(p) for p in root.rglob("*.wav"))
    options = DataOptions(workers=2, progress=False, cache_dir=str(tmp_path / "cache"))
    FeatureStore(options).get(paths, [0] * len(paths))
    assert calls == [options]
    FeatureStore(options).get(paths, [0] * len(paths))  # all cached: no pool, nothing to compile
    assert calls == [options]
