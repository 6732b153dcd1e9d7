"""Integration: real RAVDESS clips joined by silences, streamed like a live conversation."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.conditioning import normalize_loudness, resample
from speech_emotion.errors import ModelError
from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from speech_emotion.streaming import SegmentEvent, StreamingRecognizer

pytestmark = pytest.mark.integration


def joined_clips(root, gap_s: float = 1.5):
    """One clip per emotion (two actors), each levelled like a microphone with gain control, with gaps."""
    clips, spans, t = [], [], 0.0
    for i, emotion in enumerate(EMOTIONS):
        actor = 1 + i % 2
        path = root / f"Actor_{actor:02d}" / f"03-01-{i + 1:02d}-{'01' if i == 0 else '02'}-01-01-{actor:02d}.flac"
        samples, sr = sf.read(path, dtype="float32")
        samples = normalize_loudness(resample(samples, sr, 16000), -26.0, 0.9)
        gap = np.zeros(int(gap_s * 16000), dtype=np.float32)
        clips += [gap, samples]
        spans.append((emotion, t + gap_s, t + gap_s + len(samples) / 16000))
        t += gap_s + len(samples) / 16000
    return np.concatenate([*clips, np.zeros(16000, dtype=np.float32)]), spans


def test_one_segment_per_clip_with_the_clips_emotion(ravdess_dir, tiny_bundle):
    try:
        recognizer, trained = Recognizer.load(threads=1), True
    except ModelError:  # no trained default model yet: check the segmentation only
        recognizer, trained = Recognizer.load(tiny_bundle, threads=1), False
    samples, spans = joined_clips(ravdess_dir)
    engine = StreamingRecognizer(recognizer)
    events = []
    for i in range(0, len(samples), 1600):  # 100 ms chunks, as from a microphone
        events += engine.feed(samples[i : i + 1600], 16000)
    segments = [e for e in events + engine.flush() if isinstance(e, SegmentEvent)]
    assert len(segments) == len(spans), [(round(s.start, 2), round(s.end, 2)) for s in segments]
    for seg, (_, start, end) in zip(segments, spans):
        assert start - 0.1 <= seg.start and seg.end <= end + 0.1  # inside its clip
    if trained:
        correct = sum(seg.label == emotion for seg, (emotion, _, _) in zip(segments, spans))
        assert correct > len(spans) / 2, [(e, s.label) for s, (e, _, _) in zip(segments, spans)]
