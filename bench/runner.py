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
is prepared before the clock starts. Raw per-call samples are kept in
``<csv stem>.samples.npz`` keyed by ``cell_id``.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import signal
import threading
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch

import mnistbench
from mnistbench.bench.metrics import LatencyStats, mse, throughput_ips, top1_accuracy
from mnistbench.bench.records import BenchmarkRecord, CsvAppender, error_record
from mnistbench.bench.runtime import (CELL_ERRORS, GRAPH_CAPTURE_CALLS, GpuOptions, OrtRuntime, Placement, SessionConfig,
                                     TorchRuntime, audit_placement, cuda_graph_blockers, first_line, options_label)
from mnistbench.bench.system import cpu_model
from mnistbench.bench.timing import TimingConfig, measure
from mnistbench.exporters.onnx import default_opset
from mnistbench.models.checkpoint import atomic_write_bytes, sha256_file
from mnistbench.models.errors import ProviderUnavailableError

DEFAULT_BATCH_SIZES = (1, 8, 32, 128, 512)
EVAL_CHUNK = 500  # images per call when scoring the whole test set
RUNTIMES = ("onnxruntime", "torch", "torch.compile", "openvino")
# Precisions a runtime applies to the fp32 ONNX file itself (``run --precision``), carried as the row's
# variant: ``bf16`` is OpenVINO's inference precision hint and PyTorch's bf16 autocast. ONNX Runtime
# runs each file as written (its reduced precisions are the int8/fp16 variant files).
PRECISIONS = ("fp32", "bf16")
# Which variants each runtime runs: ONNX Runtime every ONNX file; PyTorch the checkpoint at fp32 or
# under bf16 autocast (never an int8/fp16 file); OpenVINO the fp32 file at either precision hint and
# the int8 QDQ file.
RUNTIME_VARIANTS = {"onnxruntime": ("fp32", "int8", "fp16", "fp16-io", "foreign"), "torch": ("fp32", "bf16"),
                    "torch.compile": ("fp32", "bf16"), "openvino": ("fp32", "bf16", "int8", "foreign")}
NAN = float("nan")
AUTO = -1  # threads axis value: choose per cell by a short probe (see autotune_threads)
PROBE = TimingConfig(warmup_iters=3, warmup_s=0.05, min_iters=3, min_s=0.15)  # cheap even at batch 512
AUTO_MARGIN = 0.05  # 1 thread must beat one-per-physical-core by this fraction in the probe


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
    """Accuracy or MSE of ``out``, and its agreement with the PyTorch reference ``ref``."""
    q = {"accuracy_top1": NAN, "test_mse": NAN, "agreement_top1_vs_torch": NAN, "max_abs_diff_vs_torch": NAN}
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
    """A factory of fresh runtimes; ``threads`` AUTO means the runtime's default (0) here."""
    th = 0 if threads == AUTO else threads
    precision = "bf16" if t.variant == "bf16" else "fp32"
    if runtime in ("torch", "torch.compile"):
        return lambda: TorchRuntime(t.build_torch, provider, th, io_mode, compile=runtime == "torch.compile",
                                    tf32=gpu.tf32, cudnn_benchmark=gpu.cudnn_conv_algo_search == "exhaustive",
                                    precision=precision)
    if runtime == "openvino":
        from mnistbench.bench.openvino_runtime import OpenVinoRuntime  # optional extra: imported when asked for

        return lambda: OpenVinoRuntime(t.path, precision, th)
    cfg = SessionConfig(provider, th, spinning, io_mode=io_mode, gpu=gpu)
    return lambda: OrtRuntime(t.path, cfg)


def torch_gpu_label(gpu: GpuOptions) -> str:
    """The ``provider_options`` of a PyTorch CUDA row: cuDNN benchmark mode (on for ``exhaustive``
    search, as ONNX Runtime's EXHAUSTIVE) and TF32, as ``key=value;...``."""
    return f"cudnn_benchmark={int(gpu.cudnn_conv_algo_search == 'exhaustive')};tf32={int(gpu.tf32)}"


