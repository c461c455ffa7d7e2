"""One scenario on one system under test: a LoadGen test at a rate (:func:`run_point`), the highest
rate that meets the latency bound (:func:`find_peak`), and the accuracy run (:func:`accuracy_run`).

The peak search is a bisection over LoadGen Server tests (not LoadGen's own ``FindPeakPerformance``
mode, whose search needs a VALID run at the starting rate and the submission durations): from 0.8x
the closed-loop capacity estimate (at most :data:`MAX_START_QPS`) it doubles or halves (quarters,
when the percentile is :data:`FAR_OVER` bounds over) until it has a VALID and an INVALID rate, then
halves the gap until it is within :data:`PEAK_TOLERANCE` of the VALID one or :data:`PEAK_STEPS`
tests ran. The found peak is the highest rate LoadGen called VALID.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .loadgen import MULTI_STREAM_SAMPLES, Limits, LoadGenResult, accuracy_predictions, read_result, run_test, settings
from .sut import BatchingSUT

PEAK_TOLERANCE = 0.02  # the bisection stops when (INVALID - VALID) / VALID is at most this
PEAK_STEPS = 12  # at most this many LoadGen tests a peak search
MIN_QPS = 1.0  # a search that finds nothing VALID above this rate reports no peak
FLOOR_DIVISOR = 64.0  # ... nor below the capacity estimate / this (each test at a low rate lasts min_query_count / rate)
MAX_START_QPS = 50_000.0  # where a search starts at most: Python LoadGen issues ~25k one-sample queries/s here
FAR_OVER = 10.0  # an INVALID test whose percentile is this many bounds over steps down 4x instead of 2x
PERFORMANCE_SAMPLES = 1024  # samples LoadGen draws performance queries from (the QSL's performance count)


@dataclass
class Point:
    """One LoadGen test and what the system under test saw (times in ms).

    Attributes:
        result: LoadGen's verdict and figures.
        target_qps: the Server rate asked (NaN for other scenarios).
        timings: int64 (n, 4) per answered sample: issue ns, start ns, end ns, batch size.
        error: the first runtime error of a worker ('' when none).
        wall_s: the test's wall time, seconds.
    """

    result: LoadGenResult
    target_qps: float
    timings: np.ndarray
    error: str = ""
    wall_s: float = 0.0

    def queue_ms(self) -> np.ndarray:
        return (self.timings[:, 1] - self.timings[:, 0]) / 1e6

    def compute_ms(self) -> np.ndarray:
        return (self.timings[:, 2] - self.timings[:, 1]) / 1e6

    def batch_mean(self) -> float:
        t = self.timings
        return float(np.mean(t[:, 3])) if len(t) else math.nan


@dataclass
class Peak:
    """A peak search: ``peak_qps`` (NaN when nothing above :data:`MIN_QPS` was VALID), the VALID test
    at it (``best``), and every (rate, valid) tried in order."""

    peak_qps: float
    best: Point | None
    tried: list[tuple[float, bool]] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    """What to run: the scenario (a key of :data:`.loadgen.SCENARIOS`), LoadGen's limits, the Server
    bound (``bound_ms`` at ``percentile``), the closed-loop estimates LoadGen needs
    (``expected_ms``: a query's latency, ``capacity_qps``: samples/s) and the seed of LoadGen's
    generators."""

    scenario: str
    limits: Limits
    bound_ms: float = 5.0
    percentile: float = 99.0
    expected_ms: float = 1.0
    capacity_qps: float = 1000.0
    seed: int = 0


def run_point(lg, sut: BatchingSUT, count: int, sc: Scenario, log_dir: Path, target_qps: float = math.nan) -> Point:
    """One LoadGen test of ``sc`` (at ``target_qps`` for Server), logs in ``log_dir``."""
    st = settings(lg, sc.scenario, sc.limits, target_qps=target_qps, bound_ms=sc.bound_ms, percentile=sc.percentile,
                  expected_ms=sc.expected_ms, offline_qps=sc.capacity_qps, seed=sc.seed)
    sut.reset()
    t0 = time.perf_counter()
    run_test(lg, sut, count, min(count, PERFORMANCE_SAMPLES), st, log_dir)
    wall = time.perf_counter() - t0
    res, t = read_result(log_dir, sc.scenario), sut.timings()
    if not math.isfinite(res.samples_per_s) and len(t) > 1 and t[:, 2].max() > t[:, 0].min():
        res.samples_per_s = len(t) / ((t[:, 2].max() - t[:, 0].min()) / 1e9)  # multi-stream: LoadGen gives no rate
    return Point(res, target_qps, t, sut.error or "", wall)


def find_peak(lg, sut: BatchingSUT, count: int, sc: Scenario, log_dir: Path, progress=lambda s: None) -> Peak:
    """The highest Server rate LoadGen calls VALID under ``sc``'s bound (bisection; see the module).

    The logs of the VALID test at the peak are kept in ``log_dir``; each test's own in
    ``log_dir/tries/<n>-<rate>``."""
    lo: tuple[float, Point] | None = None
    hi: float | None = None
    q = min(max(sc.capacity_qps * 0.8, MIN_QPS), MAX_START_QPS)
    tried: list[tuple[float, bool]] = []
    for step in range(PEAK_STEPS):
        p = run_point(lg, sut, count, sc, log_dir / "tries" / f"{step:02d}-{q:.1f}", q)
        ok = p.result.valid and not p.error
        tried.append((q, ok))
        progress(f"  {q:,.1f} QPS: {'VALID' if ok else 'INVALID'} (p{sc.percentile:g} "
                 f"{p.result.latency_ms.get(sc.percentile, math.nan):.2f} ms)")
        if ok:
            lo = (q, p)
        else:
            hi = q
        if lo is not None and hi is not None and (hi - lo[0]) / lo[0] <= PEAK_TOLERANCE:
            break
        if lo is None:
            far = p.result.latency_ms.get(sc.percentile, math.inf) > FAR_OVER * sc.bound_ms
            q = q / (4 if far else 2)
            if q < max(MIN_QPS, sc.capacity_qps / FLOOR_DIVISOR):
                break  # nothing VALID at 1/64 of what the system serves flat out: the bound, not the rate, fails
        else:
            q = lo[0] * 2 if hi is None else (lo[0] + hi) / 2
    if lo is None:
        return Peak(math.nan, None, tried)
    return Peak(lo[0], lo[1], tried)


def accuracy_run(lg, sut: BatchingSUT, labels: np.ndarray, sc: Scenario, log_dir: Path) -> float:
    """LoadGen's accuracy mode over every sample of the QSL (each issued once): top-1 of the answers
    logged in ``mlperf_log_accuracy.json`` against ``labels`` (int64 (N,)).

    Raises:
        UsageError: LoadGen's accuracy log is unreadable, or does not answer every sample once.
    """
    from ...models.errors import UsageError

    st = settings(lg, sc.scenario, sc.limits, target_qps=sc.capacity_qps, bound_ms=sc.bound_ms,
                  percentile=sc.percentile, expected_ms=sc.expected_ms, offline_qps=sc.capacity_qps, seed=sc.seed,
                  accuracy=True)
    sut.reset()
    run_test(lg, sut, len(labels), min(len(labels), PERFORMANCE_SAMPLES), st, log_dir)
    pred = accuracy_predictions(log_dir)
    if sorted(pred) != list(range(len(labels))):
        raise UsageError(f"LoadGen's accuracy log answers {len(pred)} samples, not each of {len(labels)} once")
    got = np.fromiter((pred[i] for i in range(len(labels))), np.int64, len(labels))
    return float(np.mean(got == labels))


def samples_per_query(scenario: str) -> int:
    """Samples in one query: 8 for multi-stream (MLPerf's rule), 1 otherwise (Offline: one query of all)."""
    return MULTI_STREAM_SAMPLES if scenario == "multi-stream" else 1
