from __future__ import annotations

import json

import numpy as np
import pytest

from speech_emotion.errors import AudioError
from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from speech_emotion.streaming import SegmentEvent, StreamEnd, StreamingRecognizer, StreamOptions, UpdateEvent
from stream_synth import LAYOUT, bursts, events_of, feed_in_chunks, long_talk
from synth import silence, vowel

TOL = 0.2


@pytest.fixture(scope="module")
def recognizer(tiny_bundle):
    return Recognizer.load(tiny_bundle, threads=1)


def signature(events: list) -> list[tuple]:
    """What must not depend on chunking: everything but the measured latency."""
    return [
        (e.type, round(e.start, 4), round(e.end, 4), e.label, tuple(round(float(p), 5) for p in e.probabilities))
        for e in events
    ]


def segments_of(events: list) -> list[SegmentEvent]:
    return [e for e in events if isinstance(e, SegmentEvent)]


def test_one_segment_per_burst_with_updates_inside(recognizer):
    samples, truth = bursts()
    events = list(events_of(StreamingRecognizer(recognizer), [(samples, 16000)]))
    segments = segments_of(events)
    assert len(segments) == len(truth)
    for seg, (start, end) in zip(segments, truth):
        assert abs(seg.start - start) <= TOL and abs(seg.end - end) <= TOL
        assert seg.label in EMOTIONS and seg.probabilities.sum() == pytest.approx(1, abs=1e-4)
        updates = [e for e in events if isinstance(e, UpdateEvent) and e.segment == seg.segment]
        assert len(updates) == seg.windows >= 1
        for u in updates:  # every update lies inside its segment: silence and noise get none
            assert seg.start - 1e-9 <= u.start < u.end <= seg.end + 1e-9
            assert u.end - u.start <= 2.0 + 1e-9
            assert u.latency_ms >= 0


def test_event_order_and_update_timing(recognizer):
    samples, _ = bursts()
    events = list(events_of(StreamingRecognizer(recognizer), [(samples, 16000)]))
    ends = [e.end for e in events]
    assert ends == sorted(ends)
    for e in events:  # each segment event comes right after its own last update
        if isinstance(e, UpdateEvent):
            assert not any(s.segment == e.segment and s.end < e.end for s in segments_of(events))
    long_seg = segments_of(events)[-1]  # the 3 s burst: first update after 1 s, then one per 0.5 s
    updates = [e for e in events if isinstance(e, UpdateEvent) and e.segment == long_seg.segment]
    assert updates[0].end - long_seg.start == pytest.approx(1.0, abs=1e-6)
    gaps = np.diff([u.end for u in updates[:-1]])
    assert np.allclose(gaps, 0.5)


@pytest.mark.parametrize("sample_rate", [8000, 16000, 44100, 48000])
def test_sample_rates_give_the_same_segments(recognizer, sample_rate):
    samples, truth = bursts(sample_rate)
    segments = segments_of(events_of(StreamingRecognizer(recognizer), [(samples, sample_rate)]))
    assert len(segments) == len(truth)
    tol = TOL + (0.1 if sample_rate == 8000 else 0.0)  # telephone band: the detector is sure a syllable later
    for seg, (start, end) in zip(segments, truth):
        assert abs(seg.start - start) <= tol and abs(seg.end - end) <= tol


