"""A recording cut short (its header announces more audio than the file holds: a download or copy that stopped)
is analysed as far as it goes, and every door says so once: a note in the result (``notes``: predict, analyze,
batch, the service) and one ``warning:`` line on the CLI's stderr. A complete file, or one whose header leaves
the length open as streaming writers do, has no note. All audio is generated here."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.batch.inputs import make_job
from speech_emotion.batch.worker import analyze_one
from speech_emotion.cli import main as cli_main
from speech_emotion.decode import open_blocks
from speech_emotion.recording import predict_recording
from speech_emotion.timeline import analyze_file
from synth import silence, vowel

NOTE = "file ended early: 3.0 s of the announced 6.0 s were read"


def talk() -> np.ndarray:
    """6 s: speech in both halves."""
    return np.concatenate([silence(0.3), vowel(2.4, seed=1), silence(0.6), vowel(2.4, seed=2), silence(0.3)])


def wav(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def cut_in_half(data: bytes) -> bytes:
    """The 44-byte header (announcing 6 s) and the first 3 s of samples."""
    return data[: 44 + (len(data) - 44) // 2]


def unknown_length(data: bytes) -> bytes:
    """A complete file whose data chunk size says 0xFFFFFFFF, as writers that cannot seek back leave it."""
    at = data.index(b"data") + 4
    return data[:at] + struct.pack("<I", 0xFFFFFFFF) + data[at + 4 :]


def test_the_reader_knows_the_announced_length_of_a_cut_wav():
    blocks = open_blocks(cut_in_half(wav(talk())))
    assert blocks.duration_s == pytest.approx(6.0)
    assert sum(len(b) for b in blocks) == 3 * 16000


def test_library_results_carry_the_note(tiny, tmp_path):
    path = tmp_path / "cut.wav"
    path.write_bytes(cut_in_half(wav(talk())))
    prediction = predict_recording(path, tiny)
    assert prediction.notes == (NOTE,) and prediction.to_dict()["notes"] == [NOTE]
    assert prediction.duration_s == pytest.approx(3.0, abs=0.01)
    assert analyze_file(path, tiny).notes == [NOTE]
    assert analyze_one(make_job(path), tiny).notes == NOTE


def test_cli_commands_warn_once_on_stderr_and_still_answer(tiny, tmp_path, capsys):
    path = tmp_path / "cut.wav"
    path.write_bytes(cut_in_half(wav(talk())))
    model = ["--model", str(tiny.bundle.folder)]
    commands = (["predict"], ["predict", "--json"], ["stream", "--jsonl"], ["analyze", "--quiet", "-o", str(tmp_path)])
    for argv in commands:
        assert cli_main.main([*argv, *model, str(path)]) == 0, argv
        out, err = capsys.readouterr()
        assert err == f"warning: {path}: {NOTE}\n", argv
        assert out, argv  # the answer is still given
        if argv == ["predict", "--json"]:
            assert json.loads(out)["notes"] == [NOTE]


def test_service_answers_carry_the_note(client):
    upload = {"file": ("cut.wav", cut_in_half(wav(talk())), "audio/wav")}
    predicted = client.post("/v1/predict", files=upload)
    assert predicted.status_code == 200 and predicted.json()["notes"] == [NOTE]
    analysed = client.post("/v1/analyze", files=upload)
    assert analysed.status_code == 200 and analysed.json()["notes"] == [NOTE]


@pytest.mark.parametrize("make", [lambda d: d, unknown_length], ids=["complete", "length-left-open"])
def test_a_whole_file_has_no_note(tiny, client, tmp_path, capsys, make):
    data = make(wav(talk()))
    path = tmp_path / "whole.wav"
    path.write_bytes(data)
    assert open_blocks(path).duration_s == pytest.approx(6.0)
    assert predict_recording(path, tiny).notes == ()
    assert analyze_file(path, tiny).notes == []
    assert cli_main.main(["predict", "--model", str(tiny.bundle.folder), str(path)]) == 0
    assert capsys.readouterr().err == ""
    upload = {"file": ("whole.wav", data, "audio/wav")}
    assert client.post("/v1/predict", files=upload).json()["notes"] == []
    assert client.post("/v1/analyze", files=upload).json()["notes"] == []
