"""``speech-emotion listen``: emotion of live microphone speech, in a live terminal view.

Shows the current emotion with confidence bars for all eight, a speech/silence indicator and
the recent segments. Ctrl-C stops and prints a summary. ``--save events.jsonl`` keeps every
event. Without a microphone, try ``speech-emotion stream FILE --realtime``.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..conditioning import SAMPLE_RATE
from ..errors import SpeechEmotionError
from ..recognizer import Recognizer
from ..streaming import Event, SegmentEvent, StreamEnd, StreamingRecognizer, UpdateEvent
from ..threads import limit_native_threads
from ..timeline import Timeline
from ..words import plural
from . import avd, plain
from .arguments import positive_int, positive_number
from .stream import add_stream_options, stream_options
from .summary import UNCERTAIN_MARK, marked, print_summary

LIST_HINT = "list input devices with `speech-emotion listen --list-devices`"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "listen",
        help="live emotion from the microphone",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--device", default=None, help="input device index or name (default: the system default)")
    p.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    p.add_argument("--save", type=Path, default=None, metavar="EVENTS.jsonl", help="also write events as JSON lines")
    p.add_argument("--samplerate", type=positive_int, default=None, help="capture rate (default: the device's own)")
    p.add_argument("--block-ms", type=positive_int, default=50, help="audio block size (default 50 ms)")
    p.add_argument(
        "--duration", type=positive_number, default=None, metavar="S", help="stop after S seconds (default: Ctrl-C)"
    )
    add_stream_options(p)
    p.set_defaults(func=run)


def _import_sounddevice() -> Any:
    """sounddevice loads PortAudio when imported: fails on machines without it."""
    try:
        import sounddevice
    except (OSError, ImportError) as exc:
        raise SpeechEmotionError(
            f"cannot open the microphone: {exc} (install PortAudio, e.g. `apt install libportaudio2`); "
            "to try without a microphone: `speech-emotion stream FILE --realtime`"
        ) from None
    return sounddevice


def _device_arg(device: str | None) -> int | str | None:
    if device is None:
        return None
    return int(device) if device.strip().isdigit() else device


def list_devices(sd: Any, out: TextIO | None = None) -> int:
    """Print the input devices; the default one is marked with ``*``."""
    out = out or sys.stdout
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0] if sd.default.device is not None else None
    except sd.PortAudioError as exc:
        raise SpeechEmotionError(f"cannot list audio devices: {exc}") from None
    inputs = [(i, d) for i, d in enumerate(devices) if d.get("max_input_channels", 0) > 0]
    if not inputs:
        print("no input devices found (is a microphone connected and allowed?)", file=out)
        return 1
    for i, d in inputs:
        mark = "*" if i == default_in else " "
        print(
            f"{mark} {i:3d}  {d['name']}  ({d['max_input_channels']} ch, {d['default_samplerate']:.0f} Hz)",
            file=out,
        )
    return 0


def _input_device(sd: Any, device: int | str | None) -> dict[str, Any]:
    try:
        info = sd.query_devices(device, "input")
    except (ValueError, sd.PortAudioError) as exc:
        what = f"input device {device!r}" if device is not None else "default input device"
        raise SpeechEmotionError(f"no usable {what} ({exc}); {LIST_HINT}") from None
    if not info or info.get("max_input_channels", 0) < 1:
        raise SpeechEmotionError(f"device {device!r} has no input channels; {LIST_HINT}")
    return dict(info)


class LiveView:
    """The terminal view: speech indicator, current emotion, bars for every label, recent segments."""

    def __init__(self, labels: tuple[str, ...], history: int = 6) -> None:
        self.labels = labels
        self.current: UpdateEvent | None = None
        self.segments: deque[SegmentEvent] = deque(maxlen=history)
        self.uncertain_seen = False
        """Whether an uncertain answer was shown: the view then explains the ``?`` (once, below the segments)."""

    def update(self, event: Event) -> None:
        self.uncertain_seen |= event.uncertain
        if isinstance(event, SegmentEvent):
            self.segments.appendleft(event)
        else:
            self.current = event

    def render(self, seconds: float, speaking: bool, in_segment: bool) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        from ..report import EMOTION_COLORS

        status = Text()
        status.append("● speech " if speaking else "○ silence", style="bold green" if speaking else "dim")
        status.append(f"   {int(seconds // 60)}:{seconds % 60:04.1f}", style="dim")
        bars = Table.grid(padding=(0, 1))
        bars.add_column(width=10)
        bars.add_column(width=32)
        bars.add_column(justify="right", width=5)
        current = self.current
        stale = current is None or not in_segment
        probs = current.probabilities if current is not None else [0.0] * len(self.labels)
        for label, p in zip(self.labels, probs):
            color = EMOTION_COLORS.get(label, "white")
            style = f"bold {color}" if current is not None and label == current.label else color
            bars.add_row(Text(label, style=style), Text("█" * round(32 * p), style=color), f"{p:.0%}")
        if current is None:
            headline = Text("waiting for speech…", style="dim")
        else:
            dim = " dim" if stale or current.uncertain else ""  # an uncertain answer is shown greyed, with its "?"
            headline = Text(f"{marked(current.label, current.uncertain)}  {current.confidence:.0%}", style="bold" + dim)
            if current.dimensions is not None:
                headline.append(f"   arousal/valence/dominance {avd(current.dimensions)}", style="dim")
        history = Table.grid(padding=(0, 2))
        for seg in self.segments:
            history.add_row(
                f"{seg.start:7.1f}-{seg.end:7.1f} s",
                Text(marked(seg.label, seg.uncertain), style=EMOTION_COLORS.get(seg.label, "white")),
                f"{seg.confidence:.0%}",
                avd(seg.dimensions),
            )
        legend = [Text(UNCERTAIN_MARK, style="dim")] if self.uncertain_seen else []
        return Panel(
            Group(status, Text(""), headline, bars, Text(""), Text("recent segments", style="dim"), history, *legend),
            title="speech-emotion listen",
            subtitle="Ctrl-C to stop",
        )


def run(args: argparse.Namespace) -> int:
    sd = _import_sounddevice()
    if args.list_devices:
        return list_devices(sd)
    if args.block_ms <= 0:
        raise SpeechEmotionError("--block-ms must be positive")
    device = _device_arg(args.device)
    info = _input_device(sd, device)
    rate = int(args.samplerate or info.get("default_samplerate") or 16000)
    options = stream_options(args)
    limit_native_threads()
    recognizer = Recognizer.load(args.model, threads=args.threads)
    engine = StreamingRecognizer(recognizer, options, source="microphone")
    engine.warmup()

    blocks: queue.Queue[np.ndarray] = queue.Queue(maxsize=200)
    dropped = [0]

    def callback(indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        try:
            blocks.put_nowait(np.array(indata[:, 0], dtype=np.float32))
        except queue.Full:  # the engine fell behind: drop rather than grow without bound
            dropped[0] += 1

    try:
        stream = sd.InputStream(
            device=device,
            channels=1,
            samplerate=rate,
            dtype="float32",
            blocksize=max(1, rate * args.block_ms // 1000),
            callback=callback,
        )
    except (ValueError, sd.PortAudioError) as exc:
        raise SpeechEmotionError(
            f"cannot open input device {info.get('name', device)!r} ({exc}); {LIST_HINT}"
        ) from None

    from rich.console import Console
    from rich.live import Live

    console = Console()
    view = LiveView(recognizer.labels)
    segments: list[SegmentEvent] = []
    save = args.save.open("w") if args.save else None
    received = 0

    def captured(live: Live) -> Iterator[tuple[np.ndarray, int]]:
        """Microphone blocks until ``--duration`` or Ctrl-C, the view redrawn after each."""
        nonlocal received
        try:
            while args.duration is None or received < args.duration * rate:
                try:
                    block = blocks.get(timeout=2.0)
                except queue.Empty:
                    if not stream.active:
                        raise SpeechEmotionError(f"the input stream stopped; {LIST_HINT}") from None
                    continue
                received += len(block)
                yield block, rate
                live.update(view.render(received / rate, engine.frame_voiced, engine.in_speech))
        except KeyboardInterrupt:  # the usual stop: the engine then closes open speech
            pass

    def handle(event: Event) -> None:
        view.update(event)
        if isinstance(event, SegmentEvent):
            segments.append(event)
        if save is not None:
            save.write(json.dumps(event.to_dict()) + "\n")
            save.flush()

    ended = False
    try:
        with stream, Live(view.render(0.0, False, False), console=console, refresh_per_second=10) as live:
            for event in engine.events(captured(live)):
                if isinstance(event, StreamEnd):
                    ended = True
                else:
                    handle(event)
    except KeyboardInterrupt:  # Ctrl-C while the engine was busy rather than waiting for audio
        pass
    except sd.PortAudioError as exc:
        raise SpeechEmotionError(f"microphone error: {exc}; {LIST_HINT}") from None
    finally:
        if not ended:  # stopped by an error or Ctrl-C inside the engine: keep what was heard, close open speech
            for event in engine.flush():
                handle(event)
        if save is not None:
            save.close()
    _print_summary(console, segments, received / rate, dropped[0], recognizer)
    return 0


def _print_summary(
    console: Any, segments: list[SegmentEvent], seconds: float, dropped: int, recognizer: Recognizer
) -> None:
    timeline = Timeline(
        "microphone", seconds, SAMPLE_RATE, "", recognizer.labels, segments=segments, calibration=recognizer.calibration
    )
    print_summary(timeline, console, moments=False)
    if dropped:
        console.print(f"[yellow]warning: {plural(dropped, 'audio block')} dropped (processing fell behind)[/]")
