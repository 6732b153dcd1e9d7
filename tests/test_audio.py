from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.conditioning import AudioOptions, prepare
from speech_emotion.decode import open_blocks
from speech_emotion.errors import AudioError
from synth import silence, vowel


def test_stereo_48k_file_becomes_mono_16k(tmp_path):
    def tones(sr: int) -> np.ndarray:
        t = np.arange(sr) / sr
        return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1500 * t)).astype(np.float32)

    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tones(48000), 0.5 * tones(48000)], axis=1), 48000, subtype="FLOAT")
    out = prepare(path, AudioOptions(trim=False, normalize=False, highpass_hz=None))
    assert out.ndim == 1
    assert out.dtype == np.float32
    assert abs(out.size - 16000) <= 2
    np.testing.assert_allclose(out[200:-200], 0.75 * tones(16000)[200:-200], atol=2e-3)


def test_leading_and_trailing_silence_is_trimmed():
    clip = np.concatenate([silence(0.5), vowel(1.0), silence(0.7)])
    out = prepare(clip, sample_rate=16000)
    assert 0.9 < out.size / 16000 < 1.15


def test_loudness_is_normalised_whatever_the_input_level():
    quiet = prepare(0.003 * vowel(1.0), sample_rate=16000)
    loud = prepare(vowel(1.0), sample_rate=16000)
    rms = [float(np.sqrt(np.mean(x**2))) for x in (quiet, loud)]
    assert rms[0] == pytest.approx(rms[1], rel=0.05)
    assert 20 * np.log10(rms[0]) == pytest.approx(-20, abs=1.0)


def test_clipped_input_stays_below_full_scale():
    clipped = np.clip(4 * vowel(1.0), -1, 1)
    out = prepare(clipped, sample_rate=16000)
    assert np.max(np.abs(out)) <= 0.99 + 1e-6


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), "cannot decode"),
        (lambda p: sf.write(p, silence(1.0), 16000), "silent"),
        (lambda p: sf.write(p, vowel(0.1), 16000), "too short"),
    ],
    ids=["empty", "corrupt", "silent", "too-short"],
)
def test_bad_files_raise_one_line_audio_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=message) as info:
        prepare(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_path_and_directory_are_reported(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        open_blocks(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="directory"):
        open_blocks(tmp_path)


def test_a_device_or_pipe_is_refused_as_not_a_regular_file(tmp_path):
    """``/dev/zero`` was called "empty" (its size is 0); a named pipe would block waiting for a writer."""
    import os

    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        with pytest.raises(AudioError, match="not a regular file"):
            open_blocks(path)


def test_unsupported_codec_is_reported(tmp_path):
    path = tmp_path / "song.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(AudioError, match="cannot decode"):
        open_blocks(path)


def test_overlong_file_is_rejected_before_decoding(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, vowel(3.0), 16000)
    with pytest.raises(AudioError, match="too long"):
        open_blocks(path, max_duration_s=2)


def test_flac_and_wav_of_same_audio_give_same_samples(tmp_path):
    clip = vowel(1.0)
    sf.write(tmp_path / "a.wav", clip, 16000, subtype="PCM_16")
    sf.write(tmp_path / "a.flac", clip, 16000)
    a = prepare(tmp_path / "a.wav")
    b = prepare(tmp_path / "a.flac")
    np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("rate", [6000, 384000])
def test_one_sample_rate_policy_for_files_the_engine_and_streams(tmp_path, rate):
    from speech_emotion.conditioning import SampleConditioner
    from speech_emotion.decode import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
    from speech_emotion.service import stream

    assert (MIN_SAMPLE_RATE, MAX_SAMPLE_RATE) == (8000, 192000) == (stream.MIN_RATE, stream.MAX_RATE)
    path = tmp_path / "odd.wav"
    sf.write(path, np.zeros(rate // 2, dtype=np.float32), rate)
    with pytest.raises(AudioError) as info:
        open_blocks(path)
    assert str(info.value) == f"{path}: unsupported sample rate {rate} Hz (supported: 8000..192000 Hz)"
    with pytest.raises(AudioError, match=f"unsupported sample rate {rate}"):
        SampleConditioner().push(np.zeros(rate // 10, dtype=np.float32), rate)
    for edge in (8000, 192000):
        assert SampleConditioner().whole(np.zeros(edge, dtype=np.float32), edge).shape == (16000,)


def test_a_bundle_that_stored_a_length_limit_still_loads(tmp_path, tiny_bundle):
    import dataclasses
    import json
    import shutil

    from speech_emotion.bundle import load_bundle

    assert "max_duration_s" not in {f.name for f in dataclasses.fields(AudioOptions)}  # a door's limit, not the model's
    folder = tmp_path / "old"
    shutil.copytree(tiny_bundle, folder)
    doc = json.loads((folder / "model.json").read_text())
    key = "preprocessing" if "preprocessing" in doc else "audio_options"
    doc[key] = {**doc.get(key, {}), "max_duration_s": None}
    (folder / "model.json").write_text(json.dumps(doc))
    assert load_bundle(folder).preprocessing == load_bundle(tiny_bundle).preprocessing


def test_too_many_channels_and_channels_first_arrays_are_refused_naming_what_is_wrong():
    from speech_emotion.conditioning import MAX_CHANNELS, as_float
    from speech_emotion.errors import error_code

    with pytest.raises(AudioError, match=f"unsupported channel count 40 \\(at most {MAX_CHANNELS}\\)") as too_many:
        as_float(np.zeros((16000, 40), np.float32), "forty.wav")
    assert error_code(too_many.value) == "unsupported_audio"  # the service's 415
    with pytest.raises(AudioError, match="channels first"):
        as_float(np.zeros((2, 16000), np.float32), "transposed")
