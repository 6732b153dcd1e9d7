"""scripts/loco_choice.py: the nested choice never uses the corpus it reports."""

from __future__ import annotations

import json
from pathlib import Path

from scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


def _script():
    return load_script("loco_choice")


def _run(folder: Path, ua: dict[str, float]) -> str:
    folder.mkdir()
    folds = [{"fold": c, "ua": v} for c, v in ua.items()]
    (folder / "metrics.json").write_text(json.dumps({"protocol": "leave-one-corpus-out", "folds": folds}))
    return str(folder)


def test_each_corpus_gets_the_setting_that_is_best_on_the_others(tmp_path, capsys):
    # "a" wins on x and y, "b" only on z by far: z's own score must not pick "b" for z
    a = _run(tmp_path / "a", {"x": 0.60, "y": 0.60, "z": 0.30, "solo": 0.9})
    b = _run(tmp_path / "b", {"x": 0.50, "y": 0.55, "z": 0.70, "solo": 0.1})
    report = tmp_path / "r.json"
    assert _script().main([f"a={a}", f"b={b}", "--exclude", "solo", "--report", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert doc["corpora"] == ["x", "y", "z"]
    assert doc["nested"]["z"] == {"setting": "a", "ua": 0.30}  # on x+y, a is better: z is scored with a
    assert doc["nested"]["x"]["setting"] == "b"  # on y+z, b's mean 0.625 beats a's 0.45
    assert doc["shipped"] == "b"  # mean over x, y, z: b 0.583 > a 0.5
    assert "nested choice" in capsys.readouterr().out
