"""Argument types shared by the commands: each refuses a bad value with argparse's one-line error."""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
from pathlib import Path
from typing import Any


def _parsed(text: str, kind: type, noun: str) -> Any:
    """``kind(text)``, or argparse's one-line error saying ``text`` is not ``noun``."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (``--epochs``, ``--threads``, ``--workers``)."""
    value = _parsed(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def thread_count(text: str) -> int:
    """``--threads``: an integer from 1 to the machine's cores (more threads than cores only slow inference down:
    1000 on two cores took a minute for one clip)."""
    import os

    value = positive_int(text)
    cores = os.cpu_count() or 1
    if value > cores:
        raise argparse.ArgumentTypeError(f"must be at most {cores} (the cores of this machine), got {value}")
    return value


SEED_MAX = 2**32 - 1
"""The largest random seed NumPy, scikit-learn and PyTorch all accept (as ``training.options.SEED_MAX``, which the
CLI may not import: ``--help`` loads no training code)."""


def seed(text: str) -> int:
    """A random seed, 0 to :data:`SEED_MAX` (``--seed``)."""
    value = _parsed(text, int, "a whole number")
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"a seed is 0-{SEED_MAX}, got {value}")
    return value


def positive_number(text: str) -> float:
    """A finite number > 0 (seconds, megabytes: ``--max-duration``, ``--idle-timeout``, ``--max-upload-mb``)."""
    value = _parsed(text, float, "a number")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number greater than 0, got {text}")
    return value


def port(text: str) -> int:
    """A TCP port, 0-65535 (0: any free port)."""
    value = _parsed(text, int, "a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value


def folder(text: str) -> Path:
    """An output folder: may not exist yet, but must not be a file, and must be one this process can create and
    write in (tried by :func:`try_folder`, which leaves nothing behind), so ``--out /dev/null/x`` fails here."""
    path, exists = Path(text), False
    try:
        exists = path.exists()
        if exists and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: exists and is not a folder")
        try_folder(path)
    except OSError as exc:  # a name too long, a file or /proc on the way, no permission, a read-only disk, ...
        doing = "write in" if exists else "create"
        raise argparse.ArgumentTypeError(f"{text}: cannot {doing} folder ({exc.strerror or exc})") from None
    return path


def try_folder(path: Path) -> None:
    """Create ``path`` and its missing parents, write a temporary file in it, then remove all that was made;
    raises the :class:`OSError` of the first step that fails."""
    missing, existing = [], path
    while not existing.exists() and existing != existing.parent:
        missing.append(existing)
        existing = existing.parent
    made: list[Path] = []
    try:
        for step in reversed(missing):
            step.mkdir()
            made.append(step)
        with tempfile.TemporaryFile(dir=path):
            pass
    finally:
        for step in reversed(made):
            with contextlib.suppress(OSError):  # another process may be writing there already
                step.rmdir()
