"""The benchmark matrix: model x runtime x provider x threads x spinning x batch size.

Per model, PyTorch eager on CPU scores the full test set once; that output is
the reference for every runtime's agreement columns. Per model, runtime and
provider (not per thread setting, which does not change outputs), the runtime
scores the full test set (top-1 accuracy, or MSE for
reconstruction models) in chunks of :data:`EVAL_CHUNK`, and for ONNX Runtime
one profiled inference audits node placement. Each cell then gets a fresh
session, so cold start (session creation, first inference at that batch size)
is measured per row and no cell inherits another's memory arena. The cell's
input, the first ``batch_size`` test images preprocessed as the model expects,
is prepared before the clock starts.

Measurement is interleaved (randomized multiple interleaved trials: Abedi and Brecht, ICPE 2017):
every cell's session stays alive, and the timed calls are taken in rounds, each round visiting
every cell once in a fresh random order for one short block. A burst of load or a change of
clock frequency then falls on a block of many cells instead of on whole cells, and the spread of
a cell's blocks gives its confidence intervals (:mod:`bench.metrics`). Raw per-call samples, with
their block boundaries, are kept in ``<csv stem>.samples/<cell_id>.npz`` (:mod:`bench.samples`).
"""

from __future__ import annotations

import itertools
import random
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import psutil
import torch

from ... import __version__ as _mnistbench_version
from ...exporters.onnx import default_opset
from ...models.errors import ProviderUnavailableError, StorageError
from ..runtimes.base import get_runtime, runtime_names, runtime_variants
from ..runtimes.runtime import CELL_ERRORS, GRAPH_CAPTURE_CALLS, Placement, cuda_graph_blockers
from ..runtimes.torch_eager import TorchRuntime
from . import memory
from .cells import (
    EVAL_CHUNK,
    NAN,
    QUALITY_COLUMNS,
    Cell,
    _Cell,
    _deferred_sigint,
    _one_line,
    _record,
    applies,
    batch_input,
    full_output,
    model_sha256,
    quality,
    resume_keys,
    session_factory,
)
from .config import AUTO, DEFAULT_BATCH_SIZES, MAX_LIVE_SESSIONS, PRECISIONS, Axes, Group, Target
from .records import BenchmarkRecord, CsvAppender, config_id, error_record
from .samples import CellSamples
from .samples import save as save_samples
from .system import cpu_model, node_id
from .threads import (
    AUTO_MARGIN,
    PROBE,
    SPIN_TEXT,
    AutoThreadsCache,
    auto_threads_fixed,
    autotune_threads,
    thread_candidates,
)
from .timing import TimingConfig, measure_block, reentry_calls, warm_up

RUNTIMES = runtime_names()  # the registered runtimes (bench.runtimes.base); see RUNTIME_VARIANTS
# Which variants each runtime runs (its Runtime.variants): ONNX Runtime every ONNX file; PyTorch the
# checkpoint at fp32 or under bf16 autocast (never an int8/fp16 file); OpenVINO the fp32 file at either
# precision hint and the int8 QDQ file.
RUNTIME_VARIANTS = runtime_variants()
# the runner's names before the split into config, cells and threads, importable from here still
__all__ = ["AUTO", "AUTO_MARGIN", "Axes", "AutoThreadsCache", "Cell", "DEFAULT_BATCH_SIZES", "EVAL_CHUNK", "Group",
           "MAX_LIVE_SESSIONS", "MatrixRun", "PRECISIONS", "PROBE", "QUALITY_COLUMNS", "RUNTIMES", "RUNTIME_VARIANTS",
           "RunProgress", "Target", "_Cell", "_deferred_sigint", "_record", "applies", "auto_threads_fixed", "autotune_threads",
           "batch_input", "full_output", "model_sha256", "plan", "quality", "resume_keys", "run_matrix",
           "session_factory", "thread_candidates"]
MIN_FREE_MEMORY_FRACTION = 0.10  # close a group early when free host memory falls below this

