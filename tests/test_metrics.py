"""The statistics (bench/measure/metrics.py) against hand-computed values: n = 1, 2, 100 and 1000,
the p90/p99 thresholds at and below their counts, throughput, accuracy, MSE, the block set behind
`compare` (typical block p50 = 25th percentile of block medians), its bootstrap pieces and intervals.

These tests pin exact numbers; they were written to kill the survivors of mutation testing (issue 19,
scripts/mutation.py). A few more statistics tests are in tests/test_bench.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from mnistbench.bench.measure import metrics
from mnistbench.bench.measure.metrics import (
    BlockCI,
    BlockSet,
    LatencyStats,
    ci_halfwidth_rel,
    mse,
    percentile_ci,
    throughput_ips,
    top1_accuracy,
)

MS = 1_000_000


def ns(*ms) -> np.ndarray:
    return np.array([round(m * MS) for m in ms], np.int64)


def test_documented_constants():
    """Module docstring and README: p90 from 100 samples, p99 from 1000; 2000 bootstrap resamples at
    95%, seed 0; 64 quantile points per block; no interval below 3 blocks; compare judges the 25th
    percentile of the block medians."""
    assert (metrics.MIN_SAMPLES_P90, metrics.MIN_SAMPLES_P99) == (100, 1000)
    assert (metrics.BOOTSTRAP_RESAMPLES, metrics.CI_LEVEL, metrics.BOOTSTRAP_SEED) == (2000, 0.95, 0)
    assert (metrics.QUANTILE_POINTS, metrics.MIN_BLOCKS_CI, metrics.TYPICAL_BLOCK_QUANTILE) == (64, 3, 0.25)


def test_stats_of_one_sample():
    s = LatencyStats.from_samples(ns(2.5))
    assert (s.n, s.mean_ms, s.std_ms, s.min_ms, s.p50_ms, s.max_ms, s.cv) == (1, 2.5, 0.0, 2.5, 2.5, 2.5, 0.0)
    assert math.isnan(s.p90_ms) and math.isnan(s.p99_ms)


def test_stats_of_two_samples():
    s = LatencyStats.from_samples(ns(1, 3))
    assert (s.n, s.mean_ms, s.min_ms, s.p50_ms, s.max_ms) == (2, 2.0, 1.0, 2.0, 3.0)
    assert s.std_ms == pytest.approx(math.sqrt(2))  # sample std, ddof = 1
    assert s.cv == pytest.approx(math.sqrt(2) / 2)
    assert math.isnan(s.p90_ms) and math.isnan(s.p99_ms)


def test_stats_of_100_samples():
    """1..100 ms shuffled: mean 50.5, sample std sqrt(100 x 101 / 12), p50 50.5, p90 = 90 + 0.1
    (linear interpolation at rank 89.1), p99 empty below 1000 samples."""
    x = ns(*range(1, 101))
    np.random.default_rng(3).shuffle(x)
    s = LatencyStats.from_samples(x)
    assert (s.n, s.mean_ms, s.min_ms, s.max_ms, s.p50_ms) == (100, 50.5, 1.0, 100.0, 50.5)
    assert s.std_ms == pytest.approx(math.sqrt(100 * 101 / 12))
    assert s.p90_ms == pytest.approx(90.1)
    assert s.cv == pytest.approx(math.sqrt(100 * 101 / 12) / 50.5)
    assert math.isnan(s.p99_ms)
    assert math.isnan(LatencyStats.from_samples(x[:99]).p90_ms)


def test_stats_of_1000_samples():
    """1..1000 ms: p99 = 990 + 0.01 (rank 989.01), p90 = 900 + 0.1; 999 samples give no p99."""
    x = ns(*range(1, 1001))
    s = LatencyStats.from_samples(x)
    assert s.p99_ms == pytest.approx(990.01)
    assert s.p90_ms == pytest.approx(900.1)
    assert s.p50_ms == 500.5
    assert math.isnan(LatencyStats.from_samples(x[:999]).p99_ms)
    assert LatencyStats.from_samples(x[:999]).p90_ms == pytest.approx(899.2)


def test_stats_units_are_milliseconds_from_nanoseconds():
    s = LatencyStats.from_samples(np.array([1_500_000, 2_500_000, 3_500_000], np.int64))
    assert (s.mean_ms, s.min_ms, s.p50_ms, s.max_ms) == (2.5, 1.5, 2.5, 3.5)
    assert s.std_ms == pytest.approx(1.0)
    assert s.cv == pytest.approx(0.4)


def test_stats_refuse_no_sample_and_cv_of_zero_mean():
    with pytest.raises(ValueError):
        LatencyStats.from_samples(np.array([], np.int64))
    assert math.isnan(LatencyStats.from_samples(np.zeros(3, np.int64)).cv)


def test_throughput_accuracy_mse():
    assert throughput_ips(32, 100, 2.0) == 1600.0
    assert throughput_ips(1, 3, 0.5) == 6.0
    assert math.isnan(throughput_ips(8, 10, 0.0))
    assert math.isnan(throughput_ips(8, 10, -1.0))
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert top1_accuracy(logits, np.array([1, 1, 1])) == pytest.approx(2 / 3)
    assert top1_accuracy(logits, np.array([1, 0, 1])) == 1.0
    assert mse(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 0.0])) == pytest.approx(13 / 3)
    assert mse(np.array([[1.0, -1.0]]), np.array([[0.0, 1.0]])) == pytest.approx(2.5)


@pytest.fixture()
def bset() -> BlockSet:
    """Three blocks: 1,2,3 ms (6 ms wall), 4,5 ms (9 ms), 10 ms (10 ms); batch 8."""
    return BlockSet.from_blocks([ns(1, 2, 3), ns(4, 5), ns(10)], [6 * MS, 9 * MS, 10 * MS], [0, 1, 2], 8)


def test_block_set_point_estimates(bset):
    assert bset.m == 3
    assert bset.n.tolist() == [3.0, 2.0, 1.0]
    assert bset.wall_s.tolist() == pytest.approx([0.006, 0.009, 0.010])
    assert bset.rounds.tolist() == [0, 1, 2]
    assert bset.med_ms.tolist() == [2.0, 4.5, 10.0]
    assert bset.p50_ms == 3.5  # median of all six calls
    assert bset.ips == pytest.approx(8 * 6 / 0.025)
    assert bset.typical_ms == pytest.approx(3.25)  # 25th percentile of 2, 4.5, 10
    assert bset.batch_size == 8


def test_block_set_quantile_points(bset):
    """64 quantiles per block at (k + 0.5) / 64, in ms: block 1's first is 1 + 2 x 0.5/64."""
    assert bset.q_ms.shape == (3, 64)
    assert bset.q_ms[0, 0] == pytest.approx(1 + 2 * 0.5 / 64)
    assert bset.q_ms[0, -1] == pytest.approx(3 - 2 * 0.5 / 64)
    assert bset.q_ms[0, 32] == pytest.approx(1 + 2 * 32.5 / 64)
    assert np.all(bset.q_ms[2] == 10.0)


