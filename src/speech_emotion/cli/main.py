"""``speech-emotion`` entry point: argument parsing and error reporting shared by all commands.

Each command lives in its own module exposing ``add_parser(subparsers)``; the parser it adds
sets ``func``, which takes the parsed arguments and returns the exit code. Only the module of the command
being run is imported (``--help`` and ``--version`` list the commands from :data:`HELP`), so start-up
loads none of numpy, ONNX Runtime, pandas or torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from typing import Any

from .. import __version__
from ..errors import SpeechEmotionError, UsageError
from . import error

COMMANDS = ["predict", "stream", "listen", "analyze", "train", "evaluate", "batch", "serve"]
"""Modules of :mod:`speech_emotion.cli`, one per sub-command, in help order."""

HELP: dict[str, str] = {
    "predict": "emotion of each audio file",
    "stream": "stream a file through the real-time engine",
    "listen": "live emotion from the microphone",
    "analyze": "emotion timeline of long recordings (JSON, CSV, PNG)",
    "train": "train a model on a corpus and export a model bundle",
    "evaluate": "train and test a recipe under a protocol, or score a bundle as shipped",
    "batch": "analyse a folder, glob or manifest of recordings into Parquet tables (local or Ray)",
    "serve": "web page and service API (live microphone in the browser)",
}
"""One-line help of each command, shown without importing the command's module (a test keeps it in step)."""


def chosen_command(argv: list[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word not starting with ``-``; global options take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


class _CommandParser(argparse.ArgumentParser):
    """A command's parser: it reports arguments it does not know itself, with its own usage line
    (``speech-emotion predict: error: unrecognized arguments: ...``), rather than leaving them to the top-level
    parser, whose usage line is not the command's."""

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``speech-emotion`` parser; only the command chosen in ``argv`` (all when ``argv`` is ``None``) gets its
    full sub-parser, the others a placeholder with their help line."""
    parser = argparse.ArgumentParser(
        prog="speech-emotion",
        description="Recognise emotion in speech: files, live microphone, web page, service and batch runs.",
    )
    parser.add_argument("--version", action="version", version=f"speech-emotion {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging of speech-emotion")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    command = chosen_command(argv) if argv is not None else None
    for name in COMMANDS:
        if argv is None or name == command:
            importlib.import_module(f"{__package__}.{name}").add_parser(sub)
        else:
            sub.add_parser(name, help=HELP.get(name), add_help=False)
    return parser


class _LevelPrefix(logging.Formatter):
    """Log lines spelled like the commands' own ``warning:`` and ``error:`` lines (not logging's ``WARNING:``)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


class _CtrlC:
    """Notes whether Ctrl-C was pressed while a command ran. Native code that calls back into Python (numba's
    compiler, an extension module being imported) can swallow the ``KeyboardInterrupt`` and fail with an error of
    its own instead (``RuntimeError: no compiled object yet``, ``ImportError: initialization failed``): after a
    Ctrl-C that error is the interrupt, and is reported as one. Python's "Exception ignored ... KeyboardInterrupt"
    report of the swallowed interrupt (a traceback) is left out."""

    def __init__(self) -> None:
        self.pressed = False

    def __enter__(self) -> _CtrlC:
        self._previous = None
        if threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler  # not ignored, not someone else's
        ):
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def _unraisable(self, unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            self._hook(unraisable)

    def _handler(self, signum: int, frame: object) -> None:
        self.pressed = True
        raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            sys.unraisablehook = self._hook


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(argv)  # imports the command's module: numpy & co., a second on a cold start
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_LevelPrefix())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    if args.verbose:  # this package's debug lines only: numba, matplotlib & co. would bury them in hundreds of theirs
        logging.getLogger("speech_emotion").setLevel(logging.DEBUG)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    with _CtrlC() as ctrl_c:
        return _run(args, ctrl_c)


def _run(args: argparse.Namespace, ctrl_c: _CtrlC) -> int:
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        error(exc)
        return 2
    except SpeechEmotionError as exc:
        error(exc)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception:
        if ctrl_c.pressed:  # the interrupt, turned into another error by native code
            print("interrupted", file=sys.stderr)
            return 130
        raise


if __name__ == "__main__":
    sys.exit(main())
