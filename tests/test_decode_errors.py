"""Audio the decoder cannot read is refused with a plain reason and the input's name through every door: the
service says ``upload``, the CLI and batch the path, and none of them libsndfile's own text (the repr of the
Python object it was handed, decoder internals). All inputs are generated here."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from speech_emotion.batch.inputs import make_job
from speech_emotion.batch.worker import analyze_one
from speech_emotion.cli import main as cli_main
from speech_emotion.conditioning import SampleConditioner
from speech_emotion.decode import open_blocks
from speech_emotion.errors import AudioError
from speech_emotion.recognizer import Recognizer
from speech_emotion.service.app import create_app
from speech_emotion.service.options import ServiceOptions
from synth import silence, vowel

REASONS = ("format not recognised", "unsupported encoding", "corrupt or truncated data")


def encoded(fmt: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.concatenate([silence(0.3), vowel(2.0)]), 16000, format=fmt)
    return buf.getvalue()


def wav_without_data_chunk() -> bytes:
    head = encoded("WAV")[:36]  # RIFF header and fmt chunk
    return head + b"LIST" + (4).to_bytes(4, "little") + b"abcd"


def pcm_header(bits: int) -> bytes:
    """A WAV header saying integer PCM of ``bits`` bits (0 and 48 have no decoder anywhere), 1000 bytes of data."""
    block = max(1, bits // 8)
    fmt = (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
    fmt += (16000 * block).to_bytes(4, "little") + block.to_bytes(2, "little") + bits.to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + (1000).to_bytes(4, "little")
    return b"RIFF" + (len(body) + 1000).to_bytes(4, "little") + body + bytes(1000)


CORRUPT = {
    "pcm-0-bits": (lambda: pcm_header(0), "unsupported encoding"),
    "pcm-48-bits": (lambda: pcm_header(48), "unsupported encoding"),
    "garbage": (lambda: b"garbage!" * 100, "format not recognised"),
    "wav-without-data": (wav_without_data_chunk, "corrupt or truncated data"),
    "flac-garbage": (lambda: b"fLaC" + b"\xff" * 500, "corrupt or truncated data"),
    "aiff-no-channels": (lambda: b"FORM\x00\x00\x01\x00AIFF" + bytes(300), "corrupt or truncated data"),
}


@pytest.fixture(scope="module")
def tiny(tiny_bundle: Path) -> Recognizer:
    return Recognizer.load(tiny_bundle, threads=1)


def assert_plain(message: str, name: str, reason: str) -> None:
    assert message == f"{name}: cannot decode audio ({reason})"


@pytest.mark.parametrize("kind", CORRUPT, ids=list(CORRUPT))
def test_service_names_the_upload_and_a_plain_reason(tiny, kind):
    make, reason = CORRUPT[kind]
    client = TestClient(create_app(ServiceOptions(warmup=False, allowed_hosts=["testserver"]), recognizer=tiny))
    for route in ("/v1/predict", "/v1/analyze"):
        r = client.post(route, files={"file": ("evil<name>.wav", make(), "audio/wav")})
        assert r.status_code == 415 and r.json()["error"] == "unsupported_audio", r.text
        assert_plain(r.json()["message"], "upload", reason)


@pytest.mark.parametrize("kind", CORRUPT, ids=list(CORRUPT))
def test_library_cli_and_batch_name_the_path_and_the_same_reason(tiny, tmp_path, capsys, kind):
    make, reason = CORRUPT[kind]
    path = tmp_path / "bad.wav"
    path.write_bytes(make())
    with pytest.raises(AudioError) as info:
        SampleConditioner().whole(path)
    assert_plain(str(info.value), str(path), reason)
    with pytest.raises(AudioError) as info:
        SampleConditioner().whole(io.BytesIO(path.read_bytes()))  # a file object: no repr of it either
    assert_plain(str(info.value), "<audio>", reason)
    for command in ("predict", "stream", "analyze"):
        extra = ["-o", str(tmp_path / "out")] if command == "analyze" else []
        assert cli_main.main([command, "--model", str(tiny.bundle.folder), *extra, str(path)]) == 1
        # stream reads 100 ms at a time, so it may get part way in (and has shown that part) before the damage
        said = (
            re.escape(f"error: {path}: ")
            + r"(cannot decode audio|decoding failed at \d+\.\d s) "
            + re.escape(f"({reason})")
        )
        assert re.fullmatch(said + "\n", capsys.readouterr().err), command
    assert analyze_one(make_job(path), tiny).error == f"{path}: cannot decode audio ({reason})"


def test_damage_part_way_through_is_415_saying_where(tiny):
    buf = io.BytesIO()
    sf.write(buf, np.concatenate([vowel(2.0, seed=i) for i in range(12)]), 16000, format="FLAC")
    data = buf.getvalue()
    damaged = data[: len(data) // 2] + b"\xff" * 2000 + data[len(data) // 2 + 2000 :]
    client = TestClient(create_app(ServiceOptions(warmup=False, allowed_hosts=["testserver"]), recognizer=tiny))
    for route in ("/v1/predict", "/v1/analyze"):
        r = client.post(route, files={"file": ("a.flac", damaged, "audio/flac")})
        assert r.status_code == 415 and r.json() == {
            "error": "unsupported_audio",
            "message": "upload: decoding failed at 10.0 s (corrupt or truncated data)",
        }


def test_a_flac_cut_short_is_read_up_to_the_cut_with_the_ended_early_note_as_a_wav_is(tmp_path):
    """libsndfile fails on a FLAC's last, cut frame; with every byte read that is the end of the audio (a copy that
    stopped), not damage part way (above), whether the FLAC is a path or bytes."""
    from speech_emotion.conditioning import SampleConditioner

    buf = io.BytesIO()
    sf.write(buf, np.concatenate([vowel(2.0, seed=i) for i in range(6)]), 16000, format="FLAC")
    cut = buf.getvalue()[: len(buf.getvalue()) // 2]
    path = tmp_path / "cut.flac"
    path.write_bytes(cut)
    for source in (path, cut):
        blocks = open_blocks(source, block_s=10.0)
        read = sum(len(b) for b in blocks) / 16000
        assert 4.0 < read < 6.0 and blocks.duration_s == pytest.approx(12.0)
    assert len(SampleConditioner().whole(path)) == pytest.approx(read * 16000, abs=1)
    # the same samples whatever block size a door reads (stream reads 100 ms, predict 10 s): the same answer
    assert len({sum(len(b) for b in open_blocks(cut, block_s=s)) for s in (0.1, 0.37, 10.0)}) == 1


def test_a_name_given_to_the_reader_is_the_one_in_its_messages():
    with pytest.raises(AudioError) as info:
        open_blocks(b"garbage!" * 100, name="upload")
    assert str(info.value) == "upload: cannot decode audio (format not recognised)"
    with pytest.raises(AudioError) as info:
        open_blocks(io.BytesIO(b"garbage!" * 100))
    assert info.value.source == "<audio>"


def test_reasons_are_one_of_the_plain_few():
    assert all(reason in REASONS for _, reason in CORRUPT.values())


def test_a_wav_header_without_samples_contains_no_audio_samples():
    header_only = encoded("WAV")[:44]
    with pytest.raises(AudioError, match="^<audio>: contains no audio samples$"):
        SampleConditioner().whole(header_only)
