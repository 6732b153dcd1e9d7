"""Errors raised in worker processes (feature pools, batch workers) reach the parent whole."""

from __future__ import annotations

import pickle

from speech_emotion.errors import AudioError
from speech_emotion.streaming import NoSpeechError


def test_an_audio_error_survives_a_trip_through_pickle_with_its_fields():
    error = pickle.loads(pickle.dumps(AudioError("a.wav", "too short after trimming")))
    assert (type(error), error.source, error.reason, str(error)) == (
        AudioError,
        "a.wav",
        "too short after trimming",
        "a.wav: too short after trimming",
    )


def test_a_no_speech_error_keeps_its_duration_and_notes_through_pickle():
    error = pickle.loads(pickle.dumps(NoSpeechError("b.wav", 4.0, ("file ended early",))))
    assert type(error) is NoSpeechError
    assert (error.duration_s, error.notes, str(error)) == (
        4.0,
        ("file ended early",),
        "b.wav: no speech detected (4.0 s of silence or noise)",
    )


def test_a_call_without_speech_keeps_each_channels_answer_through_pickle():
    from speech_emotion.calls import CallNoSpeechError, ChannelAnswer

    channel = ChannelAnswer(1, None, NoSpeechError("c.wav", 2.0, ("sound peaking at -6 dBFS",)))
    error = pickle.loads(pickle.dumps(CallNoSpeechError("c.wav", 2.0, (), (channel,))))
    assert type(error) is CallNoSpeechError and isinstance(error, NoSpeechError)
    assert [c.to_dict() for c in error.channels] == [channel.to_dict()] and error.duration_s == 2.0
