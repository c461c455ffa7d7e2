"""The timing loop (bench/measure/timing.py): warm-up, the timed loop, blocks with their pause and
re-entry calls, and the bounds of TimingConfig.

``time.perf_counter_ns`` is replaced by a clock that moves only when the measured call runs, so
the number of warm-up and timed calls, every latency and the wall time are known exactly: a wrong
unit (ns vs s), bound or comparison changes a number these tests state. These tests pin exact
numbers; they were written to kill the survivors of mutation testing (issue 19, scripts/mutation.py).
The timing loop's tests against the real clock are in tests/test_bench.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from mnistbench.bench.measure import timing
from mnistbench.bench.measure.timing import TimingConfig, measure, measure_block, reentry_calls, warm_up
from mnistbench.models.errors import UsageError

MS = 1_000_000  # ns


class FakeClock:
    """A perf_counter_ns that advances only in ``call``: each call takes the next duration (ns)."""

    def __init__(self, durations_ns, start_ns: int = 7 * MS) -> None:
        self.t = start_ns
        self.durations = list(durations_ns)
        self.calls = 0
        self.sleeps: list[float] = []

    def now(self) -> int:
        return self.t

    def call(self) -> None:
        d = self.durations[min(self.calls, len(self.durations) - 1)]
        self.t += d
        self.calls += 1

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)


@pytest.fixture()
def clock(monkeypatch):
    def make(durations_ns, start_ns: int = 7 * MS) -> FakeClock:
        c = FakeClock(durations_ns, start_ns)
        monkeypatch.setattr(timing.time, "perf_counter_ns", c.now)
        monkeypatch.setattr(timing.time, "sleep", c.sleep)
        return c
    return make


def test_documented_defaults():
    """README (Measurement): warm-up until 5 calls and 0.2 s; 16 rounds; at least 16 calls and 1.0 s;
    blocks of 1 call and 62.5 ms; a 5 ms pause and 2 re-entry calls, none over a quarter of a block."""
    cfg = TimingConfig()
    assert (cfg.warmup_iters, cfg.warmup_s, cfg.min_iters, cfg.min_s, cfg.rounds) == (5, 0.2, 16, 1.0, 16)
    assert (cfg.block_iters, cfg.block_s) == (1, 0.0625)
    assert timing.BLOCK_PAUSE_S == 0.005
    assert timing.REENTRY_CALLS == 2
    assert timing.REENTRY_MAX_FRACTION == 0.25


def test_measure_stops_at_the_duration_bound_exactly(clock):
    """1 ms calls: the warm-up needs 3 calls and 5.5 ms, so 6 calls (5 ms < 5.5 ms); the timed
    loop needs 4 calls and 10 ms, so 10 calls: the loop stops as soon as 10 ms have passed."""
    c = clock([MS])
    s = measure(c.call, TimingConfig(warmup_iters=3, warmup_s=0.0055, min_iters=4, min_s=0.010))
    assert s.warmup_iters == 6
    assert s.ns.dtype == np.int64
    assert s.ns.tolist() == [MS] * 10
    assert s.wall_s == pytest.approx(0.010, rel=1e-12)
    assert c.calls == 16


def test_measure_stops_at_the_count_bound(clock):
    """When the count is the longer bound: exactly ``warmup_iters`` and ``min_iters`` calls."""
    c = clock([2 * MS])
    s = measure(c.call, TimingConfig(warmup_iters=7, warmup_s=0.001, min_iters=20, min_s=0.001))
    assert s.warmup_iters == 7
    assert len(s.ns) == 20
    assert s.wall_s == pytest.approx(0.040, rel=1e-12)


def test_measure_records_each_call_in_order_in_nanoseconds(clock):
    """Latencies are the calls' own durations, in order; the wall time is their sum in seconds."""
    durs = [3 * MS, 1 * MS, 4 * MS, 1 * MS, 5 * MS, 9 * MS, 2 * MS, 6 * MS]
    c = clock([0] + durs)  # the one warm-up call takes no time
    s = measure(c.call, TimingConfig(warmup_iters=1, warmup_s=0.0, min_iters=8, min_s=0.0))
    assert s.warmup_iters == 1
    assert s.ns.tolist() == durs
    assert s.wall_s == pytest.approx(sum(durs) / 1e9, rel=1e-12)


def test_measure_without_warm_up(clock):
    """warmup 0 calls and 0 s: no untimed call at all."""
    c = clock([MS])
    s = measure(c.call, TimingConfig(warmup_iters=0, warmup_s=0.0, min_iters=3, min_s=0.0))
    assert (s.warmup_iters, len(s.ns), c.calls) == (0, 3, 3)


