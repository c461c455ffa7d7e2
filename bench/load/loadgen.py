"""MLPerf Inference LoadGen (the ``mlcommons-loadgen`` package, module ``mlperf_loadgen``): one
test of one scenario against a :class:`.sut.BatchingSUT`, and its verdict read back from LoadGen's
own detail log.

LoadGen schedules the queries and times every sample from the moment it was *scheduled* to the
moment the SUT answered it, so a late issue counts against the system; it alone decides whether a
run is VALID (minimum duration and query count met, the latency constraint met, early stopping
satisfied). This module does not recompute any of it: :func:`read_result` parses the
``:::MLLOG`` lines of ``mlperf_log_detail.txt``, and the summary and detail logs are kept in the
run's log folder.
"""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...models.errors import UsageError

SCENARIOS = {"single-stream": "SingleStream", "multi-stream": "MultiStream", "server": "Server", "offline": "Offline"}
# MLPerf Inference rules: MultiStream queries carry 8 samples; the metric percentiles of each scenario
MULTI_STREAM_SAMPLES = 8
METRIC_PERCENTILE = {"single-stream": 90.0, "multi-stream": 99.0, "server": 99.0, "offline": math.nan}
POLL_S = 0.1  # how often the caller's thread looks up from a running test (Ctrl-C latency)
INSTALL = "mnistbench load needs MLPerf LoadGen: pip install -e '.[load]' (the mlcommons-loadgen package)"


def loadgen():
    """The ``mlperf_loadgen`` module.

    Raises:
        UsageError: it is not installed (one line saying how to install it).
    """
    try:
        import mlperf_loadgen
    except ImportError:
        raise UsageError(INSTALL) from None
    return mlperf_loadgen


@dataclass(frozen=True)
class Limits:
    """How long a LoadGen test runs at least: ``min_duration_s`` seconds and ``min_query_count``
    queries (LoadGen's ``min_duration_ms``/``min_query_count``; the MLPerf rules' 600 s are for
    submissions), ``max_duration_s`` at most (0: no limit)."""

    min_duration_s: float = 10.0
    min_query_count: int = 1024
    max_duration_s: float = 0.0


@dataclass
class LoadGenResult:
    """What LoadGen said of one test (times in ms, rates in samples/s; NaN where the scenario has none).

    Attributes:
        valid: LoadGen's ``result_validity`` is VALID.
        reasons: why not (LoadGen's unmet constraints and its ``result_invalid_reason``), '' when valid.
        early_stopping: LoadGen's early-stopping text (e.g. "Processed at least 662 queries ...").
        early_stopping_ms: its early-stopping estimate of the scenario's percentile, ms.
        query_count: queries LoadGen issued; samples_per_s: completed (Server, Offline) or
            queries x samples per query / wall (single/multi-stream: with LoadGen's overhead).
        scheduled_per_s: the scheduled rate (Server).
        latency_ms: LoadGen's latency percentiles {50, 90, 95, 97, 99, 99.9: ms}, per query for
            multi-stream; mean_ms, max_ms.
    """

    valid: bool
    reasons: str
    early_stopping: str
    early_stopping_ms: float
    query_count: int
    samples_per_s: float
    scheduled_per_s: float
    latency_ms: dict[float, float] = field(default_factory=dict)
    mean_ms: float = math.nan
    max_ms: float = math.nan


def settings(lg, scenario: str, limits: Limits, *, target_qps: float = math.nan, bound_ms: float = math.nan,
             percentile: float = 99.0, expected_ms: float = 1.0, offline_qps: float = 1000.0, seed: int = 0,
             accuracy: bool = False):
    """LoadGen ``TestSettings`` for ``scenario`` (a key of :data:`SCENARIOS`).

    ``expected_ms``: the single/multi-stream query latency LoadGen expects (it pre-generates
    ``min_duration / expected`` queries: pass a value at or below the real one); ``offline_qps``:
    Offline's expected rate (it issues ``min_duration x rate`` samples: pass at least the real one).
    ``seed`` seeds LoadGen's schedule, sample index and QSL generators.
    """
    st = lg.TestSettings()
    st.scenario = getattr(lg.TestScenario, SCENARIOS[scenario])
    st.mode = lg.TestMode.AccuracyOnly if accuracy else lg.TestMode.PerformanceOnly
    st.min_duration_ms = int(limits.min_duration_s * 1000)
    st.min_query_count = int(limits.min_query_count)
    st.max_duration_ms = int(limits.max_duration_s * 1000)
    st.qsl_rng_seed = st.sample_index_rng_seed = st.schedule_rng_seed = int(seed)
    expected_ns = max(1, int(expected_ms * 1e6))
    st.single_stream_expected_latency_ns = expected_ns
    st.multi_stream_expected_latency_ns = expected_ns
    st.multi_stream_samples_per_query = MULTI_STREAM_SAMPLES
    st.offline_expected_qps = float(offline_qps)
    if scenario == "server":
        st.server_target_qps = float(target_qps)
        st.server_target_latency_ns = int(bound_ms * 1e6)
        st.server_target_latency_percentile = percentile / 100.0
    return st


