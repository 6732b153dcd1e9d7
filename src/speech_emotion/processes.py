"""Worker processes that end with the process that started them."""

from __future__ import annotations

import contextlib
import os
import signal


def end_with_parent(parent: int) -> None:
    """Ask the kernel to send this process SIGTERM when the one that started it (pid ``parent``) dies (Linux's
    ``PR_SET_PDEATHSIG``), so a killed server or run leaves no workers behind; elsewhere, and when the parent is
    already gone, exit at once if it has died."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # died before the request took effect
        os._exit(1)
