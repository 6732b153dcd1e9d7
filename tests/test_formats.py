"""The formats people record in -- M4A/AAC (phones' voice memos), WebM/Opus (what browsers record), the audio track
of MP4 and MOV video, MP3 -- are read by every door through the one reader (FFmpeg through PyAV for what libsndfile
cannot read) and give the answer the WAV of the same signal gives (the same label, probabilities within what a lossy
codec moves them). A truncated or corrupt one is one line naming it, and no decoder's own text ever reaches stderr.
All audio is generated here, encoded by PyAV itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.batch.inputs import collect_jobs
from speech_emotion.batch.worker import analyze_one
from speech_emotion.cli import main as cli_main
from speech_emotion.decode import MAX_BLOCK_SAMPLES, open_blocks
from speech_emotion.errors import AudioError
from synth import AV_FORMATS, av_encoded, noise, silence, vowel

pytest.importorskip("av")

RATE = 48000
FORMATS = ("m4a", "mp4", "mov", "webm", "mp3")
MIME = {"m4a": "audio/mp4", "mp4": "video/mp4", "mov": "video/quicktime", "webm": "audio/webm", "mp3": "audio/mpeg"}
LOSSY_TOLERANCE = 0.05
"""Most a lossy codec may move any probability of the tiny test model on :func:`talk` (measured: at most 0.01)."""


def talk(seconds: float = 6.0) -> np.ndarray:
    """Two utterances over a faint noise floor (a codec keeps a noise floor; it drops a digital zero's dither)."""
    half = seconds / 2
    voiced = [vowel(half - 0.6, RATE, seed=1), vowel(half - 0.6, RATE, f0=180.0, seed=2)]
    clip = np.concatenate([silence(0.3, RATE), voiced[0], silence(0.6, RATE), voiced[1], silence(0.3, RATE)])
    return (clip + noise(len(clip) / RATE, RATE, level=0.01, seed=3)).astype(np.float32)


def encode(suffix: str, samples: np.ndarray | None = None, **kwargs) -> bytes:
    """``samples`` (default :func:`talk`) as ``suffix``: MP4 with a video stream too, MOV in stereo."""
    samples = talk() if samples is None else samples
    if suffix == "mov":
        samples = np.stack([samples, samples], axis=1)
    return av_encoded(samples, RATE, suffix, video=suffix == "mp4", **kwargs)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    paths = {"wav": folder / "talk.wav"}
    sf.write(paths["wav"], talk(), RATE, subtype="FLOAT")
    for suffix in FORMATS:
        paths[suffix] = folder / f"talk.{suffix}"
        paths[suffix].write_bytes(encode(suffix))
    return paths


def probabilities(answer: dict) -> np.ndarray:
    return np.array([answer["probabilities"][label] for label in sorted(answer["probabilities"])])


def assert_agrees(answer: dict, reference: dict, what: str) -> None:
    assert answer["label"] == reference["label"], what
    assert np.abs(probabilities(answer) - probabilities(reference)).max() < LOSSY_TOLERANCE, what
    assert answer["notes"] == [], what


@pytest.mark.parametrize("suffix", FORMATS)
def test_the_reader_decodes_the_signal_each_format_holds(files, suffix):
    blocks = open_blocks(files[suffix])
    assert (blocks.sample_rate, blocks.channels) == (RATE, 2 if suffix == "mov" else 1)
    assert blocks.duration_s == pytest.approx(6.0, abs=0.1)
    decoded = np.concatenate(list(blocks))[:, 0]
    assert len(decoded) / RATE == pytest.approx(6.0, abs=0.1)
    level = np.sqrt(np.mean(np.square(talk(), dtype=np.float64)))
    assert np.sqrt(np.mean(np.square(decoded, dtype=np.float64))) == pytest.approx(level, rel=0.1)


@pytest.mark.parametrize(("suffix", "rate"), [("3gp", 48000), ("mkv", 44100), ("amr", 8000), ("wma", 44100)])
def test_the_other_formats_the_readme_lists_decode(suffix, rate):
    import av

    if AV_FORMATS[suffix][1] not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {AV_FORMATS[suffix][1]} encoder")
    clip = vowel(2.0, rate) + noise(2.0, rate, level=0.01)
    blocks = open_blocks(av_encoded(clip, rate, suffix))
    assert blocks.sample_rate == rate
    assert sum(len(block) for block in blocks) / rate == pytest.approx(2.0, abs=0.05)


def test_predict_through_the_cli_and_the_service_agrees_with_the_wav(files, tiny, client, capsys):
    model = ["--model", str(tiny.bundle.folder)]
    paths = [str(files[key]) for key in ("wav", *FORMATS)]
    assert cli_main.main(["predict", "--json", *model, *paths]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    answers = {Path(row["path"]).suffix[1:]: row for row in map(json.loads, out.splitlines())}
    reference = answers["wav"]
    for suffix in FORMATS:
        assert_agrees(answers[suffix], reference, f"cli {suffix}")
        upload = {"file": (f"talk.{suffix}", files[suffix].read_bytes(), MIME[suffix])}
        r = client.post("/v1/predict", files=upload)
        assert r.status_code == 200, r.text
        assert_agrees(r.json(), reference, f"service {suffix}")


def test_analyze_through_the_cli_and_the_service_agrees_with_the_wav(files, tiny, client, tmp_path, capsys):
    def summary(document: dict) -> tuple:
        return document["summary"]["dominant"], [segment["label"] for segment in document["segments"]]

    documents = {}
    for key in ("wav", *FORMATS):
        out = tmp_path / key
        assert (
            cli_main.main(["analyze", "--quiet", "--model", str(tiny.bundle.folder), "-o", str(out), str(files[key])])
            == 0
        )
        assert capsys.readouterr().err == ""
        (report,) = out.glob("*.json")
        documents[key] = json.loads(report.read_text())
    for suffix in FORMATS:
        assert summary(documents[suffix]) == summary(documents["wav"]), suffix
        upload = {"file": (f"talk.{suffix}", files[suffix].read_bytes(), MIME[suffix])}
        r = client.post("/v1/analyze", files=upload)
        assert r.status_code == 200, r.text
        assert summary(r.json()) == summary(documents["wav"]), suffix


def cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


def corrupt(data: bytes) -> bytes:
    """The container's first bytes (what tells the format), then garbage."""
    return data[:16] + bytes(range(256)) * 8


@pytest.mark.parametrize("damage", [cut, corrupt], ids=["truncated", "corrupt"])
@pytest.mark.parametrize("suffix", FORMATS)
def test_a_truncated_or_corrupt_file_is_one_line_naming_it(tiny, client, tmp_path, capsys, suffix, damage):
    path = tmp_path / f"damaged.{suffix}"
    path.write_bytes(damage(encode(suffix)))
    code = cli_main.main(["predict", "--model", str(tiny.bundle.folder), str(path)])
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    if code == 1:  # unreadable: an M4A/MP4/MOV cut before its index, any of them with garbage after the header
        assert err == f"error: {path}: cannot decode audio (corrupt or truncated data)\n"
    else:  # readable as far as it goes, and said so
        assert code == 0 and err.startswith(f"warning: {path}: file ended early: "), err
    r = client.post("/v1/predict", files={"file": (path.name, path.read_bytes(), MIME[suffix])})
    if code == 1:
        assert r.status_code == 415 and r.json() == {
            "error": "unsupported_audio",
            "message": "upload: cannot decode audio (corrupt or truncated data)",
        }
    else:
        assert r.status_code == 200 and r.json()["notes"][0].startswith("file ended early: ")


def test_a_fragmented_m4a_cut_short_is_read_as_far_as_it_goes_with_the_note(tiny, tmp_path, capsys):
    """Fragmented MP4 (its index first, as Safari's recorder and live encoders write it) survives a cut."""
    path = tmp_path / "memo.m4a"
    path.write_bytes(cut(encode("m4a", container_options={"movflags": "frag_keyframe+empty_moov"})))
    assert cli_main.main(["predict", "--model", str(tiny.bundle.folder), str(path)]) == 0
    assert capsys.readouterr().err == f"warning: {path}: file ended early: 2.8 s of the announced 6.0 s were read\n"


def test_no_decoder_text_reaches_stderr_for_mp3_and_damaged_files(tiny, tmp_path):
    """libmpg123 (libsndfile's MP3 decoder) and FFmpeg write their complaints to the process's fd 2 from C:
    only a whole process shows whether any got through."""
    whole = tmp_path / "talk.mp3"
    whole.write_bytes(encode("mp3"))
    data = encode("mp3", talk(12.0))
    middle = len(data) // 2
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(data[:middle] + bytes(range(256)) * 4 + data[middle + 1024 :])
    flipped = tmp_path / "flipped.m4a"
    aac = bytearray(encode("m4a", talk(12.0)))
    for at in range(len(aac) // 3, len(aac) // 2, 97):
        aac[at] ^= 0x5A
    flipped.write_bytes(bytes(aac))
    cmd = [sys.executable, "-m", "speech_emotion.cli.main", "predict", "--model", str(tiny.bundle.folder)]
    ran = subprocess.run([*cmd, str(whole)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and ran.stderr == ""
    for path in (damaged, flipped):
        ran = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=120)
        lines = ran.stderr.splitlines()
        assert all(line.startswith((f"warning: {path}: ", f"error: {path}: ")) for line in lines), ran.stderr
        assert len(lines) <= 2, ran.stderr  # our notes only: ended early, damage decoded beyond full scale


def test_the_decode_budget_is_checked_on_the_header_and_while_decoding():
    stereo = encode("mov")  # 6 s of 48 kHz stereo: 576000 samples
    with pytest.raises(AudioError, match=r"^<audio>: too large to decode: 0\.6 M samples \(48000 Hz x 2 channels\)"):
        open_blocks(stereo, max_decoded_samples=500_000)
    with pytest.raises(AudioError, match=r"^<audio>: too long: 6\.0 s, the limit is 5 s$"):
        open_blocks(stereo, max_duration_s=5)
    live = encode("webm", container_options={"live": "1"})  # as a browser's recorder: no length in the header
    blocks = open_blocks(live, block_s=1.0, max_decoded_samples=150_000)
    assert blocks.duration_s == 0.0
    with pytest.raises(AudioError, match=r"^<audio>: too large to decode: 0\.\d M samples \(48000 Hz x 1 channels\)"):
        list(blocks)


def test_blocks_stay_under_the_block_limit_whatever_the_block_length_asked():
    blocks = open_blocks(encode("mov", talk(12.0)), block_s=60.0)  # 12 s stereo at 48 kHz: 1.15 M samples
    sizes = [block.size for block in blocks]
    assert max(sizes) <= MAX_BLOCK_SAMPLES and len(sizes) >= 2


def test_a_video_without_an_audio_track_says_so(tmp_path):
    import av

    path = tmp_path / "silent-film.mp4"
    with av.open(str(path), "w") as out:
        picture = out.add_stream("mpeg4", rate=10)
        picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        black = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
        for frame in [black] * 10 + [None]:
            for packet in picture.encode(frame):
                out.mux(packet)
    with pytest.raises(AudioError, match=rf"^{path}: cannot decode audio \(no audio track\)$"):
        open_blocks(path)


def test_batch_finds_these_formats_by_name_and_by_content(files, tiny, tmp_path):
    folder = tmp_path / "memos"
    folder.mkdir()
    (folder / "memo.m4a").write_bytes(files["m4a"].read_bytes())
    (folder / "recording").write_bytes(files["webm"].read_bytes())  # no suffix: told by its content
    (folder / "clip.MOV").write_bytes(files["mov"].read_bytes())
    jobs = collect_jobs(folder)
    assert sorted(Path(job.path).name for job in jobs.jobs) == ["clip.MOV", "memo.m4a", "recording"]
    assert jobs.left_out == []
    for job in jobs.jobs:
        result = analyze_one(job, tiny)
        assert result.error is None and result.speech_s > 4.0, (job.path, result.error)


@pytest.mark.parametrize("suffix", [".flac", ".mp3", ".wav", ".m4a", ".ogg"])
def test_random_bytes_are_not_recognised_whatever_the_name_says(tmp_path, suffix):
    """FFmpeg guesses a raw stream from a name like ``x.flac`` (no channels, no rate): that is not an audio file
    without an audio track (fresh-user trial: random bytes named .flac said "no audio track")."""
    path = tmp_path / f"noise{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(
        AudioError, match=r": cannot decode audio \((format not recognised|corrupt or truncated data)\)$"
    ):
        open_blocks(path)
