"""`mnistbench best`: the fastest configuration per model and batch size that keeps its accuracy.

A *configuration* is everything a user chooses besides the model and the batch size: runtime,
provider, variant (the ONNX file, or the precision a runtime applies: ``fp32``, ``int8``, ``bf16``,
...), threads, spinning and io mode. For each model and batch size the rule is:

1. The reference is ONNX Runtime fp32 on the CPU: its accuracy (classifiers) or test MSE
   (reconstruction models) is the model's baseline metric, and its row with the default settings
   (threads ``auto``, spinning ``default``, end-to-end) at that batch size is the baseline speed.
2. A configuration is *eligible* when its metric is within the budget of the baseline metric:
   accuracy at most ``max_accuracy_drop_pp`` percentage points lower, or MSE at most
   ``max_mse_increase`` (a fraction) higher. Rows without a metric (``run --no-score``) are never
   eligible: their accuracy is unknown.
3. The best is the eligible configuration with the lowest p50 latency (repeats: the median of their
   p50s). Eligible configurations whose p50 confidence interval overlaps the best's are reported as
   *tied* with it. The interval is the rows' ``latency_p50_ci_low_ms``/``latency_p50_ci_high_ms``
   columns when the results have them; otherwise a 95% distribution-free interval of the median
   from the raw samples (``<csv>.samples.npz``), which only reflects the spread within each cell, not
   the drift between cells of a shared machine; without either, the p50s alone decide and the
   result says so.
4. Faster configurations that broke the budget are listed (``rejected``), with their metric change.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table
from scipy import stats

from ...models.errors import UsageError
from ..measure import samples as samples_io
from ..measure.records import BenchmarkRecord, read_csv

DEFAULT_MAX_ACCURACY_DROP_PP = 0.2
DEFAULT_MAX_MSE_INCREASE = 0.01
CI_LEVEL = 0.95
# What every configuration is measured against: ONNX Runtime fp32 on the CPU EP (runtime, provider, variant).
BASELINE = ("onnxruntime", "cpu", "fp32")
NAN = float("nan")
CI_COLUMNS = ("latency_p50_ci_low_ms", "latency_p50_ci_high_ms")


@dataclass(frozen=True)
class Candidate:
    """One configuration of one model at one batch size (repeats pooled).

    Attributes:
        key: (runtime, provider, variant, threads_requested, spinning, io_mode).
        label: e.g. ``openvino bf16 cpu threads auto (2)``.
        p50_ms: median over repeats of the rows' p50 latency, milliseconds.
        ci_low_ms, ci_high_ms: confidence interval of the p50 (NaN when unknown).
        throughput_ips: median over repeats of images per second.
        metric: accuracy (fraction) or test MSE; NaN when the rows were not scored.
    """

    key: tuple
    label: str
    p50_ms: float
    ci_low_ms: float
    ci_high_ms: float
    throughput_ips: float
    metric: float

    def overlaps(self, other: "Candidate") -> bool:
        """Whether the two p50 confidence intervals overlap (False when either is unknown)."""
        if any(math.isnan(v) for v in (self.ci_low_ms, self.ci_high_ms, other.ci_low_ms, other.ci_high_ms)):
            return False
        return self.ci_low_ms <= other.ci_high_ms and other.ci_low_ms <= self.ci_high_ms


@dataclass(frozen=True)
class BestConfig:
    """The verdict for one model and batch size.

    Attributes:
        model, batch_size, task: the cell (task ``classify`` or ``reconstruct``).
        baseline_metric: ONNX Runtime fp32's accuracy or MSE (NaN when there is none).
        baseline: ONNX Runtime fp32's default-settings candidate at this batch size (None: absent).
        best: the fastest eligible candidate (None: nothing eligible).
        tied: eligible candidates whose p50 interval overlaps the best's, fastest first.
        rejected: (candidate, metric change) faster than the best but over the budget.
        speedup: baseline p50 / best p50 (NaN without a baseline).
        metric_change: best's metric minus the baseline metric (accuracy in percentage points; MSE
            as a relative change).
        ci_source: ``columns``, ``samples`` or ``none`` (how ties were judged).
        note: why there is no verdict, or how the baseline was chosen when not the default.
    """

    model: str
    batch_size: int
    task: str
    baseline_metric: float
    baseline: Candidate | None
    best: Candidate | None
    tied: list[Candidate] = field(default_factory=list)
    rejected: list[tuple[Candidate, float]] = field(default_factory=list)
    speedup: float = NAN
    metric_change: float = NAN
    ci_source: str = "none"
    note: str = ""


def median_ci(ns: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """Distribution-free confidence interval of the median of ``ns`` (per-call latencies,
    nanoseconds), in milliseconds: the order statistics whose ranks bound the median with
    probability ``level`` (binomial, p = 0.5). (NaN, NaN) below 6 samples."""
    n = len(ns)
    if n < 6:
        return NAN, NAN
    s = np.sort(np.asarray(ns, dtype=np.float64))
    lo = int(stats.binom.ppf((1 - level) / 2, n, 0.5))
    hi = int(stats.binom.isf((1 - level) / 2, n, 0.5))
    return s[max(lo - 1, 0)] / 1e6, s[min(hi, n - 1)] / 1e6


def label(r: BenchmarkRecord, threads_used: str = "") -> str:
    """A configuration's name: runtime, variant, provider, threads (and what ``auto`` chose),
    spinning and io mode when not the defaults."""
    th = r.threads_requested + (f" ({threads_used})" if r.threads_requested in ("auto", "0") and threads_used else "")
    text = f"{r.runtime} {r.variant} {r.provider} threads {th}"
    if r.spinning not in ("default", "n/a"):
        text += f" spinning {r.spinning}"
    if r.io_mode != "end-to-end":
        text += f" [{r.io_mode}]"
    return text


def _key(r: BenchmarkRecord) -> tuple:
    return (r.runtime, r.provider, r.variant, r.threads_requested, r.spinning, r.io_mode)


def _metric(r: BenchmarkRecord) -> float:
    return r.accuracy_top1 if r.task == "classify" else r.test_mse


def _is_reference(r: BenchmarkRecord) -> bool:
    return (r.runtime, r.provider, r.variant) == BASELINE


def _is_default(key: tuple) -> bool:
    return key[3] == "auto" and key[4] == "default" and key[5] == "end-to-end"


def _candidate(rs: list[BenchmarkRecord], samples: dict[str, np.ndarray]) -> tuple[Candidate, str]:
    """Pool a configuration's rows (repeats); returns it and the source of its interval."""
    r0 = rs[0]
    lows = [getattr(r, CI_COLUMNS[0], NAN) for r in rs]
    highs = [getattr(r, CI_COLUMNS[1], NAN) for r in rs]
    if not any(math.isnan(v) for v in lows + highs):
        lo, hi, source = min(lows), max(highs), "columns"
    elif all(r.cell_id in samples for r in rs):
        cis = [median_ci(samples[r.cell_id]) for r in rs]
        lo, hi = min(c[0] for c in cis), max(c[1] for c in cis)
        source = "none" if math.isnan(lo) or math.isnan(hi) else "samples"
    else:
        lo, hi, source = NAN, NAN, "none"
    used = ",".join(sorted({str(r.intra_op_threads) for r in rs if r.intra_op_threads > 0}))
    metrics = [_metric(r) for r in rs if not math.isnan(_metric(r))]
    return Candidate(_key(r0), label(r0, used), float(np.median([r.latency_p50_ms for r in rs])), lo, hi,
                     float(np.median([r.throughput_ips for r in rs])),
                     float(np.median(metrics)) if metrics else NAN), source


