"""Statistics derived from raw latency samples.

Percentiles use numpy's default ``linear`` method (Hyndman and Fan type 7:
linear interpolation between the two nearest order statistics). A percentile
is reported only when enough samples back it: p90 needs
:data:`MIN_SAMPLES_P90` and p99 :data:`MIN_SAMPLES_P99` (at least ten samples
beyond each cut); below that the field is empty (NaN) rather than a figure
that is really the maximum of a handful of calls.

Throughput (images/s) = batch size x timed iterations / wall time of the timed loop.

Confidence intervals come from the blocks of an interleaved run (see :mod:`bench.runner`): a
percentile bootstrap over blocks (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993,
ch. 13; resampling whole blocks rather than calls, because calls within a block are
autocorrelated: Kalibera and Jones, "Rigorous benchmarking in reasonable time", ISMM 2013).
:data:`BOOTSTRAP_RESAMPLES` resamples with a fixed seed, so the same samples always give the same
interval. For speed each block enters a resample as :data:`QUANTILE_POINTS` of its quantiles, each
weighted by the block's call count / :data:`QUANTILE_POINTS`; the point estimates use every call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_SAMPLES_P90 = 100
MIN_SAMPLES_P99 = 1000
BOOTSTRAP_RESAMPLES = 2000  # Efron & Tibshirani (1993) suggest >= 1000 for percentile intervals
CI_LEVEL = 0.95
QUANTILE_POINTS = 64
MIN_BLOCKS_CI = 3  # fewer blocks give no interval (NaN): two blocks have only three distinct resamples
BOOTSTRAP_SEED = 0
# The quantile of a cell's block medians that `compare` judges by. Interference on a shared machine only
# adds time, so a low quantile of the blocks estimates the undisturbed speed, and a disturbed minority of
# blocks does not move it (the argument of Chen and Revels, "Robust benchmarking in noisy environments",
# 2016, for the minimum; a quartile is not set by one lucky block). 14 separate runs of 3 cells here,
# 91 A/A pairs each: 0.25 with the reference correction gave 0, 2 and 3 gate false alarms where the
# median of all calls gave 0, 9 and 5 (results/calibration/README.md).
TYPICAL_BLOCK_QUANTILE = 0.25


@dataclass(frozen=True)
class LatencyStats:
    """Latency statistics in milliseconds over ``n`` timed calls.

    ``p90_ms``/``p99_ms`` are NaN when ``n`` is below the thresholds above.
    ``cv`` is the coefficient of variation (std / mean, sample std with ddof=1).
    """

    n: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cv: float

    @classmethod
    def from_samples(cls, ns: np.ndarray) -> "LatencyStats":
        """Stats of int64 nanosecond samples (at least one)."""
        ms = np.asarray(ns, dtype=np.float64) / 1e6
        n = len(ms)
        if n == 0:
            raise ValueError("no samples")
        mean = float(ms.mean())
        std = float(ms.std(ddof=1)) if n > 1 else 0.0
        p90 = float(np.percentile(ms, 90)) if n >= MIN_SAMPLES_P90 else math.nan
        p99 = float(np.percentile(ms, 99)) if n >= MIN_SAMPLES_P99 else math.nan
        return cls(n, mean, std, float(ms.min()), float(np.percentile(ms, 50)), p90, p99, float(ms.max()),
                   std / mean if mean > 0 else math.nan)


def throughput_ips(batch_size: int, iterations: int, wall_s: float) -> float:
    """Images per second: ``batch_size * iterations / wall_s``."""
    return batch_size * iterations / wall_s if wall_s > 0 else math.nan


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows of ``logits`` (N, C) whose argmax equals ``labels`` (N,)."""
    return float(np.mean(np.asarray(logits).argmax(1) == np.asarray(labels)))


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error per element."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(np.mean(d * d))


