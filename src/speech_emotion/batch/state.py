"""Where a batch run keeps its results, so that an interrupted run resumes and a finished one is never torn.

Layout of ``RESULTS/``::

    run.json               model name, content digest and labels of the run (a resumed run must use the same)
    parts/<id>.files.parquet, parts/<id>.segments.parquet
                           results of one chunk of files, written as each chunk completes
    files.parquet          final per-file table      } written at the end of a run, compacted
    segments.parquet       final per-segment table   } from the parts

Every file is written to a temporary name and renamed into place (``os.replace``), so a reader
or a restarted run sees whole files only. A chunk's segments part is renamed first and its
files part last: the files part is the commit mark, and a segments part without one is the
leftover of a killed run and is ignored (then removed). A result's key is the job key (path,
size, mtime); when a key appears in several parts (a failed file retried), the latest wins.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from ..bundle import DIMENSIONS
from ..errors import DataError
from .worker import FAILED, FileResult

if TYPE_CHECKING:
    import pandas as pd

FILES_TABLE = "files.parquet"
SEGMENTS_TABLE = "segments.parquet"
RUN_INFO = "run.json"
PARTS = "parts"


def holds_results(folder: str | Path) -> bool:
    """Whether ``folder`` is a results folder of a run (its :data:`RUN_INFO` and :data:`PARTS` folder)."""
    return os.path.isfile(os.path.join(folder, RUN_INFO)) and os.path.isdir(os.path.join(folder, PARTS))


OPERATIONAL_COLUMNS = ("worker", "worker_rss_mb")
"""Columns kept in the parts (for the run's summary) but left out of the final table."""


def files_schema(labels: tuple[str, ...]) -> pa.Schema:
    """Per-file columns; ``share_<label>`` is the share of speech time per emotion. ``channel`` is empty on the
    row of the whole file and 0, 1, ... on the rows of its channels (``--channels split``). ``uncertain`` and
    ``uncertain_share`` (the summary's) and ``prob_<label>`` (the summary's probabilities: ``predict``'s answer)
    come last, after the operational columns, so the columns before them keep their order."""
    return pa.schema(
        [
            ("key", pa.string()),
            ("path", pa.string()),
            ("size", pa.int64()),
            ("mtime_ns", pa.int64()),
            ("status", pa.string()),
            ("channel", pa.int32()),
            ("duration_s", pa.float64()),
            ("speech_s", pa.float64()),
            ("dominant_emotion", pa.string()),
            ("verdict", pa.string()),
            *((f"share_{label}", pa.float64()) for label in labels),
            *((name, pa.float64()) for name in DIMENSIONS),
            ("n_segments", pa.int32()),
            ("error", pa.string()),
            ("notes", pa.string()),
            ("process_s", pa.float64()),
            ("cpu_s", pa.float64()),
            ("worker", pa.string()),
            ("worker_rss_mb", pa.float64()),
            ("uncertain", pa.bool_()),
            ("uncertain_share", pa.float64()),
            *((f"prob_{label}", pa.float64()) for label in labels),
        ]
    )


def segments_schema(labels: tuple[str, ...]) -> pa.Schema:
    """Per-segment columns; ``prob_<label>`` is the segment's mean probability of each emotion; ``uncertain``
    (last): the bundle's calibration thresholds call the segment's answer uncertain."""
    return pa.schema(
        [
            ("key", pa.string()),
            ("path", pa.string()),
            ("channel", pa.int32()),
            ("start_s", pa.float64()),
            ("end_s", pa.float64()),
            ("label", pa.string()),
            ("confidence", pa.float64()),
            *((f"prob_{label}", pa.float64()) for label in labels),
            *((name, pa.float64()) for name in DIMENSIONS),
            ("uncertain", pa.bool_()),
        ]
    )


def results_to_tables(results: list[FileResult], labels: tuple[str, ...]) -> tuple[pa.Table, pa.Table]:
    """Per-file and per-segment tables of some results."""
    file_rows: list[dict[str, Any]] = []
    segment_rows: list[dict[str, Any]] = []
    for r in results:
        skip = ("shares", "segments", "channels", "dimensions", "probabilities")
        row = {k: v for k, v in r.to_dict().items() if k not in skip}
        row.update({f"share_{label}": r.shares.get(label) if r.shares else None for label in labels})
        row.update({f"prob_{label}": r.probabilities.get(label) for label in labels})
        row.update(_dimension_columns(r.dimensions))
        row["n_segments"] = sum(s.channel is None for s in r.segments)  # the whole file's (split: the mix's)
        file_rows.append(row)
        for c in r.channels:  # --channels split: each party's summary after the whole call's
            part = {**row, "channel": c.channel, "speech_s": c.speech_s, "dominant_emotion": c.dominant_emotion}
            part.update(verdict=c.verdict, n_segments=sum(s.channel == c.channel for s in r.segments))
            part.update({f"share_{label}": c.shares.get(label) for label in labels})
            part.update(_dimension_columns(c.dimensions))
            part.update(uncertain=c.uncertain, uncertain_share=c.uncertain_share, notes=c.notes)  # its own notes
            part.update({f"prob_{label}": c.probabilities.get(label) for label in labels})
            file_rows.append(part)
        for s in r.segments:
            seg = {"key": r.key, "path": r.path, "channel": s.channel, "start_s": s.start_s, "end_s": s.end_s}
            seg.update(label=s.label, confidence=s.confidence)
            seg.update({f"prob_{label}": p for label, p in zip(labels, s.probabilities)})
            seg.update(_dimension_columns(s.dimensions))
            seg["uncertain"] = s.uncertain
            segment_rows.append(seg)
    return _from_rows(file_rows, files_schema(labels)), _from_rows(segment_rows, segments_schema(labels))


def _dimension_columns(values: list[float] | None) -> dict[str, float | None]:
    """The ``arousal``, ``valence``, ``dominance`` columns of a row: nulls for a model without them."""
    return dict(zip(DIMENSIONS, values or (None,) * len(DIMENSIONS)))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in its order: columns that parts written before them lack (``verdict``,
    ``channel``, ``arousal``, ``uncertain``...) as nulls."""
    for f in schema:
        if f.name not in table.column_names:
            table = table.append_column(f, pa.nulls(len(table), f.type))
    return table.select(schema.names)


# pyarrow imports pandas (~0.5 s) to convert Python objects (pa.array, from_pylist, scalars), for group_by and
# joins, and in pq.read_table; the helpers below build the same tables without it, so a batch run over a folder
# never imports pandas (tests/test_lean_imports.py).


def _from_rows(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(rows, schema=schema)``, through Arrow's JSON reader."""
    if not rows:
        return _empty(schema)
    data = "\n".join(json.dumps(row) for row in rows).encode()
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    return pa_json.read_json(io.BytesIO(data), parse_options=options).select(schema.names)


def _empty(schema: pa.Schema) -> pa.Table:
    return pa.Table.from_batches([], schema=schema)


def _strings(values: list[str]) -> pa.Array:
    """``pa.array(values, pa.string())``, from its buffers."""
    data = [v.encode() for v in values]
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in data])]).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])


