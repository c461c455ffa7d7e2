"""Statistics derived from raw latency samples.

Percentiles use numpy's default ``linear`` method (Hyndman and Fan type 7:
linear interpolation between the two nearest order statistics). A percentile
is reported only when enough samples back it: p90 needs
:data:`MIN_SAMPLES_P90` and p99 :data:`MIN_SAMPLES_P99` (at least ten samples
beyond each cut); below that the field is empty (NaN) rather than a figure
that is really the maximum of a handful of calls.

Throughput (images/s) = batch size x timed iterations / wall time of the timed loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_SAMPLES_P90 = 100
MIN_SAMPLES_P99 = 1000


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