def applies(runtime: str, provider: str, io_mode: str) -> bool:
    """Whether a cell of this (runtime, provider, io mode) exists: device modes need a GPU provider;
    CUDA graphs are an ONNX Runtime CUDA EP option; PyTorch runs on cpu and cuda only."""
    if runtime != "onnxruntime" and provider not in ("cpu", "cuda"):
        return False
    if runtime == "openvino" and provider != "cpu":
        return False
    if io_mode == "end-to-end":
        return True
    if provider not in ("cuda", "tensorrt"):
        return False
    if io_mode == "device-graph":
        return runtime == "onnxruntime" and provider == "cuda"
    return runtime == "onnxruntime" or provider == "cuda"


def thread_candidates() -> tuple[int, ...]:
    """1 and one thread per physical core (deduplicated)."""
    import psutil

    return tuple(sorted({1, psutil.cpu_count(logical=False) or 1}))


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
    ips = {}
    for th in cands:
        rt = OrtRuntime(path, SessionConfig(provider, th, spinning, gpu=gpu))
        xt = x.astype(rt.input_dtype, copy=False)
        s = measure(lambda: rt.run(xt), PROBE)
        ips[th] = len(s.ns) / s.wall_s
    most = cands[-1]
    return 1 if 1 in ips and ips[1] >= ips[most] * (1 + AUTO_MARGIN) else most


