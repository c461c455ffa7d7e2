"""``mnistbench load``: every (model x variant) x runtime of a :class:`.config.LoadRequest` served
to LoadGen by a pool of workers with a dynamic batcher, ``repeat`` times (fresh sessions each
repeat, the order of the cells shuffled per repeat), one row a LoadGen test, peak search or
accuracy run appended to the load CSV as it finishes.

Files beside ``<out>.csv``: ``<out>.system.json`` (the machine, the command, LoadGen's version and
the limits), ``<out>.loadgen/<cell_id>/`` (LoadGen's summary and detail logs of the row's test; a
peak search also keeps ``tries.csv``, every rate it tried) and ``<out>.queries/<cell_id>.npz``
(:func:`.rows.save_timings`: per sample issue, start and end time and batch size). Each file appears whole (written
to a temporary name and renamed) before its row does; an interrupt leaves the rows already written.
"""

from __future__ import annotations

import math
import random
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...models.errors import UsageError
from ..launch.planning import resolve_targets
from ..measure import inputs
from ..measure.cells import model_sha256
from ..measure.config import Axes, RunRequest, Target
from ..measure.memory import MIB, PeakWindow, rss_bytes
from ..measure.records import CsvAppender, writer_lock
from ..measure.system import hygiene, write_system_json
from ..runtimes.base import get_runtime
from ..runtimes.runtime import CELL_ERRORS, GpuOptions, first_line
from . import rows as load_rows
from .config import LoadRequest
from .loadgen import Limits, loadgen, respond_with
from .logfiles import drop_partial, fresh_work, keep_peak_logs, logs_folder, publish_logs
from .outcome import error_row, loadgen_version, result_row, summary_line
from .rows import LoadRecord, config_id, read_load_csv
from .scenarios import PeakSearch, Scenario, accuracy_run, find_peak, run_point, samples_per_query
from .sut import BatchingSUT

Note = Callable[[str], None]
ESTIMATE_S = 0.5  # seconds per estimate (LoadGen's expected latency; the SUT's backlog rate)
EXPECTED_FACTOR = 0.7  # single/multi-stream: tell LoadGen a latency below the estimate (it then makes enough queries)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass
class LoadOutcome:
    """What :func:`execute` wrote: the rows (the whole file when resumed), the CSV and system JSON."""

    rows: list[LoadRecord]
    csv_path: Path
    system_path: Path | None = None


@dataclass(frozen=True)
class _Cell:
    target: Target
    runtime: str
    sha: str


def _run_request(req: LoadRequest) -> RunRequest:
    return RunRequest(req.names, Axes(runtimes=req.runtimes, providers=(req.provider,), threads=(req.threads,)),
                      variants=req.variants, profile=req.profile, seed=req.artifacts_seed, dataset=req.dataset,
                      onnx=req.onnx, layout=req.layout, preprocess=req.preprocess, null=req.null, reference=False,
                      allow_stale=req.allow_stale, data_dir=req.data_dir, artifacts_dir=req.artifacts_dir)


def _out_path(req: LoadRequest) -> Path:
    if req.resume:
        return req.out_path
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = req.out_path or Path(req.results_dir) / f"{stamp}-load-{req.scenario}.csv"
    inputs.check_csv_name(path, ", or add --resume to complete it")
    return path


def plan(req: LoadRequest, note: Note = _stderr) -> list[_Cell]:
    """The cells of ``req``: each target with each runtime that runs its variant on the provider.

    Raises:
        UsageError: no cell (no runtime serves these variants), or a fixed-batch graph that cannot
            take the batches the batcher forms.
    """
    from ..runtimes.foreign import inspect

    for name in req.runtimes:
        get_runtime(name)
    for path in req.onnx:  # before any target is built (and the null model written)
        fixed = inspect(Path(path), req.layout).fixed_batch
        if fixed is not None:
            raise UsageError(f"{Path(path).name} has a fixed batch size of {fixed}; the load scenarios send "
                             "batches of 1 to --max-batch: export it with a dynamic batch axis")
    targets = resolve_targets(_run_request(req), note)
    cells = []
    for t in targets:
        for name in req.runtimes:
            rt = get_runtime(name)
            if t.variant in rt.variants and rt.serves(req.provider) and not (rt.needs_checkpoint and t.build_torch is None):
                cells.append(_Cell(t, name, model_sha256(t.path) if t.path else ""))
    if not [c for c in cells if c.target.task != "null"]:
        raise UsageError(f"no runtime of {', '.join(req.runtimes)} serves variants {', '.join(req.variants)} "
                         f"on {req.provider}")
    return cells


