"""``run --repeat N``: the whole matrix N times, each in a fresh process and in a shuffled order.

Each repeat is the same :class:`RunRequest` with ``repeat_index`` and ``shuffle_seed`` i, run in a
fresh process (:func:`.process.run_in_fresh_process`, the request handed as data) writing into the
same results CSV (the parent holds its writer lock); rows carry ``repeat`` = i. A fresh
process per repeat puts process-level state (allocator, thread pools, page cache of the model)
into the spread between repeats, where it belongs.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Callable

from ...models.errors import MnistBenchError
from ..measure.records import read_csv
from ..measure.system import gemm_peaks, write_system_json
from .planning import RunOutcome, RunRequest
from .process import run_in_fresh_process


def repeat_request(csv_path: Path, req: RunRequest, i: int) -> RunRequest:
    """Repeat ``i`` of ``req``: one matrix into ``csv_path``, shuffled by seed ``i``."""
    return dataclasses.replace(req, out_path=csv_path, repeat=1, repeat_index=i, shuffle_seed=i, resume=False)


def run_repeats(csv_path: Path, req: RunRequest, say: Callable[[str], None] = print) -> RunOutcome:
    """Run ``req.repeat`` child processes in turn, then write the ``.system.json``; returns every row.

    Raises:
        MnistBenchError: a repeat's process failed (rows of the repeats before it stay in the CSV).
    """
    for i in range(req.repeat):
        say(f"repeat {i + 1}/{req.repeat} (fresh process, shuffle seed {i})")
        child = run_in_fresh_process(repeat_request(csv_path, req, i))
        if child.exit_code != 0:
            raise MnistBenchError(f"repeat {i + 1} failed (exit {child.exit_code}: {child.error}); "
                                  f"rows so far are in {csv_path}")
    peak = gemm_peaks(req.axes.providers)
    system_path = csv_path.with_suffix(".system.json")
    write_system_json(system_path, {
        "results_csv": csv_path.name, "command": req.command or " ".join(sys.argv), "gemm_peak_gflops": peak["cpu"],
        "gemm_peak_gflops_cuda": peak.get("cuda")})
    return RunOutcome(read_csv(csv_path), csv_path, system_path, repeats=req.repeat)
