"""A wheel a user can install: it carries the bundled models and the web page, installs into a fresh virtual
environment and runs ``speech-emotion predict`` offline, from outside the source tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth import emotion_clip, silence

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "src", "models")
"""What the build reads (copied, so the build leaves nothing in the checkout)."""


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_NO_INDEX"] = "1"  # offline: nothing may be downloaded
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("setuptools", reason="building the wheel without network needs setuptools (the dev extra)")
    tree = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy(source, tree / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(out), "-q"]
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=600, env=_clean_env())
    assert done.returncode == 0, done.stderr[-2000:]
    (found,) = out.glob("speech_emotion-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_carries_every_bundled_model_and_the_web_page(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    models = ROOT / "models"
    expected = {
        f"speech_emotion/bundled_models/{p.relative_to(models).as_posix()}"
        for p in models.glob("*/*")
        if p.name in ("model.json", "model.onnx", "MODEL_CARD.md", "LINK")
    }
    web = ROOT / "src" / "speech_emotion" / "service" / "web"
    expected |= {f"speech_emotion/service/web/{p.relative_to(web).as_posix()}" for p in web.rglob("*") if p.is_file()}
    assert any(name.endswith("whisper-base-general/model.onnx") for name in expected)
    assert any(name.endswith("web/index.html") for name in expected)
    assert sorted(expected - names) == []
    assert not [n for n in names if n.startswith(("tests/", "speech_emotion/training/runs"))]


@pytest.mark.slow
def test_the_wheel_installs_in_a_fresh_venv_and_predicts_offline_outside_the_source_tree(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies come from this interpreter's environment (no download); its .pth files (an editable
    # install of the checkout) are not processed, so speech_emotion can only come from the wheel
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300, env=_clean_env())
    assert done.returncode == 0, done.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    wav = elsewhere / "one.wav"
    sf.write(wav, np.concatenate([silence(0.5), emotion_clip("angry", 3, duration_s=2.0), silence(0.5)]), 16000)
    where = subprocess.run(
        [python, "-c", "import speech_emotion; print(speech_emotion.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv)
    run = subprocess.run(
        [venv / "bin" / "speech-emotion", "predict", "--json", "one.wav"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
        env=_clean_env(),
    )
    assert run.returncode == 0, run.stderr[-2000:]
    installed = json.loads(run.stdout)
    here = subprocess.run(
        [sys.executable, "-m", "speech_emotion.cli.main", "predict", "--json", "one.wav"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert installed == json.loads(here.stdout)  # the installed wheel answers as the checkout does
    assert installed["label"] in installed["probabilities"]
