"""Native thread pools (BLAS, OpenMP) for processes that get their parallelism elsewhere."""

from __future__ import annotations

import os


def limit_native_threads() -> None:
    """One thread for BLAS and OpenMP in this process.

    Streaming windows are small and batch/service parallelism comes from workers or threads;
    a BLAS/OpenMP pool on top of that oversubscribes the cores (measured: 4x slower per file
    with 2 batch workers on 2 busy cores). Libraries already loaded are limited with
    threadpoolctl; libraries loaded later read the variables.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover (installed with scikit-learn)
        return
    threadpool_limits(1)
