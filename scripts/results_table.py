"""Regenerate the README's results table from ``results/*.json``.

Usage: ``python scripts/results_table.py`` rewrites the block between the RESULTS markers in
README.md; ``--print`` only prints the table. Every row carries the command stored in its
metrics file, so each number can be reproduced; commands stored before ``--recipe`` replaced ``--model`` on
``train``/``evaluate`` are shown with today's spelling (:func:`current_command`), the files stay as they are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- RESULTS:BEGIN -->", "<!-- RESULTS:END -->"
PROTOCOL_ORDER = {"actor-6fold": 0, "random-80-20": 1}


def _pct(doc: dict, key: str) -> str:
    value = doc.get(key)
    if value is None:
        return "-"
    std = doc.get(f"{key}_std")
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std and len(doc.get("folds", [])) > 1 else "")


def current_command(command: str) -> str:
    """A stored ``speech-emotion evaluate``/``train`` command with the old recipe option ``--model`` as ``--recipe``."""
    words = command.split(" ")
    if len(words) > 2 and words[0] == "speech-emotion" and words[1] in ("evaluate", "train"):
        words = ["--recipe" if w == "--model" else w for w in words]
    return " ".join(words)


def table(results_dir: Path = ROOT / "results") -> str:
    """Markdown table of every metrics file, speaker-independent protocol first."""
    docs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    docs.sort(key=lambda d: (PROTOCOL_ORDER.get(d.get("protocol", ""), 9), -d.get("ua", 0)))
    lines = [
        "| model | protocol | speakers in test seen in training? | UA % | WA % | macro-F1 % | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in docs:
        recipe = d.get("recipe") or {}
        ensemble, seed = recipe.get("ensemble", 1), (recipe.get("train") or {}).get("seed", 0)
        notes = [f"ensemble of {ensemble}"] if ensemble > 1 else []
        if seed:
            notes.append(f"seeds {seed}–{seed + ensemble - 1}" if ensemble > 1 else f"seed {seed}")
        name = f"{d.get('model')} ({', '.join(notes)})" if notes else d.get("model")
        leak = "no" if d.get("protocol") == "actor-6fold" else "**yes** (leaks)"
        command = current_command(d.get("command", ""))
        lines.append(
            f"| {name} | {d.get('protocol')} | {leak} | {_pct(d, 'ua')} | {_pct(d, 'wa')} | "
            f"{_pct(d, 'macro_f1')} | `{command}` |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--print", action="store_true", help="print the table instead of editing README.md")
    args = parser.parse_args()
    text = table()
    if args.print:
        print(text)
        return
    readme = ROOT / "README.md"
    content = readme.read_text()
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main()