# progress(description, cells_done, cells_total)
RunProgress = Callable[[str, int, int], None]


def plan(targets: list[Target], axes: Axes, shuffle_seed: int | None = None) -> list[Group]:
    """The cells, grouped by (target, runtime, provider, threads, spinning, io mode); groups shuffled when asked.

    Torch cells are planned only for targets with ``build_torch``, once per thread count
    (PyTorch has no spinning option; their spinning is None).
    """
    groups: list[Group] = []
    for t in targets:
        for rt, prov, th, sp, io in itertools.product(axes.runtimes, axes.providers, axes.threads, axes.spinning,
                                                      axes.io_modes):
            r = get_runtime(rt)
            if not r.applies(prov, io) or t.variant not in r.variants:
                continue
            if r.needs_checkpoint and t.build_torch is None:
                continue
            if not r.has_spinning:
                sp = None
            # by identity: targets of one model (fp32, bf16) hold equal-valued numpy arrays, which == cannot compare
            if not any(g.target is t and g[1:] == (rt, prov, th, sp, io) for g in groups):
                groups.append(Group(t, rt, prov, th, sp, io))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(groups)
    return groups


@dataclass
class Prepared:
    """A cell's first use, before timing: its session, the first call at its shape, the warm-up."""

    rt: object
    x: np.ndarray
    threads_used: int
    first_ms: float
    warmup: int
    call_s: float
    session_rss_mib: float  # resident growth from before the session opened to the end of the warm-up


