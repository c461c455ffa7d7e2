"""The tables of results/load/README.md, from the committed load CSVs and the closed-loop run.

Usage: python scripts/load_tables.py results/load > results/load/tables.md
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from mnistbench.bench.load.report import interval
from mnistbench.bench.load.rows import read_load_csv
from mnistbench.bench.measure.records import read_csv


def _f(v: float, d: int = 1) -> str:
    return f"{v:,.{d}f}" if math.isfinite(v) else "-"


def _rows(folder: Path, name: str):
    p = folder / f"{name}.csv"
    return [r for r in read_load_csv(p) if r.status == "ok"] if p.exists() else []


def _by(rows, key):
    out = defaultdict(list)
    for r in rows:
        out[key(r)].append(r)
    return out


def cell(r) -> tuple:
    return (r.model, r.variant, r.runtime)


def scenarios(folder: Path) -> list[str]:
    ss, ms, off = (_by(_rows(folder, n), cell) for n in ("single-stream", "multi-stream", "offline"))
    keys = sorted(set(ss) | set(ms) | set(off))
    out = ["| model | variant | runtime | single-stream p90 estimate ms (VALID) | multi-stream p99 estimate ms, 8 a query "
           "(VALID) | Offline samples/s, batch 128 (VALID) |", "|---|---|---|---:|---:|---:|"]
    for k in keys:
        def med(rs, f):  # an early-stopping estimate of 0 (rows before 8e66390) is LoadGen's "none made"
            v = [getattr(r, f) for r in rs if r.kind == "test" and not (f == "early_stopping_ms" and getattr(r, f) == 0)]
            return float(np.median(v)) if v else math.nan

        def valid(rs):
            t = [r for r in rs if r.kind == "test"]
            return f"{sum(r.valid == 'VALID' for r in t)}/{len(t)}"
        out.append(f"| {k[0]} | {k[1]} | {k[2]} | {_f(med(ss[k], 'early_stopping_ms'), 3)} ({valid(ss[k])}) | "
                   f"{_f(med(ms[k], 'early_stopping_ms'), 3)} ({valid(ms[k])}) | {_f(med(off[k], 'samples_per_s'))} "
                   f"({valid(off[k])}) |")
    return out


def geo_interval(values: list[float]) -> tuple[float, float, float]:
    """Geometric mean and 95% t interval on ln values (as `compare` judges peaks): never below 0."""
    m, lo, hi = interval([math.log(v) for v in values if v > 0])
    return tuple(math.exp(x) if math.isfinite(x) else math.nan for x in (m, lo, hi))


def peaks(folder: Path) -> list[str]:
    one = _by([r for r in _rows(folder, "server-peak") if r.kind == "peak"], cell)
    # OpenVINO with batching: the rerun after the per-shape compile fix supersedes server-peak-batched's rows
    ov = [r for r in _rows(folder, "server-peak-batched-openvino") if r.kind == "peak"]
    bat = _by([r for r in _rows(folder, "server-peak-batched") if r.kind == "peak"
               and not (ov and r.runtime == "openvino" and r.model != "null-identity")] + ov, cell)
    out = ["| model | variant | runtime | peak QPS, one at a time [95% CI] | peak QPS, batch 16 / 1 ms [95% CI] "
           "| batching's gain |", "|---|---|---|---:|---:|---:|"]
    for k in sorted(set(one) | set(bat)):
        a = geo_interval([r.peak_qps for r in one.get(k, []) if r.valid == "VALID"])
        b = geo_interval([r.peak_qps for r in bat.get(k, []) if r.valid == "VALID"])
        gain = b[0] / a[0] if a[0] > 0 else math.nan

        def n(rs):
            return f"{sum(r.valid == 'VALID' for r in rs)}/{len(rs)} VALID"
        out.append(f"| {k[0]} | {k[1]} | {k[2]} | {_f(a[0])} [{_f(a[1])}, {_f(a[2])}] ({n(one.get(k, []))}) | "
                   f"{_f(b[0])} [{_f(b[1])}, {_f(b[2])}] ({n(bat.get(k, []))}) | {_f(gain, 2)}x |")
    return out


def offline_vs_closed_loop(folder: Path) -> list[str]:
    p = folder / "closed-loop.csv"
    if not p.exists():
        return ["(no closed-loop.csv)"]
    run = [r for r in read_csv(p) if r.status == "ok" and r.task not in ("reference",)]
    best = {}
    for r in run:
        k = (r.model, r.variant, r.runtime)
        if r.throughput_ips > best.get(k, (0, 0))[0]:
            best[k] = (r.throughput_ips, r.batch_size)
    acc = {(r.model, r.variant, r.runtime): r.accuracy_top1 for r in run if math.isfinite(r.accuracy_top1)}
    off = _by(_rows(folder, "offline"), cell)
    out = ["| model | variant | runtime | Offline samples/s (median of 3, batch 128) | best closed loop images/s (batch) "
           "| ratio | LoadGen accuracy mode top-1 | run top-1 | equal |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for k in sorted(off):
        o = float(np.median([r.samples_per_s for r in off[k] if r.kind == "test"] or [math.nan]))
        b, bs = best.get(k, (math.nan, 0))
        la = next((r.accuracy_top1 for r in off[k] if r.kind == "accuracy"), math.nan)
        ra = acc.get(k, math.nan)
        eq = "yes" if la == ra else ("-" if math.isnan(la) or math.isnan(ra) else "no")
        out.append(f"| {k[0]} | {k[1]} | {k[2]} | {_f(o)} | {_f(b)} ({bs}) | {_f(o / b, 3) if b else '-'} | "
                   f"{_f(la, 4)} | {_f(ra, 4)} | {eq} |")
    return out


def main(folder: str) -> None:
    f = Path(folder)
    parts = ["## Scenarios (median over 3 repeats; LoadGen's verdicts VALID/all)", "", *scenarios(f), "",
             "## Server: peak rate with p99 <= 5 ms (geometric mean of the VALID repeats, 95% t interval on ln)", "", *peaks(f), "",
             "## Offline against the closed loop, and LoadGen's accuracy mode against run", "",
             *offline_vs_closed_loop(f), ""]
    print("\n".join(parts))


if __name__ == "__main__":
    main(sys.argv[1])