def execute(req: LoadRequest, progress: Note = _stderr, note: Note = _stderr) -> LoadOutcome:
    """Serve ``req`` to LoadGen and write its rows; see the module.

    Raises:
        UsageError: LoadGen missing, unusable input (checked before any test), an existing --out
            without --resume; ProviderUnavailableError; KeyboardInterrupt (finished rows kept).
    """
    lg = loadgen()
    csv_path = _out_path(req)
    cells = plan(req, note)  # every input checked before the CSV's folder is made
    sink = CsvAppender(csv_path, load_rows.COLUMNS)
    with writer_lock(csv_path):
        sink.check_appendable()
        done = {r.cell_id for r in read_load_csv(csv_path)} if req.resume and csv_path.exists() else set()
        before = hygiene()
        system_path = csv_path.with_suffix(".system.json")
        limits = Limits(req.min_duration_s, req.min_query_count)
        rows = []
        for r in range(req.repeat):
            order = list(cells)
            random.Random(req.seed * 1000 + r).shuffle(order)
            measured = ([_interleaved_round(lg, order, req, r, limits, csv_path, done, progress)] if req.interleave
                        else [_measure_cell(lg, cell, req, r, limits, csv_path, done, progress) for cell in order])
            for gen in measured:
                for rec, t in gen:
                    _save_timings(csv_path, rec.cell_id, t)
                    sink.append_row(rec.as_row())
                    rows.append(rec)
        write_system_json(system_path, {"results_csv": csv_path.name, "command": req.command or " ".join(sys.argv),
                                        "loadgen_version": loadgen_version(lg), "limits": limits.__dict__,
                                        "load_request": _describe(req), "machine_before": before,
                                        "machine_after": hygiene()})
    return LoadOutcome(read_load_csv(csv_path) if req.resume else rows, csv_path, system_path)


def _describe(req: LoadRequest) -> dict:
    from ..measure.config import to_dict

    return {k: v for k, v in to_dict(req).items() if k != "command"}


def _kinds(req: LoadRequest) -> list[tuple[str, float]]:
    if req.scenario != "server":
        return [("test", math.nan)]
    if req.find_peak:
        return [("peak", math.nan)]
    return [("test", q) for q in (req.qps_points or (req.target_qps,))]


def _identity(cell: _Cell, req: LoadRequest, kind: str, qps: float) -> dict:
    t = cell.target
    server = req.scenario == "server"
    return {"model": t.name, "variant": t.variant, "task": t.task, "dataset": t.dataset, "runtime": cell.runtime,
            "provider": req.provider, "threads": req.threads, "workers": req.workers, "max_batch": req.max_batch,
            "max_queue_delay_ms": float(req.max_queue_delay_ms), "scenario": req.scenario if kind != "accuracy"
            else "offline", "kind": kind, "target_qps": float(qps),
            "latency_bound_ms": float(req.latency_bound_ms) if server and kind != "accuracy" else math.nan,
            "latency_percentile": float(req.latency_percentile) if server and kind != "accuracy" else math.nan,
            "min_duration_s": float(req.min_duration_s), "min_query_count": req.min_query_count,
            "onnx_sha256": cell.sha, "checkpoint_profile": t.profile, "checkpoint_seed": t.seed}


@dataclass
class _Open:
    """A cell's sessions, system under test and LoadGen scenario for one repeat, and its rows to do
    (kind, rate, identity, config id)."""

    cell: _Cell
    todo: list
    sessions: list
    sut: BatchingSUT
    sc: Scenario
    session_mib: float


