"""One benchmark row = one frozen dataclass = one CSV row.

The schema is documented field by field here and in the README; column names
carry their units (``_ms``, ``_ips``, ``_s``). A row belongs to one cell of the
matrix model x runtime x provider x batch size. Missing values are empty
cells (NaN), never zeros.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import os
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import get_type_hints

import filelock

from ...models.errors import UsageError

SCHEMA_VERSION = 8


@dataclass(frozen=True)
class BenchmarkRecord:
    """One results row.

    Identity: ``run_id`` (one per ``mnistbench run``), ``cell_id`` (key of the cell's raw
    samples in the ``.samples.npz`` beside the CSV), ``repeat`` (0-based repeat of the matrix),
    ``timestamp_utc`` (ISO 8601,
    when the cell finished), ``host``, ``model``, ``variant`` (``fp32``),
    ``dataset``, ``task``, ``runtime`` (``onnxruntime``), ``provider`` (``cpu``/``cuda``,
    as requested *and confirmed*), ``providers_used`` (the session's EP list,
    ``;``-separated), ``batch_size`` (images per call).
    Session: ``threads_requested`` (``auto``, or the number asked for; 0 = the runtime's own
    choice), ``intra_op_threads`` (the count the cell ran with; for ``auto``, the faster of 1 and
    one per physical core in a short probe of this model at this batch size), ``spinning``
    (``on``/``off``/``default``), ``graph_optimization``.
    Cold start: ``session_create_ms``, ``first_inference_ms`` (first call at this batch size).
    Timing: ``warmup_iters``, ``timed_iters``, ``timed_wall_s``, latency ``*_ms`` per call
    (mean, std, min, p50, p90, p99, max; p90/p99 empty below 100/1000 samples),
    ``latency_cv`` (std/mean), ``throughput_ips`` (batch x iterations / timed wall time).
    Quality: ``accuracy_top1`` (fraction of the full test set, classifiers),
    ``test_mse`` (reconstruction models), ``eval_images``; ``agreement_top1_vs_torch`` and
    ``max_abs_diff_vs_torch``: this runtime's outputs against PyTorch eager on CPU over the same images.
    Efficiency: ``flops_per_image`` (forward, 2 x multiply-adds), ``achieved_gflops``
    (flops x throughput), ``peak_fraction`` (of the fp32 GEMM probe of the row's device, CPU or GPU, in the system JSON).
    Placement (ONNX Runtime, from a profiled run): ``nodes_total``, ``nodes_on_provider`` (on the
    requested EP), ``nodes_on_cpu``, ``memcpy_nodes``; -1 where not applicable (PyTorch rows).
    Provenance: ``onnx_sha256``, ``opset``, ``checkpoint_profile``, ``checkpoint_seed``, ``checkpoint_sha256``,
    ``onnxruntime_version``, ``torch_version``, ``onnx_version``, ``cpu_model``,
    ``mnistbench_version``, ``schema_version``.
    ``status`` is ``ok``, or ``error`` when the cell could not be measured; ``error`` holds the reason.
    GPU (schema 4): ``io_mode`` (``end-to-end``: host arrays in and out; ``device``: IO binding,
    data resident on the GPU; ``device-graph``: device mode replayed as a CUDA graph) and
    ``provider_options`` (the requested EP's options, ``key=value;...``; empty on CPU). Files of
    schema 3 read with ``end-to-end`` and empty options.
    Interleaving and identity (schema 5): ``rounds`` (blocks the cell was measured in, one per
    round, interleaved with the other cells of its group), ``latency_p50_ci_low_ms`` /
    ``latency_p50_ci_high_ms`` and ``throughput_ci_low_ips`` / ``throughput_ci_high_ips`` (95%
    percentile-bootstrap intervals over blocks, :mod:`bench.metrics`; empty below 3 blocks),
    ``p50_ci_halfwidth_rel`` (half the p50 interval / p50: the stability figure),
    ``interleave_group`` (``g/G``: the cells were measured in G groups, this one in group g) and
    ``group_cells`` (cells interleaved in that group), ``pinned_cpus`` (the process's CPU affinity
    when ``--pin-cpus`` was given, else empty), ``config_id`` (sha256 prefix of everything that makes
    the row's number what it is: the identity fields, axes, model file hash, dataset, profile, seed
    and schema; ``--resume`` keys on it). Files of schema 4 read with 1 round, empty intervals,
    empty group and empty ``config_id``.
    Memory (schema 7), MiB (2**20 bytes): ``peak_rss_mib`` (the process's peak resident set during
    the cell's timed blocks, :mod:`bench.measure.memory`; every session of the cell's group is alive
    then, so it is the group's footprint at that moment) and ``session_rss_mib`` (the growth of the
    resident set from before the cell's session was opened to the end of its warm-up: the session,
    its first call's arena and the warm-up; may be negative when the runtime freed memory). Files
    of schema 6 and older read with both empty.
    Node (schema 8): ``node``, which node measured the row beside its ``host`` name
    (:func:`bench.measure.noiseprofile.node_id`: ``ray:<node id>@<IP>`` for a run on a Ray node,
    ``machine:<machine id>`` for a local run): two nodes that share a host name (two Ray nodes on
    one machine, two VMs of one image) stay two series in ``report``, ``compare`` and ``table``.
    Files of schema 7 and older read with it empty (their series are keyed by host).
    Model health (schema 6): ``nonfinite_fraction`` (fraction of the scored test-set output values
    that are NaN or +-inf, :func:`bench.runtime.nonfinite_fraction`; 0.0 for a healthy model, empty
    when the row was not scored). Files of schema 5 and older read with it empty.
    """

    run_id: str
    cell_id: str
    repeat: int
    timestamp_utc: str
    host: str
    model: str
    variant: str
    dataset: str
    task: str
    runtime: str
    provider: str
    providers_used: str
    batch_size: int
    threads_requested: str
    intra_op_threads: int
    spinning: str
    graph_optimization: str
    session_create_ms: float
    first_inference_ms: float
    warmup_iters: int
    timed_iters: int
    timed_wall_s: float
    latency_mean_ms: float
    latency_std_ms: float
    latency_min_ms: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_max_ms: float
    latency_cv: float
    throughput_ips: float
    accuracy_top1: float
    test_mse: float
    eval_images: int
    agreement_top1_vs_torch: float
    max_abs_diff_vs_torch: float
    flops_per_image: int
    achieved_gflops: float
    peak_fraction: float
    nodes_total: int
    nodes_on_provider: int
    nodes_on_cpu: int
    memcpy_nodes: int
    onnx_sha256: str
    opset: int
    checkpoint_profile: str
    checkpoint_seed: str
    checkpoint_sha256: str
    onnxruntime_version: str
    torch_version: str
    onnx_version: str
    cpu_model: str
    mnistbench_version: str
    schema_version: int = SCHEMA_VERSION
    status: str = "ok"
    error: str = ""
    io_mode: str = "end-to-end"
    provider_options: str = ""
    rounds: int = 1
    latency_p50_ci_low_ms: float = math.nan
    latency_p50_ci_high_ms: float = math.nan
    throughput_ci_low_ips: float = math.nan
    throughput_ci_high_ips: float = math.nan
    p50_ci_halfwidth_rel: float = math.nan
    interleave_group: str = ""
    group_cells: int = 1
    pinned_cpus: str = ""
    config_id: str = ""
    nonfinite_fraction: float = math.nan
    peak_rss_mib: float = math.nan
    session_rss_mib: float = math.nan
    node: str = ""

    def as_row(self) -> dict[str, object]:
        """Field -> CSV cell; NaN becomes an empty cell."""
        return {k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


COLUMNS = [f.name for f in fields(BenchmarkRecord)]
# Columns added after schema 3, with the value older files mean (schema 4: io_mode, provider_options;
# schema 5: rounds .. config_id; schema 6: nonfinite_fraction; schema 7: peak_rss_mib, session_rss_mib;
# schema 8: node).
ADDED_COLUMNS = {"io_mode": "end-to-end", "provider_options": "", "rounds": 1, "latency_p50_ci_low_ms": math.nan,
                 "latency_p50_ci_high_ms": math.nan, "throughput_ci_low_ips": math.nan,
                 "throughput_ci_high_ips": math.nan, "p50_ci_halfwidth_rel": math.nan, "interleave_group": "",
                 "group_cells": 1, "pinned_cpus": "", "config_id": "",
                 "nonfinite_fraction": math.nan, "peak_rss_mib": math.nan, "session_rss_mib": math.nan, "node": ""}
# The fields that make a row's number what it is, hashed into ``config_id`` (with the schema version).
IDENTITY_FIELDS = ("model", "variant", "dataset", "task", "runtime", "provider", "batch_size", "threads_requested",
                   "spinning", "io_mode", "provider_options", "onnx_sha256", "checkpoint_profile", "checkpoint_seed",
                   "checkpoint_sha256", "repeat", "pinned_cpus")


def series_node(r: BenchmarkRecord) -> str:
    """The node a row's series belongs to: its ``node`` and ``host`` (``<node>#<host>``: two nodes of one
    host name, or two host names of one cloned machine id, stay apart), or ``host:<host>`` for rows of
    schema 7 and older."""
    return f"{r.node}#{r.host}" if r.node else f"host:{r.host}"


def node_labels(rows) -> dict[str, str]:
    """:func:`series_node` -> a short label: the host name, with the node's IP (Ray) or machine id
    prefix (8 hex) after ``@`` where one host name has several nodes among ``rows``."""
    hosts: dict[str, set[str]] = defaultdict(set)
    node_of: dict[str, str] = {}
    for r in rows:
        key = series_node(r)
        hosts[r.host].add(key)
        node_of[key] = r.node
    out = {}
    for host, keys in hosts.items():
        for k in keys:
            n = node_of[k]
            tail = n.rpartition("@")[2] if n.startswith("ray:") else n.partition(":")[2][:8]
            out[k] = host if len(keys) == 1 else f"{host}@{tail}"
    return out


def config_id(values: dict) -> str:
    """sha256 prefix (16 hex) of the :data:`IDENTITY_FIELDS` in ``values`` and the schema version
    (``values["schema_version"]`` when given, as for a row read back from an older file; else this one)."""
    schema = values.get("schema_version", SCHEMA_VERSION)
    text = "|".join(f"{k}={values.get(k, '')}" for k in IDENTITY_FIELDS) + f"|schema={schema}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def error_record(error: str, **known) -> BenchmarkRecord:
    """A row for a cell that could not be measured: ``status`` ``error``, the message in
    ``error``, every measurement empty (NaN) or -1, identity fields from ``known``."""
    empty = {float: math.nan, int: -1, str: ""}
    values = {f.name: empty[_TYPES[f.name]] for f in fields(BenchmarkRecord) if f.name not in known}
    values.update(known, status="error", error=error.replace("\n", " "))
    values["schema_version"] = SCHEMA_VERSION
    values.setdefault("rounds", 0)
    values["config_id"] = known.get("config_id") or config_id(values)
    return BenchmarkRecord(**values)


class CsvAppender:
    """Appends rows to a CSV as each cell (or run) finishes (flushed and fsynced); the columns
    are the results schema unless ``fieldnames`` are given.

    The header is written with the first row, so a run that fails before any
    cell leaves no file; an interrupted run leaves a readable CSV of the
    finished cells.
    """

    def __init__(self, path: Path, fieldnames: list[str] | None = None) -> None:
        self.path = path
        self.fieldnames = fieldnames or COLUMNS
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create results folder {path.parent}: {exc.strerror}") from None
        if not os.access(path.parent, os.W_OK):
            raise UsageError(f"results folder is not writable: {path.parent}")
        # os.access says yes to root everywhere: open a file there to be sure (nameless where the system
        # has O_TMPFILE, so no interrupt can leave it behind)
        try:
            with tempfile.TemporaryFile(dir=path.parent):
                pass
        except OSError as exc:
            raise UsageError(f"cannot write in results folder {path.parent}: {exc.strerror}") from None

    def append(self, rec: BenchmarkRecord) -> None:
        """Append one results row."""
        self.append_row(rec.as_row())

    def check_appendable(self) -> None:
        """Refuse, before any work, a file this appender must not extend: a header other than its
        columns (another schema or another kind of CSV), or a last line without its newline (a
        torn write). An absent or empty file is fine.

        Raises:
            UsageError: naming the difference and how to proceed.
        """
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        try:
            with open(self.path, "rb") as fh:
                head = fh.readline().decode("utf-8").rstrip("\r\n")
                fh.seek(-1, os.SEEK_END)
                last = fh.read(1)
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {self.path}: {getattr(exc, 'strerror', None) or exc}") from None
        have = next(csv.reader([head]), [])
        if have != self.fieldnames:
            extra = [c for c in have if c not in self.fieldnames][:3]
            missing = [c for c in self.fieldnames if c not in have][:3]
            schema = "an older schema" if set(have) < set(self.fieldnames) else "another kind of CSV"
            raise UsageError(f"{self.path} has other columns ({schema}: missing {', '.join(missing) or '-'}, "
                             f"extra {', '.join(extra) or '-'}); rows are never appended to it: choose a new --out")
        if last != b"\n":
            raise UsageError(f"{self.path} ends in a partial row (an interrupted write); "
                             f"`mnistbench verify --repair {self.path}` drops it")

    def append_row(self, row: dict[str, object]) -> None:
        """Append one row given as a dict keyed by the appender's field names."""
        new = not self.path.exists() or self.path.stat().st_size == 0
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.fieldnames, lineterminator="\n")
        if new:
            w.writeheader()
        w.writerow(row)
        data = buf.getvalue().encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            before = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):  # a full disk: take back the partial row, keep the rest
                    os.ftruncate(fd, before)
                raise
        finally:
            os.close(fd)