@pytest.mark.parametrize("sample_rate", [16000, 44100])
def test_chunking_does_not_change_results(recognizer, sample_rate):
    samples, _ = bursts(sample_rate)
    engine = StreamingRecognizer(recognizer)
    expected = signature(feed_in_chunks(engine, samples, sample_rate, [len(samples)]))
    for sizes in ([2 * sample_rate], [480], [1, 7, 333, 4096, 31_000], [sample_rate // 10]):
        assert signature(feed_in_chunks(engine, samples, sample_rate, sizes)) == expected, sizes


def test_one_sample_chunks(recognizer):
    samples = np.concatenate([silence(0.3), vowel(1.4), silence(0.8)])
    engine = StreamingRecognizer(recognizer)
    expected = signature(feed_in_chunks(engine, samples, 16000, [len(samples)]))
    assert len(segments_of(expected and feed_in_chunks(engine, samples, 16000, [len(samples)]))) == 1
    assert signature(feed_in_chunks(engine, samples, 16000, [1])) == expected


def test_int16_and_stereo_input_match_float_mono(recognizer):
    samples, _ = bursts(layout=LAYOUT[:3])
    engine = StreamingRecognizer(recognizer)
    expected = signature(feed_in_chunks(engine, samples, 16000, [1600]))
    pcm = np.round(samples * 32767).astype(np.int16)
    got = signature(feed_in_chunks(engine, pcm, 16000, [1600]))
    assert [g[:4] for g in got] == [e[:4] for e in expected]
    stereo = np.stack([samples, samples], axis=1)
    assert signature(feed_in_chunks(engine, stereo, 16000, [1600])) == expected


def test_silence_and_noise_only_give_no_events(recognizer):
    samples, _ = bursts(layout=(("silence", 2.0), ("noise", 3.0), ("silence", 1.0)))
    assert list(events_of(StreamingRecognizer(recognizer), [(samples, 16000)])) == []


def test_reset_starts_a_new_stream(recognizer):
    samples, _ = bursts()
    engine = StreamingRecognizer(recognizer)
    expected = signature(feed_in_chunks(engine, samples, 16000, [8000]))
    engine.feed(vowel(1.7), 16000)  # half a segment, then abandoned
    assert engine.in_speech and engine.time > 0
    engine.reset()
    assert not engine.in_speech and engine.time == 0
    assert signature(feed_in_chunks(engine, samples, 16000, [8000])) == expected


def test_stream_ending_mid_frame_and_mid_speech_is_closed(recognizer):
    samples = np.concatenate([silence(0.5), vowel(1.5)])[:-123]  # not a whole number of VAD frames
    events = list(events_of(StreamingRecognizer(recognizer), [(samples, 16000)]))
    segments = segments_of(events)
    assert len(segments) == 1
    assert segments[0].end == pytest.approx(len(samples) / 16000, abs=0.04)


def test_short_speech_gives_one_update_and_segment(recognizer):
    samples = np.concatenate([silence(0.5), vowel(0.6), silence(1.0)])
    events = list(events_of(StreamingRecognizer(recognizer), [(samples, 16000)]))
    assert [e.type for e in events] == ["update", "segment"]


def test_long_speech_is_split_and_memory_stays_bounded(recognizer):
    options = StreamOptions(max_segment_s=5.0)
    engine = StreamingRecognizer(recognizer, options)
    speech = vowel(1.0)
    events = []
    for _ in range(12):
        events += engine.feed(speech, 16000)
        assert engine._buffer._data.nbytes < 4 * 16000 * 8  # a few seconds, whatever the length
    events += engine.flush()
    segments = segments_of(events)
    assert len(segments) == 3
    assert all(s.duration <= 5.0 + 0.03 for s in segments)  # split on a VAD frame
    assert segments[1].start == pytest.approx(segments[0].end)


def test_no_smoothing_option(recognizer):
    samples, _ = bursts(layout=LAYOUT[:3])
    updates = [e for e in events_of(StreamingRecognizer(recognizer, StreamOptions(smoothing=0.0)), [(samples, 16000)])]
    assert updates and all(e.confidence == e.probabilities.max() for e in updates)


def test_event_dicts_are_json(recognizer):
    samples, _ = bursts(layout=LAYOUT[:3])
    for event in events_of(StreamingRecognizer(recognizer), [(samples, 16000)]):
        d = json.loads(json.dumps(event.to_dict()))
        assert d["type"] in ("update", "segment") and set(d["probabilities"]) == set(EMOTIONS)


def test_bad_input_is_an_audio_error(recognizer):
    engine = StreamingRecognizer(recognizer)
    with pytest.raises(AudioError, match="sample rate"):
        engine.feed(np.zeros(100, dtype=np.float32), 0)
    with pytest.raises(AudioError, match="shape"):
        engine.feed(np.zeros((2, 2, 2), dtype=np.float32), 16000)
    with pytest.raises(ValueError):
        StreamOptions(hop_s=3.0)
    # NaN/Inf samples are refused on every path (one rule), a (channels, frames) array names its shape
    with pytest.raises(AudioError, match="NaN"):
        engine.feed(np.full(1000, np.nan, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"\(2, 48000\).*samples\.T"):
        engine.feed(np.zeros((2, 48000), dtype=np.float32), 48000)


def test_changing_sample_rate_mid_stream(recognizer):
    engine = StreamingRecognizer(recognizer)
    events = engine.feed(np.concatenate([silence(0.5, 48000), vowel(1.5, 48000)]), 48000)
    events += engine.feed(np.concatenate([vowel(1.0, 16000, seed=3), silence(1.0, 16000)]), 16000)
    events += engine.flush()
    segments = segments_of(events)
    assert len(segments) == 1
    assert segments[0].start == pytest.approx(0.5, abs=TOL) and segments[0].end == pytest.approx(3.0, abs=TOL)


def test_update_and_segment_events_name_the_segment_with_the_same_key(recognizer):
    samples, truth = bursts()
    events = [e.to_dict() for e in events_of(StreamingRecognizer(recognizer), [(samples, 16000)])]
    segment_ids = [e["segment"] for e in events if e["type"] == "segment"]
    assert segment_ids == list(range(len(truth)))
    assert {e["segment"] for e in events if e["type"] == "update"} <= set(segment_ids)
    assert all("index" not in e for e in events)


def test_each_label_is_the_top_of_its_probabilities_and_a_segment_is_its_audio_judged_as_one_clip(recognizer):
    """Why a segment's label may differ from its windows': the windows judge 2 s at a time (smoothed), the segment
    its whole utterance at once. Each label is still the top of the probabilities it comes with."""
    import dataclasses

    from speech_emotion.conditioning import SampleConditioner, prepare

    samples, _ = bursts()
    events = list(events_of(StreamingRecognizer(recognizer), [(samples, 16000)]))
    for e in events:
        assert e.label == e.labels[int(np.argmax(e.probabilities))]
        assert e.confidence == e.probability(e.label)
    audio = SampleConditioner(recognizer.preprocessing.highpass_hz).whole(samples, 16000)
    whole = dataclasses.replace(recognizer.preprocessing, min_duration_s=0.0)
    for seg in segments_of(events):
        clip = audio[round(seg.start * 16000) : round(seg.end * 16000)]
        expected = recognizer.predict_preprocessed(prepare(clip, whole)).probabilities
        assert seg.probabilities == pytest.approx(expected, abs=1e-5)


def test_the_same_recording_repeated_gives_the_same_segments_each_time(recognizer):
    """No state that makes the same speech count differently later: the old WebRTC detector's adaptive model,
    kept for the whole stream, judged later copies of a recording differently (speech lost copy after copy). The
    first copy may differ at its start, where the detector has heard nothing before."""
    copy = long_talk(150.0, seed=3)
    length = len(copy) / 16000
    engine = StreamingRecognizer(recognizer, windows=False)
    segments = [e for e in events_of(engine, [(np.concatenate([copy] * 4), 16000)]) if isinstance(e, SegmentEvent)]
    per_copy = [
        [
            (round(s.start - k * length, 6), round(s.end - k * length, 6), s.label)
            for s in segments
            if k * length <= s.start < (k + 1) * length
        ]
        for k in range(4)
    ]
    assert len(per_copy[1]) >= 20
    assert per_copy[1] == per_copy[2] == per_copy[3]


def test_the_stream_ends_saying_what_it_held_and_errors_name_the_source(recognizer):
    samples, _ = bursts()
    engine = StreamingRecognizer(recognizer, source="call.wav")
    items = list(engine.events([(samples[: 5 * 16000], 16000)], duration_s=14.0))
    end, segments = items[-1], [e for e in items if isinstance(e, SegmentEvent)]
    assert isinstance(end, StreamEnd) and end.source == "call.wav" and end.duration_s == 5.0
    assert end.notes == ("file ended early: 5.0 s of the announced 14.0 s were read",)
    assert end.segments == len(segments) >= 1 and end.no_speech is None and end.no_audio is None
    assert end.speech_s == pytest.approx(sum(s.duration for s in segments))
    quiet = list(engine.events([(silence(2.0), 16000)]))
    assert len(quiet) == 1 and str(quiet[0].no_speech) == "call.wav: no speech detected (2.0 s of silence or noise)"
    assert str(list(engine.events([]))[-1].no_audio) == "call.wav: contains no audio samples"
    broken = vowel(1.0)
    broken[100] = np.nan
    with pytest.raises(AudioError, match="NaN") as refused:
        list(engine.events([(broken, 16000)]))
    assert refused.value.source == "call.wav"
