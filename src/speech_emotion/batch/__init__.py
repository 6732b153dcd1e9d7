"""Batch analysis of large archives: per-file and per-segment Parquet tables, resumable, local or on Ray.

Entry point: :func:`run_batch` with :class:`BatchOptions`; ``speech-emotion batch`` is its CLI.
"""

from __future__ import annotations

from .inputs import Job, JobList, collect_jobs
from .runner import BatchOptions, BatchSummary, run_batch
from .worker import FileResult, analyze_one

__all__ = ["BatchOptions", "BatchSummary", "FileResult", "Job", "JobList", "analyze_one", "collect_jobs", "run_batch"]
