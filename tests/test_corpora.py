from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf

from speech_emotion.corpora import load_corpus, parse_ravdess_name, read_ravdess
from speech_emotion.errors import DataError
from synth import vowel, write_ravdess_corpus


def test_ravdess_name_yields_all_seven_fields_and_gender():
    f = parse_ravdess_name("03-01-05-02-01-02-12.wav")
    assert f == {
        "emotion": "angry",
        "speaker": "Actor_12",
        "gender": "female",
        "modality": "audio-only",
        "vocal_channel": "speech",
        "emotion_code": "05",
        "intensity": "strong",
        "statement": "Kids are talking by the door",
        "repetition": 2,
        "actor": 12,
    }
    assert parse_ravdess_name("03-01-01-01-02-01-07.flac")["gender"] == "male"


@pytest.mark.parametrize(
    "name",
    [
        "03-01-09-01-01-01-01.wav",
        "03-01-05-01-01.wav",
        "readme.wav",
        "03-01-05-03-01-01-01.wav",
        "03-01-05-01-01-01-25.wav",
    ],
)
def test_malformed_or_unknown_names_are_rejected(name):
    assert parse_ravdess_name(name) is None


def test_reader_skips_bad_names_with_one_counting_warning(tmp_path, caplog):
    write_ravdess_corpus(tmp_path, actors=(1, 2), emotions=("happy", "sad"), takes=1)
    sf.write(tmp_path / "Actor_01" / "notes.wav", vowel(0.5), 16000)
    sf.write(tmp_path / "Actor_01" / "03-01-09-01-01-01-01.wav", vowel(0.5), 16000)
    with caplog.at_level(logging.WARNING):
        corpus = read_ravdess(tmp_path)
    assert len(corpus) == 4
    assert "skipped 2 file(s)" in caplog.text


def test_song_files_are_left_out_unless_asked(tmp_path):
    write_ravdess_corpus(tmp_path, actors=(1,), emotions=("calm",), takes=1)
    sf.write(tmp_path / "Actor_01" / "03-02-02-01-01-01-01.wav", vowel(0.5), 16000)
    assert len(read_ravdess(tmp_path)) == 1
    assert set(read_ravdess(tmp_path, include_song=True).vocal_channel) == {"speech", "song"}


def test_original_48k_wav_layout_is_recognised(tmp_path):
    write_ravdess_corpus(tmp_path, actors=(3,), emotions=("fearful",), takes=1, sample_rate=48000)
    corpus = load_corpus(tmp_path)
    assert corpus.loc[0, "emotion"] == "fearful"
    assert corpus.loc[0, "speaker"] == "Actor_03"


def test_label_folder_and_manifest_readers(tmp_path):
    for label in ("happy", "anger", "bored"):
        (tmp_path / "data" / label).mkdir(parents=True)
        sf.write(tmp_path / "data" / label / "x.wav", vowel(0.5), 16000)
    corpus = load_corpus(tmp_path / "data")
    assert sorted(corpus.emotion) == ["angry", "happy"]
    pd.DataFrame({"path": ["data/happy/x.wav"], "label": ["happy"], "speaker": ["s1"], "site": ["A"]}).to_csv(
        tmp_path / "m.csv", index=False
    )
    table = load_corpus(tmp_path / "m.csv")
    assert table.loc[0, "speaker"] == "s1"
    assert table.loc[0, "site"] == "A"
    assert table.loc[0, "path"] == str(tmp_path / "data/happy/x.wav")


def test_folder_without_audio_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no labelled audio"):
        load_corpus(tmp_path)


def test_shared_ravdess_copy_has_1440_clips_of_24_actors(ravdess_dir):
    corpus = load_corpus(ravdess_dir)
    assert len(corpus) == 1440
    assert corpus.speaker.nunique() == 24
    assert corpus.emotion.value_counts()["neutral"] == 96


def ravdess_named_corpus_with_manifest(root):
    """Two actors' RAVDESS-named clips, and a MANIFEST.tsv that lists only three of them under its own labels and
    speakers, and a FOLDS.tsv for those speakers."""
    write_ravdess_corpus(root, actors=(1, 2), emotions=("neutral", "happy"), takes=1)
    clips = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))[:3]
    rows = [f"{path}\tsad\tspeaker{i % 2}" for i, path in enumerate(clips)]
    (root / "MANIFEST.tsv").write_text("path\temotion\tspeaker\n" + "\n".join(rows) + "\n")
    (root / "FOLDS.tsv").write_text("speaker\tfold\nspeaker0\tA\nspeaker1\tB\n")
    return clips


def test_a_folder_manifest_wins_over_ravdess_file_names(tmp_path):
    clips = ravdess_named_corpus_with_manifest(tmp_path / "c")
    corpus = load_corpus(tmp_path / "c")
    assert [Path(p).relative_to(tmp_path / "c").as_posix() for p in corpus.path] == clips  # its rows, not all four
    assert set(corpus.emotion) == {"sad"} and list(corpus.speaker) == ["speaker0", "speaker1", "speaker0"]
    assert list(corpus.fold) == ["A", "B", "A"]
    assert set(corpus.actor) == {1, 2} and "emotion_code" not in corpus  # name fields only fill in what it lacks


def test_data_naming_a_manifest_file_reads_its_folder(tmp_path):
    from speech_emotion.corpora import load_corpora

    ravdess_named_corpus_with_manifest(tmp_path / "c")
    by_file = load_corpus(tmp_path / "c" / "MANIFEST.tsv")
    pd.testing.assert_frame_equal(by_file, load_corpus(tmp_path / "c"))
    write_ravdess_corpus(tmp_path / "d", actors=(3,), emotions=("angry",), takes=1)
    both = load_corpora([tmp_path / "c" / "MANIFEST.tsv", tmp_path / "d"])
    assert sorted(set(both.corpus)) == ["c", "d"] and both.loc[both.corpus == "c", "fold"].notna().all()


def test_evaluate_on_a_manifest_file_uses_the_folds_file_beside_it(tmp_path, capsys):
    pytest.importorskip("torch")
    from speech_emotion.cli.main import main

    ravdess_named_corpus_with_manifest(tmp_path / "c")
    (tmp_path / "c" / "FOLDS.tsv").write_text("speaker\tfold\nspeaker0\tA\n")  # speaker1 left out, on purpose
    argv = ["evaluate", "--data", str(tmp_path / "c" / "MANIFEST.tsv"), "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    assert capsys.readouterr().err.strip() == "error: speakers without a fold: speaker1"  # it read c/FOLDS.tsv
