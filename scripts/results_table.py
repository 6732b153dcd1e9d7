"""Regenerate the README's results table from ``results/*.json``.

Usage: ``python scripts/results_table.py`` rewrites the blocks between the RESULTS, GENERALISATION, ZEROSHOT and
CALIBRATION markers in README.md (the last from ``results/calibration/*.json``, written by
``calibrate_bundle.py``); ``--print`` only prints the tables. Every row carries the command stored in its
metrics file, so each number can be reproduced; commands stored before ``--recipe`` replaced ``--model`` on
``train``/``evaluate`` are shown with today's spelling (:func:`current_command`), the files stay as they are.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- RESULTS:BEGIN -->", "<!-- RESULTS:END -->"
PROTOCOL_ORDER = {"actor-6fold": 0, "leave-one-corpus-out": 1, "random-80-20": 2}
GENERAL = ("<!-- GENERALISATION:BEGIN -->", "<!-- GENERALISATION:END -->")
CONDITIONS = ("phone", "gsm", "babble10", "babble0", "reverb", "noise10")
ZEROSHOT = ("<!-- ZEROSHOT:BEGIN -->", "<!-- ZEROSHOT:END -->")
CALIBRATION = ("<!-- CALIBRATION:BEGIN -->", "<!-- CALIBRATION:END -->")
AS_SHIPPED = "bundle-as-shipped"
"""The protocol of ``evaluate --model BUNDLE`` (a bundle scored without training)."""
TRAINED_ON = {
    "whisper-base-7corpora": ("ravdess", "ased", "emovo", "nemo", "es-students", "esd-0020", "emospeech-cmd"),
    "whisper-base-general": ("ravdess", "ased", "emovo"),
    "whisper-base-probe": ("ravdess",),
    "cnn-lstm": ("ravdess",),
}
"""The corpora each shipped bundle was trained on (its model card): a corpus outside them is unheard (zero-shot)."""


def _pct(doc: dict, key: str) -> str:
    value = doc.get(key)
    if value is None:
        return "-"
    std = doc.get(f"{key}_std")
    return f"{100 * value:.1f}" + (f" ± {100 * std:.1f}" if std and len(doc.get("folds", [])) > 1 else "")


def current_command(command: str) -> str:
    """A stored ``speech-emotion evaluate``/``train`` command with the old recipe option ``--model`` as ``--recipe``
    (on ``evaluate``, only where it trains under a ``--protocol``: ``evaluate --model BUNDLE`` now scores a bundle)."""
    words = command.split(" ")
    if (
        len(words) > 2
        and words[0] == "speech-emotion"
        and (words[1] == "train" or (words[1] == "evaluate" and "--protocol" in words))
    ):
        words = ["--recipe" if w == "--model" else w for w in words]
    return " ".join(words)


def table(results_dir: Path = ROOT / "results") -> str:
    """Markdown table of every metrics file, speaker-independent protocol first."""
    docs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    docs = [d for d in docs if d.get("protocol") not in ("leave-one-corpus-out", AS_SHIPPED)]
    plain = {_key(d) for d in docs if "conditions" not in d and "live" not in d}
    docs = [d for d in docs if ("conditions" not in d and "live" not in d) or _key(d) not in plain]
    docs.sort(key=lambda d: (PROTOCOL_ORDER.get(d.get("protocol", ""), 9), -d.get("ua", 0)))
    lines = [
        "| model | protocol | speakers in test seen in training? | UA % | WA % | macro-F1 % | command |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in docs:
        recipe = d.get("recipe") or {}
        ensemble, seed = recipe.get("ensemble", 1), (recipe.get("train") or {}).get("seed", 0)
        notes = [f"ensemble of {ensemble}"] if ensemble > 1 else []
        if recipe.get("score_with") == "onnx-int8" and "int8" not in str(d.get("model")):
            notes.append("int8 bundle as shipped")
        if seed:
            notes.append(f"seeds {seed}–{seed + ensemble - 1}" if ensemble > 1 else f"seed {seed}")
        name = f"{d.get('model')} ({', '.join(notes)})" if notes else d.get("model")
        corpora = _training_corpora(d)
        if corpora:
            name = f"{name} (+ {', '.join(corpora)} in training)"
        leak = "no" if d.get("protocol") == "actor-6fold" else "**yes** (leaks)"
        command = current_command(d.get("command", ""))
        lines.append(
            f"| {name} | {d.get('protocol')} | {leak} | {_pct(d, 'ua')} | {_pct(d, 'wa')} | "
            f"{_pct(d, 'macro_f1')} | `{command}` |"
        )
    return "\n".join(lines)


def _key(doc: dict) -> tuple:
    """Rows with the same key repeat one experiment; a run that also scored conditions or the live path is shown in
    the generality table only."""
    scored = (doc.get("recipe") or {}).get("score_with", "torch")
    return doc.get("model"), doc.get("protocol"), tuple(_training_corpora(doc)), scored


def _training_corpora(doc: dict) -> list[str]:
    """Corpora besides the tested one that joined every fold's training set (from the stored command)."""
    command = doc.get("command") or ""
    if "--data" not in command:
        return []
    words = command.split()
    start = words.index("--data") + 1
    data = []
    for word in words[start:]:
        if word.startswith("--"):
            break
        data.append(Path(word).name)
    return data[1:]


