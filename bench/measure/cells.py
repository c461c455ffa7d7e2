"""What each cell of the matrix needs besides timing: its input batch, the quality of its outputs
over the whole test set, its sessions, and the identity checks of ``run --resume``."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from ...models.errors import ProviderUnavailableError, UsageError
from ...models.files import sha256_file
from ..runtimes.base import get_runtime
from ..runtimes.runtime import GpuOptions, Placement, first_line, nonfinite_fraction
from . import samples as samples_io
from .config import AUTO, Group, Target
from .metrics import BlockCI, BlockSet, LatencyStats, ci_halfwidth_rel, mse, throughput_ips, top1_accuracy
from .records import SCHEMA_VERSION, BenchmarkRecord
from .samples import CellSamples

EVAL_CHUNK = 500  # images per call when scoring the whole test set
NAN = float("nan")
QUALITY_COLUMNS = ("accuracy_top1", "test_mse", "agreement_top1_vs_torch", "max_abs_diff_vs_torch", "nonfinite_fraction")


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


def session_factory(t: Target, runtime: str, provider: str, threads: int, spinning: bool | None,
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


@dataclass
class Cell:
    """One cell of the matrix while it is measured: its session kept alive across rounds."""

    group: Group
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
    session_rss_mib: float = NAN  # MiB: resident growth of opening the session through its warm-up
    peak_rss_mib: float = 0.0  # MiB: the largest peak resident set over the cell's blocks

    def __post_init__(self) -> None:
        if not isinstance(self.group, Group):  # a plain 6-tuple in the group's field order
            self.group = Group(*self.group)


_Cell = Cell  # the name the tests of an earlier layout use


_Cell = Cell  # the name the tests of an earlier layout use


def _record(c: Cell, smp: CellSamples, cell_id: str, peaks: dict, score: bool, group: int,
            group_cells: int) -> BenchmarkRecord:
    """The row of a measured cell, from its blocks."""
    t, runtime, prov = c.group.target, c.group.runtime, c.group.provider
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
        peak_rss_mib=c.peak_rss_mib if c.peak_rss_mib > 0 else NAN, session_rss_mib=c.session_rss_mib,
    )


def _one_line(exc: BaseException) -> str:
    """An error row's message: ours as written; a runtime's first line, named by its exception type."""
    if isinstance(exc, ProviderUnavailableError):
        return str(exc)
    return f"{type(exc).__name__}: {first_line(exc)}"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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
