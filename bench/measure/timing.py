"""The timing loop: warm-up, then timed calls until a minimum count AND a minimum duration.

Each call is timed with ``time.perf_counter_ns`` around the call alone; inputs
are prepared by the caller before the clock starts. Every raw sample is
returned, so statistics are derived from the values (optimum-benchmark's
``from_values``), never accumulated on the fly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...models.errors import UsageError
from .defaults import FAST, MIN_ITERS, MIN_S, ROUNDS, WARMUP_ITERS, WARMUP_S  # noqa: F401  (re-exported)

# The loop's defaults (shown in `mnistbench run --help`) live in .defaults, with their reasons.
REENTRY_CALLS = 2  # untimed calls at the start of each block: the cell's caches were just another cell's
# Re-entry calls are skipped when they would cost more than this fraction of a block: a call that long
# (fan-resnet at batch 512: seconds) is not measurably slowed by the caches another cell left.
REENTRY_MAX_FRACTION = 0.25
# Idle time before each block: the previous session's intra-op threads spin for a while after its last
# call (ONNX Runtime's default), and without a pause they compete with the next block on a small
# machine (seen here: paired A/A blocks of one process 40% apart with 2-thread sessions). The same
# 5 ms pause that `doctor --check-defaults` uses between its blocks.
BLOCK_PAUSE_S = 0.005


MAX_ITERS = 10**8  # calls a cell may be asked for: 10^8 of the fastest (~5 us, the null model) is over 8 minutes


@dataclass(frozen=True)
class TimingConfig:
    """Warm-up and timed-loop bounds; both minimums of each phase must be met.

    Attributes:
        warmup_iters, warmup_s: untimed calls before timing, by count and by seconds.
        min_iters, min_s: timed calls continue until both are reached (per cell, over all rounds).
        rounds: blocks per cell in an interleaved run (:func:`measure_block`); :func:`measure`
            (one contiguous loop, used by probes) ignores it.

    Raises:
        UsageError: a negative bound, no timed call, more than :data:`MAX_ITERS` calls, rounds outside
            1..1000, or a non-finite or over-an-hour duration.
    """

    warmup_iters: int = WARMUP_ITERS
    warmup_s: float = WARMUP_S
    min_iters: int = MIN_ITERS
    min_s: float = MIN_S
    rounds: int = ROUNDS

    def __post_init__(self) -> None:
        if self.warmup_iters < 0 or self.warmup_s < 0 or self.min_iters < 1 or self.min_s < 0:
            raise UsageError("timing bounds must be >= 0 (and at least one timed iteration)")
        for name, v in (("--warmup-iters", self.warmup_iters), ("--min-iters", self.min_iters)):
            if v > MAX_ITERS:
                raise UsageError(f"{name} must be at most {MAX_ITERS:,} calls, got {v:,}")
        if not 1 <= self.rounds <= 1000:
            raise UsageError(f"--rounds must be between 1 and 1000, got {self.rounds}")
        if not all(math.isfinite(v) for v in (self.warmup_s, self.min_s)) or self.min_s > 3600 or self.warmup_s > 3600:
            raise UsageError("--min-s and --warmup-s must be finite and at most 3600 s")

    @property
    def block_iters(self) -> int:
        """Timed calls per block (at least): ``ceil(min_iters / rounds)``."""
        return -(-self.min_iters // self.rounds)

    @property
    def block_s(self) -> float:
        """Timed seconds per block (at least): ``min_s / rounds``."""
        return self.min_s / self.rounds


@dataclass(frozen=True)
class Samples:
    """Raw result of :func:`measure`.

    Attributes:
        ns: int64 array, one latency per timed call, in nanoseconds.
        wall_s: wall time of the whole timed loop in seconds (loop overhead included);
            throughput is derived from it.
        warmup_iters: untimed calls made before timing.
    """

    ns: np.ndarray
    wall_s: float
    warmup_iters: int


def measure(fn: Callable[[], object], cfg: TimingConfig = TimingConfig()) -> Samples:
    """Call ``fn`` repeatedly: warm-up, then timed calls.

    Args:
        fn: a no-argument call that does one inference (synchronous: it must
            return only when the result is ready on the host).
        cfg: the bounds.

    Returns:
        :class:`Samples` with one entry per timed call.
    """
    clock = time.perf_counter_ns
    start, n = clock(), 0
    while n < cfg.warmup_iters or (clock() - start) < cfg.warmup_s * 1e9:
        fn()
        n += 1
    warm = n
    min_ns = cfg.min_s * 1e9
    out: list[int] = []
    t_loop = clock()
    while len(out) < cfg.min_iters or (clock() - t_loop) < min_ns:
        t0 = clock()
        fn()
        out.append(clock() - t0)
    wall = (clock() - t_loop) / 1e9
    return Samples(np.asarray(out, dtype=np.int64), wall, warm)


def warm_up(fn: Callable[[], object], cfg: TimingConfig) -> int:
    """Untimed calls until both ``cfg.warmup_iters`` and ``cfg.warmup_s`` are met; returns the count."""
    clock = time.perf_counter_ns
    start, n = clock(), 0
    while n < cfg.warmup_iters or (clock() - start) < cfg.warmup_s * 1e9:
        fn()
        n += 1
    return n


def reentry_calls(call_s: float, block_s: float) -> int:
    """Untimed calls before a block: :data:`REENTRY_CALLS`, or 0 when they would take more than
    :data:`REENTRY_MAX_FRACTION` of the block's ``block_s`` seconds (``call_s``: seconds per call)."""
    return REENTRY_CALLS if call_s * REENTRY_CALLS <= REENTRY_MAX_FRACTION * block_s else 0


def measure_block(fn: Callable[[], object], min_iters: int, min_s: float,
                  reentry: int = REENTRY_CALLS, pause_s: float = BLOCK_PAUSE_S) -> tuple[np.ndarray, int]:
    """One block of an interleaved run: a pause of ``pause_s`` seconds, ``reentry`` untimed calls,
    then timed calls until both ``min_iters`` and ``min_s`` are met.

    Returns:
        (int64 latencies of the timed calls in ns, wall time of the timed calls' loop in ns).
    """
    time.sleep(pause_s)
    for _ in range(reentry):
        fn()
    clock = time.perf_counter_ns
    min_ns = min_s * 1e9
    out: list[int] = []
    t_loop = clock()
    while len(out) < min_iters or (clock() - t_loop) < min_ns:
        t0 = clock()
        fn()
        out.append(clock() - t0)
    return np.asarray(out, dtype=np.int64), clock() - t_loop