class MatrixRun:
    """One interleaved run of the matrix into one results CSV: :meth:`plan` the cells, then for each
    group :meth:`prepare` its cells, :meth:`measure` them in rounds and :meth:`commit` their rows and
    samples together. :func:`run_matrix` is the one-call form; the arguments are its."""

    def __init__(self, targets: list[Target], axes: Axes, out_csv: Path, *, timing: TimingConfig,
                 peak_gflops: float | dict[str, float], repeat: int, shuffle_seed: int | None,
                 progress: RunProgress | None, done: set[str] | None, score: bool, max_live: int,
                 pinned_cpus: str, auto_cache: Path | None) -> None:
        self.targets, self.axes, self.out_csv, self.timing = targets, axes, out_csv, timing
        self.peaks = peak_gflops if isinstance(peak_gflops, dict) else {"cpu": peak_gflops}
        self.repeat, self.shuffle_seed, self.progress, self.score = repeat, shuffle_seed, progress, score
        self.max_live, self.pinned_cpus, self.done = max_live, pinned_cpus, done or set()
        self.run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        self.host, self.cpu, self.node = socket.gethostname(), cpu_model(), node_id()
        self.sink = CsvAppender(out_csv)
        self.rows: list[BenchmarkRecord] = []
        self.order_rng = random.Random(shuffle_seed if shuffle_seed is not None else uuid.uuid4().int)
        self.refs: dict[str, np.ndarray | None] = {}
        self.meta: dict[Path, tuple[str, int]] = {}  # per ONNX file: sha256, opset (variants share a name, not a file)
        self.scored: dict[tuple[Path, str, str, str], tuple[dict, Placement]] = {}
        self.auto_threads = AutoThreadsCache(auto_cache)
        self.total = 0

    def identity(self, g: Group, b: int) -> dict:
        """The identity fields of the row of group ``g`` at batch size ``b`` (``config_id`` included)."""
        t = g.target
        if t.path not in self.meta:
            proto = onnx.load(str(t.path), load_external_data=False)
            self.meta[t.path] = (model_sha256(t.path, proto), default_opset(proto))
        sha, opset = self.meta[t.path]
        rt = get_runtime(g.runtime)
        v = dict(run_id=self.run_id, repeat=self.repeat, host=self.host, node=self.node, model=t.name, variant=t.variant,
                 dataset=t.dataset, task=t.task, runtime=g.runtime, provider=g.provider, batch_size=b,
                 threads_requested="auto" if g.threads == AUTO else str(g.threads),
                 spinning=SPIN_TEXT[g.spinning] if rt.has_spinning else "n/a", io_mode=g.io_mode,
                 provider_options=rt.options_label(t, g.provider, g.io_mode, self.axes.gpu), onnx_sha256=sha,
                 opset=opset, cpu_model=self.cpu, onnxruntime_version=ort.__version__,
                 torch_version=torch.__version__, onnx_version=onnx.__version__,
                 mnistbench_version=_mnistbench_version, checkpoint_profile=t.profile, checkpoint_seed=t.seed,
                 checkpoint_sha256=t.checkpoint_sha256, pinned_cpus=self.pinned_cpus)
        v["config_id"] = config_id(v)
        return v

    def plan(self) -> tuple[list[tuple[Group, int]], list[tuple[Group, int]]]:
        """(the model cells still to measure, the reference network's cells), each as (group, batch)."""
        planned = [(g, b) for g in plan(self.targets, self.axes, self.shuffle_seed)
                   for b in g.target.batch_sizes(self.axes.batch_sizes)]
        todo = [c for c in planned if c[0].target.task != "reference" and self.identity(*c)["config_id"] not in self.done]
        return todo, [c for c in planned if c[0].target.task == "reference"]

    def commit(self, recs: list[BenchmarkRecord], samples: list[CellSamples | None]) -> None:
        """Write a group's samples, then its rows; Ctrl-C is held until both are down.

        Raises:
            StorageError: the disk refused them (earlier groups' rows stay whole).
        """
        with _deferred_sigint():  # a group's samples and rows land together, or neither
            try:
                for rec, smp in zip(recs, samples):
                    if smp is not None:
                        save_samples(self.out_csv, rec.cell_id, smp)
                for rec in recs:
                    self.sink.append(rec)
            except StorageError:
                raise
            except OSError as exc:  # a full disk: earlier groups' rows stay whole, this group is not written
                raise StorageError(f"cannot write the results of {len(recs)} cells to {self.out_csv}: "
                                   f"{exc.strerror or exc}; the rows already there are whole "
                                   "(`mnistbench verify` checks them; --resume measures the rest)") from None
        self.rows.extend(recs)

    def next_cell_id(self, offset: int = 0) -> str:
        return f"{self.run_id}-r{self.repeat}-{len(self.rows) + offset:04d}"

    def error_row(self, values: dict, message: str) -> None:
        self.commit([error_record(message, **values, cell_id=self.next_cell_id(), timestamp_utc=_now())], [None])

    def _say(self, text: str) -> None:
        if self.progress:
            self.progress(text, len([r for r in self.rows if r.task != "reference"]), self.total)

    def _scored(self, g: Group) -> tuple[dict, Placement]:
        """The quality columns and node placement of ``g``'s model on its runtime and provider, once:
        io mode, threads and spinning do not change the outputs, so they are scored end-to-end."""
        t, impl = g.target, get_runtime(g.runtime)
        if t.name not in self.refs:  # the PyTorch reference is per model, shared by its variants
            self.refs[t.name] = (full_output(TorchRuntime(t.build_torch, "cpu"), t.inputs)
                                 if self.score and t.build_torch else None)
        key = (t.path, t.variant, g.runtime, g.provider)  # bf16 rows share the fp32 file
        if key not in self.scored:
            scorer = session_factory(t, g.runtime, g.provider, g.threads, g.spinning, "end-to-end", self.axes.gpu)()
            q = (quality(t, full_output(scorer, t.inputs, t.fixed_batch), self.refs[t.name]) if self.score else
                 {k: NAN for k in QUALITY_COLUMNS})
            placement = (impl.placement(t.path, g.provider, g.threads, g.spinning, self.axes.gpu,
                                        batch_input(t.inputs, t.fixed_batch or 1))
                         or Placement(-1, -1, -1, -1, {}))
            self.scored[key] = (q, placement)
        return self.scored[key]

    def _session(self, g: Group, b: int, values: dict) -> Prepared:
        """A fresh session of ``g`` at batch ``b``, its first call timed, then warmed up."""
        t, impl = g.target, get_runtime(g.runtime)
        x = batch_input(t.inputs, b)
        rss0 = memory.rss_bytes()
        used = max(g.threads, 0)
        if g.threads == AUTO and impl.tunes_threads:
            used = self.auto_threads.get(AutoThreadsCache.key(values["onnx_sha256"], g.provider, g.spinning, b),
                                         lambda: autotune_threads(t.path, g.provider, g.spinning, x, self.axes.gpu))
            rt = impl.open(t, g.provider, used, g.spinning, g.io_mode, self.axes.gpu)
        else:
            rt = session_factory(t, g.runtime, g.provider, g.threads, g.spinning, g.io_mode, self.axes.gpu)()
        used = getattr(rt, "threads_used", 0) or used  # OpenVINO reports the count it really uses
        x = x.astype(rt.input_dtype, copy=False)  # the fp16-io variant takes float16, converted now
        rt.prepare(x)  # device modes: input on the GPU and bound before any clock
        t0 = time.perf_counter()
        rt.run(x)  # first call at this shape: cuDNN algorithm search, session arena growth
        first_ms = (time.perf_counter() - t0) * 1e3
        for _ in range(GRAPH_CAPTURE_CALLS - 1 if g.io_mode == "device-graph" else 0):
            rt.run(x)  # ONNX Runtime's regular runs, then the capture: never in the timed calls
        t0 = time.perf_counter()
        warm = warm_up(lambda: rt.run(x), self.timing)
        call_s = (time.perf_counter() - t0) / max(warm, 1)
        return Prepared(rt, x, used, first_ms, warm, call_s, (memory.rss_bytes() - rss0) / memory.MIB)

    def prepare(self, g: Group, b: int) -> Cell | None:
        """The cell of ``g`` at batch ``b``, ready to time; None when it failed (its error row is
        written; a reference cell that fails only costs that group its drift control)."""
        values = self.identity(g, b)
        self._say(f"{g.label()}: batch {b}, preparing")
        try:
            q, placement = self._scored(g)
            if g.io_mode == "device-graph" and (why := cuda_graph_blockers(placement)):
                raise ProviderUnavailableError(f"{g.target.name} cannot run as one CUDA graph: {why}")
            p = self._session(g, b, values)
        except CELL_ERRORS as exc:
            if g.target.task == "reference":
                return None  # no drift control for this group (compare says so), never a failed run
            self.error_row(values, _one_line(exc))  # the cells before and after it still run
            return None
        return Cell(g, b, values, p.rt, p.x, p.threads_used, p.first_ms, p.warmup, q, placement,
                    ";".join(p.rt.providers_used), p.rt.create_ms, p.call_s, session_rss_mib=p.session_rss_mib)

    def measure(self, cells: list[Cell], number: int) -> None:
        """Time ``cells`` in ``timing.rounds`` rounds, a fresh random order each round, one block a cell."""
        for r in range(self.timing.rounds):
            live = [c for c in cells if not c.error]
            self.order_rng.shuffle(live)
            self._say(f"group {number}: round {r + 1}/{self.timing.rounds} over {len(live)} cells")
            for c in live:
                window = memory.PeakWindow()  # outside the timed calls: a reset before, a read after
                try:
                    ns, wall = measure_block(lambda: c.rt.run(c.x), self.timing.block_iters, self.timing.block_s,
                                             reentry_calls(c.call_s, self.timing.block_s))
                except CELL_ERRORS as exc:
                    c.error = _one_line(exc)
                    continue
                c.blocks.append(ns)
                c.walls.append(wall)
                c.rounds.append(r)
                c.peak_rss_mib = max(c.peak_rss_mib, window.peak_mib())

    def measure_group(self, cells: list[Cell], number: int) -> None:
        """Measure a group, release its sessions, and commit its rows and samples."""
        self.measure(cells, number)
        recs, smps = [], []
        for c in cells:
            c.rt = None  # release the session (and its device memory) before the next group is built
            if c.error:
                recs.append(error_record(c.error, **c.values, cell_id=self.next_cell_id(len(recs)),
                                         timestamp_utc=_now()))
                smps.append(None)
                continue
            smp = CellSamples.from_blocks(c.blocks, c.walls, c.rounds)
            recs.append(_record(c, smp, self.next_cell_id(len(recs)), self.peaks, self.score, number, len(cells)))
            smps.append(smp)
        self.commit(recs, smps)

    def run(self) -> list[BenchmarkRecord]:
        """Every group in turn (at most ``max_live`` model cells, fewer when memory runs low, each with
        the reference network at its providers and batch sizes); the rows, in the order written."""
        todo, ref_cells = self.plan()
        self.total = len(todo)
        group_no = 0
        pending = list(todo)
        while pending:
            group_no += 1
            cells: list[Cell] = []
            while pending and len(cells) < self.max_live:
                c = self.prepare(*pending.pop(0))
                if c is not None:
                    cells.append(c)
                if cells and _memory_low():
                    break  # fall back to groups: measure what is held, then build the rest
            if cells:
                here = {(c.group.provider, c.batch) for c in cells}
                refs = [c for c in (self.prepare(g, b) for g, b in ref_cells if (g.provider, b) in here) if c is not None]
                self.measure_group(refs + cells, group_no)
        return self.rows