_TYPES = get_type_hints(BenchmarkRecord)


def _cell(name: str, text: str):
    return parse_cell(_TYPES[name], text)


def parse_cell(kind: type, text: str):
    """A CSV cell as ``kind`` (float: '' is NaN; int; str as written). Raises ValueError."""
    if kind is float:
        return float(text) if text != "" else math.nan
    if kind is int:
        return int(text)
    return text


def _finite(r: BenchmarkRecord) -> bool:
    vals = (r.latency_p50_ms, r.throughput_ips, r.timed_wall_s)
    return all(math.isfinite(v) and v > 0 for v in vals) and r.timed_iters > 0


def read_csv(path: Path) -> list[BenchmarkRecord]:
    """Read a results CSV written by ``mnistbench run``.

    Raises:
        UsageError: the file is missing or unreadable, lacks columns of this
            schema, or has a row whose cells do not parse (the message names the row).
    """
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            have = reader.fieldnames or []
            missing = [c for c in COLUMNS if c not in have and c not in ADDED_COLUMNS]
            if missing:
                raise UsageError(f"{path} is not an mnistbench results CSV: missing columns {', '.join(missing[:5])}"
                                 + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
            rows = []
            for i, row in enumerate(reader, start=2):
                if None in row or any(v is None for v in row.values()):
                    raise UsageError(f"{path}, line {i}: the row has {'more' if None in row else 'fewer'} cells than "
                                     "the header (a torn or foreign row); `mnistbench verify --repair` drops a torn tail")
                try:
                    rec = BenchmarkRecord(**{c: _cell(c, row[c] or "") if c in row else ADDED_COLUMNS[c]
                                             for c in COLUMNS})
                except (ValueError, TypeError, OverflowError):
                    raise UsageError(f"{path}, line {i}: a cell does not parse as this schema") from None
                if rec.status == "ok" and not _finite(rec):
                    raise UsageError(f"{path}, line {i}: a measured row has a missing or non-finite latency or "
                                     "throughput (p50, throughput, wall time must be finite and positive)")
                rows.append(rec)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not a text CSV") from None
    except csv.Error as exc:  # e.g. a field over the csv module's limit, a NUL byte
        raise UsageError(f"{path} is not a readable CSV ({exc})") from None
    return rows


@contextlib.contextmanager
def writer_lock(path: Path):
    """Hold the one-writer lock of results file ``path`` (``<path>.lock``, an OS file lock through
    ``filelock``: the kernel releases it when the process ends, so a killed run never blocks the next).

    Raises:
        UsageError: another process holds it.
    """
    lock = filelock.FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise UsageError(f"another mnistbench process is writing {path}; wait for it to finish, or choose "
                         "another --out") from None
    except OSError as exc:
        raise UsageError(f"cannot lock {path}: {exc.strerror}") from None
    try:
        yield
    finally:
        lock.release()
