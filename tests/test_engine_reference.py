"""The generator engine computes what the engine before it computed (windows on), and segments-only mode gives the
same segments without classifying a single window.

The reference is ``legacy_engine.LegacyStreamingRecognizer``, a frozen copy of the engine before issue 18, run here
on the same recordings: nothing is hard-coded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from legacy_engine import LegacyStreamingRecognizer
from speech_emotion.recognizer import Recognizer
from speech_emotion.streaming import SegmentEvent, StreamEnd, StreamingRecognizer, StreamOptions, UpdateEvent
from speech_emotion.timeline import ANALYZE_HOP_S
from stream_synth import bursts, feed_in_chunks
from synth import silence, vowel

RAVDESS = Path("/work/shared/data/ravdess")


@pytest.fixture(scope="module")
def tiny(tiny_bundle: Path) -> Recognizer:
    return Recognizer.load(tiny_bundle, threads=1)


def recordings() -> dict[str, tuple[np.ndarray, int]]:
    """The streams the engine tests use, plus one with a segment longer than ``max_segment_s`` (split)."""
    standard, _ = bursts()
    at_48k, _ = bursts(48000)
    clipped, _ = bursts(clip=True)
    long_talk = np.concatenate([silence(0.7), vowel(33.0, seed=5), silence(1.2), vowel(1.4, seed=6), silence(0.4)])
    return {
        "standard": (standard, 16000),
        "48k": (at_48k, 48000),
        "clipped": (clipped, 16000),
        "long": (long_talk, 16000),
    }


def corpus_clips() -> list[Path]:
    """A few RAVDESS clips when the corpus is present (speech the model was trained on)."""
    return sorted(RAVDESS.rglob("*.flac"))[:3] if RAVDESS.is_dir() else []


def as_tuples(events: list) -> list[tuple]:
    """Everything of an event but its measured latency, probabilities as an array."""
    out = []
    for e in events:
        probs = np.array(e.probabilities)
        extra = e.windows if isinstance(e, SegmentEvent) else None
        out.append((e.type, e.segment, e.start, e.end, e.label, e.labels, probs, extra, e.channel))
    return out


def assert_same_events(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for g, e in zip(as_tuples(got), as_tuples(expected)):
        assert g[:6] == e[:6] and g[7:] == e[7:]
        np.testing.assert_allclose(g[6], e[6], rtol=0, atol=1e-6)


@pytest.mark.parametrize("hop_s", [StreamOptions.hop_s, ANALYZE_HOP_S])
@pytest.mark.parametrize("name", ["standard", "48k", "clipped", "long"])
def test_windowed_events_are_those_of_the_engine_before(tiny, name, hop_s):
    samples, rate = recordings()[name]
    options = StreamOptions(hop_s=hop_s)
    expected = feed_in_chunks(LegacyStreamingRecognizer(tiny, options), samples, rate, [rate // 10])
    items = list(
        StreamingRecognizer(tiny, options).events(
            (samples[i : i + rate // 10], rate) for i in range(0, len(samples), rate // 10)
        )
    )
    assert isinstance(items[-1], StreamEnd) and not any(isinstance(e, StreamEnd) for e in items[:-1])
    assert_same_events(items[:-1], expected)
    assert any(isinstance(e, UpdateEvent) for e in expected) and any(isinstance(e, SegmentEvent) for e in expected)


@pytest.mark.parametrize("name", ["standard", "48k", "long"])
def test_segments_only_mode_gives_the_same_segments_and_no_windows(tiny, name, monkeypatch):
    samples, rate = recordings()[name]
    windowed = [e for e in StreamingRecognizer(tiny).events([(samples, rate)]) if isinstance(e, SegmentEvent)]
    calls = []
    real = tiny.scores_batch
    monkeypatch.setattr(tiny, "scores_batch", lambda clips, *a: calls.extend(len(x) for x in clips) or real(clips, *a))
    items = list(StreamingRecognizer(tiny, windows=False).events([(samples, rate)]))
    monkeypatch.undo()
    segments = [e for e in items if isinstance(e, SegmentEvent)]
    assert not any(isinstance(e, UpdateEvent) for e in items)
    assert len(calls) == len(segments) == len(windowed)  # one model call per segment, none for windows
    for s, w in zip(segments, windowed):
        assert (s.segment, s.start, s.end, s.label, s.windows) == (w.segment, w.start, w.end, w.label, 0)
        np.testing.assert_allclose(s.probabilities, w.probabilities, atol=1e-12)


@pytest.mark.parametrize("path", corpus_clips(), ids=lambda p: p.name)
def test_corpus_clips_give_the_events_of_the_engine_before(tiny, path):
    samples, rate = sf.read(path, dtype="float32")
    expected = feed_in_chunks(LegacyStreamingRecognizer(tiny), samples, rate, [rate // 10])
    got = list(StreamingRecognizer(tiny).events([(samples, rate)]))[:-1]
    assert_same_events(got, expected)
