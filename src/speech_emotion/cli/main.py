"""``speech-emotion`` entry point: argument parsing and error reporting shared by all commands.

Each command lives in its own module exposing ``add_parser(subparsers)``; the parser it adds
sets ``func``, which takes the parsed arguments and returns the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..errors import SpeechEmotionError

COMMANDS = ["predict", "stream", "listen", "analyze", "train", "evaluate", "batch", "serve"]
"""Modules of :mod:`speech_emotion.cli`, one per sub-command, in help order."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speech-emotion",
        description="Recognise emotion in speech: files, live microphone, web page, service and batch runs.",
    )
    parser.add_argument("--version", action="version", version=f"speech-emotion {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__package__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except SpeechEmotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
