"""Compare results: join rows on their configuration, test whether latency changed, gate on it.

Rows of a BASE and a NEW result set (CSV files, or folders of them) are joined
on :data:`KEY` (model, variant, runtime, provider, batch size, threads requested,
spinning, io mode, dataset). Repeats of one configuration are pooled. For each pair:

- p50, p99, throughput and accuracy side by side, with ratios (new / base);
- significance from the raw samples that ``run`` keeps (``<csv>.samples.npz``):
  a two-sided Mann-Whitney U test (``scipy.stats.mannwhitneyu``) of the
  per-call latencies, on at most :data:`MAX_SAMPLES` samples a side (evenly
  thinned, so run-length drift is kept);
- a minimum effect size (``min_effect``, default :data:`MIN_EFFECT` on the p50
  ratio): a change smaller than that is called noise however small its
  p-value, because between-run drift on a shared machine is larger than
  within-run sampling error (see the A/A calibration in the README).

A verdict is ``slower`` / ``faster`` (significant and at least the minimum
effect), ``noise`` (significant but smaller), ``same`` (not significant) or
``n/a`` (no samples). Rows present on one side only are listed, never dropped.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnistbench.bench.records import BenchmarkRecord, read_csv
from mnistbench.models.errors import UsageError

KEY = ("model", "variant", "runtime", "provider", "batch_size", "threads_requested", "spinning", "io_mode", "dataset")
MIN_EFFECT = 0.05  # p50 ratio change below which a significant difference is called noise
ALPHA = 0.01
MAX_SAMPLES = 5000
SYSTEM_FIELDS = ("cpu_model", "cpu_logical_cores", "cpu_physical_cores", "onnxruntime", "onnx", "torch",
                 "python", "os", "onnxruntime_available_providers", "gpus", "host")


@dataclass
class ResultSet:
    """Rows of one or more CSVs, their raw samples by ``cell_id``, and their system descriptions."""

    label: str
    rows: list[BenchmarkRecord]
    samples: dict[str, np.ndarray]
    systems: list[dict]


def load(path: Path) -> ResultSet:
    """A results CSV (with its ``.samples*.npz`` and ``.system.json`` beside it), or a folder of them.

    Raises:
        UsageError: missing path, no CSV in a folder, or a CSV that is not of this schema.
    """
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    csvs = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not csvs:
        raise UsageError(f"{path} holds no results CSV")
    rows, samples, systems = [], {}, []
    for c in csvs:
        rows += [r for r in read_csv(c) if r.status == "ok"]
        for npz in [c.with_name(c.stem + ".samples.npz"), *c.parent.glob(c.stem + ".r*.samples.npz")]:
            if not npz.is_file():
                continue
            try:
                with np.load(npz) as z:
                    samples.update({k: z[k] for k in z.files})
            except (OSError, ValueError, zipfile.BadZipFile):
                raise UsageError(f"{npz} is not a readable samples file") from None
        sj = c.with_suffix(".system.json")
        if sj.is_file():
            try:
                systems.append(json.loads(sj.read_text()))
            except json.JSONDecodeError:
                raise UsageError(f"{sj} is not valid JSON") from None
    return ResultSet(str(path), rows, samples, systems)


def key(r: BenchmarkRecord) -> tuple:
    return tuple(getattr(r, k) for k in KEY)


@dataclass(frozen=True)
class Change:
    """One configuration compared: figures, ratios, test and verdict."""

    key: tuple
    base_p50_ms: float
    new_p50_ms: float
    base_p99_ms: float
    new_p99_ms: float
    base_ips: float
    new_ips: float
    base_acc: float
    new_acc: float
    p_value: float
    verdict: str

    @property
    def p50_ratio(self) -> float:
        return self.new_p50_ms / self.base_p50_ms

    @property
    def ips_ratio(self) -> float:
        return self.new_ips / self.base_ips

    @property
    def acc_delta_pp(self) -> float:
        return (self.new_acc - self.base_acc) * 100


def _thin(x: np.ndarray) -> np.ndarray:
    return x if len(x) <= MAX_SAMPLES else x[np.linspace(0, len(x) - 1, MAX_SAMPLES).astype(int)]


def _pooled(rs: list[BenchmarkRecord], samples: dict[str, np.ndarray]) -> np.ndarray | None:
    parts = [samples[r.cell_id] for r in rs if r.cell_id in samples]
    return np.concatenate(parts) if parts else None


def test_change(base: np.ndarray | None, new: np.ndarray | None, ratio: float, min_effect: float = MIN_EFFECT,
                alpha: float = ALPHA) -> tuple[float, str]:
    """(p-value, verdict) for two latency samples whose p50 ratio is ``ratio`` (new / base)."""
    from scipy.stats import mannwhitneyu

    if base is None or new is None or len(base) < 5 or len(new) < 5:
        return math.nan, "n/a"
    p = float(mannwhitneyu(_thin(base), _thin(new), alternative="two-sided").pvalue)
    if p >= alpha:
        return p, "same"
    if abs(ratio - 1) < min_effect:
        return p, "noise"
    return p, "slower" if ratio > 1 else "faster"


def med(rs: list[BenchmarkRecord], field: str) -> float:
    """Median of a field over repeats, NaN when every value is missing."""
    vals = [v for v in (getattr(r, field) for r in rs) if not math.isnan(v)]
    return float(np.median(vals)) if vals else math.nan


def compare(base: ResultSet, new: ResultSet, min_effect: float = MIN_EFFECT) -> tuple[list[Change], list[tuple], list[tuple]]:
    """Join and test. Returns (changes, keys only in base, keys only in new)."""
    gb, gn = defaultdict(list), defaultdict(list)
    for r in base.rows:
        gb[key(r)].append(r)
    for r in new.rows:
        gn[key(r)].append(r)
    changes = []
    for k in gb:
        if k not in gn:
            continue
        b, n = gb[k], gn[k]
        bp, np50 = med(b, "latency_p50_ms"), med(n, "latency_p50_ms")
        p, verdict = test_change(_pooled(b, base.samples), _pooled(n, new.samples), np50 / bp, min_effect)
        changes.append(Change(k, bp, np50, med(b, "latency_p99_ms"), med(n, "latency_p99_ms"),
                              med(b, "throughput_ips"), med(n, "throughput_ips"), med(b, "accuracy_top1"),
                              med(n, "accuracy_top1"), p, verdict))
    return changes, [k for k in gb if k not in gn], [k for k in gn if k not in gb]


def system_differences(base: ResultSet, new: ResultSet) -> list[str]:
    """Lines naming the system fields that differ between the two sets (CPU, versions, providers...)."""
    def fields(rs: ResultSet) -> dict:
        out = {}
        for s in rs.systems:
            for f in SYSTEM_FIELDS:
                if f in s:
                    out.setdefault(f, set()).add(json.dumps(s[f], sort_keys=True))
        return out

    fb, fn = fields(base), fields(new)
    return [f"{f}: {' | '.join(sorted(fb.get(f, {'?'})))} -> {' | '.join(sorted(fn.get(f, {'?'})))}"
            for f in SYSTEM_FIELDS if fb.get(f) != fn.get(f) and (f in fb or f in fn)]


_RULE = re.compile(r"^\s*(p50|p99|throughput|accuracy)\s*:\s*([+-])\s*(\d+(?:\.\d+)?)\s*(%|pp)\s*$")


@dataclass(frozen=True)
class Rule:
    """A gate rule such as ``p50:+5%``: fail when the metric moves that far in that direction."""

    metric: str
    sign: int
    amount: float
    unit: str

    def crossed(self, c: Change) -> bool:
        if self.metric == "accuracy":
            if math.isnan(c.acc_delta_pp):
                return False
            return self.sign * c.acc_delta_pp >= self.amount
        if c.verdict not in ("slower", "faster"):  # only significant changes beyond noise fail the gate
            return False
        ratio = {"p50": c.p50_ratio, "p99": c.new_p99_ms / c.base_p99_ms if c.base_p99_ms > 0 else math.nan,
                 "throughput": c.ips_ratio}[self.metric]
        return not math.isnan(ratio) and self.sign * (ratio - 1) * 100 >= self.amount

    def __str__(self) -> str:
        return f"{self.metric}:{'+' if self.sign > 0 else '-'}{self.amount:g}{self.unit}"


def parse_rules(text: str) -> list[Rule]:
    """``"p50:+5%,accuracy:-0.1pp,throughput:-5%"`` -> rules.

    Raises:
        UsageError: a rule not of the form METRIC:(+|-)NUMBER(%|pp), accuracy not in pp, or the others not in %.
    """
    rules = []
    for part in text.split(","):
        m = _RULE.match(part)
        if not m:
            raise UsageError(f"--fail-on rule {part.strip()!r} is not METRIC:+N% or METRIC:-Npp "
                             "(metrics: p50, p99, throughput, accuracy), e.g. p50:+5%,accuracy:-0.1pp")
        metric, sign, amount, unit = m.groups()
        if (metric == "accuracy") != (unit == "pp"):
            raise UsageError(f"--fail-on {part.strip()!r}: accuracy is given in pp, latency and throughput in %")
        rules.append(Rule(metric, 1 if sign == "+" else -1, float(amount), unit))
    return rules


def gate(changes: list[Change], rules: list[Rule]) -> list[tuple[Change, Rule]]:
    """The (change, rule) pairs that fail the gate."""
    return [(c, r) for c in changes for r in rules if r.crossed(c)]