def _open_cell(lg, cell: _Cell, req: LoadRequest, r: int, limits: Limits, done: set[str], progress: Note):
    """(the open cell, or None, and the error rows when its sessions could not open); (None, []) when
    every row of the cell in repeat ``r`` is done already."""
    wanted = _kinds(req) + ([("accuracy", math.nan)] if req.accuracy and r == 0 and cell.target.task == "classify"
                            else [])
    todo = [(k, q, _identity(cell, req, k, q)) for k, q in wanted]
    todo = [(k, q, ident, config_id(ident)) for k, q, ident in todo if f"{config_id(ident)}-r{r}" not in done]
    if not todo:
        return None, []
    label = f"{cell.target.name}:{cell.target.variant} on {cell.runtime}"
    progress(f"repeat {r + 1}/{req.repeat}: {label}, {req.scenario} (workers {req.workers}, max batch "
             f"{req.max_batch}, delay {req.max_queue_delay_ms:g} ms)")
    rt = get_runtime(cell.runtime)
    rss0 = rss_bytes()
    try:
        sessions = [rt.open(cell.target, req.provider, req.threads, None, "end-to-end", GpuOptions())
                    for _ in range(req.workers)]
    except CELL_ERRORS as exc:
        return None, [(error_row(ident, cid, r, sessions_error=first_line(exc)), np.empty((0, 4), np.int64))
                      for k, q, ident, cid in todo]
    session_mib = (rss_bytes() - rss0) / MIB
    x = cell.target.inputs
    expected_ms = _expected_ms(sessions[0], x, req)
    capacity = _sut_rate(sessions, x, req)
    sc = Scenario(req.scenario, limits, req.latency_bound_ms, req.latency_percentile, expected_ms * EXPECTED_FACTOR,
                  capacity, req.seed + r)
    sut = BatchingSUT(sessions, x, respond_with(lg), req.max_batch, req.max_queue_delay_ms)
    return _Open(cell, todo, sessions, sut, sc, session_mib), []


def _measure_cell(lg, cell: _Cell, req: LoadRequest, r: int, limits: Limits, csv_path: Path, done: set[str],
                  progress: Note):
    """Yield (row, per-sample timings) for each test of one cell in one repeat."""
    c, errors = _open_cell(lg, cell, req, r, limits, done, progress)
    yield from errors
    if c is None:
        return
    try:
        yield from _rows_of(lg, c, c.todo, r, limits, logs_folder(csv_path), progress)
    finally:
        c.sut.close()


def _rows_of(lg, c: _Open, todo: list, r: int, limits: Limits, logs: Path, progress: Note):
    """Yield (row, per-sample timings) of each row of ``todo`` of the open cell ``c``, one after another."""
    for k, q, ident, cid in todo:
        cell_id = f"{cid}-r{r}"
        work = fresh_work(logs, cell_id)
        window = PeakWindow()
        t0 = time.perf_counter()
        try:
            rec, t = _one(lg, c.sut, c.cell, k, q, ident, cid, r, c.sc, limits, work, window, t0, c.session_mib,
                          c.sessions[0], progress)
        except KeyboardInterrupt:
            drop_partial(work, logs)
            raise
        publish_logs(work, logs / cell_id)
        progress(f"  {summary_line(rec)}")
        yield rec, t


def _interleaved_round(lg, cells: list[_Cell], req: LoadRequest, r: int, limits: Limits, csv_path: Path,
                       done: set[str], progress: Note):
    """Yield (row, per-sample timings) of every cell's peak search in repeat ``r``, the searches taking
    turns a LoadGen test at a time (``--interleave``): every cell's sessions open at once, so that the
    host's drift within the round falls on every cell alike. A row's ``wall_s`` is its own tests';
    its ``peak_rss_mib`` is the process's over the round, with every cell's sessions open."""
    logs = logs_folder(csv_path)
    opened: list[_Open] = []
    try:
        for cell in cells:
            c, errors = _open_cell(lg, cell, req, r, limits, done, progress)
            yield from errors
            if c is not None:
                opened.append(c)
        window = PeakWindow()
        searches = []
        for c in opened:
            peaks = [row for row in c.todo if row[0] == "peak"]
            if not peaks:
                continue
            (k, q, ident, cid), = peaks  # one peak row a cell and repeat
            work = fresh_work(logs, f"{cid}-r{r}")
            label = f"{c.cell.target.name}:{c.cell.target.variant} on {c.cell.runtime}"
            searches.append((c, ident, cid, work, PeakSearch(lg, c.sut, len(c.cell.target.inputs), c.sc, work,
                                                             lambda s, label=label: progress(f"{label}: {s.strip()}"))))
        try:
            while any(not s.done for *_, s in searches):
                for *_, s in searches:
                    s.step()
        except KeyboardInterrupt:
            for _, _, _, work, _ in searches:
                drop_partial(work, logs)
            raise
        for c, ident, cid, work, s in searches:
            peak = s.result()
            rec = result_row(ident, cid, r, peak.best, window.peak_mib(), c.session_mib, s.wall_s, c.sessions[0], peak=peak)
            keep_peak_logs(work, peak)
            publish_logs(work, logs / f"{cid}-r{r}")
            progress(f"  {c.cell.target.name}:{c.cell.target.variant}: {summary_line(rec)}")
            yield rec, peak.best.timings if peak.best else np.empty((0, 4), np.int64)
        for c in opened:  # the rest (the accuracy run) one cell after another
            yield from _rows_of(lg, c, [row for row in c.todo if row[0] != "peak"], r, limits, logs, progress)
    finally:
        for c in opened:
            c.sut.close()