def _change(task: str, metric: float, base: float) -> float:
    return (metric - base) * 100 if task == "classify" else (metric - base) / base


def best_configs(rows: Sequence[BenchmarkRecord], max_accuracy_drop_pp: float = DEFAULT_MAX_ACCURACY_DROP_PP,
                 max_mse_increase: float = DEFAULT_MAX_MSE_INCREASE,
                 samples: dict[str, np.ndarray] | None = None) -> list[BestConfig]:
    """The best configuration of every (model, batch size) in ``rows`` (see the module docstring).

    Args:
        rows: results rows (error rows and the null model are ignored).
        max_accuracy_drop_pp: accuracy budget against ONNX Runtime fp32, percentage points (>= 0).
        max_mse_increase: MSE budget for reconstruction models, a fraction of the baseline (>= 0).
        samples: raw per-call latencies (ns) by ``cell_id``, for intervals when the rows have none.

    Returns:
        one :class:`BestConfig` per (model, batch size), sorted by model then batch size.

    Raises:
        UsageError: a negative budget.
    """
    if max_accuracy_drop_pp < 0 or max_mse_increase < 0:
        raise UsageError("the accuracy and MSE budgets must be 0 or more")
    samples = samples or {}
    ok = [r for r in rows if r.status == "ok" and r.task in ("classify", "reconstruct")]
    cells: dict[tuple, dict[tuple, list[BenchmarkRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in ok:
        cells[(r.model, r.batch_size)][_key(r)].append(r)
    out = []
    for (model, b), configs in sorted(cells.items()):
        task = next(iter(configs.values()))[0].task
        refs = [_metric(r) for r in ok if r.model == model and _is_reference(r) and not math.isnan(_metric(r))]
        if not refs:
            out.append(BestConfig(model, b, task, NAN, None, None,
                                  note="no scored ONNX Runtime fp32 CPU row: no accuracy reference"))
            continue
        out.append(_best_of_cell(model, b, task, float(np.median(refs)), configs, samples,
                                 max_accuracy_drop_pp, max_mse_increase))
    return out


def _best_of_cell(model: str, b: int, task: str, base_metric: float, configs: dict[tuple, list[BenchmarkRecord]],
                  samples: dict[str, np.ndarray], max_accuracy_drop_pp: float, max_mse_increase: float) -> BestConfig:
    """The verdict of one (model, batch size): its baseline, the fastest eligible configuration, those
    tied with it, and the faster ones rejected for their accuracy (or MSE)."""
    built = {k: _candidate(rs, samples) for k, rs in configs.items()}
    cands = {k: c for k, (c, _) in built.items()}
    sources = {src for _, src in built.values()}

    def eligible(c: Candidate) -> bool:
        if math.isnan(c.metric):
            return False
        if task == "classify":
            return c.metric >= base_metric - max_accuracy_drop_pp / 100 - 1e-12
        return c.metric <= base_metric * (1 + max_mse_increase) + 1e-12

    baseline, note = _baseline(cands)
    good = sorted((c for c in cands.values() if eligible(c)), key=lambda c: c.p50_ms)
    if not good:
        return BestConfig(model, b, task, base_metric, baseline, None, note="no configuration within budget")
    best = good[0]
    source = "columns" if sources == {"columns"} else ("samples" if "none" not in sources else "none")
    tied = [c for c in good[1:] if best.overlaps(c)] if source != "none" else []
    rejected = sorted(((c, _change(task, c.metric, base_metric)) for c in cands.values()
                       if not eligible(c) and c.p50_ms < best.p50_ms), key=lambda x: x[0].p50_ms)
    return BestConfig(model, b, task, base_metric, baseline, best, tied, rejected,
                      baseline.p50_ms / best.p50_ms if baseline else NAN,
                      _change(task, best.metric, base_metric), source, note)


def _baseline(cands: dict[tuple, Candidate]) -> tuple[Candidate | None, str]:
    """ONNX Runtime fp32 on CPU with default settings, else its fastest row (said in the note)."""
    ref_keys = [k for k in cands if k[:3] == BASELINE]
    defaults = [k for k in ref_keys if _is_default(k)]
    if defaults:
        return cands[defaults[0]], ""
    if ref_keys:
        baseline = min((cands[k] for k in ref_keys), key=lambda c: c.p50_ms)
        return baseline, f"baseline: {baseline.label} (no default-settings ONNX Runtime fp32 row)"
    return None, "no ONNX Runtime fp32 CPU row at this batch size: no speedup"


def load_samples(csvs: Sequence[Path]) -> dict[str, np.ndarray]:
    """The raw per-call samples (int64 ns) beside results CSVs, by ``cell_id`` (the per-cell folder of
    schema 5 and the single ``.samples.npz`` files of older schemas; :func:`bench.samples.load`).

    Raises:
        UsageError: a samples file is damaged.
    """
    out: dict[str, np.ndarray] = {}
    for c in csvs:
        out.update({k: s.ns for k, s in samples_io.load(c).items()})
    return out


def csv_files(paths: Sequence[Path]) -> list[Path]:
    """The results CSVs named by ``paths`` (files, or folders of them).

    Raises:
        UsageError: a path that does not exist or holds no CSV.
    """
    csvs: list[Path] = []
    for p in paths:
        if not p.exists():
            raise UsageError(f"{p} does not exist")
        found = sorted(p.glob("*.csv")) if p.is_dir() else [p]
        if not found:
            raise UsageError(f"{p} holds no results CSV")
        csvs += found
    return csvs


def load(paths: Sequence[Path]) -> tuple[list[BenchmarkRecord], dict[str, np.ndarray]]:
    """Rows and raw samples of results CSVs (files, or folders of them).

    Raises:
        UsageError: as :func:`csv_files`.
    """
    csvs = csv_files(paths)
    return [r for c in csvs for r in read_csv(c)], load_samples(csvs)


def _fmt_metric(task: str, v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:.2%}" if task == "classify" else f"{v:.4f} MSE"


def _fmt_change(task: str, v: float) -> str:
    if math.isnan(v):
        return "-"
    return f"{v:+.2f} pp" if task == "classify" else f"{v:+.1%} MSE"


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else (f"{v * 1e3:.0f} µs" if v < 1 else f"{v:.2f} ms")


HEADER = ["model", "batch", "best configuration", "p50", "img/s", "metric (change vs ORT fp32)", "speedup vs ORT fp32",
          "tied with", "faster but over budget"]


def cells(results: Sequence[BestConfig]) -> list[list[str]]:
    """:data:`HEADER`-ordered strings of each verdict; ``tie`` marks a best with ties."""
    out = []
    for v in results:
        if v.best is None:
            out.append([v.model, str(v.batch_size), f"none ({v.note})", "-", "-", "-", "-", "-", "-"])
            continue
        name = v.best.label + (" (tie)" if v.tied else "")
        speed = "-" if math.isnan(v.speedup) else f"{v.speedup:.2f}x"
        if v.baseline is not None and not math.isnan(v.speedup):
            speed += f" ({_ms(v.baseline.p50_ms)})"
        out.append([v.model, str(v.batch_size), name, _ms(v.best.p50_ms), f"{v.best.throughput_ips:,.0f}",
                    f"{_fmt_metric(v.task, v.best.metric)} ({_fmt_change(v.task, v.metric_change)})", speed,
                    "; ".join(f"{c.label} ({_ms(c.p50_ms)})" for c in v.tied) or "-",
                    "; ".join(f"{c.label} ({_fmt_change(v.task, d)})" for c, d in v.rejected) or "-"])
    return out


def footnote(results: Sequence[BestConfig], max_accuracy_drop_pp: float, max_mse_increase: float) -> str:
    """What the table means: the budget, and how ties were judged."""
    sources = {v.ci_source for v in results if v.best is not None}
    how = {"columns": "their latency_p50_ci columns",
           "samples": f"a {CI_LEVEL:.0%} interval of each cell's median from its raw samples (within-cell spread "
                      "only: drift between cells on a shared machine is not in it)"}
    ties = ("ties: p50 confidence intervals overlap, judged from " + " and ".join(how[s] for s in sorted(sources)
                                                                                 if s in how)
            if sources - {"none"} else "")
    if "none" in sources:
        ties += ("; " if ties else "") + "some rows have no confidence interval: those are ranked by p50 alone, no ties"
    return (f"Budget: accuracy at most {max_accuracy_drop_pp:g} pp below ONNX Runtime fp32 (CPU), MSE at most "
            f"{max_mse_increase:.0%} above it. Speedup: ONNX Runtime fp32 (default settings) p50 / best p50 at the "
            f"same batch size. {ties}.")


def markdown(results: Sequence[BestConfig]) -> str:
    """The verdicts as a GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" if i != 1 and i not in (3, 4, 6) else "---:"
                                                           for i in range(len(HEADER))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells(results)])


def table(results: Sequence[BestConfig], title: str = "Best configuration per model and batch size"):
    """The verdicts as a rich table."""
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(HEADER):
        t.add_column(h, justify="right" if i in (1, 3, 4, 6) else "left")
    for c in cells(results):
        t.add_row(*c)
    return t
