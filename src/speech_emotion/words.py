"""Words for messages, summaries and plots: counted nouns (``1 segment``, ``2 segments``, never ``1 segments``) and
names shown literally (:func:`shown`)."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``"1 segment"``, ``"0 segments"``, ``"3 segments"``; ``many`` is an irregular plural (default: noun + s)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def shown(text: object, keep_newlines: bool = False) -> str:
    """``text`` safe to print: control characters (a newline or an escape sequence in a file name) and undecodable
    bytes written as escapes (``\\n``, ``\\x1b``, ``\\udc80``), so a name cannot split a line or drive the terminal;
    ``keep_newlines``: a message's own line breaks stay."""
    return "".join(
        ch if ch.isprintable() or (keep_newlines and ch == "\n") else ch.encode("unicode_escape").decode()
        for ch in str(text)
    )
