"""Probabilities stay arrays from the model to the edge: results hold read-only float64 arrays in label order, and
dicts exist only in their JSON (``to_dict``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.recording import predict_recording
from speech_emotion.report import timeline_document
from speech_emotion.streaming import SegmentEvent, StreamEnd, StreamingRecognizer, UpdateEvent
from speech_emotion.timeline import analyze_file
from synth import silence, vowel


def talk() -> np.ndarray:
    return np.concatenate([silence(0.5), vowel(1.5, f0=120, seed=1), silence(1.0), vowel(2.5, f0=200, seed=2)])


def assert_labelled_array(result, labels: tuple[str, ...]) -> None:
    probs = result.probabilities
    assert isinstance(probs, np.ndarray) and probs.dtype == np.float64 and probs.shape == (len(labels),)
    assert result.labels == labels and not probs.flags.writeable
    with pytest.raises(ValueError):
        probs[0] = 1.0
    assert result.label == labels[int(np.argmax(probs))] and result.confidence == result.probability(result.label)
    with pytest.raises(KeyError):
        result.probability("bored")


def test_every_result_holds_read_only_probabilities_in_label_order(tiny):
    prediction = tiny.predict(vowel(1.5, seed=3), 16000)
    assert_labelled_array(prediction, tiny.labels)
    assert prediction.dimensions is None  # the tiny model has no arousal/valence/dominance
    events = [e for e in StreamingRecognizer(tiny).events([(talk(), 16000)]) if not isinstance(e, StreamEnd)]
    assert {type(e) for e in events} == {UpdateEvent, SegmentEvent}
    for event in events:
        assert_labelled_array(event, tiny.labels)


def test_dicts_appear_only_in_the_json_with_the_same_keys_and_rounding(tiny, tmp_path):
    path = tmp_path / "talk.wav"
    sf.write(path, talk(), 16000)
    whole = predict_recording(path, tiny)
    assert_labelled_array(whole, tiny.labels)
    assert whole.to_dict()["probabilities"] == dict(zip(tiny.labels, whole.probabilities.tolist()))
    timeline = analyze_file(path, tiny)
    for item in [*timeline.segments, *timeline.windows]:
        d = item.to_dict()
        assert list(d["probabilities"]) == list(tiny.labels)
        assert d["probabilities"] == {k: round(float(p), 4) for k, p in zip(tiny.labels, item.probabilities)}
    json.dumps(timeline_document(timeline))  # nothing numpy left in the document


def test_results_are_equal_by_value_and_hashable(tiny):
    first = [e for e in StreamingRecognizer(tiny).events([(talk(), 16000)]) if isinstance(e, SegmentEvent)]
    again = [e for e in StreamingRecognizer(tiny).events([(talk(), 16000)]) if isinstance(e, SegmentEvent)]
    assert first == again and len({*first, *again}) == len(first)
    other = SegmentEvent(**{**vars(first[0]), "probabilities": first[0].probabilities[::-1]})
    assert other != first[0]
    a, b = tiny.predict(vowel(1.5, seed=3), 16000), tiny.predict(vowel(1.5, seed=3), 16000)
    assert a == b and hash(a) == hash(b) and a != tiny.predict(vowel(1.5, seed=4), 16000)


def test_the_stored_windows_of_a_timeline_give_back_array_events(tiny, tmp_path):
    path = tmp_path / "talk.wav"
    sf.write(path, talk(), 16000)
    timeline = analyze_file(path, tiny)
    assert len(timeline.windows) > 0
    for window in timeline.windows:
        assert_labelled_array(window, tiny.labels)
    np.testing.assert_allclose(np.array([w.probabilities for w in timeline.windows]), timeline.windows.probabilities)