@dataclass(frozen=True)
class BlockSet:
    """The blocks of one cell (or of several repeats of one configuration, pooled), ready to resample.

    Attributes:
        q_ms: float64 (m, QUANTILE_POINTS), each block's quantiles in milliseconds.
        n: float64 (m,), calls per block.
        wall_s: float64 (m,), wall time of each block in seconds.
        rounds: int64 (m,), the round of each block (for pairing blocks of one process).
        med_ms: float64 (m,), each block's median latency in milliseconds.
        batch_size: images per call.
        p50_ms: median over every call of every block (the point estimate).
        ips: batch x all calls / all blocks' wall time (the point estimate), images/s.
    """

    q_ms: np.ndarray
    n: np.ndarray
    wall_s: np.ndarray
    rounds: np.ndarray
    med_ms: np.ndarray
    batch_size: int
    p50_ms: float
    ips: float

    @classmethod
    def from_blocks(cls, blocks: list[np.ndarray], wall_ns, rounds, batch_size: int) -> "BlockSet":
        """``blocks``: int64 ns latencies of each block; ``wall_ns`` (m,) and ``rounds`` (m,) per block.

        Raises:
            ValueError: no blocks, an empty block, or lengths that differ.
        """
        if not blocks or any(len(b) == 0 for b in blocks) or not len(blocks) == len(wall_ns) == len(rounds):
            raise ValueError("blocks must be non-empty, with one wall time and round each")
        probs = (np.arange(QUANTILE_POINTS) + 0.5) / QUANTILE_POINTS
        q = np.stack([np.quantile(np.asarray(b, np.float64) / 1e6, probs) for b in blocks])
        n = np.array([len(b) for b in blocks], np.float64)
        wall = np.asarray(wall_ns, np.float64) / 1e9
        allms = np.concatenate(blocks).astype(np.float64) / 1e6
        med = np.array([np.median(np.asarray(b, np.float64)) for b in blocks]) / 1e6
        return cls(q, n, wall, np.asarray(rounds, np.int64), med, batch_size, float(np.median(allms)),
                   throughput_ips(batch_size, int(n.sum()), float(wall.sum())))

    @property
    def m(self) -> int:
        return len(self.n)

    def draw(self, rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
        """Block indices of ``resamples`` bootstrap resamples, int (resamples, m)."""
        return rng.integers(0, self.m, size=(resamples, self.m))

    def p50_draws(self, idx: np.ndarray) -> np.ndarray:
        """The median latency (ms) of each resample of blocks ``idx`` (B, m): weighted median of the
        resampled blocks' quantile points."""
        b = idx.shape[0]
        vals = self.q_ms[idx].reshape(b, -1)
        wts = np.repeat(self.n[idx] / QUANTILE_POINTS, QUANTILE_POINTS, axis=1)
        order = np.argsort(vals, axis=1)
        sv, sw = np.take_along_axis(vals, order, 1), np.take_along_axis(wts, order, 1)
        cw = np.cumsum(sw, axis=1)
        k = np.minimum((cw < cw[:, -1:] / 2).sum(axis=1), vals.shape[1] - 1)
        return sv[np.arange(b), k]

    @property
    def typical_ms(self) -> float:
        """The :data:`TYPICAL_BLOCK_QUANTILE` quantile of the block medians, ms: what ``compare`` judges."""
        return float(np.quantile(self.med_ms, TYPICAL_BLOCK_QUANTILE))

    def typical_draws(self, idx: np.ndarray) -> np.ndarray:
        """:attr:`typical_ms` of each resample of blocks ``idx`` (B, m), ms."""
        return np.quantile(self.med_ms[idx], TYPICAL_BLOCK_QUANTILE, axis=1)

    def ips_draws(self, idx: np.ndarray) -> np.ndarray:
        """Throughput (images/s) of each resample: batch x calls / wall time, summed over its blocks."""
        return self.batch_size * self.n[idx].sum(axis=1) / self.wall_s[idx].sum(axis=1)


def percentile_ci(draws: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``draws`` (NaN-free input)."""
    a = (1 - level) / 2 * 100
    lo, hi = np.percentile(draws, [a, 100 - a])
    return float(lo), float(hi)


@dataclass(frozen=True)
class BlockCI:
    """95% intervals of a cell's p50 (ms) and throughput (images/s) from its blocks; NaN below
    :data:`MIN_BLOCKS_CI` blocks."""

    blocks: int
    p50_low_ms: float
    p50_high_ms: float
    ips_low: float
    ips_high: float

    @classmethod
    def of(cls, bs: BlockSet, seed: int = BOOTSTRAP_SEED) -> "BlockCI":
        if bs.m < MIN_BLOCKS_CI:
            return cls(bs.m, math.nan, math.nan, math.nan, math.nan)
        idx = bs.draw(np.random.default_rng(seed))
        return cls(bs.m, *percentile_ci(bs.p50_draws(idx)), *percentile_ci(bs.ips_draws(idx)))


def ci_halfwidth_rel(low: float, high: float, point: float) -> float:
    """(high - low) / 2 / point: the relative half-width of an interval (NaN when undefined)."""
    if any(math.isnan(v) for v in (low, high, point)) or point <= 0:
        return math.nan
    return (high - low) / 2 / point
