"""Live A/B: two models measured in one process, blocks alternating, ratio with an interval over sessions.

Each side runs as ``sessions`` separate sessions (default :data:`LIVE_SESSIONS`), all built, warmed
up and kept alive; :func:`bench.runner.run_matrix` then measures them in rounds, each round one
block of every session of both sides in a random order, on the same input images, so drift between
rounds reaches every session alike.

Why several sessions: on this project's 2-vCPU VM two sessions of the *same* ONNX file differ by
up to ~2% for their whole life at 28 us a call (lenet5, batch 1; results/calibration/, session 5:
with one session a side, A/A ratios 1.015-1.021 with +-0.1% paired-round intervals, 5 false alarms
in 20; the A/A ratio's spread between trials was 1.1%). Pairing rounds cannot remove an offset that
belongs to a session, and an interval over one session's rounds does not see it. So each session
gives one value, the typical block p50 of its blocks (:attr:`bench.metrics.BlockSet.typical_ms`),
the ratio is the ratio of the two sides' geometric means, and its 95% interval is Welch's t
interval on the logarithms (``scipy.stats.ttest_ind(equal_var=False)``; Welch 1947): the
session-to-session spread is inside the interval, and it shrinks as 1/sqrt(sessions). With
``sessions=1`` the interval is the paired bootstrap over rounds (:func:`bench.compare.ratio_draws`),
which ignores that spread.

On a shared machine this is the most sensitive comparison mnistbench offers: the calibration study
(results/calibration/) flags a planted 3% slowdown with it, where two separate runs need about 10%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import stats

from mnistbench.bench.compare import LIVE_NOISE, Change, ResultSet, block_set, judge, key, verdict
from mnistbench.bench import samples as samples_io
from mnistbench.bench.foreign import foreign_inputs, inspect
from mnistbench.bench.pipeline import Artifacts, eval_inputs, onnx_for, torch_builder
from mnistbench.bench.runner import AUTO, Axes, Target, auto_threads_fixed, run_matrix
from mnistbench.bench.timing import TimingConfig
from mnistbench.models.data import Dataset
from mnistbench.models.errors import UsageError
from mnistbench.models.registry import get_spec

# Sessions per side. A first calibration with 8 a side (results/calibration/, 9 trials of each
# configuration) gave interval half-widths of 0.3-1.2% and called a planted 3% `slower` in 24 of 27
# (the rest inconclusive), A/A never a change; 12 a side narrow the interval by ~20%
# (sqrt(8/12), and t with 22 instead of 14 degrees of freedom).
LIVE_SESSIONS = 12
LIVE_ROUNDS = 10  # rounds: each visits one block of every session of both sides
LIVE_MIN_S = 4.5  # timed seconds per side and batch size: 12 sessions x 10 blocks of ~37 ms
CI_LEVEL = 0.95


@dataclass(frozen=True)
class LiveResult:
    """The A/B comparison: one :class:`bench.compare.Change` per batch size (base = A, new = B)."""

    a: str
    b: str
    changes: list[Change]
    csv: Path


def live_target(spec_text: str, data: Dataset, arts: Artifacts, preprocess: str = "unit") -> Target:
    """A side of a live comparison: a path to an ``.onnx`` file, or ``MODEL[:VARIANT]`` of a registered
    model whose export exists in ``arts``.

    Raises:
        UsageError: unknown model or variant, missing export, or an ONNX file that is not an MNIST classifier.
    """
    if spec_text.endswith(".onnx") or Path(spec_text).is_file():
        fm = inspect(Path(spec_text))
        return Target(fm.path.stem, fm.path, "classify", foreign_inputs(data.test_images, fm, preprocess),
                      data.test_labels.astype("int64"), None, None, arts.dataset, "foreign", "",
                      fixed_batch=fm.fixed_batch, variant="foreign")
    name, _, variant = spec_text.partition(":")
    spec = get_spec(name)
    path, meta = onnx_for(spec, arts, variant or "fp32")
    x, y = eval_inputs(spec, data)
    return Target(spec.name, path, spec.task, x, y, torch_builder(spec, arts), spec.flops, arts.dataset,
                  meta.get("profile", arts.profile), meta.get("seed", str(arts.seed)), meta.get("checkpoint_sha256", ""),
                  variant=variant or "fp32")


def check_sessions(sessions: int) -> None:
    """Raises UsageError unless 1 <= ``sessions`` <= 64 (sessions per side of a live comparison)."""
    if not 1 <= sessions <= 64:
        raise UsageError(f"--sessions must be between 1 and 64, got {sessions}")


def live_compare(a: Target, b: Target, axes: Axes, out_csv: Path,
                 timing: TimingConfig = TimingConfig(min_s=LIVE_MIN_S, rounds=LIVE_ROUNDS),
                 noise: float = LIVE_NOISE, progress=None, sessions: int = LIVE_SESSIONS) -> LiveResult:
    """Measure ``a`` and ``b`` interleaved in this process and judge b / a per batch size.

    ``timing.min_s`` is the timed seconds per side and batch size, shared by that side's
    ``sessions`` sessions; each session runs ``timing.rounds`` blocks. The rows (one per session,
    named ``<name>#<k>`` when ``sessions`` > 1) and samples are written to ``out_csv`` (a new file)
    like any run's. Sides with the same name and variant are renamed ``A:<name>`` and ``B:<name>`` so
    that their rows stay apart. A threads value of ``auto`` becomes the count that ``auto`` always
    picks on this host when it has a single candidate (1 on a 2-CPU host,
    :func:`bench.runner.thread_candidates`), else 0 (the runtime's own choice), so that both sides
    run alike. Each :class:`bench.compare.Change` has the pooled p50/p99/throughput of each side and,
    as ratio and interval, the session-pair estimate described in the module docstring.

    Raises:
        UsageError: the two sides accept no common batch size, ``sessions`` outside 1..64, or a side
            that could not be measured.
    """
    check_sessions(sessions)
    if (a.name, a.variant) == (b.name, b.variant):
        a, b = replace(a, name=f"A:{a.name}"), replace(b, name=f"B:{b.name}")
    if AUTO in axes.threads:  # a per-cell probe could give the two sides different thread counts
        axes = replace(axes, threads=tuple(dict.fromkeys((auto_threads_fixed() or 0) if t == AUTO else t for t in axes.threads)))
    if a.fixed_batch and b.fixed_batch and a.fixed_batch != b.fixed_batch:
        raise UsageError(f"{a.name} runs only at batch {a.fixed_batch} and {b.name} only at {b.fixed_batch}")
    side_of = {}
    targets = []
    for side, t in (("a", a), ("b", b)):
        for k in range(sessions):
            name = f"{t.name}#{k + 1}" if sessions > 1 else t.name
            side_of[name] = (side, k)
            targets.append(replace(t, name=name))
    per_session = replace(timing, min_s=timing.min_s / sessions)
    rows = run_matrix(targets, axes, out_csv, timing=per_session, score=False, progress=progress)
    rs = ResultSet("live", rows, samples_io.load(out_csv), [])
    errors = [r for r in rows if r.status != "ok"]
    if errors:
        raise UsageError(f"{errors[0].model} could not be measured: {errors[0].error}")
    cells: dict[tuple, dict[str, list]] = {}
    for r in rows:
        side, k = side_of[r.model]
        cells.setdefault(key(r)[2:], {"a": [None] * sessions, "b": [None] * sessions})[side][k] = r
    changes = []
    for cell, sides in cells.items():
        ra, rb = [r for r in sides["a"] if r], [r for r in sides["b"] if r]
        if not ra or not rb:
            continue
        k = (f"{a.name} -> {b.name}", f"{ra[0].variant} -> {rb[0].variant}", *cell)
        pooled = judge(k, ra, rb, rs, rs, noise, refs=None, paired=sessions == 1)
        if sessions > 1:
            ratio, lo, hi = session_interval([_typical(x, rs) for x in ra], [_typical(y, rs) for y in rb])
            pooled = replace(pooled, ratio=ratio, ratio_low=lo, ratio_high=hi, raw_low=lo, raw_high=hi,
                             verdict=verdict(lo, hi, noise))
        changes.append(pooled)
    return LiveResult(a.name, b.name, changes, out_csv)


def _typical(row, rs: ResultSet) -> float:
    bs = block_set([row], rs.samples)[0]
    return bs.typical_ms if bs is not None else math.nan


def session_interval(base_ms: list[float], new_ms: list[float], level: float = CI_LEVEL) -> tuple[float, float, float]:
    """(ratio, low, high) of two sides' per-session typical p50s (ms): the ratio of their geometric
    means, new / base, and Welch's t interval at ``level`` (0.95) on the logarithms
    (``scipy.stats.ttest_ind(equal_var=False).confidence_interval``). Values that are not finite and
    positive are left out; NaN bounds when a side has fewer than two values left, NaN everywhere
    when a side has none."""
    lb = np.log([v for v in base_ms if math.isfinite(v) and v > 0])
    ln = np.log([v for v in new_ms if math.isfinite(v) and v > 0])
    if len(lb) == 0 or len(ln) == 0:
        return math.nan, math.nan, math.nan
    ratio = math.exp(float(ln.mean() - lb.mean()))
    if len(lb) < 2 or len(ln) < 2:
        return ratio, math.nan, math.nan
    if np.ptp(lb) == 0 and np.ptp(ln) == 0:  # no spread at all (a fake clock): the interval is the point
        return ratio, ratio, ratio
    ci = stats.ttest_ind(ln, lb, equal_var=False).confidence_interval(level)
    return ratio, math.exp(float(ci.low)), math.exp(float(ci.high))
