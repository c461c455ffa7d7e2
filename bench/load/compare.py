"""``compare`` of load CSVs: per configuration and metric, the ratio new / base of the geometric
means over repeats, a 95% interval, and the verdict ``faster``, ``slower``, ``no change`` or
``inconclusive`` as for ``run`` rows (criterion's noise threshold on the interval).

Metrics (:data:`METRICS`): ``peak_qps`` (peak rows: the highest VALID Server rate; higher is
better), ``throughput`` (samples/s of single-stream, multi-stream and Offline test rows; higher is better), ``p50`` and ``p99`` (LoadGen's
latency percentiles of test and peak rows; lower is better). ``slower`` always means worse: a lower
peak or throughput, a higher latency.

The interval: Welch's t interval on the difference of mean ln(figure) (each repeat one value;
``scipy.stats.t``), widened in quadrature by the between-run spread ``sigma`` (sd of ln ratio, as
``compare`` of ``run`` rows: the host's noise profile, else 3%) when the two sides come from
separate runs. Two sides selected from one file (``FILE#MODEL``) were measured in one run, repeat
``r`` of each in the same shuffled round: they are not widened, and they are paired by repeat (a t
interval, n - 1 degrees of freedom, on the mean of ln(new_r / base_r) over the repeats both sides
have), so that the host's drift from round to round, which both sides of a round share, leaves the
interval (a randomized block design; on this project's host it moved a peak by up to 1.6x between
rounds). With fewer than 2 repeats on a side (or, paired, in common) there is no interval: the
verdict is ``inconclusive`` and no gate rule can fail on it (a capacity figure with no interval is
never gated).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from ...models.errors import UsageError
from ..analysis.compare import NOISE, Z95, verdict
from ..measure import noiseprofile
from .rows import COMPARE_KEY, LoadRecord, is_load_csv, read_load_csv

# metric -> (higher is better, row kinds it is read from, the row's field)
METRICS = {"peak_qps": (True, ("peak",), "peak_qps"), "throughput": (True, ("test",), "samples_per_s"),
           "p50": (False, ("test", "peak"), "latency_p50_ms"), "p99": (False, ("test", "peak"), "latency_p99_ms")}
_RULE = re.compile(r"^\s*(peak_qps|throughput|p50|p99)\s*:\s*([+-])\s*(\d+(?:\.\d+)?)\s*%\s*$")


@dataclass(frozen=True)
class LoadChange:
    """One configuration's change in one metric (figures are geometric means over repeats)."""

    key: tuple
    metric: str
    base: float
    new: float
    n_base: int
    n_new: int
    ratio: float
    low: float
    high: float
    verdict: str
    between_sigma: float
    paired: bool = False

    def label(self) -> str:
        """e.g. ``lenet5 fp32 onnxruntime/cpu t1 w1 batch 8/0.5ms server peak p99<=5ms`` (the model is
        left out when the sides were selected by model)."""
        k = dict(zip(_key_fields(len(self.key) < len(COMPARE_KEY)), self.key))
        batching = f"batch {k['max_batch']}/{k['max_queue_delay_ms']:g}ms" if k["max_batch"] > 1 else "batch off"
        rate = f" @{k['target_qps']:g} QPS" if k["target_qps"] != "" else ""
        bound = f" p{k['latency_percentile']:g}<={k['latency_bound_ms']:g}ms" if k["latency_bound_ms"] != "" else ""
        head = " ".join(x for x in (k.get("model", ""), k["variant"]) if x)
        return (f"{head} {k['runtime']}/{k['provider']} t{k['threads']} w{k['workers']} {batching} "
                f"{k['scenario']} {k['kind']}{rate}{bound}")


@dataclass(frozen=True)
class LoadRule:
    """A gate rule such as ``peak_qps:-5%``: fail when a judged change moves that far the worse way."""

    metric: str
    sign: int
    amount: float

    def crossed(self, c: LoadChange) -> bool:
        """``c`` is this rule's metric, its verdict is ``slower`` (worse), and its point ratio moved at
        least ``amount`` percent in the rule's direction."""
        if c.metric != self.metric or c.verdict != "slower" or not math.isfinite(c.ratio):
            return False
        return self.sign * (c.ratio - 1) * 100 >= self.amount

    def __str__(self) -> str:
        return f"{self.metric}:{'+' if self.sign > 0 else '-'}{self.amount:g}%"


