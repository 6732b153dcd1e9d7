"""``speech-emotion analyze FILE...``: emotion timelines of long recordings (a one-hour call).

For each file: speech segments and their emotions as JSON and CSV, a PNG plot of emotion over
time, and a summary (share of speech time per emotion, the most intense moments). Files are
read in blocks, so memory does not grow with their length. A calibrated model (the default) flags answers it
should not be trusted on: "uncertain" in the JSON and CSV, "(uncertain)" after the summary's verdict.
Reports are named after each file's stem (call.wav: call.timeline.json); where two inputs share a stem, after the
file name (call.wav.timeline.json), then its folder too (a_call.wav.timeline.json), so none overwrites another.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SpeechEmotionError
from ..recognizer import Recognizer
from ..report import write_timeline
from ..streaming import NoSpeechError
from ..threads import limit_native_threads
from ..timeline import ANALYZE_HOP_S, AnalyzeOptions, Timeline, analyze_channels
from . import add_channels_option, error, plain, shown, warn_channels
from .arguments import folder
from .stream import add_stream_options, stream_options
from .summary import print_summary


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="emotion timeline of long recordings (JSON, CSV, PNG)",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", type=Path, help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("-o", "--out", type=folder, default=Path("."), help="output folder (default: current folder)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary, only the written paths")
    add_channels_option(p)
    add_stream_options(p, hop_s=ANALYZE_HOP_S)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = AnalyzeOptions(stream=stream_options(args), channels=args.channels)
    limit_native_threads()
    recognizer = Recognizer.load(args.model, threads=args.threads)
    failures = 0
    stems = unique_stems(args.files)
    for i, path in enumerate(args.files):
        try:
            timelines = _analyze(path, recognizer, options, show_progress=not args.quiet)
        except SpeechEmotionError as exc:
            failures += 1
            error(exc)
            continue
        warn_channels(path, {t.channel: t.notes for t in timelines})
        written = write_timeline(timelines, args.out, stem=stems[i], plot=not args.no_plot)
        if not any(t.segments for t in timelines) and timelines[0].channel is None:  # split: a summary per channel
            seconds = timelines[0].duration_s
            print(shown(NoSpeechError(str(path), seconds)), file=sys.stderr)
        elif not args.quiet:
            for timeline in timelines:
                print_summary(timeline)
        for path_written in written.values():
            print(f"wrote {shown(path_written)} (from {shown(path)})")
    return 1 if failures else 0


def unique_stems(paths: list[Path]) -> list[str]:
    """One report name per input, never the same twice: the file's stem (``x``); where stems clash, its name
    (``x.wav``, ``x.mp3``); where names clash too, the folder and the name (``a_x.wav``); then a number."""
    ways = [lambda p: p.name, lambda p: "_".join(p.resolve().parts[-2:])]
    stems = [p.stem for p in paths]
    for way in ways:
        clash = {s for s in stems if stems.count(s) > 1}
        if not clash:
            break
        stems = [way(p) if s in clash else s for p, s in zip(paths, stems)]
    taken: set[str] = set()
    unique = []
    for s in stems:  # the same file twice, or a folder name that clashes too
        candidate, n = s, 1
        while candidate in taken:
            n += 1
            candidate = f"{s}-{n}"
        taken.add(candidate)
        unique.append(candidate)
    return unique


def _analyze(path: Path, recognizer: Recognizer, options: AnalyzeOptions, show_progress: bool) -> list[Timeline]:
    if not show_progress or not sys.stderr.isatty():
        return analyze_channels(path, recognizer, options)
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        name = escape(shown(path.name))  # literally: no rich markup, no control characters
        task = bar.add_task(name, total=None)  # the total is known once the first block is read

        def progress(done: float, total: float) -> None:
            bar.update(task, completed=done, total=total, description=f"{name} {done:.0f}/{total:.0f} s")

        return analyze_channels(path, recognizer, options, progress=progress)