def test_warm_up_counts_until_both_bounds(clock):
    c = clock([MS])
    assert warm_up(c.call, TimingConfig(warmup_iters=2, warmup_s=0.0045)) == 5  # 4 ms < 4.5 ms
    c = clock([MS])
    assert warm_up(c.call, TimingConfig(warmup_iters=2, warmup_s=0.004)) == 4  # stops at exactly 4 ms
    c = clock([MS])
    assert warm_up(c.call, TimingConfig(warmup_iters=9, warmup_s=0.004)) == 9
    c = clock([MS])
    assert warm_up(c.call, TimingConfig(warmup_iters=0, warmup_s=0.0)) == 0


def test_default_warm_up_is_5_calls_and_0_2_s(clock):
    c = clock([10 * MS])
    assert warm_up(c.call, TimingConfig()) == 20  # 0.2 s of 10 ms calls
    c = clock([100 * MS])
    assert warm_up(c.call, TimingConfig()) == 5  # 5 calls take longer than 0.2 s


def test_measure_block_pause_reentry_and_bounds(clock):
    """A pause of ``pause_s``, ``reentry`` untimed calls, then timed calls to both bounds; the wall
    time is returned in nanoseconds."""
    c = clock([5 * MS, 5 * MS, 1 * MS, 2 * MS, 3 * MS, 1 * MS, 1 * MS])
    ns, wall = measure_block(c.call, 2, 0.0065, reentry=2, pause_s=0.005)
    assert c.sleeps == [0.005]
    assert ns.dtype == np.int64
    assert ns.tolist() == [MS, 2 * MS, 3 * MS, MS]  # 6 ms < 6.5 ms after 3 calls, 7 ms after 4
    assert wall == 7 * MS
    assert c.calls == 6


def test_measure_block_defaults_and_count_bound(clock):
    c = clock([MS])
    ns, wall = measure_block(c.call, 5, 0.0)
    assert c.sleeps == [timing.BLOCK_PAUSE_S]
    assert c.calls == 5 + timing.REENTRY_CALLS
    assert ns.tolist() == [MS] * 5
    assert wall == 5 * MS
    c = clock([MS])
    ns, wall = measure_block(c.call, 1, 0.003, reentry=0)
    assert (c.calls, len(ns), wall) == (3, 3, 3 * MS)  # stops at exactly 3 ms


def test_reentry_calls_at_below_above_a_quarter_of_the_block():
    assert reentry_calls(0.125, 1.0) == 2  # 2 calls = exactly 0.25 of the block
    assert reentry_calls(0.1, 1.0) == 2
    assert reentry_calls(0.12500001, 1.0) == 0
    assert reentry_calls(0.01, 0.0625) == 0  # 20 ms of a 62.5 ms block is over a quarter
    assert reentry_calls(0.005, 0.0625) == 2
    assert reentry_calls(0.0, 0.0) == 2


@pytest.mark.parametrize("min_iters,rounds,iters", [(16, 16, 1), (17, 16, 2), (32, 16, 2), (33, 16, 3),
                                                    (1, 1, 1), (5, 1, 5), (100, 7, 15)])
def test_block_iters_is_the_ceiling(min_iters, rounds, iters):
    assert TimingConfig(min_iters=min_iters, rounds=rounds).block_iters == iters


def test_block_s_splits_min_s():
    assert TimingConfig(min_s=2.0, rounds=8).block_s == 0.25
    assert TimingConfig(min_s=3.0, rounds=1).block_s == 3.0


@pytest.mark.parametrize("kw", [dict(warmup_iters=0), dict(warmup_s=0.0), dict(min_iters=1), dict(min_s=0.0),
                                dict(rounds=1), dict(rounds=1000), dict(min_s=3600.0), dict(warmup_s=3600.0)])
def test_bounds_accepted_at_their_limits(kw):
    TimingConfig(**kw)


@pytest.mark.parametrize("kw", [dict(warmup_iters=-1), dict(warmup_s=-1e-9), dict(min_iters=0), dict(min_s=-1e-9),
                                dict(rounds=0), dict(rounds=1001), dict(min_s=3600.001), dict(warmup_s=3600.001),
                                dict(min_s=math.nan), dict(warmup_s=math.inf), dict(min_s=math.inf),
                                dict(warmup_s=math.nan)])
def test_bounds_refused_beyond_their_limits(kw):
    with pytest.raises(UsageError):
        TimingConfig(**kw)
