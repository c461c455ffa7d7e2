"""Reproducible neighbour noise: seeded bursts of CPU and memory-bandwidth load beside a benchmark.

A shared machine (a CI runner, a cloud VM beside other tenants) changes speed while it is measured.
To study a comparison's verdicts under that movement on *any* machine, :class:`Neighbour` starts
worker processes on the benchmark's own CPUs that load them on a seeded schedule:

- ``quiet``: no neighbour; the benchmark should be pinned to a CPU that nothing else uses;
- ``as-is``: no neighbour and no pinning: the host as it is (whatever else runs on it);
- ``busy``: one worker per CPU, always on, alternating CPU spin and memory traffic every period;
- ``bursty``: one worker per CPU, on and off in turn, each period's length drawn log-uniformly in
  [:data:`MIN_PERIOD_S`, :data:`MAX_PERIOD_S`] (100 ms to 10 s) and each burst either CPU spin or
  memory traffic (a copy of :data:`MEMORY_MB` MiB arrays, larger than any last-level cache here),
  with probability 1/2 each.

A worker's schedule is a function of ``(seed, worker index)`` alone (:func:`schedule`), so the
same seed gives the same bursts on every machine; only their effect differs with the machine.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field

import numpy as np

from ...models.errors import UsageError

CONDITIONS = ("as-is", "quiet", "busy", "bursty")
# Period bounds of the bursty neighbour, seconds: from a scheduler quantum's order (100 ms) to a
# co-tenant's batch job's (10 s); the ends of the range the noisy-host issue asked for.
MIN_PERIOD_S = 0.1
MAX_PERIOD_S = 10.0
# Working set of a memory burst, MiB: two arrays of this size, copied back and forth (32 MiB is
# larger than the last-level cache of the 2-vCPU hosts here, so each copy goes to DRAM).
MEMORY_MB = 32
# How long one unit of work of a burst lasts at most, seconds: a worker checks its schedule and the
# stop flag this often.
SLICE_S = 0.02


@dataclass(frozen=True)
class Burst:
    """One period of a worker's schedule: ``kind`` is ``idle``, ``cpu`` or ``memory``; ``seconds`` long."""

    kind: str
    seconds: float


def schedule(condition: str, seed: int, worker: int, total_s: float) -> list[Burst]:
    """The seeded schedule of one worker covering at least ``total_s`` seconds.

    ``bursty`` alternates idle and busy periods (starting with either, by the seed), each
    log-uniform in [MIN_PERIOD_S, MAX_PERIOD_S]; ``busy`` has no idle period. ``quiet`` and
    ``as-is`` have no worker (empty schedule).

    Raises:
        UsageError: an unknown condition.
    """
    check_condition(condition)
    if condition in ("quiet", "as-is"):
        return []
    rng = np.random.default_rng([seed, worker])
    out, t = [], 0.0
    busy = condition == "busy" or bool(rng.integers(2))
    while t < total_s:
        s = float(math.exp(rng.uniform(math.log(MIN_PERIOD_S), math.log(MAX_PERIOD_S))))
        kind = ("cpu" if rng.random() < 0.5 else "memory") if busy else "idle"
        out.append(Burst(kind, s))
        t += s
        if condition == "bursty":
            busy = not busy
    return out


def check_condition(condition: str) -> None:
    """Raises UsageError unless ``condition`` is one of :data:`CONDITIONS`."""
    if condition not in CONDITIONS:
        raise UsageError(f"noise condition must be one of {', '.join(CONDITIONS)}; got {condition!r}")


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 1.0001
    while time.perf_counter() < end:
        for _ in range(2000):
            x = x * 1.0000001 + 1e-9


def _worker(condition: str, seed: int, worker: int, cpu: int | None, total_s: float) -> None:
    """One neighbour process: follow the schedule until it ends, SIGTERM arrives or the parent dies."""
    parent = os.getppid()
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(1))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark's Ctrl-C stops it through its parent
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
        except (AttributeError, OSError):
            pass
    a = np.ones(MEMORY_MB * 2**20 // 8)
    b = np.empty_like(a)
    for burst in schedule(condition, seed, worker, total_s):
        end = time.perf_counter() + burst.seconds
        while True:
            left = end - time.perf_counter()
            if stopped or os.getppid() != parent:
                return
            if left <= 0:
                break
            if burst.kind == "idle":
                time.sleep(min(left, SLICE_S))
            elif burst.kind == "cpu":
                _spin(min(left, SLICE_S))
            else:
                np.copyto(b, a)
                np.copyto(a, b)


@dataclass
class Neighbour:
    """A context manager running the ``condition``'s neighbour on ``cpus`` (default: every CPU this
    process may use) for at most ``max_s`` seconds. ``quiet`` and ``as-is`` start nothing.

    Example: ``with Neighbour("bursty", seed=3): run_the_benchmark()``

    Raises:
        UsageError: an unknown condition or an empty CPU set.
    """

    condition: str
    seed: int = 0
    cpus: tuple[int, ...] | None = None
    max_s: float = 24 * 3600.0
    _procs: list = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        check_condition(self.condition)
        if self.cpus is None:
            self.cpus = tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else (None,)
        if not self.cpus:
            raise UsageError("the neighbour needs at least one CPU")

    def __enter__(self) -> "Neighbour":
        if self.condition in ("quiet", "as-is"):
            return self
        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: nothing of the benchmark's state is shared
        for i, cpu in enumerate(self.cpus):
            proc = ctx.Process(target=_worker, args=(self.condition, self.seed, i, cpu, self.max_s), daemon=True)
            proc.start()
            self._procs.append(proc)
        return self

    def __exit__(self, *exc) -> None:
        for p in self._procs:
            p.terminate()
        for p in self._procs:
            p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join()
        self._procs.clear()

    def describe(self) -> dict:
        """What ran beside the benchmark, for the study's system JSON."""
        return {"condition": self.condition, "seed": self.seed, "cpus": list(self.cpus),
                "period_s": [MIN_PERIOD_S, MAX_PERIOD_S], "memory_mb": MEMORY_MB,
                "workers": 0 if self.condition in ("quiet", "as-is") else len(self.cpus)}

