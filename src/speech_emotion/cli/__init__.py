"""Command-line interface: a thin layer over the library; one module per command."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping, Sequence

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


def warn_channels(source: object, notes: Mapping[int | None, Sequence[str]]) -> None:
    """:func:`warn` for the notes of each channel of a recording (``None``: the mix): a note every channel has once,
    as for the file; one only some channels have with their channel (``SOURCE (channel 1): NOTE``)."""
    every = [n for n in next(iter(notes.values()), ()) if all(n in other for other in notes.values())]
    warn(source, every)
    for channel, own in notes.items():
        warn(source if channel is None else f"{shown(source)} (channel {channel})", [n for n in own if n not in every])


def avd(values: Iterable[float] | None) -> str:
    """Arousal, valence, dominance as ``0.62/0.41/0.55`` (the ``A/V/D`` of every CLI view); ``""`` without them."""
    return "" if values is None else "/".join(f"{float(v):.2f}" for v in values)
