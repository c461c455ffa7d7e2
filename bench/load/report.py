"""The load part of ``mnistbench report``: the latency-throughput curve of each Server rate sweep
with its knee (``load-curve.png``), the peak rates with 95% intervals, dynamic batching's gain,
and the null model's floor, as HTML sections (and a whole page when the results hold only load rows).

The knee of a curve (:func:`knee`): the last rate before the p99 crosses the latency bound; when
it never crosses, the first point after which the achieved rate grows less than
:data:`KNEE_GAIN` (5%) per step; else none.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...models.files import atomic_write_bytes
from .best import geo_interval
from .rows import LoadRecord

KNEE_GAIN = 0.05


@dataclass(frozen=True)
class CurvePoint:
    """One rate of a sweep, over its repeats: the asked rate, medians of the achieved rate and the
    p50/p99 (ms), the p99's 95% interval (a t interval on ln(p99) over repeats, so never below 0;
    NaN with one), VALID repeats of all."""

    target_qps: float
    achieved_qps: float
    p50_ms: float
    p99_ms: float
    p99_low: float
    p99_high: float
    valid: int
    n: int


def series(r: LoadRecord) -> str:
    """A curve's label: model, variant, runtime/provider, workers and batching policy."""
    batching = f"batch {r.max_batch}/{r.max_queue_delay_ms:g}ms" if r.max_batch > 1 else "batch off"
    return f"{r.model} {r.variant} {r.runtime}/{r.provider} w{r.workers} {batching}"


