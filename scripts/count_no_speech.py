"""Count the clips of a corpus in which the streaming engine's VAD finds no speech segment (issues 11, 21).

Usage: python scripts/count_no_speech.py [CORPUS_DIR [STEP]]   (default ../shared/data/ravdess; every STEP-th clip
of the folder's MANIFEST.tsv, or of its FLAC files without one)
A clip counts as "no speech" when no VAD segment reaches ``StreamOptions.min_segment_s``, the rule the
engine (stream, analyze, batch, the page) and predict share. Audio goes through the same conditioner.
"""

from __future__ import annotations

import sys
from pathlib import Path

import soundfile as sf

from speech_emotion.conditioning import SampleConditioner
from speech_emotion.streaming import StreamOptions
from speech_emotion.vad import speech_segments


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/ravdess")
    options = StreamOptions()
    step = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    manifest = root / "MANIFEST.tsv"
    if manifest.is_file():
        rows = [line.split("\t") for line in manifest.read_text().splitlines()[1:] if line.strip()]
        files = [root / row[0] for row in rows][::step]
    else:
        files = sorted(root.glob("**/*.flac"))[::step]
    silent = []
    for path in files:
        samples, sr = sf.read(path, dtype="float32")
        spans = speech_segments(SampleConditioner().whole(samples, sr), options.vad)
        if not any(end - start >= options.min_segment_s for start, end in spans):
            silent.append(path)
    print(f"{len(files)} clips, {len(silent)} with no speech")
    for path in silent:
        print(f"  {path}")


if __name__ == "__main__":
    main()