def run_test(lg, sut, count: int, performance_count: int, st, log_dir: Path) -> None:
    """One LoadGen test of ``sut`` (a :class:`.sut.BatchingSUT`) over a QSL of ``count`` samples
    (``performance_count`` of them loaded for performance runs; the data is in memory already),
    logs written to ``log_dir`` (summary, detail, accuracy; no trace)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    handle = lg.ConstructSUT(sut.issue, sut.flush)
    qsl = lg.ConstructQSL(count, performance_count, lambda s: None, lambda s: None)
    ls = lg.LogSettings()
    ls.log_output.outdir = str(log_dir)
    ls.log_output.copy_summary_to_stdout = False
    ls.enable_trace = False
    done, failed = threading.Event(), []

    def test() -> None:
        try:
            lg.StartTestWithLogSettings(handle, qsl, st, ls)
        except BaseException as exc:  # noqa: BLE001  (handed to the caller's thread)
            failed.append(exc)
        finally:
            lg.DestroyQSL(qsl)
            lg.DestroySUT(handle)
            done.set()

    # LoadGen blocks its caller for the whole test and Python runs a Ctrl-C handler only in the main
    # thread between bytecodes: the test runs in a thread of its own, so the main thread sees Ctrl-C
    # within POLL_S; the SUT then answers at once and the test thread ends at LoadGen's minimum duration.
    t = threading.Thread(target=test, name="mnistbench-loadgen", daemon=True)
    t.start()
    try:
        while not done.wait(POLL_S):
            pass
    except KeyboardInterrupt:
        sut.abort()
        raise
    if failed:
        raise failed[0]


def respond_with(lg) -> callable:
    """The ``respond`` of a :class:`.sut.BatchingSUT` that answers LoadGen: each sample's int64
    prediction as its 8-byte response."""

    def respond(ids: list[int], pred: np.ndarray) -> None:
        pred = np.ascontiguousarray(pred, np.int64)
        base = pred.ctypes.data
        lg.QuerySamplesComplete([lg.QuerySampleResponse(q, base + 8 * i, 8) for i, q in enumerate(ids)])

    return respond


_PCT = re.compile(r"^result_(\d+\.\d+)_percentile(?:_per_query)?_latency_ns$")
_ES = re.compile(r"([\d.]+)th percentile estimate: (\d+)")


def _entries(log_dir: Path) -> dict:
    path = log_dir / "mlperf_log_detail.txt"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise UsageError(f"LoadGen wrote no detail log in {log_dir}: {exc.strerror}") from None
    out: dict = {}
    for line in lines:
        if line.startswith(":::MLLOG "):
            try:
                e = json.loads(line[len(":::MLLOG "):])
            except json.JSONDecodeError:
                continue
            out.setdefault(e.get("key"), e.get("value"))
    if "result_validity" not in out:
        raise UsageError(f"{path}: LoadGen recorded no result (the test did not finish)")
    return out


def read_result(log_dir: Path, scenario: str) -> LoadGenResult:
    """LoadGen's verdict and figures from ``log_dir/mlperf_log_detail.txt``.

    Raises:
        UsageError: no detail log, or one without a result.
    """
    e = _entries(log_dir)
    unmet = [text for key, text in (("result_min_duration_met", "min duration not met"),
                                    ("result_min_queries_met", "min queries not met"),
                                    ("result_perf_constraints_met", "latency constraint not met"),
                                    ("early_stopping_met", "early stopping not satisfied")) if e.get(key) is False]
    if e.get("result_invalid_reason"):
        unmet.append(str(e["result_invalid_reason"]).strip())
    lat: dict[float, float] = {}
    for key, v in sorted(e.items(), key=lambda kv: "per_query" in str(kv[0])):  # per query wins (multi-stream)
        m = _PCT.match(str(key))
        if m and isinstance(v, (int, float)):
            lat[float(m.group(1))] = v / 1e6
    es_text = " ".join(str(e.get("early_stopping_result", "")).split())
    es = _ES.findall(es_text)
    want = METRIC_PERCENTILE[scenario]
    es_ms = next((int(v) / 1e6 for p, v in es if float(p) == want), math.nan)
    key = {"single-stream": "early_stopping_latency_ss", "multi-stream": "early_stopping_latency_ms"}.get(scenario)
    if key and isinstance(e.get(key), (int, float)):  # LoadGen logs 0 when it made no estimate: missing, not 0 ms
        es_ms = e[key] / 1e6 if e.get("early_stopping_met") is True and e[key] > 0 else math.nan
    rate = e.get("result_completed_samples_per_sec", e.get("result_samples_per_second"))
    if rate is None and isinstance(e.get("result_qps_with_loadgen_overhead"), (int, float)):
        per = MULTI_STREAM_SAMPLES if scenario == "multi-stream" else 1
        rate = e["result_qps_with_loadgen_overhead"] * per
    return LoadGenResult(
        valid=e.get("result_validity") == "VALID", reasons="; ".join(unmet), early_stopping=es_text,
        early_stopping_ms=es_ms, query_count=int(e.get("result_query_count", 0) or 0),
        samples_per_s=float(rate) if isinstance(rate, (int, float)) else math.nan,
        scheduled_per_s=float(e.get("result_scheduled_samples_per_sec", math.nan)), latency_ms=lat,
        mean_ms=float(e.get("result_mean_latency_ns", math.nan)) / 1e6,
        max_ms=float(e.get("result_max_latency_ns", math.nan)) / 1e6)


def accuracy_predictions(log_dir: Path) -> dict[int, int]:
    """LoadGen's accuracy log (``mlperf_log_accuracy.json``): sample index -> the int64 class the
    SUT answered (the last answer where a sample was issued more than once).

    Raises:
        UsageError: the log is missing or not LoadGen's format.
    """
    path = log_dir / "mlperf_log_accuracy.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return {int(x["qsl_idx"]): int(np.frombuffer(bytes.fromhex(x["data"]), np.int64)[0]) for x in entries}
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise UsageError(f"{path} is not a LoadGen accuracy log ({type(exc).__name__})") from None
