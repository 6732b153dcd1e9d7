"""Recording-chain codecs never fail on the parameters the random chain draws."""

from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.training.conditions import codec


@pytest.mark.parametrize("level", [0.6, 0.99992, 1.0])
def test_mp3_copies_survive_every_compression_level_the_chain_draws(level):
    x = (np.random.default_rng(0).standard_normal(16000) * 0.1).astype(np.float32)
    y = codec(x, "MP3", "MPEG_LAYER_III", compression_level=level)  # libsndfile itself refuses 0.99992 and 1.0
    assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() > 0.01
