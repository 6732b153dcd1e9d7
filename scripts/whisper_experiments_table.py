"""Markdown table of the runs logged in ``runs/whisper-experiments.jsonl`` (for docs/experiments.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/whisper-experiments.jsonl")
    print("| run | UA | WA | macro-F1 | fold UAs | s |")
    print("|---|---|---|---|---|---|")
    for line in path.read_text().splitlines():
        r = json.loads(line)
        folds = " ".join(f"{u * 100:.1f}" for u in r["fold_ua"])
        scores = f"{r['ua'] * 100:.1f} | {r['wa'] * 100:.1f} | {r['macro_f1'] * 100:.1f}"
        print(f"| {r['name']} | {scores} | {folds} | {r['seconds']} |")


if __name__ == "__main__":
    main()