def _int64s(values: np.ndarray) -> pa.Array:
    """``pa.array(values, pa.int64())``, from its buffer."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(np.ascontiguousarray(values, np.int64))])


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A committed part; :class:`DataError` naming it when it cannot be read (damaged from outside: parts are
    written atomically)."""
    try:
        return pq.ParquetFile(path).read(columns=columns)
    except (OSError, pa.ArrowException) as exc:
        reason = str(exc).split("\n")[0]
        raise DataError(
            f"{path}: damaged results part ({reason}); delete it and run again: its files are analysed again"
        ) from None


def write_table_atomic(table: pa.Table, path: Path) -> None:
    """Write a Parquet file under a temporary name, flush it to disk, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ResultStore:
    """The results folder of a run: committed parts, resume state and the final tables."""

    def __init__(
        self,
        out: str | Path,
        model: str,
        labels: tuple[str, ...],
        channels: str = "mix",
        model_digest: str | None = None,
    ) -> None:
        self.out = Path(out)
        self.parts = self.out / PARTS
        self.model = model
        self.model_digest = model_digest
        """The bundle's content digest (:func:`~speech_emotion.batch.runner.model_digest`): two bundles with one
        name (``train`` names bundles after their recipe) never share a results folder."""
        self.labels = tuple(labels)
        self.channels = channels
        self._stamp = f"{time.time_ns():020d}"
        self._seq = 0
        self._lock: IO[str] | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> ResultStore:
        """Create the folder, take its lock (one run per folder), check the model, drop leftovers."""
        self.parts.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.out / ".lock", "w")  # noqa: SIM115 (held until close())
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise DataError(f"{self.out}: another batch run is writing to this folder") from None
        self._check_run_info()
        self._remove_leftovers()
        return self

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> ResultStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_run_info(self) -> None:
        info_path = self.out / RUN_INFO
        info = {"model": self.model, "model_sha256": self.model_digest, "labels": list(self.labels)}
        info["channels"] = self.channels
        old: dict[str, Any] | None = None
        if info_path.is_file():
            try:
                old = json.loads(info_path.read_text())
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                old = None
            old = old if isinstance(old, dict) else None
            if old and (old.get("model"), old.get("labels")) != (info["model"], info["labels"]):
                raise DataError(
                    f"{self.out}: holds results of model {old.get('model')!r}, not {self.model!r}; "
                    "use another --out folder (or delete this one) to analyse with a different model"
                )
            digest = old.get("model_sha256") if old else None
            if digest and self.model_digest and digest != self.model_digest:
                raise DataError(
                    f"{self.out}: holds results of another bundle named {self.model!r} ({_short(digest)}, this one "
                    f"is {_short(self.model_digest)}); use another --out folder to analyse with this bundle"
                )
            if old and old.get("channels", "mix") != self.channels:
                raise DataError(
                    f"{self.out}: holds results analysed with --channels {old.get('channels', 'mix')}, not "
                    f"{self.channels}; use another --out folder to analyse with different channels"
                )
            if old and (digest or not self.model_digest):
                return
            if old:  # a folder from before digests: it is this model's by name, from now on by content
                info = {**old, "model_sha256": self.model_digest}
        if not old and self._committed_ids():
            raise DataError(
                f"{self.out}: holds results but its run.json is missing or damaged, so the model they came from is "
                "unknown; use another --out folder (or delete this one)"
            )
        tmp = info_path.with_name(".run.json.tmp")
        tmp.write_text(json.dumps(info, indent=1) + "\n")
        os.replace(tmp, info_path)

    def _committed_ids(self) -> list[str]:
        """Ids of committed parts, oldest first."""
        return sorted(p.name[: -len(".files.parquet")] for p in self.parts.glob("*.files.parquet"))

    def _remove_leftovers(self) -> None:
        committed = set(self._committed_ids())
        for p in self.parts.glob(".*.tmp"):
            p.unlink(missing_ok=True)
        for p in self.out.glob(".*.tmp"):
            p.unlink(missing_ok=True)
        for p in self.parts.glob("*.segments.parquet"):
            if p.name[: -len(".segments.parquet")] not in committed:
                p.unlink(missing_ok=True)

    # -- resume state -------------------------------------------------------------------------

    def statuses(self) -> dict[str, str]:
        """``key -> status`` of every file with a committed result (the latest result wins)."""
        out: dict[str, str] = {}
        for part in self._committed_ids():
            table = _read(self.parts / f"{part}.files.parquet", columns=["key", "status"])
            out.update(zip(table["key"].to_pylist(), table["status"].to_pylist()))
        return out

    def paths(self) -> set[str]:
        """Paths of every file with a committed result, of this run's input or an earlier one's."""
        out: set[str] = set()
        for part in self._committed_ids():
            out.update(_read(self.parts / f"{part}.files.parquet", columns=["path"])["path"].to_pylist())
        return out

    # -- writing ------------------------------------------------------------------------------

    def write_part(self, results: list[FileResult]) -> None:
        """Commit the results of one chunk of files (segments first, the files part last)."""
        if not results:
            return
        files, segments = results_to_tables(results, self.labels)
        self._seq += 1
        part = f"{self._stamp}-{self._seq:06d}"
        write_table_atomic(segments, self.parts / f"{part}.segments.parquet")
        write_table_atomic(files, self.parts / f"{part}.files.parquet")

    def compact(self, keys: Iterable[str], extras: pd.DataFrame | None = None) -> tuple[pa.Table, pa.Table]:
        """Write the final ``files.parquet`` and ``segments.parquet`` for the given job keys.

        Only the latest result of each key is kept; rows are sorted by path (and segment
        start), so the tables depend on the results only, not on the runner or the order of
        completion. Manifest columns in ``extras`` (indexed by key) are appended to the files
        table; names that clash with result columns get an ``input_`` prefix.
        """
        wanted = _strings(sorted(set(keys)))
        files = self._latest_files(wanted)
        segments = self._segments_of(files)
        files = files.drop_columns(["_part", *OPERATIONAL_COLUMNS])
        if extras is not None and len(extras.columns):
            files = _join_extras(files, extras)
        files = files.sort_by([("path", "ascending"), ("channel", "ascending", "at_start")])
        segments = segments.sort_by([("path", "ascending"), ("start_s", "ascending"), ("channel", "ascending")])
        meta = {"model": self.model, "model_sha256": self.model_digest, "labels": list(self.labels)}
        meta = {b"speech_emotion": json.dumps(meta).encode()}
        files = files.replace_schema_metadata(meta)
        segments = segments.replace_schema_metadata(meta)
        write_table_atomic(segments, self.out / SEGMENTS_TABLE)
        write_table_atomic(files, self.out / FILES_TABLE)
        return files, segments

    def _latest_files(self, wanted: pa.Array) -> pa.Table:
        tables = []
        for part in self._committed_ids():
            t = _read(self.parts / f"{part}.files.parquet")
            t = t.filter(pc.is_in(t["key"], value_set=wanted))
            tables.append(t.append_column("_part", _strings([part] * len(t))))
        schema = files_schema(self.labels).append(pa.field("_part", pa.string()))
        # parts written before a column existed (verdict, arousal) get it as nulls
        table = _conform(pa.concat_tables(tables, promote_options="default"), schema) if tables else _empty(schema)
        keys, parts = table["key"].to_pylist(), table["_part"].to_pylist()
        latest = dict(zip(keys, parts))  # the last part that holds each key wins
        # all rows of the winning result (the whole file's and, with --channels split, its channels')
        won = [row for row, (key, part) in enumerate(zip(keys, parts)) if latest[key] == part]
        return table.take(_int64s(np.asarray(won, np.int64)))

    def _segments_of(self, files: pa.Table) -> pa.Table:
        """Segments of the winning result of each file (the part that holds it, and that key)."""
        tables = []
        for part in sorted(set(files["_part"].to_pylist())):
            keys = files.filter(pc.is_in(files["_part"], value_set=_strings([part])))["key"]
            t = _read(self.parts / f"{part}.segments.parquet")
            tables.append(t.filter(pc.is_in(t["key"], value_set=keys)))
        # parts written before the channel (the mix) or arousal columns existed get them as nulls
        schema = segments_schema(self.labels)
        return _conform(pa.concat_tables(tables, promote_options="default"), schema) if tables else _empty(schema)


def _join_extras(files: pa.Table, extras: pd.DataFrame) -> pa.Table:
    taken = set(files.column_names)
    renamed = {c: (f"input_{c}" if str(c) in taken else str(c)) for c in extras.columns}
    frame = extras.rename(columns=renamed).reset_index()
    try:
        right = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):  # mixed JSON types in a column
        right = pa.Table.from_pandas(frame.astype(str), preserve_index=False)
    right = right.set_column(right.schema.get_field_index("key"), "key", right["key"].cast(pa.string()))
    return files.join(right, keys="key", join_type="left outer")


def _short(digest: str) -> str:
    """``sha256:0123456789ab``: enough of a digest to tell two bundles apart in a message."""
    return digest[: len("sha256:") + 12]


def failed_result(job: Any, error: str) -> FileResult:
    """A result recording that ``job`` could not be analysed, for failures outside :func:`analyze_one`."""
    return FileResult(job.key, job.path, job.size, job.mtime_ns, FAILED, error=error)
