"""The layering rules, checked in fresh interpreters: inference code never loads training, evaluation or torch,
and ``speech-emotion --version``/``--help`` load none of the heavy libraries."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import speech_emotion

INFERENCE_EXCLUDED = ("speech_emotion.training", "speech_emotion.evaluation", "speech_emotion.bundled_models")
HEAVY = ("torch", "pandas", "pyarrow", "onnxruntime", "sklearn", "librosa", "matplotlib", "fastapi", "ray")


def inference_modules() -> list[str]:
    """Every module of the package outside training/ and evaluation/ (CLI, service and batch included)."""
    names = [m.name for m in pkgutil.walk_packages(speech_emotion.__path__, "speech_emotion.")]
    return sorted(n for n in names if not n.startswith(INFERENCE_EXCLUDED))


def loaded_after(code: str) -> list[str]:
    """Names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_inference_modules_include_every_door():
    names = inference_modules()
    for expected in (
        "speech_emotion.features.logmel",
        "speech_emotion.bundle",
        "speech_emotion.service.app",
        "speech_emotion.batch.runner",
        "speech_emotion.cli.train",
        "speech_emotion.report",
    ):
        assert expected in names


def test_inference_code_imports_no_training_evaluation_or_torch():
    imports = "\n".join(f"import {name}" for name in inference_modules())
    loaded = loaded_after(imports)
    forbidden = [m for m in loaded if m.startswith(("speech_emotion.training", "speech_emotion.evaluation"))]
    forbidden += [m for m in loaded if m == "torch" or m.startswith("torch.")]
    assert forbidden == []


def test_training_may_import_inference_but_evaluation_is_not_imported_by_training():
    pytest.importorskip("torch")
    loaded = loaded_after(
        "import speech_emotion.training.cnn_lstm, speech_emotion.training.trainer, speech_emotion.training.export"
    )
    assert not [m for m in loaded if m.startswith("speech_emotion.evaluation")]


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_start_up_imports_none_of_the_heavy_libraries(flag):
    code = f"from speech_emotion.cli.main import main\ntry:\n    main([{flag!r}])\nexcept SystemExit:\n    pass"
    loaded = loaded_after(code)
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []


def test_importing_the_package_root_is_cheap_and_its_public_names_resolve():
    loaded = loaded_after("import speech_emotion")
    assert [m for m in loaded if m.split(".")[0] in HEAVY + ("numpy",)] == []
    for name in speech_emotion.__all__:
        assert getattr(speech_emotion, name) is not None


def test_command_help_lines_match_the_command_modules():
    import argparse

    from speech_emotion.cli import main as cli_main

    parser = cli_main.build_parser()  # every command's full parser
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    shown = {a.dest: a.help for a in sub._choices_actions}
    assert shown == {name: cli_main.HELP[name] for name in cli_main.COMMANDS}


def test_cli_constants_match_the_training_registries():
    pytest.importorskip("torch")
    from speech_emotion.cli.evaluate import PROTOCOLS
    from speech_emotion.cli.train import RECIPE_NAMES
    from speech_emotion.training.recipes import available_recipes
    from speech_emotion.training.splits import PROTOCOLS as SPLIT_PROTOCOLS

    assert PROTOCOLS == SPLIT_PROTOCOLS
    assert list(RECIPE_NAMES) == available_recipes()


def test_no_inference_module_imports_training_or_evaluation_even_inside_a_function():
    import ast
    from pathlib import Path

    root = Path(speech_emotion.__file__).parent
    doors = {"cli/train.py", "cli/evaluate.py"}  # the training commands import training when they run
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("training/", "evaluation/")) or rel in doors:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "torch" or "training" in name.split(".") or "evaluation" in name.split("."):
                    offenders.append(f"{rel}:{node.lineno} imports {name}")
    assert offenders == []


def test_one_warm_up_every_door_shares():
    from pathlib import Path

    root = Path(speech_emotion.__file__).parent
    tones = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*.py")) if "np.pi * hz" in p.read_text()]
    copies = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*.py")) if "np.pi * 220" in p.read_text()]
    assert tones == ["recognizer.py"] and copies == []
    callers = [p.relative_to(root).as_posix() for p in sorted(root.rglob("*.py")) if ".warmup()" in p.read_text()]
    assert {"streaming.py", "batch/worker.py"} <= set(callers)
    assert "rec.warmup" in (root / "service" / "app.py").read_text()


def test_the_warm_up_classifies_a_tone_through_the_whole_path(tiny_bundle):
    from speech_emotion.recognizer import Recognizer, tone

    recognizer = Recognizer.load(tiny_bundle, threads=1)
    recognizer.warmup()
    assert tone(1.0).shape == (16000,) and abs(float(tone(1.0).max()) - 0.1) < 1e-3
    assert recognizer.predict(tone(1.0), 16000).label in recognizer.labels
