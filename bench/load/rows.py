"""A ``mnistbench load`` row: one LoadGen test (or one peak search, or one accuracy run) of one
model x variant x runtime x batching policy x repeat, as one frozen dataclass and one CSV row.

Columns carry their units (``_ms``, ``_per_s`` samples per second, ``_s``, ``_mib``). Missing
values are empty cells (NaN), never zeros. The file is a results CSV of its own kind
(``schema_version`` ``load-1``): ``run`` rows and load rows never share a file.

Identity: ``config_id`` hashes :data:`IDENTITY_FIELDS` (what was measured and how, not the repeat);
``cell_id`` is ``<config_id>-r<repeat>``, the key of the row's per-sample timings
(``<csv stem>.queries/<cell_id>.npz``, :func:`save_timings`) and LoadGen logs (``<csv stem>.loadgen/<cell_id>/``).
:data:`COMPARE_KEY` is what ``compare`` pairs rows of two files by (the file's hash and checkpoint
left out: they are what changed).

Kinds: ``test`` (one LoadGen test: Server at ``target_qps``, or a single-stream, multi-stream or
Offline test), ``peak`` (the bisection's highest VALID Server rate in ``peak_qps``, with the
figures of the VALID test at it), ``accuracy`` (LoadGen's accuracy mode: every test image once;
``accuracy_top1``).

Latency columns are LoadGen's (from the scheduled time of each query to its answer, per query for
multi-stream); ``queue_*`` and ``compute_*`` are the system under test's own split of each sample
(waiting in the batcher's queue; the batch's runtime call); ``batch_mean`` the mean batch a sample
rode in.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import get_type_hints

import numpy as np

from ...models.errors import UsageError
from ..measure.records import parse_cell

SCHEMA = "load-1"
KINDS = ("test", "peak", "accuracy")


@dataclass(frozen=True)
class LoadRecord:
    """One load row (see the module for the columns)."""

    schema_version: str
    config_id: str
    cell_id: str
    repeat: int
    timestamp_utc: str
    host: str
    machine_id: str
    model: str
    variant: str
    task: str
    dataset: str
    runtime: str
    provider: str
    providers_used: str
    threads: int
    workers: int
    max_batch: int
    max_queue_delay_ms: float
    scenario: str
    kind: str
    target_qps: float
    latency_bound_ms: float
    latency_percentile: float
    min_duration_s: float
    min_query_count: int
    onnx_sha256: str
    checkpoint_profile: str
    checkpoint_seed: str
    status: str
    error: str
    valid: str
    invalid_reason: str
    early_stopping: str
    early_stopping_ms: float
    query_count: int
    samples_per_s: float
    scheduled_per_s: float
    peak_qps: float
    peak_tests: int
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_p999_ms: float
    latency_mean_ms: float
    latency_max_ms: float
    queue_p50_ms: float
    queue_p99_ms: float
    compute_p50_ms: float
    compute_p99_ms: float
    batch_mean: float
    accuracy_top1: float
    peak_rss_mib: float
    session_rss_mib: float
    wall_s: float
    loadgen_version: str
    mnistbench_version: str

    def as_row(self) -> dict[str, object]:
        """The CSV row: floats as written by ``repr`` (NaN as an empty cell)."""
        return {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


COLUMNS = [f.name for f in fields(LoadRecord)]
IDENTITY_FIELDS = ("model", "variant", "task", "dataset", "runtime", "provider", "threads", "workers", "max_batch",
                   "max_queue_delay_ms", "scenario", "kind", "target_qps", "latency_bound_ms", "latency_percentile",
                   "min_duration_s", "min_query_count", "onnx_sha256", "checkpoint_profile", "checkpoint_seed")
COMPARE_KEY = ("model", "variant", "runtime", "provider", "threads", "workers", "max_batch", "max_queue_delay_ms",
               "scenario", "kind", "target_qps", "latency_bound_ms", "latency_percentile")
_TYPES = get_type_hints(LoadRecord)


def config_id(values: dict) -> str:
    """sha256 prefix (16 hex) of the :data:`IDENTITY_FIELDS` in ``values`` and :data:`SCHEMA`."""
    text = "|".join(f"{k}={values.get(k, '')}" for k in IDENTITY_FIELDS) + f"|schema={SCHEMA}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_load_csv(path: Path) -> bool:
    """Whether ``path``'s header is a load CSV's (its first column ``schema_version`` and a ``kind``
    and ``peak_qps`` column); False for anything unreadable."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            head = next(csv.reader([fh.readline()]), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return bool(head) and head[0] == "schema_version" and "peak_qps" in head and "kind" in head


