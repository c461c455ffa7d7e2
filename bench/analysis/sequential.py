"""A sequential A/B test: look at the evidence after each stage, stop once it decides.

The live A/B (:mod:`bench.live`) measures in *stages*: each stage opens fresh sessions of both
sides and measures them interleaved, and gives one value, the log of the ratio of the two sides'
geometric means in that stage (``d``). Stages are independent replicates: every source of
variation that a stage's fresh sessions and its moment on the machine bring is in the spread of the
``d`` values, which is what the interval is built from (the top level of Kalibera and Jones'
hierarchy, "Rigorous benchmarking in reasonable time", ISMM 2013).

Looking at a growing sample and stopping as soon as an interval excludes 1 inflates the false-alarm
rate unless each look pays for itself. Here the looks happen only after the stage counts in
:data:`LOOKS` (a geometric schedule), and each look's interval is a Student t interval at level
``1 - alpha / (len(LOOKS) + 1)``: the overall error is bounded by the union bound (Bonferroni),
whatever the correlation between the looks and however the stopping depends on them. These are
repeated confidence intervals (Jennison and Turnbull, "Interim analyses: the repeated confidence
interval approach", JRSS B 51, 1989) with a constant alpha-spending per look (Pocock-like spending
in the sense of Lan and DeMets, Biometrika 70, 1983); the extra ``+ 1`` pays for the final look
when the time budget ends between two scheduled looks. The bound is conservative: on simulated A/A
streams (tests/test_sequential.py) the realised false-alarm rate is well below ``alpha``.

Verdict at a look (``band``: the no-change band, e.g. 0.01): ``slower`` when the interval lies above
1, ``faster`` when below 1, ``no change`` when it lies within ``[1 - band, 1 + band]``, otherwise
``inconclusive`` (keep measuring). The first three stop the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Stage counts after which the test looks: about 1.25x apart, from 6 stages to 200 (a 300 s budget at
# 1.5 s a stage). The first look is at 6, not 3: in the first live calibration on this 2-vCPU VM
# (results/calibration/v2/as-is-live-first-looks-at-3/) one A/A of 7 was called `slower` at its
# 4th stage (1.009 [1.002, 1.016]): 3 degrees of freedom trust 4 stage values that the host's
# slower movements make alike by chance; planted 3% changes were decided at stage 8 anyway.
LOOKS = (6, 8, 10, 13, 16, 20, 25, 32, 40, 50, 64, 80, 100, 128, 160, 200)
ALPHA = 0.05  # the overall two-sided error rate, over every look


def look_level(alpha: float = ALPHA, looks: tuple[int, ...] = LOOKS) -> float:
    """The confidence level of each look's interval: ``1 - alpha / (len(looks) + 1)``."""
    return 1 - alpha / (len(looks) + 1)


def interval(d: np.ndarray, level: float) -> tuple[float, float, float]:
    """(ratio, low, high) from the stage log ratios ``d``: ``exp`` of their mean and of the Student
    t interval at ``level`` (n - 1 degrees of freedom). NaN bounds below 2 values; the point
    itself when every value is equal (a fake clock)."""
    d = np.asarray(d, np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return math.nan, math.nan, math.nan
    m = float(d.mean())
    if len(d) < 2:
        return math.exp(m), math.nan, math.nan
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    if se == 0:
        return math.exp(m), math.exp(m), math.exp(m)
    t = float(stats.t.ppf(0.5 + level / 2, len(d) - 1))
    return math.exp(m), math.exp(m - t * se), math.exp(m + t * se)


def verdict(low: float, high: float, band: float) -> str:
    """The verdict of one look (see the module docstring); ``n/a`` for NaN bounds."""
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    if low > 1:
        return "slower"
    if high < 1:
        return "faster"
    if low >= 1 - band and high <= 1 + band:
        return "no change"
    return "inconclusive"


DECIDED = ("slower", "faster", "no change")


@dataclass
class SequentialTest:
    """The state of one sequential comparison (one batch size of a live A/B).

    Feed each stage's log ratio with :meth:`add`; :meth:`look` judges at a scheduled stage count
    (or ``final=True``, once, when the time budget ends) and returns the verdict; once a look has
    decided, :attr:`decided` is true and later stages are not needed.
    """

    band: float
    alpha: float = ALPHA
    looks: tuple[int, ...] = LOOKS

    def __post_init__(self) -> None:
        self.d: list[float] = []
        self.looked = 0
        self.verdict = "inconclusive"
        self.ratio = self.low = self.high = math.nan

    def add(self, d: float) -> None:
        """One stage's log ratio, ln(new / base)."""
        self.d.append(float(d))

    @property
    def n(self) -> int:
        return len(self.d)

    @property
    def decided(self) -> bool:
        return self.verdict in DECIDED

    def due(self) -> bool:
        """Whether the stage count just reached is one of the scheduled looks."""
        return self.n in self.looks

    def look(self, final: bool = False) -> str:
        """Judge now (a scheduled look, or the final look at the end of the budget; any other call
        changes nothing) and return the verdict."""
        if self.decided or not (self.due() or final):
            return self.verdict
        self.looked += 1
        self.ratio, self.low, self.high = interval(np.array(self.d), look_level(self.alpha, self.looks))
        v = verdict(self.low, self.high, self.band)
        self.verdict = "inconclusive" if v == "n/a" else v
        return self.verdict


def simulated_draws(streams: int, stages: int, sd: float = 0.02, seed: int = 0, df: float | None = None,
                    shift: float = 0.0) -> np.ndarray:
    """Stage log ratios of ``streams`` simulated streams, float64 (streams, stages): normal with
    standard deviation ``sd``, or Student t with ``df`` (> 2) degrees of freedom scaled to that
    standard deviation, plus ``shift`` (a true ln ratio; 0 for A/A)."""
    rng = np.random.default_rng(seed)
    if df is None:
        return rng.standard_normal((streams, stages)) * sd + shift
    return rng.standard_t(df, (streams, stages)) * sd / math.sqrt(df / (df - 2)) + shift


def simulate_false_alarms(streams: int, stages: int, sd: float = 0.02, seed: int = 0, df: float | None = None,
                          band: float = 0.01, draws: np.ndarray | None = None) -> float:
    """The fraction of simulated streams (:func:`simulated_draws`, or the given ``draws`` of shape
    (streams, stages)) that a :class:`SequentialTest` ends with ``slower`` or ``faster`` within
    ``stages`` stages, looking at every scheduled count and a final look at the last stage. With
    A/A draws this is the false-alarm rate; vectorised, it equals running the test stream by stream."""
    x = simulated_draws(streams, stages, sd, seed, df) if draws is None else np.asarray(draws, np.float64)
    streams, stages = x.shape
    level = look_level()
    csum, csq = np.cumsum(x, 1), np.cumsum(x * x, 1)
    alarmed = np.zeros(streams, bool)
    stopped = np.zeros(streams, bool)
    for n in sorted({k for k in LOOKS if k <= stages} | {stages}):
        if n < 2:
            continue
        m = csum[:, n - 1] / n
        sdv = np.sqrt(np.maximum(csq[:, n - 1] - n * m * m, 0) / (n - 1))
        half = stats.t.ppf(0.5 + level / 2, n - 1) * sdv / math.sqrt(n)
        lo, hi = m - half, m + half
        live = ~stopped
        alarm = live & ((lo > 0) | (hi < 0))
        quiet = live & (lo >= math.log1p(-band)) & (hi <= math.log1p(band))
        alarmed |= alarm
        stopped |= alarm | quiet
    return float(alarmed.mean())
