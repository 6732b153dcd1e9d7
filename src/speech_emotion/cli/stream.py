"""``speech-emotion stream FILE``: a file fed through the streaming engine, fast or at real-time pace.

The way to demo live recognition without a microphone: --realtime plays the file at its own
pace and prints events as they would arrive live (Ctrl-C stops it and prints the summary);
a calibrated model (the default) marks uncertain answers with "?" ("uncertain" in JSON);
--jsonl prints one JSON event per line, then per channel an "end" line with the recording's answer (dominant,
probabilities, verdict, uncertain, uncertain_share: those of the summary), or an "error" line (error, message).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..decode import open_blocks
from ..errors import SpeechEmotionError, error_code
from ..recognizer import Recognizer
from ..report import VERDICT_KEYS, summarize
from ..streaming import (
    MIN_HOP_S,
    Event,
    NoSpeechError,
    SegmentEvent,
    StreamEnd,
    StreamingRecognizer,
    StreamOptions,
    run_engines,
)
from ..threads import limit_native_threads
from ..timeline import Timeline
from ..words import plural
from . import add_channels_option, avd, plain, shown, warn_channels
from .arguments import positive_int, thread_count
from .summary import UNCERTAIN_MARK, marked, print_summary


def _window_seconds(text: str) -> float:
    """``--window``: seconds from a segment's shortest to its longest (argparse's one-line error otherwise)."""
    shortest, longest = StreamOptions.min_segment_s, StreamOptions.max_segment_s
    value = _number(text)
    if not shortest <= value <= longest:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be {shortest:g} to {longest:g} s, got {text}")
    return value


def _hop_seconds(text: str) -> float:
    """``--hop``: at least :data:`MIN_HOP_S` seconds (at most ``--window``: checked by :func:`stream_options`)."""
    value = _number(text)
    if not MIN_HOP_S <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be at least {MIN_HOP_S:g} s and at most --window, got {text}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def add_stream_options(p: argparse.ArgumentParser, hop_s: float = StreamOptions.hop_s) -> None:
    """Model and window options shared by ``stream``, ``listen`` and ``analyze`` (whose default hop is longer)."""
    p.add_argument("--model", default=None, help="bundled model name or bundle folder (default: bundled default)")
    p.add_argument("--threads", type=thread_count, default=1, help="inference threads (default: 1)")
    p.add_argument(
        "--window", type=_window_seconds, default=2.0, metavar="S", help="window length in seconds (default 2)"
    )
    p.add_argument(
        "--hop", type=_hop_seconds, default=hop_s, metavar="S", help=f"seconds between windows (default {hop_s:g})"
    )
    p.set_defaults(usage_error=p.error)


def stream_options(args: argparse.Namespace) -> StreamOptions:
    """The engine options of ``--window`` and ``--hop``; a hop longer than the window is a usage error (exit 2)."""
    if args.hop > args.window:
        args.usage_error(f"argument --hop: must be at most --window ({args.window:g} s), got {args.hop:g}")
    return StreamOptions(
        window_s=args.window, hop_s=args.hop, min_window_s=min(StreamOptions.min_window_s, args.window)
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream",
        help="stream a file through the real-time engine",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=Path, help="audio file (wav, flac, ogg, mp3, ...)")
    p.add_argument("--realtime", action="store_true", help="feed the audio at real-time pace (a live demo)")
    p.add_argument("--jsonl", action="store_true", help="print one JSON event per line")
    p.add_argument("--chunk-ms", type=positive_int, default=100, help="chunk size fed to the engine (default 100 ms)")
    add_channels_option(p)
    add_stream_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except SpeechEmotionError as exc:
        if args.jsonl:  # a last line a reader of the lines can parse, as the WebSocket's error message
            print(json.dumps({"type": "error", "error": error_code(exc), "message": str(exc)}), flush=True)
        raise
    except BrokenPipeError:  # piped into `head` and the like: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    options = stream_options(args)
    limit_native_threads()
    recognizer = Recognizer.load(args.model, threads=args.threads)
    blocks = open_blocks(args.file, block_s=args.chunk_ms / 1000)
    sr = blocks.sample_rate
    source = str(args.file)
    channels: list[int | None] = list(range(blocks.channels)) if args.channels == "split" else [None]
    engines = [StreamingRecognizer(recognizer, options, channel=c, source=source) for c in channels]
    engines[0].warmup()
    timelines = {
        c: Timeline(source, 0.0, sr, recognizer.name, recognizer.labels, channel=c, calibration=recognizer.calibration)
        for c in channels
    }
    fed = _Fed(blocks, sr, args.realtime)
    notes: dict[int | None, tuple[str, ...]] = dict.fromkeys(channels, ())  # each channel's own (its level notes)
    marked_any = False
    try:
        for item in run_engines(engines, fed, blocks.duration_s):
            if isinstance(item, StreamEnd):
                if item.no_audio is not None:  # not one sample: an unreadable file, as predict and analyze say
                    raise item.no_audio
                notes[item.channel] = item.notes
            else:
                marked_any |= _emit(item, args.jsonl, timelines[item.channel])
    except KeyboardInterrupt:  # Ctrl-C while the engine was busy rather than waiting: close open speech all the same
        fed.interrupted = True
        for engine in engines:
            for event in engine.flush():
                marked_any |= _emit(event, args.jsonl, timelines[event.channel])
    seconds = fed.frames / sr
    for timeline in timelines.values():
        timeline.duration_s = seconds
    if fed.interrupted:
        print(f"interrupted after {seconds:.1f} s", file=sys.stderr)
    else:
        warn_channels(args.file, notes)
    if args.jsonl:  # the last line per channel: the recording's answer, as the WebSocket's end message gives it
        for timeline in timelines.values():
            summary = summarize(timeline)
            channel = {} if timeline.channel is None else {"channel": timeline.channel}
            fields = ("duration_s", "speech_s", "segments", *VERDICT_KEYS)
            print(
                json.dumps(
                    {
                        "type": "end",
                        **channel,
                        **{k: summary[k] for k in fields},
                        "notes": list(notes[timeline.channel]),
                    }
                )
            )
    split = None not in timelines  # --channels split: a summary per channel, with or without speech
    if not any(t.segments for t in timelines.values()) and not split:
        print(shown(NoSpeechError(source, seconds)), file=sys.stderr)
    elif not args.jsonl:
        if marked_any:  # the "?" of the lines above, said once
            print(UNCERTAIN_MARK)
        print()
        for timeline in timelines.values():
            print_summary(timeline, moments=False)
    return 130 if fed.interrupted else 0


class _Fed:
    """The file's blocks as engine blocks, at real-time pace with ``realtime``; Ctrl-C ends them (the demo's stop:
    the engine then closes open speech and the summary follows, as in ``listen``)."""

    def __init__(self, blocks: Iterable[np.ndarray], sample_rate: int, realtime: bool) -> None:
        self.blocks, self.sample_rate, self.realtime = blocks, sample_rate, realtime
        self.interrupted = False
        self.frames = 0
        """Frames handed to the engine so far."""

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        started = time.monotonic()
        try:
            for block in self.blocks:
                # a block is there once its last sample has "arrived", as from a microphone (a chunk as long as the
                # file waits the whole file, rather than none of it)
                arrived = self.frames + len(block)
                if self.realtime and (delay := started + arrived / self.sample_rate - time.monotonic()) > 0:
                    time.sleep(delay)
                self.frames = arrived
                yield block, self.sample_rate
        except KeyboardInterrupt:
            self.interrupted = True


def _avd(event: Event) -> str:
    """``  A/V/D 0.62/0.41/0.55`` for a model with dimensions, else nothing."""
    return f"  A/V/D {avd(event.dimensions)}" if event.dimensions is not None else ""


def _emit(event: Event, jsonl: bool, timeline: Timeline) -> bool:
    """Print ``event`` (and keep a segment in ``timeline``); whether its line carries the uncertain mark."""
    if isinstance(event, SegmentEvent):
        timeline.segments.append(event)
    who = f"ch{event.channel} " if event.channel is not None else ""
    label = marked(event.label, event.uncertain)
    if jsonl:
        print(json.dumps(event.to_dict()), flush=True)
    elif isinstance(event, SegmentEvent):
        print(
            f"{who}segment {event.segment:3d}  {event.start:8.2f}-{event.end:8.2f} s  "
            f"{label:<9} {event.confidence:4.0%}  ({plural(event.windows, 'window')}){_avd(event)}",
            flush=True,
        )
    else:
        print(
            f"{who}  update  {event.start:8.2f}-{event.end:8.2f} s  {label:<9} {event.confidence:4.0%}"
            f"  [{event.latency_ms:5.1f} ms]{_avd(event)}",
            flush=True,
        )
    return event.uncertain and not jsonl
