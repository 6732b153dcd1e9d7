"""``speech-emotion analyze FILE...``: emotion timelines of long recordings (a one-hour call).

For each file: speech segments and their emotions as JSON and CSV, a PNG plot of emotion over
time, and a summary (share of speech time per emotion, the most intense moments). Files are
read in blocks, so memory does not grow with their length.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SpeechEmotionError
from ..recognizer import Recognizer
from ..report import summarize, write_timeline
from ..threads import limit_native_threads
from ..timeline import ANALYZE_HOP_S, AnalyzeOptions, Timeline, analyze_file
from .stream import add_stream_options, stream_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="emotion timeline of long recordings (JSON, CSV, PNG)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("files", nargs="+", type=Path, help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("-o", "--out", type=Path, default=Path("."), help="output folder (default: current folder)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary, only the written paths")
    add_stream_options(p, hop_s=ANALYZE_HOP_S)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = AnalyzeOptions(stream=stream_options(args))
    limit_native_threads()
    recognizer = Recognizer.load(args.model, threads=args.threads)
    failures = 0
    for path in args.files:
        try:
            timeline = _analyze(path, recognizer, options, show_progress=not args.quiet)
        except SpeechEmotionError as exc:
            failures += 1
            print(f"error: {exc}", file=sys.stderr)
            continue
        for note in timeline.notes:
            print(f"warning: {path}: {note}", file=sys.stderr)
        stem = path.stem if len({p.stem for p in args.files}) == len(args.files) else _unique_stem(path)
        written = write_timeline(timeline, args.out, stem=stem, plot=not args.no_plot)
        if not timeline.segments:
            print(f"{path}: no speech detected ({timeline.duration_s:.1f} s of silence or noise)", file=sys.stderr)
        elif not args.quiet:
            _print_summary(timeline)
        for path_written in written.values():
            print(f"wrote {path_written}")
    return 1 if failures else 0


def _unique_stem(path: Path) -> str:
    return "_".join(part for part in path.with_suffix("").parts[-2:])


def _analyze(path: Path, recognizer: Recognizer, options: AnalyzeOptions, show_progress: bool) -> Timeline:
    if not show_progress or not sys.stderr.isatty():
        return analyze_file(path, recognizer, options)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(path.name, total=None)  # the total is known once the first block is read

        def progress(done: float, total: float) -> None:
            bar.update(task, completed=done, total=total, description=f"{path.name} {done:.0f}/{total:.0f} s")

        return analyze_file(path, recognizer, options, progress=progress)


def _print_summary(timeline: Timeline) -> None:
    from rich.console import Console
    from rich.table import Table

    summary = summarize(timeline)
    console = Console()
    console.print(
        f"[bold]{timeline.source}[/]: {summary['segments']} segments, "
        f"{summary['speech_s']:.1f} s of speech in {summary['duration_s']:.1f} s "
        f"({summary['speech_share']:.0%}); mostly [bold]{summary['dominant']}[/]"
    )
    table = Table(show_header=True, header_style="bold", box=None)
    table.add_column("emotion")
    table.add_column("speech time", justify="right")
    table.add_column("share", justify="right")
    for label, seconds in sorted(summary["emotion_seconds"].items(), key=lambda kv: -kv[1]):
        if seconds > 0:
            table.add_row(label, _clock(seconds), f"{summary['emotion_share'][label]:.0%}")
    console.print(table)
    if summary["intense_moments"]:
        console.print("most intense moments:")
        for m in summary["intense_moments"]:
            console.print(f"  {_clock(m['start'])}-{_clock(m['end'])}  {m['label']:<9} {m['probability']:.0%}")


def _clock(seconds: float) -> str:
    minutes, s = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{s:04.1f}" if hours else f"{minutes}:{s:04.1f}"