def plan(targets: list[Target], axes: Axes, shuffle_seed: int | None = None) -> list[tuple]:
    """The cells, grouped by (target, runtime, provider, threads, spinning, io mode); groups shuffled when asked.

    Torch cells are planned only for targets with ``build_torch``, once per thread count
    (PyTorch has no spinning option; their spinning is None).
    """
    groups = []
    for t in targets:
        for rt, prov, th, sp, io in itertools.product(axes.runtimes, axes.providers, axes.threads, axes.spinning,
                                                      axes.io_modes):
            if not applies(rt, prov, io) or t.variant not in RUNTIME_VARIANTS[rt]:
                continue
            if rt != "onnxruntime":
                if t.build_torch is None and rt != "openvino":
                    continue
                sp = None
            # by identity: targets of one model (fp32, bf16) hold equal-valued numpy arrays, which == cannot compare
            if not any(g[0] is t and g[1:] == (rt, prov, th, sp, io) for g in groups):
                groups.append((t, rt, prov, th, sp, io))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(groups)
    return groups


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
    done: set[tuple] | None = None,
    score: bool = True,
) -> list[BenchmarkRecord]:
    """Benchmark every cell and append its row to ``out_csv`` as it finishes.

    ``score=False`` skips the quality columns (accuracy, MSE, agreement), for timing-only sweeps.
    ``done`` holds :func:`cell_key` of cells already in ``out_csv`` (``run --resume``):
    they are skipped, and new samples are added to the existing samples file.

    Providers must already be proven usable (:func:`bench.runtime.check_provider`);
    a session that still falls back raises ``ProviderUnavailableError`` before its
    row is written.

    Returns:
        the rows, in the order written.
    """
    peaks = peak_gflops if isinstance(peak_gflops, dict) else {"cpu": peak_gflops}
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    host, cpu = socket.gethostname(), cpu_model()
    sink = CsvAppender(out_csv)
    samples_path = out_csv.with_name(out_csv.stem + (f".r{repeat}" if repeat else "") + ".samples.npz")
    samples: dict[str, np.ndarray] = dict(np.load(samples_path)) if done and samples_path.exists() else {}
    done = done or set()
    rows: list[BenchmarkRecord] = []
    groups = [g for g in plan(targets, axes, shuffle_seed)
              if any(_key(g, b, repeat) not in done for b in g[0].batch_sizes(axes.batch_sizes))]
    total = sum(_key(g, b, repeat) not in done for g in groups for b in g[0].batch_sizes(axes.batch_sizes))
    refs: dict[str, np.ndarray | None] = {}
    meta: dict[Path, tuple[str, int]] = {}  # per ONNX file: sha256, opset (variants share a name, not a file)
    scored: dict[tuple[Path, str, str], dict[str, float]] = {}  # threads/spinning do not change the outputs
    for t, runtime, prov, threads, spinning, io_mode in groups:
        label = f"{t.name} [{runtime}/{prov}{'' if io_mode == 'end-to-end' else '/' + io_mode}, " \
                f"threads {'auto' if threads == AUTO else threads}]"
        gpu_opts = (options_label(SessionConfig(prov, io_mode=io_mode, gpu=axes.gpu))
                    if runtime == "onnxruntime" else (torch_gpu_label(axes.gpu) if prov == "cuda" else ""))
        if runtime == "openvino":
            from mnistbench.bench.openvino_runtime import options_label as ov_label  # optional extra

            gpu_opts = ov_label("bf16" if t.variant == "bf16" else "fp32")
        if t.path not in meta:
            proto = onnx.load(str(t.path), load_external_data=False)
            meta[t.path] = (sha256_file(t.path), default_opset(proto))
        sha, opset = meta[t.path]
        # the identity of every row of this group, measured or not
        ident = dict(run_id=run_id, repeat=repeat, host=host, model=t.name, variant=t.variant, dataset=t.dataset,
                     task=t.task, runtime=runtime, provider=prov,
                     threads_requested="auto" if threads == AUTO else str(threads), io_mode=io_mode,
                     provider_options=gpu_opts, onnx_sha256=sha, opset=opset, cpu_model=cpu,
                     onnxruntime_version=ort.__version__, torch_version=torch.__version__,
                     onnx_version=onnx.__version__, mnistbench_version=mnistbench.__version__)

        def error_row(message: str, b: int) -> None:
            rec = error_record(message, **ident, cell_id=f"{run_id}-r{repeat}-{len(rows) + len(done):04d}",
                               timestamp_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), batch_size=b)
            sink.append(rec)
            rows.append(rec)

        if t.name not in refs:  # the PyTorch reference is per model, shared by its variants
            if score and t.build_torch:
                if progress:
                    progress(f"{t.name}: PyTorch reference on {len(t.inputs):,} test images", len(rows), total)
                refs[t.name] = full_output(TorchRuntime(t.build_torch, "cpu"), t.inputs)
            else:
                refs[t.name] = None
        new = _sessions(t, runtime, prov, threads, spinning, io_mode, axes.gpu)
        if progress:
            progress(f"{label}: scoring", len(rows), total)
        try:
            key = (t.path, t.variant, runtime, prov)  # bf16 rows share the fp32 file
            if key not in scored:  # io mode, threads and spinning do not change the outputs: score end-to-end
                scorer = _sessions(t, runtime, prov, threads, spinning, "end-to-end", axes.gpu)()
                scored[key] = (quality(t, full_output(scorer, t.inputs, t.fixed_batch), refs[t.name]) if score else
                               {k: NAN for k in ("accuracy_top1", "test_mse", "agreement_top1_vs_torch",
                                                 "max_abs_diff_vs_torch")})
            q = scored[key]
            placement = (audit_placement(t.path, SessionConfig(prov, max(threads, 0), spinning, gpu=axes.gpu),
                                         batch_input(t.inputs, t.fixed_batch or 1))
                         if runtime == "onnxruntime" else Placement(-1, -1, -1, -1, {}))
            if io_mode == "device-graph" and (why := cuda_graph_blockers(placement)):
                raise ProviderUnavailableError(f"{t.name} cannot run as one CUDA graph: {why}")
        except CELL_ERRORS as exc:
            # The session did not really run on the requested provider (or the runtime failed on the
            # test set): an error row per cell, never a figure under the wrong label.
            for b in t.batch_sizes(axes.batch_sizes):
                if _key((t, runtime, prov, threads, spinning, io_mode), b, repeat) not in done:
                    error_row(_one_line(exc), b)
            continue
        for b in t.batch_sizes(axes.batch_sizes):
            if _key((t, runtime, prov, threads, spinning, io_mode), b, repeat) in done:
                continue
            if progress:
                progress(f"{label}: batch {b}", len(rows), total)
            x = batch_input(t.inputs, b)
            used = max(threads, 0)
            try:
                if threads == AUTO and runtime == "onnxruntime":
                    used = autotune_threads(t.path, prov, spinning, x, axes.gpu)
                    rt = OrtRuntime(t.path, SessionConfig(prov, used, spinning, io_mode=io_mode, gpu=axes.gpu))
                else:
                    rt = new()
                x = x.astype(rt.input_dtype, copy=False)  # the fp16-io variant takes float16, converted now
                rt.prepare(x)  # device modes: input on the GPU and bound before any clock
                t0 = time.perf_counter()
                rt.run(x)  # first call at this shape: cuDNN algorithm search, session arena growth
                first_ms = (time.perf_counter() - t0) * 1e3
                for _ in range(GRAPH_CAPTURE_CALLS - 1 if io_mode == "device-graph" else 0):
                    rt.run(x)  # ONNX Runtime's regular runs, then the capture: never in the timed calls
                s = measure(lambda: rt.run(x), timing)
            except CELL_ERRORS as exc:
                # One cell failing (a session refused, a GPU out of memory at a large batch) is an
                # error row saying why; the cells before and after it still run.
                error_row(_one_line(exc), b)
                continue
            st = LatencyStats.from_samples(s.ns)
            peak = peaks.get("cpu" if prov == "cpu" else "cuda", NAN)
            ips = throughput_ips(b, st.n, s.wall_s)
            gflops = (t.flops or 0) * ips / 1e9
            cell_id = f"{run_id}-r{repeat}-{len(rows) + len(done):04d}"
            rec = BenchmarkRecord(
                **ident, cell_id=cell_id, timestamp_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                providers_used=";".join(rt.providers_used), batch_size=b,
                intra_op_threads=getattr(rt, "threads_used", 0) or used,
                spinning=_SPIN[spinning] if runtime == "onnxruntime" else "n/a",
                graph_optimization={"onnxruntime": "all", "torch": "eager", "torch.compile": "compiled",
                                    "openvino": "compiled"}[runtime],
                session_create_ms=rt.create_ms, first_inference_ms=first_ms,
                warmup_iters=s.warmup_iters, timed_iters=st.n, timed_wall_s=s.wall_s,
                latency_mean_ms=st.mean_ms, latency_std_ms=st.std_ms, latency_min_ms=st.min_ms,
                latency_p50_ms=st.p50_ms, latency_p90_ms=st.p90_ms, latency_p99_ms=st.p99_ms,
                latency_max_ms=st.max_ms, latency_cv=st.cv, throughput_ips=ips,
                eval_images=len(t.inputs) if score else 0, **q,
                flops_per_image=-1 if t.flops is None else t.flops, achieved_gflops=gflops if t.flops else NAN,
                peak_fraction=gflops / peak if t.flops and peak > 0 else NAN,
                nodes_total=placement.nodes_total, nodes_on_provider=placement.nodes_on_provider,
                nodes_on_cpu=placement.nodes_on_cpu, memcpy_nodes=placement.memcpy_nodes,
                checkpoint_profile=t.profile, checkpoint_seed=t.seed, checkpoint_sha256=t.checkpoint_sha256,
            )
            rt = None  # release this cell's session (and its device memory) before the next is built
            samples[cell_id] = s.ns
            with _deferred_sigint():  # a cell's samples and its row land together, or neither
                _save_samples(samples_path, samples)
                sink.append(rec)
            rows.append(rec)
            if progress:
                progress(f"{label}: batch {b}", len(rows), total)
    return rows


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


def cell_key(r: BenchmarkRecord) -> tuple:
    """What identifies a cell of the matrix in a results file (for ``--resume``)."""
    return (r.model, r.variant, r.runtime, r.provider, r.threads_requested, r.spinning, r.io_mode, r.batch_size,
            r.repeat)


def _key(group: tuple, batch_size: int, repeat: int) -> tuple:
    t, runtime, prov, threads, spinning, io_mode = group
    spin = _SPIN[spinning] if runtime == "onnxruntime" else "n/a"
    return (t.name, t.variant, runtime, prov, "auto" if threads == AUTO else str(threads), spin, io_mode, batch_size,
            repeat)


def _save_samples(path: Path, samples: dict[str, np.ndarray]) -> None:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **samples)
    atomic_write_bytes(path, buf.getvalue())
