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

import contextlib
import hashlib
import itertools
import json
import os
import random
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import psutil
import torch

from ... import __version__ as _mnistbench_version
from ...exporters.onnx import default_opset
from ...models.errors import ProviderUnavailableError, StorageError, UsageError
from ...models.files import atomic_write_bytes, sha256_file
from ..runtimes.base import get_runtime, runtime_names, runtime_variants
from ..runtimes.runtime import (
    CELL_ERRORS,
    GRAPH_CAPTURE_CALLS,
    GpuOptions,
    OrtRuntime,
    Placement,
    SessionConfig,
    cuda_graph_blockers,
    first_line,
    nonfinite_fraction,
)
from ..runtimes.torch_eager import TorchRuntime
from . import samples as samples_io
from .metrics import BlockCI, BlockSet, LatencyStats, ci_halfwidth_rel, mse, throughput_ips, top1_accuracy
from .records import SCHEMA_VERSION, BenchmarkRecord, CsvAppender, config_id, error_record
from .samples import CellSamples
from .samples import save as save_samples
from .system import cpu_model
from .timing import TimingConfig, measure, measure_block, reentry_calls, warm_up

DEFAULT_BATCH_SIZES = (1, 8, 32, 128, 512)
EVAL_CHUNK = 500  # images per call when scoring the whole test set
RUNTIMES = runtime_names()  # the registered runtimes (bench.runtimes.base); see RUNTIME_VARIANTS
# Precisions a runtime applies to the fp32 ONNX file itself (``run --precision``), carried as the row's
# variant: ``bf16`` is OpenVINO's inference precision hint and PyTorch's bf16 autocast. ONNX Runtime
# runs each file as written (its reduced precisions are the int8/fp16 variant files).
PRECISIONS = ("fp32", "bf16")
# Which variants each runtime runs (its Runtime.variants): ONNX Runtime every ONNX file; PyTorch the
# checkpoint at fp32 or under bf16 autocast (never an int8/fp16 file); OpenVINO the fp32 file at either
# precision hint and the int8 QDQ file.
RUNTIME_VARIANTS = runtime_variants()
NAN = float("nan")
AUTO = -1  # threads axis value: choose per cell by a short probe (see autotune_threads)
PROBE = TimingConfig(warmup_iters=3, warmup_s=0.05, min_iters=3, min_s=0.15)  # cheap even at batch 512
AUTO_MARGIN = 0.05  # 1 thread must beat one-per-physical-core by this fraction in the probe
# Sessions held alive and interleaved at once. 64 covers `mnistbench all` (55 cells + 5 reference cells)
# in one group; a larger matrix is measured in groups of this size, each with the reference cells.
MAX_LIVE_SESSIONS = 64
MIN_FREE_MEMORY_FRACTION = 0.10  # close a group early when free host memory falls below this


@dataclass(frozen=True)
class Target:
    """One model to benchmark.

    Attributes:
        name: model name for the rows.
        path: the ``.onnx`` file.
        task: ``classify``, ``reconstruct`` or ``null`` (the overhead floor: no quality metric).
        inputs: preprocessed test images, float32 (N, 1, 28, 28).
        labels: int64 (N,) (ignored unless classify).
        build_torch: returns the trained PyTorch module (None: no torch rows, no agreement).
        flops: forward FLOPs of one image (None: unknown, e.g. a foreign model).
        dataset, profile, seed, checkpoint_sha256: provenance for the rows.
        fixed_batch: the only batch size the graph accepts (None: dynamic batch axis).
        variant: ``fp32`` for mnistbench's exports, ``foreign`` for ``--onnx`` models.
    """

    name: str
    path: Path
    task: str
    inputs: np.ndarray
    labels: np.ndarray
    build_torch: Callable[[], torch.nn.Module] | None = None
    flops: int | None = 0
    dataset: str = "mnist"
    profile: str = ""
    seed: str = ""
    checkpoint_sha256: str = ""
    fixed_batch: int | None = None
    variant: str = "fp32"

    def batch_sizes(self, requested: tuple[int, ...]) -> tuple[int, ...]:
        return requested if self.fixed_batch is None else (self.fixed_batch,)


