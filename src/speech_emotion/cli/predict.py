"""``speech-emotion predict FILE...``: emotion of whole recordings of any length, as a table or JSON lines.

Each file is read in blocks and its speech found with the live engine's voice activity detection.
A short recording (up to 10 s) is judged as one clip; a longer one by the speech-time-weighted
emotion of all its speech segments. The answer says how many seconds of speech it rests on; a
file without speech is reported as such (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import SpeechEmotionError
from ..recognizer import Recognizer
from ..recording import RecordingPrediction, predict_recording
from . import plain, warn
from .arguments import positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="emotion of each audio file", description=plain(__doc__))
    p.add_argument("files", nargs="+", type=Path, help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("--model", default=None, help="bundled model name or bundle folder (default: bundled default)")
    p.add_argument("--json", action="store_true", help="one JSON object per file instead of a table")
    p.add_argument("--threads", type=positive_int, default=None, help="inference threads (default: all cores)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    recognizer = Recognizer.load(args.model, threads=args.threads)
    failures = 0
    rows = []
    try:
        for path in args.files:
            try:
                pred = predict_recording(path, recognizer)
            except SpeechEmotionError as exc:
                failures += 1
                print(f"error: {exc}", file=sys.stderr)
                continue
            warn(path, pred.notes)
            if args.json:
                print(json.dumps({"path": str(path), **pred.to_dict()}), flush=True)
            else:
                rows.append((str(path), pred))
    finally:  # Ctrl-C part way through a long list still shows the files already done (JSON lines went out as done)
        if rows:
            _print_table(rows, recognizer.labels)
    return 1 if failures else 0


def _print_table(rows: list[tuple[str, RecordingPrediction]], labels: tuple[str, ...]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    table.add_column("file", overflow="fold")
    table.add_column("emotion", style="bold", no_wrap=True)
    table.add_column("confidence", justify="right", no_wrap=True)
    table.add_column("runner-up", no_wrap=True)
    table.add_column("speech", justify="right", no_wrap=True)
    for path, pred in rows:
        ranked = sorted(zip(pred.labels, pred.probabilities), key=lambda kv: kv[1], reverse=True)
        second = f"{ranked[1][0]} {ranked[1][1]:.0%}" if len(ranked) > 1 else ""
        speech = f"{pred.speech_s:.1f}/{pred.duration_s:.1f} s"
        table.add_row(path, pred.label, f"{pred.confidence:.0%}", second, speech)
    Console().print(table)