def run_matrix(
    targets: list[Target],
    axes: Axes,
    out_csv: Path,
    *,
    timing: TimingConfig = TimingConfig(),
    peak_gflops: float | dict[str, float] = NAN,
    repeat: int = 0,
    shuffle_seed: int | None = None,
    progress: RunProgress | None = None,
    done: set[str] | None = None,
    score: bool = True,
    max_live: int = MAX_LIVE_SESSIONS,
    pinned_cpus: str = "",
    auto_cache: Path | None = None,
) -> list[BenchmarkRecord]:
    """Benchmark every cell, interleaved, and append each row to ``out_csv`` with its samples.

    Cells are prepared (fresh session, cold start, scoring, warm-up) and kept alive in groups of at
    most ``max_live`` model cells (fewer when free host memory runs low); targets of task
    ``reference`` are measured in every group, at each provider and batch size of the group. A group is
    measured in ``timing.rounds`` rounds: each round visits every cell of the group once, in a
    fresh random order, for one block (:func:`bench.timing.measure_block`). A group's rows and
    samples are committed when its last round ends, so an interrupt loses at most the group in
    progress.

    ``score=False`` skips the quality columns (accuracy, MSE, agreement), for timing-only sweeps.
    ``auto_cache``: the file of :class:`AutoThreadsCache` (threads ``auto`` probes once per machine,
    model file and batch size; None probes every cell).
    ``done`` holds the ``config_id`` of rows already in ``out_csv`` (``run --resume``, see
    :func:`resume_keys`): those cells are skipped.

    Providers must already be proven usable (:func:`bench.runtime.check_provider`); a session that
    still falls back is an error row, never a row under the wrong label.

    Returns:
        the rows, in the order written.

    Raises:
        StorageError: the results could not be written (rows already there stay whole).
    """
    return MatrixRun(targets, axes, out_csv, timing=timing, peak_gflops=peak_gflops, repeat=repeat, shuffle_seed=shuffle_seed,
                     progress=progress, done=done, score=score, max_live=max_live, pinned_cpus=pinned_cpus,
                     auto_cache=auto_cache).run()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _memory_low() -> bool:
    """Free host memory below :data:`MIN_FREE_MEMORY_FRACTION` of the total."""
    vm = psutil.virtual_memory()
    return vm.available < MIN_FREE_MEMORY_FRACTION * vm.total
