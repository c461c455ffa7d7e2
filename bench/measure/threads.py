"""``--threads auto``: which intra-op thread count a cell runs with, chosen per machine by a short
probe and kept per machine and model file (:class:`AutoThreadsCache`), so that two runs of one model
on one machine use the same count."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import onnxruntime as ort
import psutil

from ...models.files import atomic_write_bytes
from ..runtimes.runtime import GpuOptions, OrtRuntime, SessionConfig
from .system import cpu_model
from .timing import TimingConfig, measure

PROBE = TimingConfig(warmup_iters=3, warmup_s=0.05, min_iters=3, min_s=0.15)  # cheap even at batch 512
AUTO_MARGIN = 0.05  # 1 thread must beat one-per-physical-core by this fraction in the probe
SPIN_TEXT = {None: "default", True: "on", False: "off"}  # a row's ``spinning`` column


def thread_candidates() -> tuple[int, ...]:
    """1, and one thread per physical core when that still leaves a logical CPU free (deduplicated).

    The free CPU is for the harness's own thread and the operating system: a session that uses every
    CPU of the host waits on whichever of its threads was preempted. Measured on the 2-vCPU machine
    here (14 separate runs of lenet5 and rich-cnn, `results/calibration/README.md`): 2-thread sessions
    ran in two modes up to 2x apart, changing from run to run (lenet5 batch 1: 26 or 52 us), while
    1-thread sessions agreed within 2%. On that machine ``auto`` therefore means 1 thread; ask for
    ``--threads 2`` (or ``0``, the runtime's choice) to measure every CPU.
    """
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
            except (OSError, ValueError, TypeError, RecursionError):
                self.choices = {}  # a damaged cache only costs a probe

    @staticmethod
    def key(sha: str, provider: str, spinning: bool | None, batch: int) -> str:
        return "|".join(map(str, (sha, provider, SPIN_TEXT[spinning], batch, cpu_model(), psutil.cpu_count(),
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
