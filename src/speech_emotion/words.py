"""Counted nouns for messages and summaries: ``1 segment``, ``2 segments`` (never ``1 segments``)."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``"1 segment"``, ``"0 segments"``, ``"3 segments"``; ``many`` is an irregular plural (default: noun + s)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
