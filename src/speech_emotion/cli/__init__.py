"""Command-line interface: a thin layer over the library; one module per command."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable

from ..words import shown

_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]+\.)?([^`.]+)`")


def plain(doc: str | None) -> str:
    """A docstring as ``--help`` text: reST roles (:func:`x`) and double-backquoted literals become plain text."""
    return _ROLE.sub(r"\1", doc or "").replace("``", "")


def add_channels_option(p: argparse.ArgumentParser) -> None:
    """``--channels mix|split``, shared by ``stream``, ``analyze`` and ``batch``."""
    p.add_argument(
        "--channels",
        choices=("mix", "split"),
        default="mix",
        help="mix: one result from a safe mix of all channels (default); split: one per channel, e.g. a call "
        "with each party on its own channel (events and rows carry the channel, 0 = first)",
    )


def error(exc: object) -> None:
    """The one ``error: MESSAGE`` line on stderr of an error that stopped a command or a file."""
    print(f"error: {shown(exc, keep_newlines=True)}", file=sys.stderr)


def warn(source: object, notes: Iterable[str]) -> None:
    """One ``warning: SOURCE: NOTE`` line on stderr per note (problems that did not stop the command)."""
    for note in notes:
        print(f"warning: {shown(source)}: {shown(note, keep_newlines=True)}", file=sys.stderr)


def avd(values: Iterable[float] | None) -> str:
    """Arousal, valence, dominance as ``0.62/0.41/0.55`` (the ``A/V/D`` of every CLI view); ``""`` without them."""
    return "" if values is None else "/".join(f"{float(v):.2f}" for v in values)
