"""``speech-emotion predict FILE...``: emotion of whole recordings of any length, as a table or JSON lines.

Each file is read in blocks and its speech found with the live engine's voice activity detection.
Each speech segment is classified once as a whole (one utterance: as one clip) and the answer is
the speech-time-weighted mean of the segments' probabilities. The answer says how many seconds of speech it rests on; a
file without speech is reported as such ("no speech detected"; an answer, not an error). --json prints one
object per file, with "status" ok, no_speech or failed. A model with dimensions (the default) also gives arousal,
valence and dominance, each 0-1 (0.5 = neutral): the A/V/D column, or top-level keys in the JSON. A calibrated
model (the default) marks an answer it should not be trusted on: "?" after the emotion, "uncertain": true in the
JSON (its confidence is under the model's threshold or the runner-up is close; see the model card).
--channels split (a call with each party on its own channel) adds each channel's answer: rows "FILE (channel N)"
after the whole call's (none for a mono file, whose one channel is the whole file), or "channels" in the JSON
(also when no channel holds speech). When a channel holds speech but the mix of them does not (one party's line is
loud noise), the whole call's row says "no speech" and its JSON has "status" ok with "label" null and a
"message" saying so, beside the channels' answers.
Exit status: 0 when every file was read (with or without speech), 1 when a file could not be read or used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..calls import CallNoSpeechError, predict_call
from ..decode import open_blocks
from ..errors import SpeechEmotionError, error_code
from ..recognizer import Recognizer
from ..recording import NoSpeechError, RecordingOptions, RecordingPrediction, predict_blocks, predict_recording
from . import add_channels_option, avd, error, plain, shown, warn, warn_channels
from .arguments import thread_count
from .summary import UNCERTAIN_MARK, marked

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="emotion of each audio file", description=plain(__doc__))
    p.add_argument("files", nargs="+", type=Path, help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("--model", default=None, help="bundled model name or bundle folder (default: bundled default)")
    p.add_argument("--json", action="store_true", help="one JSON object per file instead of a table")
    p.add_argument("--threads", type=thread_count, default=None, help="inference threads (default: all cores)")
    add_channels_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    recognizer = Recognizer.load(args.model, threads=args.threads)
    failures = 0
    rows = []
    try:
        for path in args.files:
            try:
                if args.channels == "split":
                    call = predict_call(path, recognizer)
                    pred, parts = call.whole, call.channels
                else:
                    pred, parts = _predict(path, recognizer, show_progress=not args.json and _on_terminal()), ()
            except NoSpeechError as exc:  # an answer, not a failure (exit status 0, as every command)
                if isinstance(exc, CallNoSpeechError):  # each channel's notes (a loud tone on one of them)
                    warn_channels(path, {c.channel: c.no_speech.notes for c in exc.channels if c.no_speech})
                else:
                    warn(path, exc.notes)
                print(shown(exc), file=sys.stderr)
                if args.json:
                    print(json.dumps(_no_speech(path, exc)), flush=True)
                rows.append((str(path), "no speech"))
                if isinstance(exc, CallNoSpeechError) and len(exc.channels) > 1:
                    rows += [(f"{path} (channel {c.channel})", "no speech") for c in exc.channels]
                continue
            except SpeechEmotionError as exc:
                failures += 1
                error(exc)
                if args.json:
                    print(json.dumps(_failed(path, exc)), flush=True)
                rows.append((str(path), "failed"))
                continue
            if args.channels == "split":  # the whole call's notes, and each channel's own with its channel
                whole = call.whole_no_speech.notes if pred is None else pred.notes
                own = {c.channel: (c.prediction or c.no_speech).notes for c in parts if len(parts) > 1}
                warn_channels(path, {None: whole, **own})
                if pred is None:  # speech in a channel, none in the mix
                    print(f"{shown(call.whole_no_speech)} in the mix of the channels", file=sys.stderr)
                answer = call.to_dict()
            else:
                warn(path, pred.notes)
                answer = pred.to_dict()
            if args.json:
                print(json.dumps({"path": str(path), "status": "ok", **answer}), flush=True)
            else:
                rows.append((str(path), pred))
                if len(parts) > 1:  # a mono file's one channel is the whole file: its row would repeat it
                    rows += [(f"{path} (channel {c.channel})", c.prediction) for c in parts]
    finally:  # Ctrl-C part way through a long list still shows the files already done (JSON lines went out as done)
        if rows and not args.json:
            _print_table(rows, recognizer.labels)
    return 1 if failures else 0


def _on_terminal() -> bool:
    """Whether stderr is a terminal (progress is shown there only: never in a pipe, a log or with --json)."""
    return sys.stderr.isatty()


def _predict(path: Path, recognizer: Recognizer, show_progress: bool) -> RecordingPrediction:
    """:func:`predict_recording` of ``path``, with a progress bar on stderr (seconds read of the file's length)
    when ``show_progress``: a 3-hour file takes minutes."""
    if not show_progress:
        return predict_recording(path, recognizer)
    from tqdm import tqdm

    options = RecordingOptions()
    blocks = open_blocks(path, options.block_s, options.max_duration_s)
    # counted in frames (whole numbers, shown in seconds): the bar ends at exactly 100 %, 0 s left
    frames = round(blocks.duration_s * blocks.sample_rate)  # the header's length (0: not announced)
    if frames:
        bar_format = "{desc}: {percentage:3.0f}% {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]"
    else:  # a stream-written file (a browser's WebM) does not say how long it is: seconds read so far
        bar_format = "{desc}: {n:.0f} s [{elapsed}]"
    bar = tqdm(
        total=frames or None,
        unit_scale=1 / blocks.sample_rate,
        desc=path.name,
        leave=False,
        file=sys.stderr,
        bar_format=bar_format,
        mininterval=0,
        miniters=1,
    )
    with bar:  # one refresh per block (10 s of audio): no need to throttle

        def read() -> Iterator[np.ndarray]:
            for block in blocks:  # a header that understates the length stops the bar at 100 %, not past it
                bar.update(min(len(block), frames - bar.n) if frames else len(block))
                yield block

        return predict_blocks(read(), blocks.sample_rate, recognizer, options, blocks.name, blocks.duration_s)


def _no_speech(path: Path, exc: NoSpeechError) -> dict[str, Any]:
    """The ``--json`` object of a file without speech: ``status`` and ``error`` are ``no_speech``."""
    return {
        "path": str(path),
        "status": "no_speech",
        "error": "no_speech",
        "message": str(exc),
        "duration_s": round(exc.duration_s, 3),
        "notes": list(exc.notes),
        **({"channels": [c.to_dict() for c in exc.channels]} if isinstance(exc, CallNoSpeechError) else {}),
    }


def _failed(path: Path, exc: SpeechEmotionError) -> dict[str, Any]:
    """The ``--json`` object of a file that could not be used: ``status`` ``failed`` and the service's error code."""
    return {"path": str(path), "status": "failed", "error": error_code(exc), "message": str(exc)}


NO_WRAP = ("emotion", "confidence", "speech")
"""Columns whose cells are never broken across lines (``1.6/2.0 s`` wrapped its ``s`` onto a line of its own)."""


def _min_width(header: str, cells: list[str]) -> int:
    """The narrowest a ``predict`` table column can be without cropping: its header, and its longest word (its
    longest cell for the columns that do not wrap: :data:`NO_WRAP`)."""
    if header in NO_WRAP:
        return max([len(header), *map(len, cells)])
    return max([len(header), *(len(word) for cell in cells for word in cell.split())])  # cells may all be empty


def _print_table(rows: list[tuple[str, RecordingPrediction | str | None]], labels: tuple[str, ...]) -> None:
    """One row per file (and per channel with ``--channels split``); a file without an emotion gets its reason
    (``no speech``, ``failed``) in the emotion column, so the table lists every file given."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    predictions = [pred for _, pred in rows if isinstance(pred, RecordingPrediction)]
    dimensions = any(pred.dimensions is not None for pred in predictions)
    headers = ["emotion", "confidence", "runner-up", "speech", *(["A/V/D"] * dimensions)]
    names, cells = [shown(path) for path, _ in rows], []
    for _, pred in rows:
        if not isinstance(pred, RecordingPrediction):  # no speech (a file, or a channel with --channels split), failed
            cells.append([pred or "no speech"] + [""] * (len(headers) - 1))
            continue
        ranked = sorted(zip(pred.labels, pred.probabilities), key=lambda kv: kv[1], reverse=True)
        cells.append(
            [
                marked(pred.label, pred.uncertain),
                f"{pred.confidence:.0%}",
                f"{ranked[1][0]} {ranked[1][1]:.0%}" if len(ranked) > 1 else "",
                f"{pred.speech_s:.1f}/{pred.duration_s:.1f} s",
                *([avd(pred.dimensions)] * dimensions),
            ]
        )
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        # a pipe or a file with no width asked for: as wide as the longest name and the other columns need (rich
        # would assume 80 columns and fold every name into a column a few characters wide)
        console = Console(width=max(console.width, max(map(len, names)) + 200))
    # Widths: everything on one line if it fits; otherwise the name gets at least 16 characters (fewer, down to 8,
    # only if the other columns need it), the runner-up cell wraps at its spaces and A/V/D stands as
    # three lines, each column given its width here (rich's own shrinking crops cells with an ellipsis), so that no
    # value is cropped in a terminal of 72 columns or more; narrower, the table is drawn as wide as its narrowest
    # uncropped form (the terminal folds its lines) rather than crop an answer
    longest = max(len("file"), *map(len, names))
    widths = [max(len(h), *(len(line) for row in cells for line in row[i].split("\n"))) for i, h in enumerate(headers)]
    frame = 3 * len(headers) + 4  # borders and padding
    if console.width - sum(widths) - frame >= min(16, longest):
        name_width = min(longest, console.width - sum(widths) - frame)
    else:
        if dimensions:
            for row in cells:
                row[-1] = row[-1].replace("/", "\n")
            widths[-1] = max(len(headers[-1]), 4)
        natural, widths = widths, [_min_width(h, [row[i] for row in cells]) for i, h in enumerate(headers)]
        narrowest = sum(widths) + frame + min(8, longest)
        if console.width < narrowest:
            console = Console(width=narrowest)
        spare = console.width - sum(widths) - frame
        name_width = min(longest, max(8, min(16, spare)))
        spare -= name_width
        for i in range(len(widths)):  # what is left widens the wrapping columns back, then the name
            more = max(0, min(spare, natural[i] - widths[i]))
            widths[i] += more
            spare -= more
        name_width = min(longest, name_width + max(0, spare))
    table = Table(show_header=True, header_style="bold")
    table.add_column("file", overflow="fold", width=name_width)
    for header, width in zip(headers, widths):
        table.add_column(
            header,
            justify="right" if header in ("confidence", "speech", "A/V/D") else "left",
            no_wrap=header in NO_WRAP,
            style="bold" if header == "emotion" else "",
            width=width,
        )
    for name, row in zip(names, cells):
        table.add_row(Text(name), *row)
    console.print(table)
    if dimensions:
        print("A/V/D: arousal / valence / dominance, each 0-1 (0.5 = neutral)")
    if any(pred.uncertain for pred in predictions):
        print(UNCERTAIN_MARK)
