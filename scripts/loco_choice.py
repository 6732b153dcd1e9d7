"""Compare leave-one-corpus-out runs of several recipe settings, and choose one without peeking at the corpus reported.

Each ``NAME=DIR`` is an ``evaluate --protocol leave-one-corpus-out`` output folder (its ``metrics.json``). Printed:
UA per held-out corpus and setting, the mean over the corpora scored (``--exclude`` leaves corpora out of the means
and choices, e.g. a one-speaker corpus that is training material only), and two choices:

- **nested**: for each held-out corpus, the setting with the best mean UA over the *other* scored corpora, and that
  setting's UA on it: a figure for which the corpus reported never took part in choosing;
- **shipped**: the setting with the best mean over all scored corpora (what a bundle trained on all of them uses).

Usage::

    python scripts/loco_choice.py anchor0.75=../runs/gen7/general-loco anchor0=../runs/gen7/multi-loco \\
        --exclude esd-0020 --report results/loco-choice.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path


def read_runs(specs: list[str]) -> dict[str, dict[str, float]]:
    """``{setting: {held-out corpus: UA}}`` from ``NAME=DIR`` specs."""
    runs = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not name:
            sys.exit(f"error: {spec!r}: give NAME=DIR")
        metrics = Path(folder) / "metrics.json"
        if not metrics.is_file():
            sys.exit(f"error: {metrics}: no such file (run evaluate --protocol leave-one-corpus-out first)")
        doc = json.loads(metrics.read_text())
        if doc.get("protocol") != "leave-one-corpus-out":
            sys.exit(f"error: {metrics}: protocol {doc.get('protocol')!r}, not leave-one-corpus-out")
        runs[name] = {f["fold"]: float(f["ua"]) for f in doc["folds"]}
    return runs


def choose(runs: dict[str, dict[str, float]], corpora: list[str]) -> dict[str, object]:
    """The nested and shipped choices (module docstring) over ``corpora``."""

    def mean(setting: str, over: list[str]) -> float:
        return sum(runs[setting][c] for c in over) / len(over)

    nested = {}
    for held in corpora:
        others = [c for c in corpora if c != held]
        best = max(runs, key=lambda s: mean(s, others))
        nested[held] = {"setting": best, "ua": runs[best][held]}
    shipped = max(runs, key=lambda s: mean(s, corpora))
    return {
        "means": {s: mean(s, corpora) for s in runs},
        "nested": nested,
        "nested_mean": sum(v["ua"] for v in nested.values()) / len(corpora),
        "shipped": shipped,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="NAME=DIR: a leave-one-corpus-out output folder per setting")
    parser.add_argument("--exclude", nargs="*", default=[], help="held-out corpora left out of means and choices")
    parser.add_argument("--report", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    runs = read_runs(args.runs)
    corpora = sorted(set.intersection(*(set(r) for r in runs.values())) - set(args.exclude))
    if len(corpora) < 2:
        sys.exit("error: the runs share fewer than two held-out corpora")
    result = choose(runs, corpora)
    width = max(map(len, runs)) + 2
    print("UA % per held-out corpus".ljust(width + 2) + "".join(c.rjust(14) for c in corpora) + "mean".rjust(8))
    for setting, scores in runs.items():
        cells = "".join(f"{100 * scores[c]:14.1f}" for c in corpora)
        print(f"  {setting.ljust(width)}{cells}{100 * result['means'][setting]:8.1f}")  # type: ignore[index]
    nested = result["nested"]
    cells = "".join(f"{100 * nested[c]['ua']:14.1f}" for c in corpora)  # type: ignore[index]
    print(f"  {'nested choice'.ljust(width)}{cells}{100 * result['nested_mean']:8.1f}")  # type: ignore[operator]
    print("  chosen for each: " + ", ".join(f"{c} {nested[c]['setting']}" for c in corpora))  # type: ignore[index]
    print(f"shipped setting (best mean over all {len(corpora)}): {result['shipped']}")
    if args.report:
        command = shlex.join(["python", "scripts/loco_choice.py", *(argv if argv is not None else sys.argv[1:])])
        doc = {"command": command, "corpora": corpora, "ua": runs, **result}
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