@dataclass(frozen=True)
class Axes:
    """The swept axes besides models. ``threads``: AUTO (per-cell probe), 0 (the runtime's own choice)
    or a count; ``spinning`` None = the runtime's default; ``io_modes`` (see
    :data:`bench.runtime.IO_MODES`) apply to GPU providers, CPU cells are always end-to-end;
    ``gpu``: CUDA/TensorRT options for every GPU cell."""

    runtimes: tuple[str, ...] = ("onnxruntime",)
    providers: tuple[str, ...] = ("cpu",)
    threads: tuple[int, ...] = (AUTO,)
    spinning: tuple[bool | None, ...] = (None,)
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    io_modes: tuple[str, ...] = ("end-to-end",)
    gpu: GpuOptions = GpuOptions()


# progress(description, cells_done, cells_total)
RunProgress = Callable[[str, int, int], None]


def batch_input(inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The first ``batch_size`` images (repeated when the test set is smaller), C-contiguous."""
    reps = -(-batch_size // len(inputs))
    x = np.concatenate([inputs] * reps) if reps > 1 else inputs
    return np.ascontiguousarray(x[:batch_size])


def full_output(rt, inputs: np.ndarray, fixed_batch: int | None = None) -> np.ndarray:
    """``rt`` over all of ``inputs`` in chunks of :data:`EVAL_CHUNK`, or of exactly
    ``fixed_batch`` (the last chunk padded with repeats, whose outputs are dropped)."""
    dtype = rt.input_dtype  # float16 for the fp16-io variant; outputs read as float32
    if fixed_batch is None:
        return np.concatenate([rt.run(inputs[i : i + EVAL_CHUNK].astype(dtype)).astype(np.float32)
                               for i in range(0, len(inputs), EVAL_CHUNK)])
    outs = []
    for i in range(0, len(inputs), fixed_batch):
        chunk = inputs[i : i + fixed_batch]
        n = len(chunk)
        outs.append(rt.run(batch_input(chunk, fixed_batch).astype(dtype))[:n].astype(np.float32))
    return np.concatenate(outs)


def quality(t: Target, out: np.ndarray, ref: np.ndarray | None) -> dict[str, float]:
    """Accuracy or MSE of ``out``, its agreement with the PyTorch reference ``ref``, and the fraction of
    its values that are NaN or +-inf (``nonfinite_fraction``)."""
    q = {"accuracy_top1": NAN, "test_mse": NAN, "agreement_top1_vs_torch": NAN, "max_abs_diff_vs_torch": NAN,
         "nonfinite_fraction": nonfinite_fraction(out)}
    if t.task == "classify":
        q["accuracy_top1"] = top1_accuracy(out, t.labels)
    elif t.task == "reconstruct":
        q["test_mse"] = mse(out, t.inputs)
    if ref is not None:
        q["max_abs_diff_vs_torch"] = float(np.max(np.abs(out - ref)))
        if t.task == "classify":
            q["agreement_top1_vs_torch"] = float(np.mean(out.argmax(1) == ref.argmax(1)))
    return q


def _sessions(t: Target, runtime: str, provider: str, threads: int, spinning: bool | None,
              io_mode: str = "end-to-end", gpu: GpuOptions = GpuOptions()):
    """A factory of fresh sessions of the registered ``runtime``; ``threads`` AUTO means the runtime's
    default (0) here."""
    th = 0 if threads == AUTO else threads
    rt = get_runtime(runtime)
    return lambda: rt.open(t, provider, th, spinning, io_mode, gpu)


def applies(runtime: str, provider: str, io_mode: str) -> bool:
    """Whether a cell of this (runtime, provider, io mode) exists (:meth:`base.Runtime.applies`): device
    modes need a GPU provider; CUDA graphs are an ONNX Runtime CUDA EP option; PyTorch runs on cpu
    and cuda only; OpenVINO on cpu."""
    return get_runtime(runtime).applies(provider, io_mode)


def thread_candidates() -> tuple[int, ...]:
    """1, and one thread per physical core when that still leaves a logical CPU free (deduplicated).

    The free CPU is for the harness's own thread and the operating system: a session that uses every
    CPU of the host waits on whichever of its threads was preempted. Measured on the 2-vCPU machine
    here (14 separate runs of lenet5 and rich-cnn, `results/calibration/README.md`): 2-thread sessions
    ran in two modes up to 2x apart, changing from run to run (lenet5 batch 1: 26 or 52 us), while
    1-thread sessions agreed within 2%. On that machine ``auto`` therefore means 1 thread; ask for
    ``--threads 2`` (or ``0``, the runtime's choice) to measure every CPU.
    """
    import psutil

    usable = len(os.sched_getaffinity(0))
    most = min(psutil.cpu_count(logical=False) or 1, usable - 1)
    return tuple(sorted({1, max(most, 1)}))


def auto_threads_fixed() -> int | None:
    """The thread count of ``auto`` when the host leaves no choice to probe (one candidate), else None."""
    cands = thread_candidates()
    return cands[0] if len(cands) == 1 else None


def autotune_threads(path: Path, provider: str, spinning: bool | None, x: np.ndarray,
                     gpu: GpuOptions = GpuOptions()) -> int:
    """The intra-op thread count for ``x``: one per physical core, unless 1 thread is at least
    :data:`AUTO_MARGIN` faster in a short probe (:data:`PROBE`) of each.

    On 2 cores here, 1 thread measured 15% faster for zhu-conv-autoencoder at batch 1, while 2
    threads were about twice as fast for every model at batch 128; no rule on FLOPs separated the
    cases, so the default measures. The margin keeps the short, noisy probe from trading away the
    runtime's default on a tie (a 3-repeat sweep showed it picking 1 thread where 2 were 5% faster).
    """
    cands = thread_candidates()
    if len(cands) == 1:
        return cands[0]
    ips = {}
    for th in cands:
        rt = OrtRuntime(path, SessionConfig(provider, th, spinning, gpu=gpu))
        xt = x.astype(rt.input_dtype, copy=False)
        s = measure(lambda: rt.run(xt), PROBE)
        ips[th] = len(s.ns) / s.wall_s
    most = cands[-1]
    return 1 if 1 in ips and ips[1] >= ips[most] * (1 + AUTO_MARGIN) else most


class AutoThreadsCache:
    """The choices of ``threads auto``, kept per machine and model file so that two runs of the same
    model on the same machine run with the same thread count. Without it the short probe, on a busy
    machine, chose 1 thread in one run and 2 in the next, and that choice, not the model, moved the
    p50 between two otherwise identical runs (a whole-cell change no interval can see).

    The file (JSON, written atomically) maps ``sha256 | provider | spinning | batch | CPU | cores |
    affinity | ONNX Runtime version`` to the count. Delete it to probe again. ``path`` None: no cache.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.choices: dict[str, int] = {}
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text())
                self.choices = {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}
            except (OSError, ValueError, TypeError):
                self.choices = {}  # a damaged cache only costs a probe

    @staticmethod
    def key(sha: str, provider: str, spinning: bool | None, batch: int) -> str:
        return "|".join(map(str, (sha, provider, _SPIN[spinning], batch, cpu_model(), psutil.cpu_count(),
                                  ",".join(map(str, sorted(os.sched_getaffinity(0)))), ort.__version__)))

    def get(self, key: str, probe: Callable[[], int]) -> int:
        if key not in self.choices:
            self.choices[key] = probe()
            if self.path is not None:
                try:
                    fresh = AutoThreadsCache(self.path).choices  # another run may have added its own
                    atomic_write_bytes(self.path, json.dumps({**fresh, **self.choices}, indent=1).encode())
                except OSError:
                    pass  # an unwritable cache only costs a probe next time
        return self.choices[key]


def plan(targets: list[Target], axes: Axes, shuffle_seed: int | None = None) -> list[tuple]:
    """The cells, grouped by (target, runtime, provider, threads, spinning, io mode); groups shuffled when asked.

    Torch cells are planned only for targets with ``build_torch``, once per thread count
    (PyTorch has no spinning option; their spinning is None).
    """
    groups = []
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
            if not any(g[0] is t and g[1:] == (rt, prov, th, sp, io) for g in groups):
                groups.append((t, rt, prov, th, sp, io))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(groups)
    return groups


@dataclass
class _Cell:
    """One cell of the matrix while it is measured: its session kept alive across rounds."""

    group: tuple
    batch: int
    values: dict  # the row's identity fields
    rt: object
    x: np.ndarray
    threads_used: int
    first_ms: float
    warmup: int
    quality: dict
    placement: Placement
    providers: str = ""
    create_ms: float = NAN
    call_s: float = 0.0  # mean seconds per call during the warm-up (decides re-entry calls)
    blocks: list = field(default_factory=list)
    walls: list = field(default_factory=list)
    rounds: list = field(default_factory=list)
    error: str = ""


def model_sha256(path: Path, proto: onnx.ModelProto | None = None) -> str:
    """sha256 of an ONNX file and, for models with external data, of each data file it names
    (sorted by name), so that new weights under an old graph file are a different model."""
    proto = proto or onnx.load(str(path), load_external_data=False)
    names = sorted({e.value for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
                    for e in t.external_data if e.key == "location"})
    if not names:
        return sha256_file(path)
    h = hashlib.sha256(sha256_file(path).encode())
    for n in names:
        f = path.parent / n
        h.update(n.encode() + (sha256_file(f).encode() if f.is_file() else b"missing"))
    return h.hexdigest()


def resume_keys(rows: list[BenchmarkRecord], targets: list[Target], path: Path) -> set[str]:
    """The ``config_id`` of every measured row of an interrupted run, after checking that the file
    describes the same thing as this run.

    Raises:
        UsageError: the file holds rows of another dataset, another model file under a name this
            run measures, another checkpoint profile or seed, rows without identity (schema 4), or rows
            of another results schema; a measured row whose samples file is damaged or missing (the
            cell would count as done and stay without samples: compare could never judge it).
    """
    want = {(t.name, t.variant): t for t in targets}
    sha: dict[Path, str] = {}
    for r in rows:
        if not r.config_id:
            raise UsageError(f"{path} was written by schema {r.schema_version} (rows have no identity); "
                             "--resume cannot tell its cells apart: start a new --out")
        if r.schema_version != SCHEMA_VERSION:
            raise UsageError(f"{path} holds rows of results schema {r.schema_version}; this mnistbench writes schema "
                             f"{SCHEMA_VERSION}: choose another --out")
        t = want.get((r.model, r.variant))
        if t is None:
            continue
        if r.dataset != t.dataset:
            raise UsageError(f"{path} holds {r.dataset} rows; this run measures {t.dataset}: choose another --out")
        if t.path not in sha:
            sha[t.path] = model_sha256(t.path)
        if r.onnx_sha256 != sha[t.path]:
            raise UsageError(f"{path}: {r.model} ({r.variant}) was measured from another model file "
                             f"(sha256 {r.onnx_sha256[:12]}, now {sha[t.path][:12]}): choose another --out")
        if t.task not in ("null", "reference") and (r.checkpoint_profile, r.checkpoint_seed) != (t.profile, t.seed):
            raise UsageError(f"{path}: {r.model} rows are of profile {r.checkpoint_profile!r} seed "
                             f"{r.checkpoint_seed!r}; this run has {t.profile!r} seed {t.seed!r}: choose another --out")
    done = {r.config_id: r.cell_id for r in rows if r.status == "ok" and r.task != "reference"}
    have = samples_io.load(path)  # UsageError when a samples file is damaged
    missing = [cell for cell in done.values() if cell not in have]
    if missing:
        raise UsageError(f"{path}: {len(missing)} measured rows have no samples (e.g. {missing[0]}); "
                         f"`mnistbench verify {path} --repair --drop-unsampled` drops them, then --resume measures them again")
    return set(done)


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
    """
    peaks = peak_gflops if isinstance(peak_gflops, dict) else {"cpu": peak_gflops}
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    host, cpu = socket.gethostname(), cpu_model()
    sink = CsvAppender(out_csv)
    done = done or set()
    rows: list[BenchmarkRecord] = []
    order_rng = random.Random(shuffle_seed if shuffle_seed is not None else uuid.uuid4().int)
    refs: dict[str, np.ndarray | None] = {}
    meta: dict[Path, tuple[str, int]] = {}  # per ONNX file: sha256, opset (variants share a name, not a file)
    scored: dict[tuple[Path, str, str], tuple[dict, Placement]] = {}
    auto_threads = AutoThreadsCache(auto_cache)

    def identity(g: tuple, b: int) -> dict:
        t, runtime, prov, threads, spinning, io_mode = g
        if t.path not in meta:
            proto = onnx.load(str(t.path), load_external_data=False)
            meta[t.path] = (model_sha256(t.path, proto), default_opset(proto))
        sha, opset = meta[t.path]
        rt = get_runtime(runtime)
        gpu_opts = rt.options_label(t, prov, io_mode, axes.gpu)
        v = dict(run_id=run_id, repeat=repeat, host=host, model=t.name, variant=t.variant, dataset=t.dataset,
                 task=t.task, runtime=runtime, provider=prov, batch_size=b,
                 threads_requested="auto" if threads == AUTO else str(threads),
                 spinning=_SPIN[spinning] if rt.has_spinning else "n/a", io_mode=io_mode,
                 provider_options=gpu_opts, onnx_sha256=sha, opset=opset, cpu_model=cpu,
                 onnxruntime_version=ort.__version__, torch_version=torch.__version__, onnx_version=onnx.__version__,
                 mnistbench_version=_mnistbench_version, checkpoint_profile=t.profile, checkpoint_seed=t.seed,
                 checkpoint_sha256=t.checkpoint_sha256, pinned_cpus=pinned_cpus)
        v["config_id"] = config_id(v)
        return v

    planned = [(g, b) for g in plan(targets, axes, shuffle_seed) for b in g[0].batch_sizes(axes.batch_sizes)]
    todo = [c for c in planned if c[0][0].task != "reference" and identity(*c)["config_id"] not in done]
    total = len(todo)
    if not todo:
        return rows
    # the reference network, in every group at each provider and batch size that the group measures
    ref_cells = [c for c in planned if c[0][0].task == "reference"]

    def commit(recs: list[BenchmarkRecord], samples: list[CellSamples | None]) -> None:
        with _deferred_sigint():  # a group's samples and rows land together, or neither
            try:
                for rec, smp in zip(recs, samples):
                    if smp is not None:
                        save_samples(out_csv, rec.cell_id, smp)
                for rec in recs:
                    sink.append(rec)
            except StorageError:
                raise
            except OSError as exc:  # a full disk: earlier groups' rows stay whole, this group is not written
                raise StorageError(f"cannot write the results of {len(recs)} cells to {out_csv}: "
                                   f"{exc.strerror or exc}; the rows already there are whole "
                                   "(`mnistbench verify` checks them; --resume measures the rest)") from None
        rows.extend(recs)

    def next_cell_id(offset: int = 0) -> str:
        return f"{run_id}-r{repeat}-{len(rows) + offset:04d}"

    def error_row(values: dict, message: str) -> None:
        commit([error_record(message, **values, cell_id=next_cell_id(), timestamp_utc=_now())], [None])

    def prepare(g: tuple, b: int) -> _Cell | None:
        t, runtime, prov, threads, spinning, io_mode = g
        impl = get_runtime(runtime)
        values = identity(g, b)
        if progress:
            progress(f"{_label(g)}: batch {b}, preparing", len([r for r in rows if r.task != "reference"]), total)
        try:
            if t.name not in refs:  # the PyTorch reference is per model, shared by its variants
                refs[t.name] = (full_output(TorchRuntime(t.build_torch, "cpu"), t.inputs)
                                if score and t.build_torch else None)
            key = (t.path, t.variant, runtime, prov)  # bf16 rows share the fp32 file
            if key not in scored:  # io mode, threads and spinning do not change the outputs: score end-to-end
                scorer = _sessions(t, runtime, prov, threads, spinning, "end-to-end", axes.gpu)()
                q = (quality(t, full_output(scorer, t.inputs, t.fixed_batch), refs[t.name]) if score else
                     {k: NAN for k in ("accuracy_top1", "test_mse", "agreement_top1_vs_torch",
                                       "max_abs_diff_vs_torch", "nonfinite_fraction")})
                placement = (impl.placement(t.path, prov, threads, spinning, axes.gpu,
                                             batch_input(t.inputs, t.fixed_batch or 1))
                             or Placement(-1, -1, -1, -1, {}))
                scored[key] = (q, placement)
            q, placement = scored[key]
            if io_mode == "device-graph" and (why := cuda_graph_blockers(placement)):
                raise ProviderUnavailableError(f"{t.name} cannot run as one CUDA graph: {why}")
            x = batch_input(t.inputs, b)
            used = max(threads, 0)
            if threads == AUTO and impl.tunes_threads:
                used = auto_threads.get(AutoThreadsCache.key(values["onnx_sha256"], prov, spinning, b),
                                        lambda: autotune_threads(t.path, prov, spinning, x, axes.gpu))
                rt = impl.open(t, prov, used, spinning, io_mode, axes.gpu)
            else:
                rt = _sessions(t, runtime, prov, threads, spinning, io_mode, axes.gpu)()
            used = getattr(rt, "threads_used", 0) or used  # OpenVINO reports the count it really uses
            x = x.astype(rt.input_dtype, copy=False)  # the fp16-io variant takes float16, converted now
            rt.prepare(x)  # device modes: input on the GPU and bound before any clock
            t0 = time.perf_counter()
            rt.run(x)  # first call at this shape: cuDNN algorithm search, session arena growth
            first_ms = (time.perf_counter() - t0) * 1e3
            for _ in range(GRAPH_CAPTURE_CALLS - 1 if io_mode == "device-graph" else 0):
                rt.run(x)  # ONNX Runtime's regular runs, then the capture: never in the timed calls
            t0 = time.perf_counter()
            warm = warm_up(lambda: rt.run(x), timing)
            call_s = (time.perf_counter() - t0) / max(warm, 1)
        except CELL_ERRORS as exc:
            if t.task == "reference":
                return None  # no drift control for this group (compare says so), never a failed run
            error_row(values, _one_line(exc))  # the cells before and after it still run
            return None
        return _Cell(g, b, values, rt, x, used, first_ms, warm, q, placement, ";".join(rt.providers_used), rt.create_ms,
                     call_s)

    def measure_group(cells: list[_Cell], number: int) -> None:
        for r in range(timing.rounds):
            live = [c for c in cells if not c.error]
            order_rng.shuffle(live)
            if progress:
                progress(f"group {number}: round {r + 1}/{timing.rounds} over {len(live)} cells",
                         len([x for x in rows if x.task != "reference"]), total)
            for c in live:
                try:
                    ns, wall = measure_block(lambda: c.rt.run(c.x), timing.block_iters, timing.block_s,
                                             reentry_calls(c.call_s, timing.block_s))
                except CELL_ERRORS as exc:
                    c.error = _one_line(exc)
                    continue
                c.blocks.append(ns)
                c.walls.append(wall)
                c.rounds.append(r)
        recs, smps = [], []
        for c in cells:
            c.rt = None  # release the session (and its device memory) before the next group is built
            if c.error:
                recs.append(error_record(c.error, **c.values, cell_id=next_cell_id(len(recs)), timestamp_utc=_now()))
                smps.append(None)
                continue
            smp = CellSamples.from_blocks(c.blocks, c.walls, c.rounds)
            recs.append(_record(c, smp, next_cell_id(len(recs)), peaks, score, number, len(cells)))
            smps.append(smp)
        commit(recs, smps)

    group_no = 0
    pending = list(todo)
    while pending:
        group_no += 1
        cells: list[_Cell] = []
        while pending and len(cells) < max_live:
            c = prepare(*pending.pop(0))
            if c is not None:
                cells.append(c)
            if cells and _memory_low():
                break  # fall back to groups: measure what is held, then build the rest
        if cells:
            here = {(c.group[2], c.batch) for c in cells}
            ref_group = [c for c in (prepare(g, b) for g, b in ref_cells if (g[2], b) in here) if c is not None]
            measure_group(ref_group + cells, group_no)
    return rows


def _label(g: tuple) -> str:
    t, runtime, prov, threads, spinning, io_mode = g
    return (f"{t.name} [{runtime}/{prov}{'' if io_mode == 'end-to-end' else '/' + io_mode}, "
            f"threads {'auto' if threads == AUTO else threads}]")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _memory_low() -> bool:
    """Free host memory below :data:`MIN_FREE_MEMORY_FRACTION` of the total."""
    vm = psutil.virtual_memory()
    return vm.available < MIN_FREE_MEMORY_FRACTION * vm.total


def _record(c: _Cell, smp: CellSamples, cell_id: str, peaks: dict, score: bool, group: int,
            group_cells: int) -> BenchmarkRecord:
    """The row of a measured cell, from its blocks."""
    t, runtime, prov, threads, spinning, io_mode = c.group
    st = LatencyStats.from_samples(smp.ns)
    bs = BlockSet.from_blocks(smp.blocks(), smp.block_wall_ns, smp.block_round, c.batch)
    ci = BlockCI.of(bs)
    wall_s = float(smp.block_wall_ns.sum()) / 1e9
    ips = throughput_ips(c.batch, st.n, wall_s)
    peak = peaks.get("cpu" if prov == "cpu" else "cuda", NAN)
    gflops = (t.flops or 0) * ips / 1e9
    return BenchmarkRecord(
        **c.values, cell_id=cell_id, timestamp_utc=_now(), providers_used=c.providers,
        intra_op_threads=c.threads_used, graph_optimization=get_runtime(runtime).graph_optimization,
        session_create_ms=c.create_ms, first_inference_ms=c.first_ms, warmup_iters=c.warmup, timed_iters=st.n,
        timed_wall_s=wall_s, latency_mean_ms=st.mean_ms, latency_std_ms=st.std_ms, latency_min_ms=st.min_ms,
        latency_p50_ms=st.p50_ms, latency_p90_ms=st.p90_ms, latency_p99_ms=st.p99_ms, latency_max_ms=st.max_ms,
        latency_cv=st.cv, throughput_ips=ips, eval_images=len(t.inputs) if score else 0, **c.quality,
        flops_per_image=-1 if t.flops is None else t.flops, achieved_gflops=gflops if t.flops else NAN,
        peak_fraction=gflops / peak if t.flops and peak > 0 else NAN,
        nodes_total=c.placement.nodes_total, nodes_on_provider=c.placement.nodes_on_provider,
        nodes_on_cpu=c.placement.nodes_on_cpu, memcpy_nodes=c.placement.memcpy_nodes,
        rounds=bs.m, latency_p50_ci_low_ms=ci.p50_low_ms, latency_p50_ci_high_ms=ci.p50_high_ms,
        throughput_ci_low_ips=ci.ips_low, throughput_ci_high_ips=ci.ips_high,
        p50_ci_halfwidth_rel=ci_halfwidth_rel(ci.p50_low_ms, ci.p50_high_ms, st.p50_ms),
        interleave_group=str(group), group_cells=group_cells,
    )


_SPIN = {None: "default", True: "on", False: "off"}


def _one_line(exc: BaseException) -> str:
    """An error row's message: ours as written; a runtime's first line, named by its exception type."""
    if isinstance(exc, ProviderUnavailableError):
        return str(exc)
    return f"{type(exc).__name__}: {first_line(exc)}"


@contextlib.contextmanager
def _deferred_sigint():
    """Hold Ctrl-C until the block ends, so an interrupt never splits a cell's commit (samples file
    and CSV row): inside the block a SIGINT is only recorded; leaving the block raises it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:
            raise KeyboardInterrupt