@pytest.mark.parametrize("blocks,walls,rounds", [([], [], []), ([ns(1), ns()], [1, 1], [0, 1]),
                                                 ([ns(1), ns(2)], [1], [0, 1]), ([ns(1), ns(2)], [1, 1], [0]),
                                                 ([ns(1), ns(2)], [1], [0])])
def test_block_set_refuses_bad_blocks(blocks, walls, rounds):
    with pytest.raises(ValueError):
        BlockSet.from_blocks(blocks, walls, rounds, 1)


def test_block_set_resample_statistics(bset):
    idx = np.array([[0, 0, 0], [0, 1, 2], [2, 2, 1], [2, 2, 2]])
    assert bset.typical_draws(idx).tolist() == pytest.approx([2.0, 3.25, 7.25, 10.0])
    assert bset.ips_draws(idx).tolist() == pytest.approx([8 * 9 / 0.018, 8 * 6 / 0.025, 8 * 4 / 0.029, 8 * 3 / 0.03])
    p50 = bset.p50_draws(idx)
    assert p50[3] == 10.0
    # the weighted median of the resampled blocks' quantile points, by a plain reference computation
    for row, got in zip(idx, p50):
        vals = bset.q_ms[row].ravel()
        wts = np.repeat(bset.n[row] / 64, 64)
        order = np.argsort(vals, kind="stable")
        cw = np.cumsum(wts[order])
        k = int(np.searchsorted(cw, cw[-1] / 2, side="left"))
        assert got == pytest.approx(vals[order][k])


