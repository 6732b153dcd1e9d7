"""The speech detector's two graphs (``silero_graphs/``) compute what Silero VAD's own graph computes, window by
window: the front end of every window in one call, the LSTM over each stream's sequence in another."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speech_emotion import silero
from stream_synth import bursts
from synth import noise, vowel

ROOT = Path(__file__).resolve().parents[1]


def tone(seconds: float) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * 16000)) / 16000)).astype(np.float32)


def original_scores(rows: np.ndarray) -> np.ndarray:
    """The wheel's ``silero_vad.onnx`` run window by window (its own way): ``(n, rows)`` for ``(n, rows, 512)``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(silero.model_path()), providers=["CPUExecutionProvider"])
    state = np.zeros((2, rows.shape[1], 128), np.float32)
    context = np.zeros((rows.shape[1], silero.CONTEXT), np.float32)
    out = np.empty(rows.shape[:2], np.float32)
    for t, windows in enumerate(rows):
        x = np.concatenate([context, windows], axis=1)
        prob, state = session.run(None, {"input": x, "state": state, "sr": np.array(16000, np.int64)})
        out[t], context = prob[:, 0], x[:, -silero.CONTEXT :]
    return out


def as_windows(*signals: np.ndarray) -> np.ndarray:
    n = min(len(s) for s in signals) // silero.WINDOW
    return np.stack([s[: n * silero.WINDOW].reshape(n, silero.WINDOW) for s in signals], axis=1).astype(np.float32)


def test_streams_scored_together_in_uneven_steps_get_the_original_graphs_probabilities(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    speech, _ = bursts()
    streams = [
        as_windows(speech, np.clip(speech * 8, -1, 1)),  # two rows, as the detector's gain and raw audio
        as_windows(np.concatenate([noise(1.0, level=0.05), vowel(2.0, seed=3), tone(2.0)]).astype(np.float32)),
        as_windows(np.concatenate([vowel(1.5, seed=5) * 0.01, noise(2.0, level=0.2, seed=9)]).astype(np.float32)),
    ]
    expected = [original_scores(w) for w in streams]
    states = [silero.SileroStream(rows=w.shape[1]) for w in streams]
    got: list[list[np.ndarray]] = [[] for _ in streams]
    position = [0, 0, 0]
    monkeypatch.setattr(silero, "MAX_WINDOWS", 50)  # the longest call is scored in pieces too
    for step in (1, 3, 7, 0, 31, 2, 1000):  # steps of different sizes, and streams left out of a call
        sizes = [step, max(0, step - 2), 0 if step == 3 else step + 1]
        chunks = [w[p : p + s] for w, p, s in zip(streams, position, sizes)]
        for out, probs in zip(got, silero.score_streams(states, chunks)):
            out.append(probs)
        position = [p + len(c) for p, c in zip(position, chunks)]
    for want, parts, w in zip(expected, got, streams):
        have = np.concatenate(parts)
        assert have.shape == want.shape == w.shape[:2]
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-4)
        assert np.array_equal(have >= 0.5, want >= 0.5)
    assert max(np.max(e) for e in expected) > 0.9 and min(np.min(e) for e in expected) < 0.1  # both kinds scored


def test_the_shipped_graphs_are_what_the_build_script_writes(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="the build script needs the onnx package (the [train] extra)")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_silero_graphs.py"), "--out", str(tmp_path)], check=True
    )
    for name in ("frames.onnx", "lstm.onnx"):
        assert (tmp_path / name).read_bytes() == (silero.GRAPHS / name).read_bytes(), name


@pytest.fixture
def broken_graphs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The detector reads its graphs from ``tmp_path`` (a copy of the shipped ones) and loads them anew."""
    for name in ("frames.onnx", "lstm.onnx"):
        (tmp_path / name).write_bytes((silero.GRAPHS / name).read_bytes())
    monkeypatch.setattr(silero, "GRAPHS", tmp_path)
    monkeypatch.setattr(silero, "_sessions", None)
    return tmp_path


@pytest.mark.parametrize("damage", ["missing", "truncated", "empty"])
def test_a_missing_or_damaged_detector_graph_is_one_model_error_naming_it(broken_graphs: Path, damage: str) -> None:
    from speech_emotion.errors import ModelError

    graph = broken_graphs / "lstm.onnx"
    if damage == "missing":
        graph.unlink()
    else:
        graph.write_bytes(graph.read_bytes()[:5000] if damage == "truncated" else b"")
    with pytest.raises(ModelError) as caught:
        silero.sessions()
    message = str(caught.value)
    assert str(graph) in message and "reinstall speech-emotion" in message and "\n" not in message
    assert ("is missing" if damage == "missing" else "cannot be loaded") in message


def test_the_server_and_the_batch_workers_refuse_to_start_without_the_detector(
    broken_graphs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tiny_bundle: Path
) -> None:
    """Not a healthy /healthz followed by a 500 on every request: the start fails with the one line."""
    import uvicorn

    from speech_emotion.batch.worker import load_worker_recognizer
    from speech_emotion.cli.main import main
    from speech_emotion.errors import ModelError

    (broken_graphs / "frames.onnx").unlink()
    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(self))
    monkeypatch.setattr("speech_emotion.threads.limit_native_threads", lambda: None)  # keep pytest's threads
    monkeypatch.setattr("speech_emotion.batch.worker.limit_native_threads", lambda: None)
    assert main(["serve", "--model", str(tiny_bundle), "--port", "8124"]) == 1
    err = capsys.readouterr().err
    assert not started and "frames.onnx is missing" in err and "Traceback" not in err
    with pytest.raises(ModelError, match="frames.onnx is missing"):
        load_worker_recognizer(str(tiny_bundle))