def curves(rows: list[LoadRecord]) -> dict[str, list[CurvePoint]]:
    """Server test rows by series, one :class:`CurvePoint` per asked rate (ascending)."""
    by: dict[str, dict[float, list[LoadRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.status == "ok" and r.kind == "test" and r.scenario == "server" and math.isfinite(r.target_qps):
            by[series(r)][r.target_qps].append(r)
    out = {}
    for s, pts in sorted(by.items()):
        out[s] = []
        for q, rs in sorted(pts.items()):
            _, lo, hi = geo_interval([r.latency_p99_ms for r in rs])
            out[s].append(CurvePoint(q, float(np.median([r.samples_per_s for r in rs])),
                                     float(np.median([r.latency_p50_ms for r in rs])),
                                     float(np.median([r.latency_p99_ms for r in rs])), lo, hi,
                                     sum(r.valid == "VALID" for r in rs), len(rs)))
    return out


def knee(points: list[CurvePoint], bound_ms: float) -> tuple[int | None, str]:
    """The knee's index in ``points`` and why (see the module); (None, reason) when there is none."""
    if not points:
        return None, "no points"
    over = next((i for i, p in enumerate(points) if not p.p99_ms <= bound_ms), None)
    if over == 0:
        return None, f"p99 above {bound_ms:g} ms from the first rate"
    if over is not None:
        return over - 1, f"last rate before p99 crosses {bound_ms:g} ms"
    for i in range(1, len(points)):
        if points[i].achieved_qps < points[i - 1].achieved_qps * (1 + KNEE_GAIN):
            return i - 1, f"achieved rate grows less than {KNEE_GAIN:.0%} past it"
    return None, "p99 within the bound and the rate still growing at the last point"


def figure(rows: list[LoadRecord], path: Path) -> Path | None:
    """``load-curve.png``: p99 (solid) and p50 (dashed) against the achieved rate, a line per series,
    the knee circled, the bound dotted; None when no Server sweep is in ``rows``."""
    cs = curves(rows)
    if not cs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bounds = {r.latency_bound_ms for r in rows if r.kind == "test" and r.scenario == "server"}
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for i, (s, pts) in enumerate(cs.items()):
        c = f"C{i % 10}"
        x = [p.achieved_qps for p in pts]
        ax.plot(x, [p.p99_ms for p in pts], "-o", color=c, ms=3, label=f"{s} p99")
        ax.plot(x, [p.p50_ms for p in pts], "--", color=c, lw=1)
        k, _ = knee(pts, min(bounds))
        if k is not None:
            ax.plot([x[k]], [pts[k].p99_ms], "o", ms=12, mfc="none", mec=c, mew=2)
    for b in bounds:
        ax.axhline(b, ls=":", color="k", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("achieved rate (samples/s)")
    ax.set_ylabel("latency (ms; p99 solid, p50 dashed)")
    ax.set_title("Server: latency against rate (knee circled; bound dotted)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)  # `report` may draw the load sections first
    atomic_write_bytes(path, buf.getvalue())
    return path


def _table(header: list[str], cells: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def peaks(rows: list[LoadRecord]) -> dict[str, tuple[float, float, float, int, int]]:
    """Peak rows by series and bound: (geometric mean peak QPS, 95% low, high, repeats that found a
    VALID rate, repeats), the interval a t interval on ln(peak) over the former
    (:func:`bench.load.best.geo_interval`: a rate is positive, so its bounds are too)."""
    by: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if r.status == "ok" and r.kind == "peak":
            by[f"{series(r)} p{r.latency_percentile:g}<={r.latency_bound_ms:g}ms"].append(r.peak_qps)
    return {k: (*geo_interval(v), sum(math.isfinite(x) and x > 0 for x in v), len(v)) for k, v in sorted(by.items())}


def _fmt(v: float, digits: int = 1) -> str:
    return f"{v:,.{digits}f}" if math.isfinite(v) else "-"


def sections(rows: list[LoadRecord], folder: Path) -> list[str]:
    """The HTML sections of the load rows (figure embedded)."""
    parts = ["<h2>Latency under load (MLPerf LoadGen)</h2>",
             f"<p>{len(rows)} load rows; LoadGen {html.escape(', '.join(sorted({r.loadgen_version for r in rows})))}; "
             f"minimum durations {html.escape(', '.join(sorted({f'{r.min_duration_s:g} s' for r in rows})))}.</p>"]
    pk = peaks(rows)
    if pk:
        parts += ["<h3>Peak Server rate under the bound (geometric mean over repeats, 95% t interval on the log)</h3>",
                  _table(["series", "peak QPS", "95% interval", "repeats with a VALID rate"],
                         [[k, _fmt(m), f"[{_fmt(lo)}, {_fmt(hi)}]", f"{v} of {n}"] for k, (m, lo, hi, v, n) in pk.items()])]
    tests = [r for r in rows if r.status == "ok" and r.kind == "test" and r.scenario != "server"]
    if tests:
        by: dict[str, list[LoadRecord]] = defaultdict(list)
        for r in tests:
            by[f"{series(r)} {r.scenario}"].append(r)
        parts += ["<h3>Single-stream, multi-stream and Offline (median over repeats)</h3>",
                  _table(["series", "samples/s", "p50 ms", "p90 ms", "p99 ms", "VALID"],
                         [[k, _fmt(float(np.median([r.samples_per_s for r in v]))),
                           _fmt(float(np.median([r.latency_p50_ms for r in v])), 3),
                           _fmt(float(np.median([r.latency_p90_ms for r in v])), 3),
                           _fmt(float(np.median([r.latency_p99_ms for r in v])), 3),
                           f"{sum(r.valid == 'VALID' for r in v)}/{len(v)}"] for k, v in sorted(by.items())])]
    cs = curves(rows)
    bounds = sorted({r.latency_bound_ms for r in rows if r.kind == "test" and r.scenario == "server"})
    for s, pts in cs.items():
        k, why = knee(pts, bounds[0])
        parts += [f"<h3>Curve: {html.escape(s)}</h3>",
                  _table(["target QPS", "achieved", "p50 ms", "p99 ms", "p99 95% interval", "VALID", "knee"],
                         [[_fmt(p.target_qps), _fmt(p.achieved_qps), _fmt(p.p50_ms, 3), _fmt(p.p99_ms, 3),
                           f"[{_fmt(p.p99_low, 3)}, {_fmt(p.p99_high, 3)}]", f"{p.valid}/{p.n}",
                           why if i == k else ""] for i, p in enumerate(pts)])]
        if k is None:
            parts.append(f"<p>No knee: {html.escape(why)}.</p>")
    png = figure(rows, folder / "load-curve.png")
    if png is not None:
        data = base64.b64encode(png.read_bytes()).decode()
        parts.append(f"<h3>Latency against rate</h3><img alt='load-curve' src='data:image/png;base64,{data}'>")
    return parts


def write_page(rows: list[LoadRecord], folder: Path, sources: list[str]) -> Path:
    """``report.html`` of load rows alone (self-contained); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>mnistbench load report</title><style>"
             "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
             "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head>"
             "<body><h1>mnistbench load report</h1>",
             f"<p>From {html.escape(', '.join(sources))}; hosts {html.escape(', '.join(sorted({r.host for r in rows})))}."
             "</p>", *sections(rows, folder), "</body></html>"]
    out = folder / "report.html"
    atomic_write_bytes(out, "\n".join(parts).encode())
    return out
