"""Live-path scoring: test clips joined into per-speaker calls and streamed through the real engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import soundfile as sf

from speech_emotion.evaluation.live import LiveOptions, _clip_under, build_calls, score_live
from speech_emotion.recognizer import Recognizer
from synth import emotion_clip


def _corpus(tmp_path) -> pd.DataFrame:
    rows = []
    for s, speaker in enumerate(["a", "b"]):
        for i, emotion in enumerate(["happy", "sad", "angry"]):
            path = tmp_path / f"{speaker}{i}.wav"
            sf.write(path, emotion_clip(emotion, seed=10 * s + i, duration_s=2.0), 16000)
            rows.append({"path": str(path), "speaker": speaker, "emotion": emotion})
    return pd.DataFrame(rows)


def test_calls_hold_each_speakers_clips_once_in_order_with_pauses(tmp_path):
    corpus = _corpus(tmp_path)
    calls = build_calls(corpus, np.arange(len(corpus)), LiveOptions(seed=3))
    assert [c.speaker for c in calls] == ["a", "b"]
    for call in calls:
        rows = sorted(r for _, _, r in call.spans)
        assert set(corpus["speaker"].iloc[rows]) == {call.speaker} and len(rows) == 3
        for (_s0, e0, _), (s1, _, _) in zip(call.spans, call.spans[1:]):
            assert s1 - e0 >= 0.8 - 1e-6
        assert call.audio.size / 16000 >= call.spans[-1][1]


def test_an_event_belongs_to_the_clip_it_overlaps_most():
    spans = [(1.0, 3.0, 7), (4.0, 6.0, 8)]
    assert _clip_under(spans, 2.2, 4.5) == 7
    assert _clip_under(spans, 3.5, 5.5) == 8
    assert _clip_under(spans, 3.1, 3.9) is None


def test_live_scoring_streams_every_clip_and_counts_its_events(tmp_path, tiny_bundle):
    corpus = _corpus(tmp_path)
    scores = score_live(Recognizer.load(tiny_bundle), corpus, np.arange(len(corpus)))
    assert scores["clips_without_update"] == 0
    assert scores["n_updates"] >= len(corpus) * 2  # 2 s of voice: updates from 1 s on, every 0.5 s
    assert 1 <= scores["n_first_updates"] <= scores["n_updates"]
    assert scores["n_segments"] >= 2
    for key in ("update_ua", "first_update_ua", "segment_ua"):
        assert 0.0 <= scores[key] <= 1.0
