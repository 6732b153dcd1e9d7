from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.errors import AudioError, ModelError
from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from synth import emotion_clip


def test_recognizer_returns_probabilities_over_all_emotions(tiny_bundle):
    r = Recognizer.load(tiny_bundle)
    pred = r.predict(emotion_clip("happy", 1), 16000)
    assert set(pred.labels) == set(EMOTIONS) and pred.probabilities.shape == (len(pred.labels),)
    assert abs(pred.probabilities.sum() - 1) < 1e-5
    assert pred.label == pred.labels[int(pred.probabilities.argmax())]
    assert pred.confidence == pytest.approx(pred.probability(pred.label))
    assert pred.to_dict()["probabilities"] == dict(zip(pred.labels, pred.probabilities.tolist()))


def test_recognizer_gives_same_result_for_48k_stereo_as_for_16k_mono(tiny_bundle):
    r = Recognizer.load(tiny_bundle)
    clip16 = emotion_clip("sad", 3, sample_rate=16000)
    clip48 = emotion_clip("sad", 3, sample_rate=48000)
    stereo = np.stack([clip48, clip48], axis=1)
    a = r.predict(clip16, 16000).probabilities
    b = r.predict(stereo, 48000).probabilities
    assert np.abs(a - b).max() < 0.05


def test_recognizer_rejects_silence_with_audio_error(tiny_bundle):
    r = Recognizer.load(tiny_bundle)
    with pytest.raises(AudioError, match="silent"):
        r.predict(np.zeros(16000, dtype=np.float32), 16000)


def test_unknown_model_name_raises_model_error():
    with pytest.raises(ModelError, match="not a model folder"):
        Recognizer.load("no-such-model")