def generalisation_table(results_dir: Path = ROOT / "results") -> str:
    """Markdown table of the runs that measure generality: leave-one-corpus-out, test conditions, live path."""
    docs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    docs = [d for d in docs if d.get("protocol") == "leave-one-corpus-out" or "conditions" in d or "live" in d]
    docs.sort(key=lambda d: (PROTOCOL_ORDER.get(d.get("protocol", ""), 9), d.get("model", "")))
    lines = [
        "| model | protocol | UA % (clean) | " + " | ".join(CONDITIONS) + " | live: update / first update / segment"
        " | per held-out corpus | command |",
        "|---|---|---|" + "---|" * len(CONDITIONS) + "---|---|---|",
    ]
    for d in docs:
        conditions = d.get("conditions", {})
        cells = [f"{100 * conditions[c]['ua']:.1f}" if c in conditions else "-" for c in CONDITIONS]
        live = d.get("live")
        live_cell = (
            f"{100 * live['update_ua']:.1f} / {100 * live['first_update_ua']:.1f} / {100 * live['segment_ua']:.1f}"
            if live
            else "-"
        )
        held = (
            ", ".join(f"{f['fold']} {100 * f['ua']:.1f}" for f in d.get("folds", []))
            if d.get("protocol") == "leave-one-corpus-out"
            else "-"
        )
        corpora = _training_corpora(d)
        if d.get("protocol") == "leave-one-corpus-out":
            name = f"{d.get('model', '')} ({len(d.get('folds', []))} corpora)"
        else:
            name = d.get("model", "") + (f" (+ {', '.join(corpora)})" if corpora else "")
        lines.append(
            f"| {name} | {d.get('protocol')} | {_pct(d, 'ua')} | " + " | ".join(cells) + f" | {live_cell} | {held} | "
            f"`{d.get('command', '')}` |"
        )
    return "\n".join(lines)