def _one(lg, sut, cell, k, q, ident, cid, r, sc, limits, work, window, t0, session_mib, session, progress):
    """One row of a cell (the test, peak search or accuracy run of kind ``k``) and its timings."""
    x = cell.target.inputs
    if k == "accuracy":
        acc = accuracy_run(lg, sut, cell.target.labels, Scenario("offline", limits, capacity_qps=sc.capacity_qps,
                                                                  seed=sc.seed), work)
        return (result_row(ident, cid, r, None, window.peak_mib(), session_mib, time.perf_counter() - t0, session,
                     accuracy=acc), np.empty((0, 4), np.int64))
    if k == "peak":
        peak = find_peak(lg, sut, len(x), sc, work, progress)
        rec = result_row(ident, cid, r, peak.best, window.peak_mib(), session_mib, time.perf_counter() - t0, session,
                   peak=peak)
        keep_peak_logs(work, peak)
        return rec, peak.best.timings if peak.best else np.empty((0, 4), np.int64)
    p = run_point(lg, sut, len(x), sc, work, q)
    return result_row(ident, cid, r, p, window.peak_mib(), session_mib, time.perf_counter() - t0, session), p.timings


def _expected_ms(session, x: np.ndarray, req: LoadRequest) -> float:
    """The ms a query takes (LoadGen's expected latency): the median of closed-loop calls for
    :data:`ESTIMATE_S` at the query's size (8 for multi-stream, capped by --max-batch; else 1), plus
    the queue delay when the batcher would wait for more."""
    per_query = min(samples_per_query(req.scenario), req.max_batch)
    xb = np.ascontiguousarray(x[:per_query])
    session.run(xb)
    times, end = [], time.perf_counter() + ESTIMATE_S
    while time.perf_counter() < end or len(times) < 5:
        t = time.perf_counter()
        session.run(xb)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1000 + (req.max_queue_delay_ms if per_query < req.max_batch else 0.0)


def _sut_rate(sessions: list, x: np.ndarray, req: LoadRequest) -> float:
    """Samples/s of the whole system under test (workers, batcher, Python's share) on an offered
    backlog: :data:`ESTIMATE_S` worth of samples queued at once, timed until all are answered. A
    bare closed loop over-states it for fast models (the null model: 7 million a second against
    the 250,000 the batcher delivers here), and LoadGen's Offline test issues that many samples."""
    from types import SimpleNamespace

    done = threading.Event()
    answered = [0]
    n = max(64 * req.max_batch, 256)

    lock = threading.Lock()

    def respond(ids, pred) -> None:
        with lock:
            answered[0] += len(ids)
            if answered[0] >= n:
                done.set()

    sut = BatchingSUT(sessions, x, respond, req.max_batch, 0.0)
    try:
        queries = [SimpleNamespace(id=i, index=i % len(x)) for i in range(n)]
        t0 = time.perf_counter()
        sut.issue(queries)
        done.wait(60)
        rate = answered[0] / max(time.perf_counter() - t0, 1e-9)
        # once more, warm, with about ESTIMATE_S worth (at least the first backlog again); the faster counts
        n = min(max(int(rate * ESTIMATE_S), n), 2_000_000)
        answered[0], done = 0, threading.Event()
        t0 = time.perf_counter()
        sut.issue([SimpleNamespace(id=i, index=i % len(x)) for i in range(n)])
        done.wait(60)
        rate = max(rate, answered[0] / max(time.perf_counter() - t0, 1e-9))
    finally:
        sut.close()
    return rate


def _save_timings(csv_path: Path, cell_id: str, t: np.ndarray) -> None:
    load_rows.save_timings(csv_path.with_name(csv_path.stem + ".queries"), cell_id, t)