def parse_rules(text: str) -> list[LoadRule]:
    """``"peak_qps:-5%,p99:+10%"`` -> rules.

    Raises:
        UsageError: a rule of another form, or one in the better direction (``peak_qps:+5%`` would
            fail a build on an improvement).
    """
    if not text.strip(" ,"):
        raise UsageError("--fail-on has no rule: give at least one, e.g. peak_qps:-5%,p99:+10%")
    rules = []
    for part in text.split(","):
        m = _RULE.match(part)
        if not m:
            raise UsageError(f"--fail-on rule {part.strip()!r} for load results is not METRIC:+N% or METRIC:-N% "
                             "(metrics: peak_qps, throughput, p50, p99), e.g. peak_qps:-5%,p99:+10%")
        metric, sign, amount = m.group(1), 1 if m.group(2) == "+" else -1, float(m.group(3))
        if (sign < 0) != METRICS[metric][0]:
            raise UsageError(f"--fail-on {part.strip()!r}: {metric} gets worse when it "
                             f"{'falls' if METRICS[metric][0] else 'rises'}; write {metric}:"
                             f"{'-' if METRICS[metric][0] else '+'}{amount:g}%")
        rules.append(LoadRule(metric, sign, amount))
    if not rules:
        raise UsageError("--fail-on has no rule")
    return rules


def split_selector(text: str) -> tuple[Path, str | None]:
    """``FILE#MODEL`` -> (file, model); a plain path -> (path, None)."""
    if "#" in text:
        path, model = text.rsplit("#", 1)
        if not model:
            raise UsageError(f"{text!r}: name a model after '#'")
        return Path(path), model
    return Path(text), None


def is_load_input(text: str) -> bool:
    """Whether ``text`` (a path or ``FILE#MODEL``) names a load CSV."""
    return is_load_csv(split_selector(text)[0])


def _side(text: str) -> tuple[list[LoadRecord], Path, str | None]:
    path, model = split_selector(text)
    if not is_load_csv(path):
        raise UsageError(f"{path} is not a load CSV (from `mnistbench load`); compare load results with load results")
    rows = [r for r in read_load_csv(path) if r.status == "ok"]
    if model is not None:
        rows = [r for r in rows if r.model == model]
        if not rows:
            raise UsageError(f"{path} has no measured rows of model {model!r}")
    if not rows:
        raise UsageError(f"{path} has no measured rows")
    return rows, path, model


