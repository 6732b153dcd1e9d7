"""``speech-emotion batch INPUT --out RESULTS``: analyse a whole archive into Parquet tables.

INPUT is a folder (searched recursively for audio files), a glob pattern (quote it), or a
CSV/TSV/JSONL manifest with a path column; the manifest's other columns are carried through.
RESULTS gets ``files.parquet`` (one row per file) and ``segments.parquet`` (one row per speech
segment). Rerunning with the same RESULTS resumes: files already done are skipped, and files
that failed are kept as failed unless --retry-failed is given. Every file is tried; the exit
status is 1 when any of them failed (this run or an earlier one), 0 when all were analysed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..batch import BatchOptions, BatchSummary, run_batch
from ..batch.inputs import MANIFEST_SUFFIXES
from ..batch.runner import Terminated
from ..errors import UsageError
from ..words import plural
from . import add_channels_option, plain
from .arguments import folder, positive_int

RUNNERS = ("local", "ray")
"""Where ``batch`` analyses the files (:class:`~speech_emotion.batch.BatchOptions` ``runner``)."""


class _DeprecatedEngine(argparse.Action):
    """``--engine``, the old name of ``--runner`` ("engine" is the streaming recognizer): still works, says so."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None):
        print(f"speech-emotion batch: --engine is deprecated, use --runner {values}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="analyse a folder, glob or manifest of recordings into Parquet tables (local or Ray)",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="folder, glob pattern, or CSV/TSV/JSONL manifest")
    p.add_argument("--out", required=True, type=folder, help="results folder (reuse it to resume)")
    p.add_argument("--model", default=None, help="bundled model name or bundle folder (default: bundled default)")
    p.add_argument(
        "--runner", choices=RUNNERS, default="local", help="where the files are analysed: local process pool or Ray"
    )
    p.add_argument("--engine", choices=RUNNERS, dest="runner", action=_DeprecatedEngine, help=argparse.SUPPRESS)
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="worker processes or Ray actors (default: CPU cores; with --address: the cluster's CPUs)",
    )
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--retry-failed", action="store_true", help="analyse again files that failed in earlier runs")
    p.add_argument("--path-column", default=None, help="manifest column with the paths (default: path, file, ...)")
    p.add_argument(
        "--commit-every",
        type=positive_int,
        default=64,
        metavar="N",
        help="save results every N files (or 30 s); an interruption loses at most that much work (default: 64)",
    )
    add_channels_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)


def check_options(args: argparse.Namespace) -> None:
    """Options that would be ignored for this input or runner are usage errors, not silently dropped.

    Raises :class:`UsageError` for ``--address`` without ``--runner ray``, for ``--path-column`` when the input
    is not a manifest (a CSV/TSV/JSONL file; a missing input is the run's own one-line error), and for ``--out``
    naming the input folder itself (its results would be read as input on the next run).
    """
    if args.address and args.runner != "ray":
        raise UsageError(f"--address {args.address} is a Ray cluster's address: add --runner ray")
    source = Path(args.input)
    if source.is_dir() and source.resolve() == Path(args.out).resolve():
        raise UsageError(f"--out {args.out} is the input folder: give the results a folder of their own")
    is_manifest = source.is_file() and source.suffix.lower() in MANIFEST_SUFFIXES
    if args.path_column and source.exists() and not is_manifest:
        raise UsageError(
            f"--path-column names a manifest's column, and {args.input} is not a manifest "
            f"({', '.join(MANIFEST_SUFFIXES)} file)"
        )


def run(args: argparse.Namespace) -> int:
    check_options(args)
    options = BatchOptions(
        input=args.input,
        out=args.out,
        model=args.model,
        runner=args.runner,
        workers=args.workers,
        address=args.address,
        retry_failed=args.retry_failed,
        path_column=args.path_column,
        chunk_files=max(1, args.commit_every),
        progress=not args.no_progress and sys.stderr.isatty(),
        channels=args.channels,
    )
    try:
        summary = run_batch(options)
    except KeyboardInterrupt as exc:
        print(
            f"interrupted: completed results are saved; run the same command again to resume ({args.out})",
            file=sys.stderr,
        )
        return 143 if isinstance(exc, Terminated) else 130  # 128 + the signal: SIGTERM's 15, Ctrl-C's (SIGINT) 2
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        print_summary(summary)
    if summary.table_failed:  # every file was tried first: the exit status tells a script the archive is not all done
        total = summary.table_ok + summary.table_failed
        print(
            f"error: {summary.table_failed} of {plural(total, 'file')} failed (the error column of "
            f"{summary.files_table} says why; --retry-failed analyses them again)",
            file=sys.stderr,
        )
        return 1
    return 0


def print_summary(s: BatchSummary) -> None:
    """The few lines printed at the end of a run."""
    rtf = f"{s.real_time_factor:.4f}" if s.real_time_factor is not None else "n/a"
    peak = max(s.peak_worker_rss_mb.values(), default=0.0)
    earlier = s.table_failed - s.files_failed  # failed in an earlier run, not retried (skipped)
    before = f"done before, {earlier} of them failed" if earlier > 0 else "done before"
    lines = [
        f"files: {s.files_done} done, {s.files_failed} failed, {s.files_skipped} skipped ({before}) of {s.files_total}",
        f"audio: {s.audio_hours:.3f} h analysed in {s.wall_s:.1f} s wall time"
        f" (real-time factor {rtf}, {s.files_per_s:.1f} files/s, {s.runner} runner, {plural(s.workers, 'worker')})",
        f"CPU per second of audio: {s.cpu_per_audio_s:.4f} s; peak memory per worker: {peak:.0f} MiB"
        if s.cpu_per_audio_s
        else "",
        f"tables: {s.files_table} ({s.table_ok} ok, {s.table_failed} failed), {s.segments_table}",
    ]
    shown = s.failures[:5]
    lines += [f"  failed: {error}" for error in shown]  # under the tables line, whose failed count they detail
    if s.files_failed > len(shown):
        lines.append(f"  ... {s.files_failed - len(shown)} more: see the error column of files.parquet")
    lines += [f"  failed earlier: {error}" for error in s.earlier_failures[:5]]
    if earlier > len(s.earlier_failures[:5]):
        lines.append(f"  ... {earlier - len(s.earlier_failures[:5])} more: see the error column of files.parquet")
    if s.results_not_in_input:
        lines.append(
            f"earlier results not in this input: {plural(s.results_not_in_input, 'file')} (removed, renamed or not "
            "given this time): not in the tables, still kept under parts/ (run on the whole input to list them again)"
        )
    if s.files_left_out:
        lines.append(f"left out: {plural(s.files_left_out, 'file or folder', 'files or folders')} (not analysed):")
        lines += [f"  {item}" for item in s.left_out[:5]]
        if s.files_left_out > 5:
            lines.append(f"  ... {s.files_left_out - 5} more")
    print("\n".join(line for line in lines if line))
