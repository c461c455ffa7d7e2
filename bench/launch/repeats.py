"""``run --repeat N``: the whole matrix N times, each in a fresh process and in a shuffled order.

Each repeat is ``python -m mnistbench.bench.cli run ... --repeat-index i --shuffle-seed i`` writing
into the same results CSV (the parent holds its writer lock); rows carry ``repeat`` = i. A fresh
process per repeat puts process-level state (allocator, thread pools, page cache of the model)
into the spread between repeats, where it belongs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

from ...models.errors import MnistBenchError
from ..measure import inputs
from ..measure.records import read_csv
from ..measure.system import gemm_peaks, write_system_json
from .planning import RunOutcome, RunRequest


def child_args(csv_path: Path, req: RunRequest) -> list[str]:
    """The ``run`` command line of one repeat of ``req`` writing to ``csv_path`` (without the repeat index)."""
    t, axes = req.timing, req.axes
    variant, precision = inputs.variant_texts(req.variants)
    args = [sys.executable, "-m", "mnistbench.bench.cli", "run", *(req.names or []),
            "--provider", ",".join(axes.providers), "--runtime", ",".join(axes.runtimes),
            "--batch-sizes", ",".join(map(str, axes.batch_sizes)), "--threads", inputs.threads_text(axes.threads),
            "--spinning", inputs.spinning_text(axes.spinning),
            "--profile", req.profile, "--seed", str(req.seed), "--dataset", req.dataset,
            "--warmup-iters", str(t.warmup_iters), "--warmup-s", str(t.warmup_s), "--min-iters", str(t.min_iters),
            "--min-s", str(t.min_s), "--rounds", str(t.rounds), "--max-live-sessions", str(req.max_live),
            "--out", str(csv_path), "--null" if req.null else "--no-null",
            "--reference" if req.reference else "--no-reference",
            "--score" if req.score else "--no-score", "--variant", variant, "--precision", precision,
            "--io-mode", ",".join(axes.io_modes), "--cudnn-algo", axes.gpu.cudnn_conv_algo_search,
            "--tf32" if axes.gpu.tf32 else "--no-tf32", "--device-id", str(axes.gpu.device_id),
            *(["--allow-stale"] if req.allow_stale else []),
            *(["--call-timeout", str(req.call_timeout)] if req.call_timeout is not None else [])]
    for flag, value in (("--data-dir", req.data_dir), ("--artifacts-dir", req.artifacts_dir),
                        ("--pin-cpus", req.pin_cpus)):
        if value:
            args += [flag, str(value)]
    return args


def run_repeats(csv_path: Path, req: RunRequest, say: Callable[[str], None] = print) -> RunOutcome:
    """Run ``req.repeat`` child processes in turn, then write the ``.system.json``; returns every row.

    Raises:
        MnistBenchError: a repeat's process failed (rows of the repeats before it stay in the CSV).
    """
    base = child_args(csv_path, req)
    for i in range(req.repeat):
        say(f"repeat {i + 1}/{req.repeat} (fresh process, shuffle seed {i})")
        child = subprocess.run([*base, "--repeat-index", str(i), "--shuffle-seed", str(i)])
        if child.returncode != 0:
            raise MnistBenchError(f"repeat {i + 1} failed (exit {child.returncode}); rows so far are in {csv_path}")
    peak = gemm_peaks(req.axes.providers)
    system_path = csv_path.with_suffix(".system.json")
    write_system_json(system_path, {
        "results_csv": csv_path.name, "command": " ".join(sys.argv), "gemm_peak_gflops": peak["cpu"],
        "gemm_peak_gflops_cuda": peak.get("cuda")})
    return RunOutcome(read_csv(csv_path), csv_path, system_path, repeats=req.repeat)
