"""One scenario on one system under test: a LoadGen test at a rate (:func:`run_point`), the highest
rate that meets the latency bound (:func:`find_peak`), and the accuracy run (:func:`accuracy_run`).

The peak search is a bisection over LoadGen Server tests (not LoadGen's own ``FindPeakPerformance``
mode, whose search needs a VALID run at the starting rate and the submission durations): from 0.8x
the system's rate on a backlog (at most :data:`MAX_START_QPS`) it steps down until a rate is VALID
and doubles until one is INVALID, then halves the gap until it is within :data:`PEAK_TOLERANCE` of
the VALID one or :data:`PEAK_STEPS` tests ran; an INVALID rate the system kept up with gets a
second test (:func:`search_peak` says when and why). The found peak is the highest rate LoadGen
called VALID.
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
PEAK_STEPS = 16  # at most this many LoadGen tests a peak search (second tests of an INVALID rate count)
SATURATED = 0.95  # a test whose system answered under this share of the rate asked could not keep up
MIN_QPS = 1.0  # a search that finds nothing VALID above this rate reports no peak
FLOOR_DIVISOR = 64.0  # ... nor below the capacity estimate / this (each test at a low rate lasts min_query_count / rate)
MAX_START_QPS = 50_000.0  # where a search starts at most: Python LoadGen issues ~25k one-sample queries/s here
FAR_OVER = 10.0  # an INVALID test whose percentile is this many bounds over steps down 4x instead of 2x
OFFLINE_FACTOR = 2.0  # Offline: tell LoadGen a rate above the estimate (it then issues enough samples; 1.5 left a
                      # warm run finishing before a 0.3 s minimum in CI: over-stating only lengthens the test)
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
    (``expected_ms``: a query's latency, ``capacity_qps``: the system's samples/s on a backlog) and the seed of LoadGen's
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
                  expected_ms=sc.expected_ms, offline_qps=sc.capacity_qps * OFFLINE_FACTOR, seed=sc.seed)
    sut.reset()
    t0 = time.perf_counter()
    run_test(lg, sut, count, min(count, PERFORMANCE_SAMPLES), st, log_dir)
    wall = time.perf_counter() - t0
    res, t = read_result(log_dir, sc.scenario), sut.timings()
    if not math.isfinite(res.samples_per_s) and len(t) > 1 and t[:, 2].max() > t[:, 0].min():
        res.samples_per_s = len(t) / ((t[:, 2].max() - t[:, 0].min()) / 1e9)  # multi-stream: LoadGen gives no rate
    return Point(res, target_qps, t, sut.error or "", wall)


class PeakSearch:
    """One peak search, a LoadGen test a :meth:`step`, so that several can take turns (``load
    --interleave``); :func:`find_peak` runs one to its end.

    The logs of each test are in ``log_dir/tries/<n>-<rate>``; :meth:`result` gives the peak."""

    def __init__(self, lg, sut: BatchingSUT, count: int, sc: Scenario, log_dir: Path,
                 progress=lambda s: None) -> None:
        self.lg, self.sut, self.count, self.sc, self.log_dir, self.progress = lg, sut, count, sc, log_dir, progress
        self.tried: list[Trial] = []
        self.wall_s = 0.0  # the seconds of this search's own tests
        self._points: dict[float, Point] = {}
        self._steps = peak_steps(sc.capacity_qps, sc.bound_ms)
        self._next: float | None = next(self._steps)

    @property
    def done(self) -> bool:
        return self._next is None

    def step(self) -> None:
        """Run the next test of the search (nothing when it is done)."""
        if self._next is None:
            return
        q, sc = self._next, self.sc
        p = run_point(self.lg, self.sut, self.count, sc, self.log_dir / "tries" / f"{len(self.tried):02d}-{q:.1f}", q)
        self.wall_s += p.wall_s
        ok = p.result.valid and not p.error
        pct = p.result.latency_ms.get(sc.percentile, math.nan)
        if ok:
            self._points[q] = p
        self.progress(f"  {q:,.1f} QPS: {'VALID' if ok else 'INVALID'} (p{sc.percentile:g} {pct:.2f} ms)")
        t = Trial(q, ok, pct, served_qps(p.timings))
        self.tried.append(t)
        try:
            self._next = self._steps.send(t)
        except StopIteration:
            self._next = None

    def result(self) -> Peak:
        """The highest VALID rate tried (NaN and no test when none was VALID), and every (rate, valid)."""
        valid = [t.qps for t in self.tried if t.valid]
        tried = [(t.qps, t.valid) for t in self.tried]
        if not valid:
            return Peak(math.nan, None, tried)
        return Peak(max(valid), self._points[max(valid)], tried)


def find_peak(lg, sut: BatchingSUT, count: int, sc: Scenario, log_dir: Path, progress=lambda s: None) -> Peak:
    """The highest Server rate LoadGen calls VALID under ``sc``'s bound (bisection; see the module).

    Each test's logs are in ``log_dir/tries/<n>-<rate>``."""
    search = PeakSearch(lg, sut, count, sc, log_dir, progress)
    while not search.done:
        search.step()
    return search.result()


