"""The README's library example, runnable: ``python examples/library.py RECORDING [--model NAME]``.

Prints the emotion of the whole recording (what ``speech-emotion predict`` answers), then feeds the same file to the
engine in 100 ms chunks at the file's own sample rate (any rate works: the engine resamples) and prints its events,
including the last utterance, which the end of the stream closes. A test runs this file.
"""

from __future__ import annotations

import argparse
import sys

from speech_emotion import NoSpeechError, Recognizer, StreamEnd, StreamingRecognizer, predict_recording
from speech_emotion.decode import open_blocks
from speech_emotion.errors import SpeechEmotionError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", help="audio file (wav, flac, ogg, ...)")
    parser.add_argument("--model", default=None, help="bundled model name or bundle folder (default: bundled default)")
    args = parser.parse_args()
    try:
        run(args.recording, args.model)
    except SpeechEmotionError as exc:  # a missing or unreadable file, an unknown model: one line, no traceback
        sys.exit(f"error: {exc}")


def run(path: str, model: str | None = None) -> None:
    """Print the emotion of the recording ``path``, then the live engine's events for it."""
    # README:BEGIN
    r = Recognizer.load(model)  # bundled default; or "cnn-lstm" / a bundle folder
    try:
        whole = predict_recording(path, r)  # any length: label, confidence, probabilities, speech_s
        print(whole.label, f"{whole.confidence:.0%}", f"from {whole.speech_s:.1f} s of speech")
        second = whole.labels[whole.probabilities.argsort()[-2]]  # probabilities: an array in r.labels order
        print(f"then {second} {whole.probability(second):.0%}")  # whole.to_dict(): the JSON, a dict of them
    except NoSpeechError as exc:  # silence, hum or noise only: nothing to judge
        print(exc)  # e.g. "call.wav: no speech detected (3.0 s of silence or noise)"

    engine = StreamingRecognizer(r, source=path)  # the engine every door runs
    blocks = open_blocks(path, block_s=0.1)  # 100 ms chunks at the file's own rate, any format the CLI reads
    chunks = ((chunk, blocks.sample_rate) for chunk in blocks)
    for event in engine.events(chunks):  # events as the audio goes by; the stream's end closes the last one
        if not isinstance(event, StreamEnd):  # the last item: duration, speech_s, notes
            print(event.to_dict())  # "update" and "segment" events
    # README:END


if __name__ == "__main__":
    main()
