"""`mnistbench verify` of a load CSV (``mnistbench load``'s results, schema ``load-1``): the same
promises as for ``run`` results, checked against the files a load run writes beside its CSV.

Checks, per load CSV:

- every line is a complete row (a torn last line is what a crash during an append leaves) and every
  row reads as the schema (:func:`.rows.read_load_csv`);
- each row's ``config_id`` matches its identity fields and its ``cell_id`` is ``<config_id>-r<repeat>``;
  no cell appears twice (two writers, or a resume that did not know the file);
- the per-sample timings (``<stem>.queries/<cell_id>.npz``): when the folder exists, every measured
  row has its file, and the file agrees with the row: its sample count with LoadGen's query count
  (one sample a query for single-stream and Server, :data:`.loadgen.MULTI_STREAM_SAMPLES` a query for
  multi-stream, one query for Offline), its mean batch with ``batch_mean`` and its median compute
  time with ``compute_p50_ms`` (to the microsecond the file keeps). A folder that is absent is a
  run whose timings were not kept (the committed studies keep only the CSVs and logs): said, not a
  problem;
- LoadGen's logs (``<stem>.loadgen/<cell_id>/``): when the folder exists, every measured test row has
  its summary log;
- nothing left over: a test's ``.partial`` log folder, temporary files, timings or logs without a row.

``repair=True`` holds the writer lock (as for run CSVs), drops a torn tail and removes what is left
over; it never edits a measurement.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ...models.errors import UsageError
from ...models.files import atomic_write_bytes
from ..analysis.verify import Report, _torn_tail, repair_lock
from .loadgen import MULTI_STREAM_SAMPLES
from .rows import IDENTITY_FIELDS, LoadRecord, config_id, read_load_csv, read_timings

COMPUTE_TOLERANCE_MS = 0.002  # the timings file keeps microseconds: a median of differences moves < 2 us


def queries_dir(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.stem + ".queries")


def logs_dir(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.stem + ".loadgen")


def verify_load(path: Path, repair: bool = False) -> Report:
    """Check one load CSV (see the module); ``repair`` mends under the writer lock.

    Raises:
        UsageError: the file is missing or not a load CSV of this schema, or (with ``repair``) a load
            run is writing it.
    """
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    if not repair:
        return _verify(path, False)
    with repair_lock(path):
        return _verify(path, True)


def _verify(path: Path, repair: bool) -> Report:
    rep = Report(path)
    tail = _torn_tail(path)
    if tail is not None:
        rep.problems.append(f"the last line is a partial row ({len(tail)} bytes without a newline)")
        if not repair:
            return rep
        data = path.read_bytes()
        atomic_write_bytes(path, data[: len(data) - len(tail)])
        rep.repaired.append("dropped the partial last line")
    rows = read_load_csv(path)
    rep.rows = len(rows)
    seen: dict[str, int] = {}
    for r in rows:
        if r.config_id != config_id({k: getattr(r, k) for k in IDENTITY_FIELDS}):
            rep.problems.append(f"{r.cell_id}: config_id does not match the row's identity fields (edited by hand?)")
        if r.cell_id != f"{r.config_id}-r{r.repeat}":
            rep.problems.append(f"{r.cell_id}: cell_id is not <config_id>-r<repeat>")
        seen[r.cell_id] = seen.get(r.cell_id, 0) + 1
    rep.problems += [f"{c}: {n} rows of the same cell (two writers, or a resume that did not know the file)"
                     for c, n in seen.items() if n > 1]
    _check_timings(path, rows, rep, repair)
    _check_logs(path, rows, rep, repair)
    return rep


def _check_timings(path: Path, rows: list[LoadRecord], rep: Report, repair: bool) -> None:
    folder = queries_dir(path)
    if not folder.is_dir():
        if any(r.status == "ok" for r in rows):
            rep.notes.append(f"no per-sample timings beside it ({folder.name}/ was not kept)")
        return
    files = {f.stem: f for f in folder.glob("*.npz") if not f.name.startswith(".")}
    missing = []
    for r in rows:
        if r.status != "ok":
            continue
        if r.cell_id not in files:
            missing.append(r.cell_id)
            continue
        try:
            t = read_timings(files[r.cell_id])
        except UsageError as exc:
            rep.problems.append(str(exc))
            continue
        why = _disagrees(r, t)
        if why:
            rep.problems.append(f"{r.cell_id}: the timings do not match the row ({why})")
    if missing:
        rep.problems.append(f"{len(missing)} measured rows have no timings file (e.g. {missing[0]})")
    orphans = sorted(set(files) - {r.cell_id for r in rows})
    left = sorted(folder.glob(".*"))
    _leftovers(rep, repair, [files[c] for c in orphans], f"timings files without a row in {folder.name}/")
    _leftovers(rep, repair, left, f"temporary files in {folder.name}/")


def _disagrees(r: LoadRecord, t: np.ndarray) -> str:
    """Why the timings ``t`` (int64 (n, 4)) cannot be row ``r``'s, or ''."""
    n = len(t)
    if r.kind == "accuracy":
        return "" if n > 0 else "no samples"
    expected = {"multi-stream": MULTI_STREAM_SAMPLES * r.query_count, "offline": None}.get(r.scenario, r.query_count)
    if r.scenario == "offline" and (r.query_count != 1 or n == 0):
        return f"Offline is one query of every sample: query count {r.query_count}, {n} samples"
    if expected is not None and n != expected:
        return f"{n} samples for {r.query_count} queries of {r.scenario}"
    if np.isfinite(r.batch_mean) and not np.isclose(t[:, 3].mean(), r.batch_mean, rtol=1e-9):
        return f"mean batch {t[:, 3].mean():.4f} vs {r.batch_mean:.4f}"
    compute = float(np.percentile((t[:, 2] - t[:, 1]) / 1e6, 50))
    if np.isfinite(r.compute_p50_ms) and abs(compute - r.compute_p50_ms) > COMPUTE_TOLERANCE_MS:
        return f"median compute {compute:.4f} ms vs {r.compute_p50_ms:.4f} ms"
    return ""


def _check_logs(path: Path, rows: list[LoadRecord], rep: Report, repair: bool) -> None:
    folder = logs_dir(path)
    if not folder.is_dir():
        return
    have = {d.name: d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")}
    no_log = [r.cell_id for r in rows if r.status == "ok" and r.kind != "accuracy"
              and not (have.get(r.cell_id) and (have[r.cell_id] / "mlperf_log_summary.txt").is_file())]
    if no_log:
        rep.problems.append(f"{len(no_log)} measured rows have no LoadGen summary log in {folder.name}/ "
                            f"(e.g. {no_log[0]})")
    orphans = [have[c] for c in sorted(set(have) - {r.cell_id for r in rows})]
    _leftovers(rep, repair, orphans, f"LoadGen log folders without a row in {folder.name}/")
    _leftovers(rep, repair, sorted(folder.glob(".*")), f"partial LoadGen log folders in {folder.name}/ "
               "(an interrupted test)")


def _leftovers(rep: Report, repair: bool, paths: list[Path], what: str) -> None:
    if not paths:
        return
    if not repair:
        rep.problems.append(f"{len(paths)} {what} (e.g. {paths[0].name})")
        return
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    rep.repaired.append(f"removed {len(paths)} {what}")
