"""The benchmark matrix: model x provider x batch size, one row per cell.

For each model and provider the full test set is scored once (top-1 accuracy,
or MSE for reconstruction models) on its own session in chunks of
:data:`EVAL_CHUNK`. Each cell then gets a fresh session, so cold start
(session creation, first inference at that batch size) is measured per row and
no cell inherits another's memory arena. Its input, the first ``batch_size``
test images preprocessed as the model expects, is prepared before the clock
starts.
"""

from __future__ import annotations

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
from mnistbench.bench.records import BenchmarkRecord, CsvAppender
from mnistbench.bench.runtime import OrtRuntime, SessionConfig
from mnistbench.bench.system import cpu_model
from mnistbench.bench.timing import TimingConfig, measure
from mnistbench.models.checkpoint import sha256_file

DEFAULT_BATCH_SIZES = (1, 8, 32, 128, 512)
EVAL_CHUNK = 500  # images per call when scoring the whole test set


@dataclass(frozen=True)
class Target:
    """One ONNX model to benchmark.

    Attributes:
        name: model name for the rows.
        path: the ``.onnx`` file.
        task: ``classify`` or ``reconstruct``.
        inputs: preprocessed test images, float32 (N, 1, 28, 28).
        labels: int64 (N,) (ignored for reconstruction).
        dataset, profile, seed: provenance for the rows.
    """

    name: str
    path: Path
    task: str
    inputs: np.ndarray
    labels: np.ndarray
    dataset: str = "mnist"
    profile: str = ""
    seed: str = ""


# progress(description, cells_done)
RunProgress = Callable[[str, int], None]


def score(rt: OrtRuntime, t: Target) -> float:
    """Top-1 accuracy (classify) or MSE against the input (reconstruct) over all of ``t.inputs``."""
    out = np.concatenate([rt.run(t.inputs[i : i + EVAL_CHUNK]) for i in range(0, len(t.inputs), EVAL_CHUNK)])
    return top1_accuracy(out, t.labels) if t.task == "classify" else mse(out, t.inputs)


def batch_input(inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The first ``batch_size`` images (repeated when the test set is smaller), C-contiguous."""
    reps = -(-batch_size // len(inputs))
    x = np.concatenate([inputs] * reps) if reps > 1 else inputs
    return np.ascontiguousarray(x[:batch_size])


def run_matrix(
    targets: list[Target],
    providers: list[str],
    batch_sizes: list[int],
    out_csv: Path,
    *,
    timing: TimingConfig = TimingConfig(),
    session: SessionConfig = SessionConfig(),
    progress: RunProgress | None = None,
) -> list[BenchmarkRecord]:
    """Benchmark every cell and append its row to ``out_csv`` as it finishes.

    Providers must already be proven usable (:func:`bench.runtime.check_provider`);
    a session that still falls back raises ``ProviderUnavailableError`` before its
    row is written.

    Returns:
        the rows, in the order written.
    """
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    host, cpu = socket.gethostname(), cpu_model()
    sink = CsvAppender(out_csv)
    rows: list[BenchmarkRecord] = []
    done = 0
    for t in targets:
        sha = sha256_file(t.path)
        proto = onnx.load(str(t.path), load_external_data=False)
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
        for prov in providers:
            cfg = SessionConfig(prov, session.intra_op_threads, session.spinning, session.graph_optimization)
            if progress:
                progress(f"{t.name} [{prov}] scoring {len(t.inputs):,} test images", done)
            metric = score(OrtRuntime(t.path, cfg), t)
            for b in batch_sizes:
                if progress:
                    progress(f"{t.name} [{prov}] batch {b}", done)
                rt = OrtRuntime(t.path, cfg)
                x = batch_input(t.inputs, b)
                t0 = time.perf_counter()
                rt.run(x)
                first_ms = (time.perf_counter() - t0) * 1e3
                samples = measure(lambda: rt.run(x), timing)
                st = LatencyStats.from_samples(samples.ns)
                rec = BenchmarkRecord(
                    run_id=run_id, timestamp_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), host=host,
                    model=t.name, variant="fp32", dataset=t.dataset, task=t.task, runtime=rt.name, provider=prov,
                    providers_used=";".join(rt.providers_used), batch_size=b,
                    intra_op_threads=cfg.intra_op_threads,
                    spinning={None: "default", True: "on", False: "off"}[cfg.spinning],
                    graph_optimization=cfg.graph_optimization,
                    session_create_ms=rt.create_ms, first_inference_ms=first_ms,
                    warmup_iters=samples.warmup_iters, timed_iters=st.n, timed_wall_s=samples.wall_s,
                    latency_mean_ms=st.mean_ms, latency_std_ms=st.std_ms, latency_min_ms=st.min_ms,
                    latency_p50_ms=st.p50_ms, latency_p90_ms=st.p90_ms, latency_p99_ms=st.p99_ms,
                    latency_max_ms=st.max_ms, latency_cv=st.cv,
                    throughput_ips=throughput_ips(b, st.n, samples.wall_s),
                    accuracy_top1=metric if t.task == "classify" else float("nan"),
                    test_mse=metric if t.task == "reconstruct" else float("nan"),
                    eval_images=len(t.inputs), onnx_sha256=sha, opset=opset,
                    checkpoint_profile=t.profile, checkpoint_seed=t.seed,
                    onnxruntime_version=ort.__version__, torch_version=torch.__version__,
                    onnx_version=onnx.__version__, cpu_model=cpu, mnistbench_version=mnistbench.__version__,
                )
                sink.append(rec)
                rows.append(rec)
                done += 1
                if progress:
                    progress(f"{t.name} [{prov}] batch {b}", done)
    return rows