def _system(path: Path) -> dict:
    import json

    try:
        data = json.loads(path.with_suffix(".system.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def judge(base: list[float], new: list[float], higher_better: bool, sigma: float, noise: float = NOISE
          ) -> tuple[float, float, float, str]:
    """(ratio, low, high, verdict) of figures ``new`` against ``base`` (one per repeat; see the module).

    A ratio above 1 is a higher figure; the verdict is turned so that ``slower`` means worse."""
    b = np.log([v for v in base if math.isfinite(v) and v > 0])
    n = np.log([v for v in new if math.isfinite(v) and v > 0])
    if len(b) == 0 or len(n) == 0:
        return math.nan, math.nan, math.nan, "n/a"
    d = float(n.mean() - b.mean())
    if len(b) < 2 or len(n) < 2:
        return math.exp(d), math.nan, math.nan, "inconclusive"
    vb, vn = float(b.var(ddof=1)) / len(b), float(n.var(ddof=1)) / len(n)
    se = math.sqrt(vb + vn)
    if se > 0:
        df = (vb + vn) ** 2 / ((vb * vb) / (len(b) - 1) + (vn * vn) / (len(n) - 1))
        t = float(stats.t.ppf(0.975, df))
    else:
        t = 0.0
    half = math.hypot(t * se, Z95 * sigma)
    lo, hi = math.exp(d - half), math.exp(d + half)
    v = verdict(lo, hi, noise)
    if higher_better:
        v = {"slower": "faster", "faster": "slower"}.get(v, v)
    return math.exp(d), lo, hi, v


def judge_paired(base: dict[int, float], new: dict[int, float], higher_better: bool, noise: float = NOISE
                 ) -> tuple[float, float, float, str, int]:
    """(ratio, low, high, verdict, pairs) of figures by repeat (``{repeat: figure}`` a side), paired:
    the t interval on the mean of ln(new_r / base_r) over the repeats with a finite positive figure on
    both sides (no widening: one run). Under 2 pairs: no interval, ``inconclusive``."""
    common = sorted(r for r in set(base) & set(new) if all(math.isfinite(v) and v > 0 for v in (base[r], new[r])))
    if not common:
        return math.nan, math.nan, math.nan, "n/a", 0
    d = np.log([new[r] for r in common]) - np.log([base[r] for r in common])
    mean = float(d.mean())
    if len(d) < 2:
        return math.exp(mean), math.nan, math.nan, "inconclusive", len(d)
    se = float(d.std(ddof=1)) / math.sqrt(len(d))
    half = float(stats.t.ppf(0.975, len(d) - 1)) * se
    lo, hi = math.exp(mean - half), math.exp(mean + half)
    v = verdict(lo, hi, noise)
    if higher_better:
        v = {"slower": "faster", "faster": "slower"}.get(v, v)
    return math.exp(mean), lo, hi, v, len(d)


def compare(base: str, new: str, noise: float | None = None, sigma: float | None = None
            ) -> tuple[list[LoadChange], list[tuple], list[tuple], str]:
    """Judge every configuration the two sides share, in every metric its rows have.

    ``base``/``new``: load CSV paths, or ``FILE#MODEL`` to take one model's rows (the model then
    leaves the key, so two models of one file can be compared; two models of one file are paired by
    repeat, see the module). Returns (changes, keys only in
    base, keys only in new, where the between-run spread came from).

    Raises:
        UsageError: an input that is not a readable load CSV, or a selector that selects nothing.
    """
    rb, pb, mb = _side(base)
    rn, pn, mn = _side(new)
    same_run = pb.resolve() == pn.resolve()
    if sigma is None:
        sigma, source = (0.0, "one run (interleaved)") if same_run else noiseprofile.sigma_of(
            [_system(pb), _system(pn)])
    else:
        source = "given"
    drop_model = mb is not None or mn is not None
    paired = same_run and drop_model
    gb, gn = _groups(rb, drop_model), _groups(rn, drop_model)
    changes = []
    for key in sorted(set(gb) & set(gn), key=str):
        for metric, (higher, kinds, field) in METRICS.items():
            if gb[key][0].kind not in kinds or (metric == "throughput" and gb[key][0].scenario == "server"):
                continue  # a Server test's throughput is the rate LoadGen scheduled, not a figure of the system
            vb = [getattr(r, field) for r in gb[key]]
            vn = [getattr(r, field) for r in gn[key]]
            if paired:
                ratio, lo, hi, v, _ = judge_paired({r.repeat: getattr(r, field) for r in gb[key]},
                                                   {r.repeat: getattr(r, field) for r in gn[key]}, higher,
                                                   NOISE if noise is None else noise)
            else:
                ratio, lo, hi, v = judge(vb, vn, higher, sigma, NOISE if noise is None else noise)
            if v == "n/a":
                continue
            changes.append(LoadChange(key, metric, _geo(vb), _geo(vn), len(vb), len(vn), ratio, lo, hi, v, sigma,
                                      paired))
    return changes, sorted(set(gb) - set(gn), key=str), sorted(set(gn) - set(gb), key=str), source


def _geo(values: list[float]) -> float:
    v = [x for x in values if math.isfinite(x) and x > 0]
    return float(np.exp(np.mean(np.log(v)))) if v else math.nan


def _groups(rows: list[LoadRecord], drop_model: bool) -> dict[tuple, list[LoadRecord]]:
    fields = _key_fields(drop_model)
    out: dict[tuple, list[LoadRecord]] = defaultdict(list)
    for r in rows:
        if r.kind == "accuracy" or r.valid != "VALID" and r.kind != "test":
            continue
        out[tuple(_plain(getattr(r, f)) for f in fields)].append(r)
    return out


def _key_fields(drop_model: bool) -> list[str]:
    return [f for f in COMPARE_KEY if not (drop_model and f == "model")]


def _plain(v):
    return "" if isinstance(v, float) and math.isnan(v) else v


def gate(changes: list[LoadChange], rules: list[LoadRule]) -> list[tuple[LoadChange, LoadRule]]:
    """The (change, rule) pairs that fail the gate."""
    return [(c, r) for c in changes for r in rules if r.crossed(c)]
