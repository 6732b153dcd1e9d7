"""With the default model, every door runs on numpy + ONNX Runtime: none imports librosa, scikit-learn, pandas,
matplotlib or scipy.signal. Each door runs in a fresh interpreter on a generated 3 s WAV; ``sys.modules`` is read
at its end (the batch workers report their own)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth import silence, vowel

HEAVY = ("librosa", "sklearn", "pandas", "matplotlib", "scipy.signal")
TESTS = Path(__file__).parent


def heavy_loaded(names: list[str], allowed: tuple[str, ...] = ()) -> list[str]:
    """The modules of ``names`` that belong to one of :data:`HEAVY` (except those in ``allowed``)."""
    heavy = [h for h in HEAVY if h not in allowed]
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in heavy))


def run_door(body: str, tmp_path: Path) -> dict:
    """Run ``body`` (which sets ``rc``) in a fresh interpreter with ``wav`` and ``out`` defined; returns
    ``{"modules": [...], "rc": ...}``."""
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        f"wav, out = {str(tmp_path / 'one.wav')!r}, {str(tmp_path / 'out')!r}\n"
        + textwrap.dedent(body)
        + "\nprint('\\n' + json.dumps({'modules': sorted(sys.modules), 'rc': rc}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def one_wav(tmp_path: Path) -> Path:
    """3 s: silence, a voiced vowel, silence (16 kHz mono WAV)."""
    wav = tmp_path / "one.wav"
    sf.write(wav, np.concatenate([silence(0.5), vowel(2.0), silence(0.5)]), 16000)
    return wav


CLI_DOORS = {
    "predict": "rc = main(['predict', wav])",
    "predict --json": "rc = main(['predict', '--json', wav])",
    "stream": "rc = main(['stream', wav])",
    "analyze --no-plot": "rc = main(['analyze', '--no-plot', '-o', out, wav])",
    "analyze (writes a plot)": "rc = main(['analyze', '-o', out, wav])",
    "batch": """
        import os
        os.makedirs(out + '-in'); os.link(wav, out + '-in/one.wav')
        rc = main(['batch', out + '-in', '--out', out, '--workers', '1', '--no-progress'])
    """,
}
ALLOWED = {"analyze (writes a plot)": ("matplotlib",)}
RUNS_THE_MODEL_ITSELF = {door for door in CLI_DOORS if door != "batch"}  # batch's workers do (next test)


@pytest.mark.slow
@pytest.mark.parametrize("door", sorted(CLI_DOORS))
def test_each_command_with_the_default_model_imports_nothing_heavy(door, one_wav, tmp_path):
    body = "from speech_emotion.cli.main import main\n" + textwrap.dedent(CLI_DOORS[door])
    result = run_door(body, tmp_path)
    assert result["rc"] == 0
    if door in RUNS_THE_MODEL_ITSELF:
        assert "onnxruntime" in result["modules"]  # the door did run the model
    assert heavy_loaded(result["modules"], ALLOWED.get(door, ())) == []


@pytest.mark.slow
def test_batch_workers_import_nothing_heavy(one_wav, tmp_path):
    """The fork server's preloads and a worker's analysis, run in a child as the local runner does."""
    body = """
        from speech_emotion.batch import local, worker
        from speech_emotion.batch.inputs import make_job
        for name in local.PRELOAD:
            __import__(name)
        recognizer = worker.load_worker_recognizer(None)
        result = worker.analyze_one(make_job(wav), recognizer)
        rc = 0 if result.status == worker.OK else 1
    """
    result = run_door(body, tmp_path)
    assert result["rc"] == 0
    assert heavy_loaded(result["modules"]) == []


@pytest.mark.slow
def test_listen_with_the_default_model_imports_nothing_heavy(tmp_path):
    body = """
        from test_listen import FakeSoundDevice
        from speech_emotion.cli import listen
        from speech_emotion.cli.main import main
        fake = FakeSoundDevice()  # the fake microphone synthesises its speech with scipy: not the product's import
        before = set(sys.modules)
        listen._import_sounddevice = lambda: fake
        seconds = len(fake.samples) / 48000 - 0.01
        rc = main(['listen', '--duration', str(seconds), '--block-ms', '200'])
        rc = {'rc': rc, 'imported': sorted(set(sys.modules) - before)}
    """
    done = run_door(body, tmp_path)
    result = done["rc"]
    assert result["rc"] == 0
    assert heavy_loaded(result["imported"]) == []  # what listen imported while it ran
    assert heavy_loaded(done["modules"], allowed=("scipy.signal",)) == []  # and at import (scipy: the fake's synth)


@pytest.mark.slow
def test_the_service_with_the_default_model_imports_nothing_heavy(one_wav, tmp_path):
    """``serve``'s app (built and warmed up as ``serve`` does), ``/v1/predict`` and ``/v1/analyze`` on the WAV."""
    pytest.importorskip("httpx")
    body = """
        from fastapi.testclient import TestClient
        from speech_emotion.service.app import create_app
        with TestClient(create_app(), base_url='http://127.0.0.1') as client:
            codes = []
            for route in ('/v1/predict', '/v1/analyze'):
                with open(wav, 'rb') as f:
                    codes.append(client.post(route, files={'file': ('one.wav', f, 'audio/wav')}).status_code)
        rc = 0 if codes == [200, 200] else codes
    """
    result = run_door(body, tmp_path)
    assert result["rc"] == 0
    assert heavy_loaded(result["modules"]) == []


def test_the_heavy_check_sees_a_heavy_import(tmp_path):
    result = run_door("import scipy.signal\nrc = 0", tmp_path)
    assert heavy_loaded(result["modules"])[0] == "scipy.signal"