def test_p50_draws_weights_blocks_by_their_calls():
    """A block of 9 calls at 1 ms and one of 1 call at 5 ms: the pooled median is 1 ms, whatever
    the order; equal weights would put it between."""
    bs = BlockSet.from_blocks([ns(*[1] * 9), ns(5)], [9 * MS, 5 * MS], [0, 1], 1)
    assert bs.p50_draws(np.array([[0, 1], [1, 0]])).tolist() == [1.0, 1.0]
    assert bs.p50_draws(np.array([[1, 1]])).tolist() == [5.0]


def test_draw_shape_and_range(bset):
    d = bset.draw(np.random.default_rng(0))
    assert d.shape == (2000, 3)
    assert d.min() == 0 and d.max() == 2


def test_percentile_ci():
    assert percentile_ci(np.arange(101.0)) == pytest.approx((2.5, 97.5))
    assert percentile_ci(np.arange(101.0), 0.9) == pytest.approx((5.0, 95.0))
    assert percentile_ci(np.full(10, 3.0)) == (3.0, 3.0)


def test_block_ci_needs_three_blocks_and_brackets_the_blocks():
    two = BlockSet.from_blocks([ns(1, 1), ns(2, 2)], [2 * MS, 4 * MS], [0, 1], 4)
    ci = BlockCI.of(two)
    assert ci.blocks == 2
    assert all(math.isnan(v) for v in (ci.p50_low_ms, ci.p50_high_ms, ci.ips_low, ci.ips_high))
    three = BlockSet.from_blocks([ns(1, 1), ns(2, 2), ns(3, 3)], [2 * MS, 4 * MS, 6 * MS], [0, 1, 2], 4)
    ci = BlockCI.of(three)
    assert ci.blocks == 3
    assert 1.0 <= ci.p50_low_ms < ci.p50_high_ms <= 3.0
    assert 4 * 2 / 0.006 <= ci.ips_low < ci.ips_high <= 4 * 2 / 0.002
    assert BlockCI.of(three) == ci  # fixed seed: the same samples give the same interval
    same = BlockSet.from_blocks([ns(2, 2)] * 4, [4 * MS] * 4, [0, 1, 2, 3], 4)
    c = BlockCI.of(same)
    assert (c.p50_low_ms, c.p50_high_ms) == (2.0, 2.0)
    assert (c.ips_low, c.ips_high) == pytest.approx((2000.0, 2000.0))  # 4 x 2 calls / 4 ms


def test_ci_halfwidth_rel():
    assert ci_halfwidth_rel(1.0, 3.0, 4.0) == 0.25
    assert ci_halfwidth_rel(9.0, 11.0, 10.0) == pytest.approx(0.1)
    for args in ((math.nan, 1, 1), (1, math.nan, 1), (1, 2, math.nan), (1, 2, 0.0), (1, 2, -1.0)):
        assert math.isnan(ci_halfwidth_rel(*args))


def test_results_are_frozen(bset):
    """Statistics handed to callers cannot be changed after the fact (frozen dataclasses)."""
    import dataclasses

    s = LatencyStats.from_samples(ns(1, 2))
    for obj, field in ((s, "p50_ms"), (bset, "p50_ms"), (BlockCI.of(bset), "p50_low_ms")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, 0.0)


def test_block_medians_are_medians():
    """Skewed blocks, where a mean would differ: 1, 2, 9 ms has median 2 (mean 4)."""
    bs = BlockSet.from_blocks([ns(1, 2, 9), ns(3, 4, 20)], [12 * MS, 27 * MS], [0, 1], 1)
    assert bs.med_ms.tolist() == [2.0, 4.0]
    assert bs.p50_ms == 3.5  # median of 1, 2, 3, 4, 9, 20
    assert bs.typical_ms == pytest.approx(2.5)


def test_cv_of_sub_millisecond_calls():
    """Most batch-1 cells run well under 1 ms: their CV is std / mean all the same (not NaN)."""
    st = LatencyStats.from_samples(ns(0.02, 0.03, 0.04))
    assert st.mean_ms == pytest.approx(0.03) and st.cv == pytest.approx(0.01 / 0.03)