def _cell(name: str, text: str):
    return parse_cell(_TYPES[name], text)


def read_load_csv(path: Path) -> list[LoadRecord]:
    """Read a load CSV, validated before use.

    Raises:
        UsageError: missing or unreadable file, other columns, another schema, a row whose cells do
            not parse or whose measured figures are missing or not finite (the message names the line).
    """
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            have = reader.fieldnames or []
            if have != COLUMNS:
                missing = [c for c in COLUMNS if c not in have][:4]
                raise UsageError(f"{path} is not a load results CSV of schema {SCHEMA} (missing "
                                 f"{', '.join(missing) or 'nothing; other column order'})")
            rows = [_row(path, i, row) for i, row in enumerate(reader, start=2)]
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text CSV") from None
    except csv.Error as exc:
        raise UsageError(f"{path} is not a readable CSV ({exc})") from None
    return rows


def _row(path: Path, i: int, row: dict) -> LoadRecord:
    if None in row or any(v is None for v in row.values()):
        raise UsageError(f"{path}, line {i}: the row has {'more' if None in row else 'fewer'} cells than the header")
    try:
        rec = LoadRecord(**{c: _cell(c, row[c]) for c in COLUMNS})
    except (ValueError, TypeError, OverflowError):
        raise UsageError(f"{path}, line {i}: a cell does not parse as load schema {SCHEMA}") from None
    if rec.schema_version != SCHEMA or rec.kind not in KINDS:
        raise UsageError(f"{path}, line {i}: schema {rec.schema_version!r}, kind {rec.kind!r} (expected {SCHEMA}, "
                         f"one of {', '.join(KINDS)})")
    if rec.status == "ok" and not _measured(rec):
        raise UsageError(f"{path}, line {i}: a measured row lacks a finite, positive figure for its kind")
    return rec


def _measured(r: LoadRecord) -> bool:
    if r.kind == "accuracy":
        return 0.0 <= r.accuracy_top1 <= 1.0
    if r.kind == "peak" and r.valid == "INVALID" and math.isnan(r.peak_qps):
        return True  # a search that found no VALID rate
    figure = r.peak_qps if r.kind == "peak" else r.samples_per_s
    return math.isfinite(figure) and figure > 0 and (r.kind == "peak" or r.query_count > 0)


def save_timings(folder: Path, cell_id: str, t: np.ndarray) -> Path:
    """Write a row's per-sample timings (int64 (n, 4): issue, start, end ns, batch size) as
    ``folder/<cell_id>.npz`` (``numpy.savez_compressed``: ``base_ns``, the first issue, and ``us``,
    uint32 (n, 4) of microseconds after it and the batch size), whole or not at all. Microseconds
    keep the file small (an Offline row has a sample per image issued: 10^5-10^6 of them); LoadGen's
    own latencies, in the row, are in ns.

    Raises:
        ValueError: not an (n, 4) array, or a span over 2^32 us (71 minutes).
    """
    from ...models.files import atomic_write_bytes

    t = np.asarray(t, np.int64)
    if t.ndim != 2 or t.shape[1] != 4:
        raise ValueError(f"timings are (n, 4), got {t.shape}")
    base = int(t[:, 0].min()) if len(t) else 0
    us = np.empty(t.shape, np.uint32)
    span = (t[:, :3] - base) // 1000
    if len(t) and (span.min() < 0 or span.max() >= 2**32):
        raise ValueError("timings span more than 2^32 microseconds")
    us[:, :3], us[:, 3] = span, t[:, 3]
    buf = io.BytesIO()
    np.savez_compressed(buf, base_ns=np.int64(base), us=us)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cell_id}.npz"
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_timings(path: Path) -> np.ndarray:
    """:func:`save_timings`' file back as int64 (n, 4) ns (to the microsecond) and batch sizes.

    Raises:
        UsageError: not such a file.
    """
    try:
        with np.load(path) as z:
            base, us = int(z["base_ns"]), z["us"]
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{path} is not a load timings file ({type(exc).__name__})") from None
    if us.ndim != 2 or us.shape[1] != 4:
        raise UsageError(f"{path}: timings of shape {us.shape}, not (n, 4)")
    t = us.astype(np.int64)
    t[:, :3] = t[:, :3] * 1000 + base
    return t
