"""`mnistbench best` of load CSVs: per model and scenario, the configuration that serves best under
load while keeping its accuracy.

A *configuration* is what a user chooses besides the model: runtime, provider, variant, threads,
workers and the batching policy (``max_batch``, ``max_queue_delay_ms``). Each scenario is ranked by
its own figure (:data:`FIGURES`): Server by the peak QPS under its bound (peak rows; bounds are kept
apart), Offline by samples/s, single-stream by p90 and multi-stream by p99 latency (LoadGen's
percentiles of the test rows; MLPerf's metric percentiles). Only VALID rows count; a peak search that
found no VALID rate is a figure of none.

The figure of a configuration is the geometric mean over its repeats, with a 95% t interval on
ln(figure) (``scipy.stats.t``, as ``compare`` of load rows uses); with one repeat it has no interval.
Accuracy comes from the configuration's ``accuracy`` rows (LoadGen's accuracy mode, ``load
--accuracy``; the same for every batching policy of a model file and runtime). The rule, as ``best``
of run rows (:mod:`bench.analysis.best`):

1. the baseline is ONNX Runtime fp32 on the CPU: its accuracy is the model's reference, and its
   configuration with one worker and the least batching measured (``max_batch`` 1 where there is
   one; multi-stream and Offline are usually measured batched only) the reference figure;
2. a configuration is eligible when its accuracy is at most ``max_accuracy_drop_pp`` percentage
   points below the reference; one without an accuracy row is never eligible (unknown);
3. the best is the eligible one with the best figure; eligible ones whose interval overlaps the
   best's are *tied* with it;
4. better ones that broke the budget are listed (``rejected``) with their accuracy change.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .rows import LoadRecord

# scenario -> (row kind, field, higher is better, label of the figure)
FIGURES = {"server": ("peak", "peak_qps", True, "peak QPS"), "offline": ("test", "samples_per_s", True, "samples/s"),
           "single-stream": ("test", "latency_p90_ms", False, "p90 ms"),
           "multi-stream": ("test", "latency_p99_ms", False, "p99 ms")}
BASELINE = ("onnxruntime", "cpu", "fp32")  # runtime, provider, variant
CI_LEVEL = 0.95


@dataclass(frozen=True)
class LoadCandidate:
    """One configuration of one model in one scenario (repeats pooled).

    Attributes:
        key: (runtime, provider, variant, threads, workers, max_batch, max_queue_delay_ms).
        label: e.g. ``openvino int8 cpu t1 w1 batch 16/1ms``.
        figure: geometric mean over VALID repeats (peak QPS, samples/s or ms); NaN when none was VALID.
        low, high: 95% interval of the figure (NaN below 2 VALID repeats).
        repeats: VALID repeats / all repeats.
        accuracy: LoadGen accuracy-mode top-1 (fraction; NaN when not measured).
    """

    key: tuple
    label: str
    figure: float
    low: float
    high: float
    repeats: tuple[int, int]
    accuracy: float

    def overlaps(self, other: "LoadCandidate") -> bool:
        """Whether the two intervals overlap (False when either is unknown)."""
        if any(math.isnan(v) for v in (self.low, self.high, other.low, other.high)):
            return False
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True)
class LoadBest:
    """The verdict for one model, scenario (and Server bound).

    Attributes:
        model, scenario, bound: the cell (``bound`` e.g. ``p99<=5ms`` for Server, else empty).
        figure_label, higher_better: what the figure is and which way is better.
        baseline_accuracy: ONNX Runtime fp32's accuracy (NaN when not measured).
        baseline: ONNX Runtime fp32's candidate with one worker and the least batching (None: absent).
        best: the best eligible candidate (None: nothing eligible; ``note`` says why).
        tied: eligible candidates whose interval overlaps the best's.
        rejected: (candidate, accuracy change in pp) better than the best but over the budget.
        gain: best / baseline for figures where higher is better, baseline / best for latencies
            (above 1 is better; NaN without a baseline figure).
    """

    model: str
    scenario: str
    bound: str
    figure_label: str
    higher_better: bool
    baseline_accuracy: float
    baseline: LoadCandidate | None
    best: LoadCandidate | None
    tied: list[LoadCandidate] = field(default_factory=list)
    rejected: list[tuple[LoadCandidate, float]] = field(default_factory=list)
    unscored: int = 0
    gain: float = math.nan
    note: str = ""


def _label(r: LoadRecord) -> str:
    batching = f"batch {r.max_batch}/{r.max_queue_delay_ms:g}ms" if r.max_batch > 1 else "batch off"
    return f"{r.runtime} {r.variant} {r.provider} t{r.threads} w{r.workers} {batching}"


def _key(r: LoadRecord) -> tuple:
    return (r.runtime, r.provider, r.variant, r.threads, r.workers, r.max_batch, r.max_queue_delay_ms)


def geo_interval(values: list[float]) -> tuple[float, float, float]:
    """(geometric mean, 95% low, high) of positive finite ``values``; a t interval on their logs
    (NaN bounds below 2 values; all NaN for none)."""
    v = np.log([x for x in values if math.isfinite(x) and x > 0])
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if len(v) < 2:
        return math.exp(m), math.nan, math.nan
    h = float(stats.t.ppf(0.5 + CI_LEVEL / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return math.exp(m), math.exp(m - h), math.exp(m + h)


def best_load(rows: list[LoadRecord], max_accuracy_drop_pp: float) -> list[LoadBest]:
    """One :class:`LoadBest` per (model, scenario[, Server bound]) in ``rows`` (see the module)."""
    ok = [r for r in rows if r.status == "ok" and r.task != "null"]  # the null model is the harness's floor
    acc: dict[tuple, list[float]] = defaultdict(list)
    for r in ok:
        if r.kind == "accuracy" and math.isfinite(r.accuracy_top1):
            acc[(r.model, r.runtime, r.provider, r.variant)].append(r.accuracy_top1)
    cells: dict[tuple, dict[tuple, list[LoadRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in ok:
        kind = FIGURES.get(r.scenario, ("",))[0]
        if r.kind != kind:
            continue
        bound = f"p{r.latency_percentile:g}<={r.latency_bound_ms:g}ms" if r.scenario == "server" else ""
        cells[(r.model, r.scenario, bound)][_key(r)].append(r)
    out = []
    for (model, scenario, bound), configs in sorted(cells.items()):
        out.append(_best_of(model, scenario, bound, configs, acc, max_accuracy_drop_pp))
    return out


def _candidate(rs: list[LoadRecord], field_: str, acc: dict) -> LoadCandidate:
    valid = [getattr(r, field_) for r in rs if r.valid == "VALID"]
    g, lo, hi = geo_interval(valid)
    a = acc.get((rs[0].model, rs[0].runtime, rs[0].provider, rs[0].variant), [])
    return LoadCandidate(_key(rs[0]), _label(rs[0]), g, lo, hi, (len([v for v in valid if v > 0]), len(rs)),
                         float(np.median(a)) if a else math.nan)


def _best_of(model, scenario, bound, configs, acc, drop_pp) -> LoadBest:
    _, field_, higher, label = FIGURES[scenario]
    cands = [_candidate(rs, field_, acc) for rs in configs.values()]
    better = (lambda c: -c.figure) if higher else (lambda c: c.figure)
    ranked = sorted((c for c in cands if math.isfinite(c.figure)), key=better)
    ref_acc = acc.get((model, *BASELINE), [])
    base_acc = float(np.median(ref_acc)) if ref_acc else math.nan
    ort = sorted((c for c in cands if c.key[:3] == BASELINE and c.key[4] == 1), key=lambda c: (c.key[5], c.key[6]))
    baseline = ort[0] if ort else None  # one worker, the least batching measured
    common = dict(model=model, scenario=scenario, bound=bound, figure_label=label, higher_better=higher,
                  baseline_accuracy=base_acc, baseline=baseline)
    unscored = sum(math.isnan(c.accuracy) for c in ranked)
    if math.isnan(base_acc):
        return LoadBest(**common, best=None, unscored=unscored,
                        note="no accuracy of ONNX Runtime fp32 (load --accuracy): the budget cannot be judged")
    change = lambda c: (c.accuracy - base_acc) * 100  # noqa: E731
    eligible = [c for c in ranked if not math.isnan(c.accuracy) and change(c) >= -drop_pp - 1e-9]
    if not eligible:
        return LoadBest(**common, best=None, unscored=unscored,
                        note="no VALID configuration within the budget" if ranked else "no VALID figure")
    best = eligible[0]
    rejected = [(c, change(c)) for c in ranked[:ranked.index(best)] if c not in eligible and not math.isnan(c.accuracy)]
    tied = [c for c in eligible[1:] if c.overlaps(best)]
    gain = math.nan
    if baseline is not None and math.isfinite(baseline.figure):
        gain = best.figure / baseline.figure if higher else baseline.figure / best.figure
    return LoadBest(**common, best=best, tied=tied, rejected=rejected, unscored=unscored, gain=gain)


HEADER = ["model", "scenario", "best configuration", "figure [95% CI]", "VALID repeats", "accuracy (change)",
          "vs ORT fp32 (1 worker, least batching)", "tied with", "better but over budget"]


def _fig(v: float, label: str) -> str:
    if not math.isfinite(v):
        return "-"
    return f"{v:,.0f}" if not label.endswith("ms") else f"{v:.3f}"


def cells(results: list[LoadBest]) -> list[list[str]]:
    """:data:`HEADER`-ordered strings of each verdict."""
    out = []
    for v in results:
        scen = f"{v.scenario} {v.bound}".strip() + f" ({v.figure_label})"
        if v.best is None:
            out.append([v.model, scen, f"none ({v.note})", "-", "-", "-", "-", "-", "-"])
            continue
        b = v.best
        ci = f" [{_fig(b.low, v.figure_label)}, {_fig(b.high, v.figure_label)}]" if math.isfinite(b.low) else ""
        gain = "-" if math.isnan(v.gain) else f"{v.gain:.2f}x ({_fig(v.baseline.figure, v.figure_label)})"
        out.append([v.model, scen, b.label + (" (tie)" if v.tied else ""), _fig(b.figure, v.figure_label) + ci,
                    f"{b.repeats[0]}/{b.repeats[1]}",
                    f"{b.accuracy:.2%} ({(b.accuracy - v.baseline_accuracy) * 100:+.2f} pp)", gain,
                    "; ".join(f"{c.label} ({_fig(c.figure, v.figure_label)})" for c in v.tied) or "-",
                    "; ".join(f"{c.label} ({d:+.2f} pp)" for c, d in v.rejected) or "-"])
    return out


def markdown(results: list[LoadBest]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---:" if i in (3, 4, 6) else "---"
                                                           for i in range(len(HEADER))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells(results)])


def table(results: list[LoadBest], title: str = "Best configuration under load per model and scenario"):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for i, h in enumerate(HEADER):
        t.add_column(h, justify="right" if i in (3, 4, 6) else "left")
    for c in cells(results):
        t.add_row(*c)
    return t


def footnote(drop_pp: float) -> str:
    return (f"Budget: LoadGen accuracy-mode top-1 at most {drop_pp:g} pp below ONNX Runtime fp32 (CPU); "
            "configurations without an accuracy row are never eligible. Figures: geometric mean over VALID "
            f"repeats, {CI_LEVEL:.0%} t interval on the log; ties: intervals overlap.")
