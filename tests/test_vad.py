from __future__ import annotations

import numpy as np
import pytest

from speech_emotion.vad import FrameClassifier, VadOptions, VoiceActivityDetector, speech_segments
from stream_synth import bursts
from synth import noise, silence, vowel

TOL = 0.2  # seconds: padding (90 ms) + one frame + the synthetic fade in/out


def assert_matches(found: list[tuple[float, float]], truth: list[tuple[float, float]]) -> None:
    assert len(found) == len(truth), (found, truth)
    for (s, e), (ts, te) in zip(found, truth):
        assert abs(s - ts) <= TOL and abs(e - te) <= TOL, ((s, e), (ts, te))


def test_voiced_bursts_become_segments_and_noise_does_not():
    samples, truth = bursts()
    assert_matches(speech_segments(samples), truth)


def test_clipped_speech_is_still_speech():
    samples, truth = bursts(clip=True)
    assert np.max(np.abs(samples)) == pytest.approx(1.0)
    assert_matches(speech_segments(samples), truth)


@pytest.mark.parametrize(
    "signal",
    [silence(5.0), noise(5.0, level=0.05), noise(5.0, level=0.3, seed=3), noise(3.0, level=1e-4)],
    ids=["silence", "noise", "loud-noise", "faint-noise"],
)
def test_no_speech_in_silence_or_noise(signal):
    assert speech_segments(signal) == []


def test_short_click_is_ignored_and_short_pause_kept_inside():
    click = vowel(0.06)
    pause_layout = np.concatenate([silence(0.5), vowel(1.0), silence(0.25), vowel(1.0, seed=2), silence(1.0)])
    assert speech_segments(np.concatenate([silence(0.5), click, silence(1.0)])) == []
    segments = speech_segments(pause_layout)
    assert len(segments) == 1


def test_vad_is_independent_of_chunking():
    samples, _ = bursts()
    whole = VoiceActivityDetector()
    expected = whole.process(samples) + whole.flush()
    chunked = VoiceActivityDetector()
    events = []
    for i in range(0, len(samples), 777):
        events += chunked.process(samples[i : i + 777])
    assert events + chunked.flush() == expected


def test_open_segment_is_closed_at_end_of_stream():
    segments = speech_segments(np.concatenate([silence(0.5), vowel(1.5)]))
    assert len(segments) == 1
    assert segments[0][1] == pytest.approx(2.0, abs=0.05)


def test_reset_forgets_state():
    vad = VoiceActivityDetector()
    vad.process(vowel(1.0))
    assert vad.in_speech
    vad.reset()
    assert not vad.in_speech
    assert vad.segmenter.position == 0


def test_frame_classifier_scores_whole_frames_in_stream_order():
    clf = FrameClassifier()
    f = VadOptions().frame_length
    speech = np.concatenate([silence(0.2), vowel(1.5)])
    frames = speech[: len(speech) // f * f].reshape(-1, f)
    flags = clf.classify(frames)
    assert flags[:4].tolist() == [False] * 4  # leading silence
    assert flags[15:].mean() > 0.8
    assert clf.classify(np.stack([silence(0.032)] * 40))[-1] == np.False_


def test_bad_options_are_rejected():
    with pytest.raises(ValueError):
        VadOptions(threshold=0.3, neg_threshold=0.5)
    with pytest.raises(ValueError):
        VadOptions(threshold=1.0)
    with pytest.raises(ValueError):
        VadOptions(min_silence_ms=-1)
