"""The README's results tables are the ones generated from results/*.json (rerun scripts/results_table.py)."""

from __future__ import annotations

from pathlib import Path

from scripts_loader import load_script

ROOT = Path(__file__).resolve().parents[1]


def _script():
    return load_script("results_table")


def test_readme_tables_match_the_results_files():
    script = _script()
    readme = (ROOT / "README.md").read_text()
    assert f"{script.BEGIN}\n{script.table()}\n{script.END}" in readme
    assert f"{script.GENERAL[0]}\n{script.generalisation_table()}\n{script.GENERAL[1]}" in readme
    assert f"{script.ZEROSHOT[0]}\n{script.zero_shot_table()}\n{script.ZEROSHOT[1]}" in readme
    assert f"{script.CALIBRATION[0]}\n{script.calibration_table()}\n{script.CALIBRATION[1]}" in readme


def test_only_old_training_commands_get_recipe_for_model():
    script = _script()
    old = "speech-emotion evaluate --model cnn-lstm --protocol actor-6fold --data d --out o"
    assert script.current_command(old) == old.replace("--model", "--recipe")
    scored = "speech-emotion evaluate --model whisper-base-general --data d --out o"
    assert script.current_command(scored) == scored


def test_every_results_file_carries_the_command_that_made_it():
    import json

    for path in sorted((ROOT / "results").glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc.get("command", "").startswith("speech-emotion evaluate "), path.name
    for path in sorted((ROOT / "results" / "calibration").glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc.get("command", "").startswith("python scripts/calibrate_bundle.py "), path.name
    for path in sorted((ROOT / "results" / "dimensions").glob("*.json")):
        doc = json.loads(path.read_text())
        assert doc.get("command", "").startswith(
            ("python scripts/dimensions_experiment.py ", "speech-emotion evaluate ")
        ), path.name
