"""A load CSV row (:class:`.rows.LoadRecord`) built from what one LoadGen test, peak search or
accuracy run gave (:class:`.scenarios.Point`, :class:`.scenarios.Peak`), with the identity of its
cell and repeat, and the one line ``load`` prints for it. Only the runner needs these (they import
the system module, so the readers of load CSVs do not).
"""

from __future__ import annotations

import math
import socket
import time

import numpy as np

from ... import __version__
from ..measure.system import machine_id
from .rows import SCHEMA, LoadRecord
from .scenarios import Peak, Point


def loadgen_version(lg) -> str:
    """The installed ``mlcommons-loadgen`` version (package metadata), else ``lg.__version__``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlcommons-loadgen")
    except PackageNotFoundError:
        return getattr(lg, "__version__", "unknown")


def _pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if len(a) else math.nan


def _base(ident: dict, cid: str, r: int) -> dict:
    return {"schema_version": SCHEMA, "config_id": cid, "cell_id": f"{cid}-r{r}", "repeat": r,
            "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": socket.gethostname(),
            "machine_id": machine_id(), **ident, "loadgen_version": loadgen_version(None),
            "mnistbench_version": __version__}


_EMPTY = {"providers_used": "", "status": "ok", "error": "", "valid": "", "invalid_reason": "", "early_stopping": "",
          "early_stopping_ms": math.nan, "query_count": 0, "samples_per_s": math.nan, "scheduled_per_s": math.nan,
          "peak_qps": math.nan, "peak_tests": 0, "latency_p50_ms": math.nan, "latency_p90_ms": math.nan,
          "latency_p99_ms": math.nan, "latency_p999_ms": math.nan, "latency_mean_ms": math.nan,
          "latency_max_ms": math.nan, "queue_p50_ms": math.nan, "queue_p99_ms": math.nan, "compute_p50_ms": math.nan,
          "compute_p99_ms": math.nan, "batch_mean": math.nan, "accuracy_top1": math.nan, "peak_rss_mib": math.nan,
          "session_rss_mib": math.nan, "wall_s": math.nan}


def error_row(ident: dict, cid: str, r: int, sessions_error: str) -> LoadRecord:
    """The row of a cell whose sessions could not open: ``status`` error, every figure empty (NaN)."""
    return LoadRecord(**{**_EMPTY, **_base(ident, cid, r), "status": "error", "error": sessions_error})


def result_row(ident: dict, cid: str, r: int, p: Point | None, peak_mib: float, session_mib: float, wall: float, session,
         peak: Peak | None = None, accuracy: float = math.nan) -> LoadRecord:
    """The row of one test (``p``), peak search (``peak``, ``p`` its VALID test at the peak or None) or
    accuracy run (``accuracy``, top-1); latencies in ms from LoadGen, queue and compute split from the
    system under test's own per-sample times; ``peak_mib``/``session_mib`` in MiB, ``wall`` in s."""
    v = {**_EMPTY, **_base(ident, cid, r), "providers_used": ";".join(getattr(session, "providers_used", []) or []),
         "peak_rss_mib": peak_mib, "session_rss_mib": session_mib, "wall_s": wall, "accuracy_top1": accuracy}
    if accuracy == accuracy:
        v["valid"] = "VALID"
    if peak is not None:
        v.update(peak_qps=peak.peak_qps, peak_tests=len(peak.tried), valid="VALID" if p else "INVALID",
                 invalid_reason="" if p else "no rate tried was VALID")
    if p is not None:
        res = p.result
        v.update(valid="VALID" if res.valid and not p.error else "INVALID",
                 invalid_reason="; ".join(x for x in (res.reasons, p.error and f"runtime error: {p.error}") if x),
                 early_stopping=res.early_stopping, early_stopping_ms=res.early_stopping_ms,
                 query_count=res.query_count, samples_per_s=res.samples_per_s, scheduled_per_s=res.scheduled_per_s,
                 latency_p50_ms=res.latency_ms.get(50.0, math.nan), latency_p90_ms=res.latency_ms.get(90.0, math.nan),
                 latency_p99_ms=res.latency_ms.get(99.0, math.nan), latency_p999_ms=res.latency_ms.get(99.9, math.nan),
                 latency_mean_ms=res.mean_ms, latency_max_ms=res.max_ms, queue_p50_ms=_pct(p.queue_ms(), 50),
                 queue_p99_ms=_pct(p.queue_ms(), 99), compute_p50_ms=_pct(p.compute_ms(), 50),
                 compute_p99_ms=_pct(p.compute_ms(), 99), batch_mean=p.batch_mean())
        if peak is None:
            v["target_qps"] = p.target_qps
    return LoadRecord(**v)


def summary_line(rec: LoadRecord) -> str:
    """The one line ``load`` prints for a finished row."""
    if rec.kind == "accuracy":
        return f"accuracy (LoadGen accuracy mode): top-1 {rec.accuracy_top1:.4f}"
    if rec.kind == "peak":
        return (f"peak {rec.peak_qps:,.1f} QPS at p{rec.latency_percentile:g} <= {rec.latency_bound_ms:g} ms "
                f"({rec.peak_tests} tests; {rec.valid})")
    return (f"{rec.valid}: {rec.samples_per_s:,.1f} samples/s, p50 {rec.latency_p50_ms:.3f} ms, p99 "
            f"{rec.latency_p99_ms:.3f} ms" + (f" ({rec.invalid_reason})" if rec.invalid_reason else ""))
