"""What a batch run analyses: a folder (recursive), a glob, or a CSV/TSV/JSONL manifest, as a list of jobs.

Each job names one file by its absolute path and carries a key made of path, size and
modification time, so a restarted run recognises files it already analysed (and re-analyses
a file that changed). Manifest columns other than the path are carried through to the results.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd  # imported when a manifest is read: a folder or glob needs no pandas

from ..decode import AUDIO_SUFFIXES, open_blocks
from ..errors import AudioError, DataError

MANIFEST_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson")
PATH_COLUMNS = ("path", "file", "filename", "filepath", "audio", "audio_path")
"""Column names tried, in order, when a manifest's path column is not given."""


@dataclass(frozen=True)
class Job:
    """One file to analyse."""

    path: str
    """Absolute path (not resolved through symlinks)."""
    size: int
    """Bytes, or -1 when the file cannot be stat'ed (it is then recorded as failed)."""
    mtime_ns: int
    key: str
    """Identity of this version of the file: hash of path, size and mtime."""


@dataclass(frozen=True)
class LeftOut:
    """A file (or folder) under a folder input that is not analysed, and why."""

    path: str
    reason: str
    """E.g. ``hidden file``, ``cannot decode audio (format not recognised)``."""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class JobList:
    """The jobs of a run, plus the manifest columns carried through (one row per job, by key)."""

    jobs: list[Job]
    extras: pd.DataFrame | None = None
    """Index: job key; columns: the manifest's extra columns. ``None`` for folder and glob inputs."""
    left_out: list[LeftOut] = field(default_factory=list)
    """What a folder input holds that is not analysed, each with its reason: files that are not audio by their
    content, hidden files, hidden and linked folders (not searched)."""

    @property
    def keys(self) -> set[str]:
        return {job.key for job in self.jobs}


def job_key(path: str, size: int, mtime_ns: int) -> str:
    """Stable identity of a file version: the same path, size and mtime give the same key."""
    return hashlib.sha1(f"{path}\0{size}\0{mtime_ns}".encode()).hexdigest()[:20]


def make_job(path: str | Path) -> Job:
    """Job for ``path`` (made absolute); a file that cannot be stat'ed still gets a job, which will fail."""
    abspath = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(abspath)
        size, mtime_ns = st.st_size, st.st_mtime_ns
    except OSError:
        size, mtime_ns = -1, -1
    return Job(abspath, size, mtime_ns, job_key(abspath, size, mtime_ns))


def collect_jobs(
    source: str | Path,
    path_column: str | None = None,
    suffixes: tuple[str, ...] = AUDIO_SUFFIXES,
    results: str | Path | None = None,
) -> JobList:
    """Jobs for a folder (recursively: files with an audio suffix, and any other file the audio reader opens,
    e.g. a voice note without a suffix), a manifest (by suffix), or a glob pattern. Everything else under a
    folder is listed in :attr:`JobList.left_out` with its reason (another batch run's results folder as one entry,
    not searched), except the ``results`` folder (the run's own ``--out``, when it lies inside the input folder),
    which is skipped without a word.

    Raises :class:`DataError` when nothing matches or a manifest cannot be used.
    """
    text = os.fspath(source)
    path = Path(text)
    if path.is_dir():
        return _from_folder(path, suffixes, results)
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        return _from_manifest(path, path_column)
    if glob.has_magic(text):
        matches = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not matches:
            raise DataError(f"{text}: the pattern matches no file")
        return JobList(_unique([make_job(p) for p in matches]))
    if path.is_file():
        return JobList([make_job(path)])
    if path.exists():
        raise DataError(f"{text}: not a regular file (a device, pipe or socket): save the audio to a file first")
    raise DataError(f"{text}: no such folder, manifest or file, and not a glob pattern")


def _from_folder(root: Path, suffixes: tuple[str, ...], results: str | Path | None) -> JobList:
    from .state import holds_results  # here: state imports the worker, which imports this module

    if holds_results(root):
        raise DataError(f"{root}: the results folder of an earlier batch run: give the folder of the recordings")
    jobs: list[Job] = []
    left_out: list[LeftOut] = []
    own_results = os.path.realpath(results) if results is not None else None
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        searched = []
        for name in sorted(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.realpath(full) == own_results:  # the run's own results: neither searched nor left out
                continue
            if holds_results(full):  # another run's results (its tables, not audio): one line for all
                left_out.append(LeftOut(full, "results folder of an earlier batch run (not searched)"))
            elif name.startswith("."):
                left_out.append(LeftOut(full, "hidden folder (not searched)"))
            elif os.path.islink(full):
                left_out.append(LeftOut(full, "linked folder (not followed)"))
            else:
                searched.append(name)
        dirnames[:] = searched
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            reason = "hidden file" if name.startswith(".") else _not_audio(full, suffixes)
            if reason is None:
                jobs.append(make_job(full))
            else:
                left_out.append(LeftOut(full, reason))
    if not jobs:
        raise DataError(f"{root}: no audio files (none that the audio reader can open) in this folder or below")
    return JobList(jobs, left_out=left_out)


def _not_audio(path: str, suffixes: tuple[str, ...]) -> str | None:
    """Why ``path`` is not to be analysed (``None``: it is): a file with an audio suffix always is (one that is
    not audio then fails with its reason); any other is opened (its header read) to tell."""
    if os.path.splitext(path)[1].lower() in suffixes:
        return None
    try:
        open_blocks(path).close()
    except AudioError as exc:
        return exc.reason
    return None


def read_manifest(manifest: Path) -> pd.DataFrame:
    """A CSV, TSV or JSON-lines manifest as a table of strings (JSONL values keep their JSON types)."""
    import pandas as pd

    suffix = manifest.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(manifest, lines=True, dtype=False)
        sep = "\t" if suffix in (".tsv", ".tab") else ","
        return pd.read_csv(manifest, sep=sep, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        reason = str(exc).split("\n")[0]
        raise DataError(f"{manifest}: cannot read manifest ({reason})") from None


def _from_manifest(manifest: Path, path_column: str | None) -> JobList:
    import pandas as pd

    table = read_manifest(manifest)
    if path_column is None:
        path_column = next((c for c in PATH_COLUMNS if c in table.columns), None)
        if path_column is None:
            raise DataError(
                f"{manifest}: no path column (looked for {', '.join(PATH_COLUMNS)}; name one with --path-column)"
            )
    elif path_column not in table.columns:
        raise DataError(f"{manifest}: no column {path_column!r} (columns: {', '.join(map(str, table.columns))})")
    if table.empty:
        raise DataError(f"{manifest}: the manifest lists no files")
    base = manifest.parent
    jobs = [make_job(base / str(value)) for value in table[path_column]]
    extras = table.drop(columns=[path_column])
    extras.index = pd.Index([job.key for job in jobs], name="key")
    repeated = extras.index.duplicated(keep="first")
    left_out = [
        LeftOut(job.path, f"listed again (manifest row {i + 1}): analysed once, with the first row's columns")
        for i, (job, again) in enumerate(zip(jobs, repeated))
        if again
    ]
    return JobList(_unique(jobs), extras=extras[~repeated] if len(extras.columns) else None, left_out=left_out)


def _unique(jobs: list[Job]) -> list[Job]:
    """Jobs with duplicates (same file listed twice) removed, first occurrence kept."""
    seen: set[str] = set()
    out = []
    for job in jobs:
        if job.key not in seen:
            seen.add(job.key)
            out.append(job)
    return out
