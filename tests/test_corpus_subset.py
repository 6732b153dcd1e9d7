"""scripts/corpus_subset.py: every Nth clip of a corpus as a corpus folder of links, read like the corpus."""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from scripts_loader import load_script
from speech_emotion.corpora import load_corpora
from synth import emotion_clip


def test_a_subset_keeps_every_nth_clip_by_path_and_reads_as_the_same_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "mycorpus"
    (corpus / "audio").mkdir(parents=True)
    lines = ["path\temotion\tspeaker"]
    for i in range(12):
        emotion = ("happy", "sad", "angry")[i % 3]
        sf.write(corpus / "audio" / f"{i:02d}.wav", emotion_clip(emotion, i, duration_s=0.5), 16000)
        lines.append(f"audio/{i:02d}.wav\t{emotion}\ts{i % 2}")
    (corpus / "MANIFEST.tsv").write_text("\n".join(lines) + "\n")
    assert len(load_script("corpus_subset").subset(corpus, 4, tmp_path / "out")) == 4
    table = load_corpora([tmp_path / "out" / "mycorpus"])
    assert [Path(p).name for p in table["path"]] == ["00.wav", "03.wav", "06.wav", "09.wav"]
    assert set(table["corpus"]) == {"mycorpus"} and (tmp_path / "out" / "mycorpus" / "audio").is_symlink()  # no copy