def zero_shot_table(results_dir: Path = ROOT / "results") -> str:
    """Markdown table of the bundles scored as shipped (``evaluate --model``): per corpus, whether the bundle heard it
    in training (:data:`TRAINED_ON`), UA/WA over the corpus's own labels, then calibration of the full 8-way output
    (accuracy, mean confidence, ECE, Brier, NLL, share of clips confident (>= 0.9) and wrong); a mean over the unheard
    corpora closes each bundle's rows."""
    docs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))]
    docs = sorted((d for d in docs if d.get("protocol") == AS_SHIPPED), key=lambda d: d.get("model", ""))
    lines = [
        "| model | corpus | heard in training? | labels | UA % | WA % | 8-way accuracy % | mean confidence % | ECE "
        "| Brier | NLL | confident & wrong % | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in docs:
        heard = TRAINED_ON.get(d.get("model", ""), ())
        unheard = []
        for f in d.get("folds", []):
            cal = f["calibration"]
            seen = f["fold"] in heard
            if not seen:
                unheard.append(f)
            lines.append(
                f"| {d['model']} | {f['fold']} | {'**yes**' if seen else 'no (zero-shot)'} | "
                f"{len(f['labels_scored'])} | {100 * f['ua']:.1f} | {100 * f['wa']:.1f} | {_calibration_cells(cal)} | |"
            )
        if unheard:
            mean = {k: sum(f["calibration"][k] for f in unheard) / len(unheard) for k in _CALIBRATION_COLUMNS}
            ua = sum(f["ua"] for f in unheard) / len(unheard)
            wa = sum(f["wa"] for f in unheard) / len(unheard)
            lines.append(
                f"| {d['model']} | **mean of the {len(unheard)} unheard** | no | | **{100 * ua:.1f}** | "
                f"{100 * wa:.1f} | {_calibration_cells(mean)} | `{d.get('command', '')}` |"
            )
    return "\n".join(lines)


_CALIBRATION_COLUMNS = ("accuracy", "mean_confidence", "ece", "brier", "nll", "confident_wrong")


def _calibration_cells(cal: dict) -> str:
    return (
        f"{100 * cal['accuracy']:.1f} | {100 * cal['mean_confidence']:.1f} | {cal['ece']:.3f} | {cal['brier']:.3f} | "
        f"{cal['nll']:.2f} | {100 * cal['confident_wrong']:.1f}"
    )


def calibration_table(results_dir: Path = ROOT / "results" / "calibration") -> str:
    """Markdown table of ``scripts/calibrate_bundle.py`` reports: per held-out corpus, the temperature fitted on the
    other corpora and the calibration before -> after on the held-out one, the answers flagged uncertain and the
    accuracy of the rest; then the mean, and the map fitted on all of them applied to corpora it was not fitted on."""
    lines = [
        "| model | held-out corpus | T (fitted on the others) | ECE | confident & wrong % | NLL | mean confidence % "
        "| uncertain % | the rest right % | command |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def arrow(before: dict, after: dict, key: str, scale: float = 1.0, digits: int = 3) -> str:
        return f"{scale * before[key]:.{digits}f} -> {scale * after[key]:.{digits}f}"

    def rest(scores: dict) -> str:
        return "-" if scores.get("kept_accuracy") is None else f"{100 * scores['kept_accuracy']:.0f}"

    for path in sorted(results_dir.glob("*.json")) if results_dir.is_dir() else []:
        d = json.loads(path.read_text())
        loco, model = d["leave_one_corpus_out"], d["model"]
        for held, f in loco["folds"].items():
            b, a = f["before"], f["after"]
            lines.append(
                f"| {model} | {held} | {f['temperature']:.2f} | {arrow(b, a, 'ece')} | "
                f"{arrow(b, a, 'confident_wrong', 100, 1)} | {arrow(b, a, 'nll', 1, 2)} | "
                f"{arrow(b, a, 'mean_confidence', 100, 0)} | {100 * f['uncertain_share']:.0f} | {rest(f)} | |"
            )
        m = loco["mean"]
        lines.append(
            f"| {model} | **mean** | | **{m['before_ece']:.3f} -> {m['after_ece']:.3f}** | "
            f"{100 * m['before_confident_wrong']:.1f} -> {100 * m['after_confident_wrong']:.1f} | "
            f"{m['before_nll']:.2f} -> {m['after_nll']:.2f} | "
            f"{100 * m['before_mean_confidence']:.0f} -> {100 * m['after_mean_confidence']:.0f} | "
            f"{100 * m['uncertain_share']:.0f} | {rest(m)} | `{d['command']}` |"
        )
        shipped = d["fitted_on_all"]["calibration"]
        for name, o in d.get("not_fitted_on", {}).items():
            b, a = o["before"], o["after"]
            lines.append(
                f"| {model} | {name} (heard in training: {'yes' if name in TRAINED_ON.get(model, ()) else 'no'}; "
                f"the map fitted on all {len(shipped['fitted_on'])}) | {shipped['temperature']:.2f} | "
                f"{arrow(b, a, 'ece')} | {arrow(b, a, 'confident_wrong', 100, 1)} | {arrow(b, a, 'nll', 1, 2)} | "
                f"{arrow(b, a, 'mean_confidence', 100, 0)} | {100 * o['uncertain_share']:.0f} | {rest(o)} | |"
            )
    return "\n".join(lines)


def _replace(content: str, markers: tuple[str, str], text: str) -> str:
    head, rest = content.split(markers[0], 1)
    _, tail = rest.split(markers[1], 1)
    return f"{head}{markers[0]}\n{text}\n{markers[1]}{tail}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--print", action="store_true", help="print the table instead of editing README.md")
    args = parser.parse_args()
    text, general, zero_shot, calibration = table(), generalisation_table(), zero_shot_table(), calibration_table()
    if args.print:
        print(text, general, zero_shot, calibration, sep="\n\n")
        return
    readme = ROOT / "README.md"
    content = _replace(readme.read_text(), (BEGIN, END), text)
    if GENERAL[0] in content:
        content = _replace(content, GENERAL, general)
    if ZEROSHOT[0] in content:
        content = _replace(content, ZEROSHOT, zero_shot)
    if CALIBRATION[0] in content:
        content = _replace(content, CALIBRATION, calibration)
    readme.write_text(content)


if __name__ == "__main__":
    main()