@dataclass(frozen=True)
class Trial:
    """One test of a peak search: the rate asked (QPS), LoadGen's verdict, the percentile it measured
    (ms) and the rate the system under test answered at (samples/s, from its timings)."""

    qps: float
    valid: bool
    percentile_ms: float
    served_qps: float


def served_qps(timings: np.ndarray) -> float:
    """Samples/s the system under test answered over a test: answered samples over the time from the
    first issue to the last answer (int64 (n, 4) timings of :class:`Point`; NaN under 2 samples)."""
    if len(timings) < 2:
        return math.nan
    span = (timings[:, 2].max() - timings[:, 0].min()) / 1e9
    return len(timings) / span if span > 0 else math.nan


def search_peak(test, capacity_qps: float, bound_ms: float) -> list[Trial]:
    """The tests of one peak search, in order (``test(qps, step) -> Trial`` runs one LoadGen Server
    test); the peak is the highest VALID rate among them, the rates those of :func:`peak_steps`."""
    tried: list[Trial] = []
    steps = peak_steps(capacity_qps, bound_ms)
    q = next(steps)
    while True:
        tried.append(test(q, len(tried)))
        try:
            q = steps.send(tried[-1])
        except StopIteration:
            return tried


def peak_steps(capacity_qps: float, bound_ms: float):
    """The rates of one peak search, a generator: it yields the next rate to test and is sent that
    test's :class:`Trial`; it returns when the search is done. The search starts at 0.8x
    ``capacity_qps`` (the system's own rate on a backlog; at most :data:`MAX_START_QPS`). Until a
    rate is VALID it steps down: to 0.9x the rate the system answered at when it could not keep up
    (answered under :data:`SATURATED` of the rate asked: that rate is about what it can serve),
    else to half (a quarter when the percentile was :data:`FAR_OVER` bounds over). It then doubles
    until a rate is INVALID, and halves the gap until it is within :data:`PEAK_TOLERANCE` of the
    VALID rate or :data:`PEAK_STEPS` tests ran.

    An INVALID rate that the system kept up with and whose percentile was under :data:`FAR_OVER`
    bounds is tested once more and counts INVALID only if that test is INVALID too: on a host that
    stalls, one stall in a test makes a rate far below the peak INVALID, and the bisection never
    climbs back (session 12's pilot: INVALID at 103 QPS in a search that found 200, where others
    found 360-490).
    """
    tried: list[Trial] = []
    lo: float | None = None
    hi: float | None = None
    q = min(max(capacity_qps * 0.8, MIN_QPS), MAX_START_QPS)
    while len(tried) < PEAK_STEPS:
        t = yield q
        tried.append(t)
        kept_up = not (t.served_qps < SATURATED * q)
        if not t.valid and kept_up and t.percentile_ms <= FAR_OVER * bound_ms and len(tried) < PEAK_STEPS:
            t = yield q  # a second chance: a stall, or the rate?
            tried.append(t)
            kept_up = not (t.served_qps < SATURATED * q)
        if t.valid:
            lo = q
        else:
            hi = q
        if lo is not None and hi is not None and (hi - lo) / lo <= PEAK_TOLERANCE:
            return
        if lo is None:
            q = 0.9 * min(t.served_qps, q) if not kept_up else q / (4 if t.percentile_ms > FAR_OVER * bound_ms else 2)
            if q < max(MIN_QPS, capacity_qps / FLOOR_DIVISOR):
                return  # nothing VALID at 1/64 of what the system serves flat out: the bound, not the rate, fails
        else:
            q = lo * 2 if hi is None else (lo + hi) / 2


def accuracy_run(lg, sut: BatchingSUT, labels: np.ndarray, sc: Scenario, log_dir: Path) -> float:
    """LoadGen's accuracy mode over every sample of the QSL (each issued once): top-1 of the answers
    logged in ``mlperf_log_accuracy.json`` against ``labels`` (int64 (N,)).

    Raises:
        UsageError: LoadGen's accuracy log is unreadable, or does not answer every sample once.
    """
    from ...models.errors import UsageError

    st = settings(lg, sc.scenario, sc.limits, target_qps=sc.capacity_qps, bound_ms=sc.bound_ms,
                  percentile=sc.percentile, expected_ms=sc.expected_ms, offline_qps=sc.capacity_qps * OFFLINE_FACTOR,
                  seed=sc.seed,
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
