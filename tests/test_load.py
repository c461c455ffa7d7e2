"""`mnistbench load`: the dynamic batcher under known arrival patterns, LoadGen's VALID/INVALID on
fake systems under test, every scenario end to end on a smoke-trained lenet5, LoadGen's accuracy
mode against onnxruntime, `compare` of load CSVs and its gate, and the load CSV's validation.

Durations are kept short (LoadGen minimum 0.3 s, a few hundred queries at most) for a shared
2-core host. Where a test asks for more than 64 queries it is LoadGen's early stopping that needs them:
a p99 test is not VALID under ~460 (Server) or 662 (MultiStream) queries whatever the latency.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import threading
import time
from collections import namedtuple
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from mnistbench.bench.load import compare as lc
from mnistbench.bench.load.config import LoadRequest
from mnistbench.bench.load.loadgen import Limits, loadgen, read_result, respond_with
from mnistbench.bench.load.rows import COLUMNS, SCHEMA, LoadRecord, config_id, is_load_csv, read_load_csv, read_timings
from mnistbench.bench.load.scenarios import Scenario, run_point
from mnistbench.bench.load.sut import BatchingSUT
from mnistbench.models.errors import UsageError

Sample = namedtuple("Sample", "id index")
MS = 1e6  # ns per ms


# ---------------------------------------------------------------- the dynamic batcher (fake sessions)

class FakeSession:
    """Records the batch sizes it is called with; sleeps ``sleep_s`` a call; answers its input
    (so the predicted class of sample index i is i % 10 with :func:`onehots`)."""

    def __init__(self, sleep_s: float = 0.0, fail: bool = False) -> None:
        self.sleep_s, self.fail, self.sizes = sleep_s, fail, []

    def run(self, x):
        self.sizes.append(len(x))
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.fail:
            raise RuntimeError("boom: the runtime failed\nsecond line")
        return x


def onehots(n: int = 100) -> np.ndarray:
    return np.eye(10, dtype=np.float32)[np.arange(n) % 10]


class Recorder:
    """A ``respond`` that keeps every (id, prediction) and says when ``n`` samples are answered."""

    def __init__(self) -> None:
        self.answers: dict[int, int] = {}
        self.calls: list[list[int]] = []
        self._cv = threading.Condition()

    def __call__(self, ids, pred) -> None:
        with self._cv:
            self.calls.append(list(ids))
            for i, p in zip(ids, pred):
                assert i not in self.answers, f"sample {i} answered twice"
                self.answers[i] = int(p)
            self._cv.notify_all()

    def wait(self, n: int, timeout: float = 10.0) -> None:
        with self._cv:
            assert self._cv.wait_for(lambda: len(self.answers) >= n, timeout), (len(self.answers), n)


def samples(ids, index_of=lambda i: i):
    return [Sample(i, index_of(i)) for i in ids]


def test_delay_zero_takes_what_is_queued_in_batches_of_at_most_max_batch():
    s, rec = FakeSession(0.002), Recorder()
    sut = BatchingSUT([s], onehots(), rec, max_batch=4, max_queue_delay_ms=0)
    try:
        sut.issue(samples(range(100, 110), lambda i: i - 100 + 3))  # ids 100..109, sample indices 3..12
        rec.wait(10)
    finally:
        sut.close()
    assert s.sizes == [4, 4, 2]
    assert rec.calls == [[100, 101, 102, 103], [104, 105, 106, 107], [108, 109]]  # the oldest first
    assert rec.answers == {100 + k: (k + 3) % 10 for k in range(10)}  # each id gets its own sample's class
    t = sut.timings()
    assert t.dtype == np.int64 and t.shape == (10, 4)
    assert list(t[:, 3]) == [4] * 8 + [2] * 2
    assert len(set(t[:, 0])) == 1  # one issue call: one issue time
    queue, compute = t[:, 1] - t[:, 0], t[:, 2] - t[:, 1]
    assert (queue >= 0).all() and (compute >= 2 * MS).all() and (compute < 40 * MS).all()
    # the batches ran one after another on the one worker: the third waited for two 2 ms calls
    assert queue[8] >= queue[0] + 4 * MS


def test_a_waiting_batch_fills_when_more_samples_arrive_within_the_delay():
    s, rec = FakeSession(0.001), Recorder()
    sut = BatchingSUT([s], onehots(), rec, max_batch=8, max_queue_delay_ms=50)
    try:
        sut.issue(samples(range(3)))
        time.sleep(0.010)
        sut.issue(samples(range(3, 8)))
        rec.wait(8)
    finally:
        sut.close()
    assert s.sizes == [8]
    t = sut.timings()
    queue_ms = (t[:, 1] - t[:, 0]) / MS
    assert (t[:, 3] == 8).all()
    assert (queue_ms[:3] >= 9.5).all() and (queue_ms[:3] < 50).all()  # waited for the batch, not the delay
    assert (queue_ms[3:] < queue_ms[0] - 5).all()  # the late five hardly waited


def test_a_partial_batch_leaves_when_the_oldest_sample_has_waited_the_delay():
    s, rec = FakeSession(0.001), Recorder()
    sut = BatchingSUT([s], onehots(), rec, max_batch=8, max_queue_delay_ms=20)
    try:
        t0 = time.perf_counter()
        sut.issue(samples(range(3)))
        rec.wait(3)
        waited = time.perf_counter() - t0
    finally:
        sut.close()
    assert s.sizes == [3] and waited >= 0.020
    t = sut.timings()
    queue_ms = (t[:, 1] - t[:, 0]) / MS
    assert (queue_ms >= 20).all() and (queue_ms < 20 + 40).all(), queue_ms
    assert (t[:, 3] == 3).all()


def test_one_sample_with_delay_zero_runs_at_once():
    s, rec = FakeSession(0.005), Recorder()
    sut = BatchingSUT([s], onehots(), rec, max_batch=16, max_queue_delay_ms=0)
    try:
        sut.issue(samples([7]))
        rec.wait(1)
    finally:
        sut.close()
    assert s.sizes == [1] and rec.answers == {7: 7}
    (issue, start, end, size), = sut.timings()
    assert size == 1
    assert 0 <= start - issue < 15 * MS  # no waiting for a batch (a 20 ms delay would show here)
    assert 5 * MS <= end - start < 40 * MS  # the call's own 5 ms


def test_close_answers_what_is_still_waiting_for_its_batch():
    s, rec = FakeSession(), Recorder()
    sut = BatchingSUT([s], onehots(), rec, max_batch=8, max_queue_delay_ms=10_000)
    sut.issue(samples(range(3)))
    t0 = time.perf_counter()
    sut.close()
    assert time.perf_counter() - t0 < 2 and s.sizes == [3] and sorted(rec.answers) == [0, 1, 2]


def test_a_failing_session_still_answers_every_sample_and_keeps_the_first_line_of_its_error():
    s, rec = FakeSession(fail=True), Recorder()
    sut = BatchingSUT([s], onehots(), rec, max_batch=4, max_queue_delay_ms=0)
    try:
        sut.issue(samples(range(10)))
        rec.wait(10)
    finally:
        sut.close()
    assert rec.answers == {i: -1 for i in range(10)}
    assert sut.error == "boom: the runtime failed"
    assert len(sut.timings()) == 10
    sut.reset()
    assert sut.error is None and sut.timings().shape == (0, 4)


def test_two_workers_share_the_queue_and_every_sample_is_answered_once():
    a, b, rec = FakeSession(0.005), FakeSession(0.005), Recorder()
    sut = BatchingSUT([a, b], onehots(), rec, max_batch=2, max_queue_delay_ms=0)
    try:
        for i in range(0, 20, 2):
            sut.issue(samples([i, i + 1]))
        rec.wait(20)
    finally:
        sut.close()
    assert sorted(rec.answers) == list(range(20)) and sum(a.sizes) + sum(b.sizes) == 20
    assert a.sizes and b.sizes  # both ran
    assert all(n <= 2 for n in a.sizes + b.sizes)


def test_a_fault_outside_the_runtime_call_answers_everything_and_stays_through_reset():
    """A worker that fails outside ``session.run`` (here a sample index past the library) must not
    leave LoadGen waiting (a run once hung 44 min on a dead worker thread): its batch and every later
    sample are answered at once, and the fault survives :meth:`reset`, so a later test on the same
    workers cannot read as valid."""
    s, rec = FakeSession(), Recorder()
    sut = BatchingSUT([s], onehots(10), rec, max_batch=4, max_queue_delay_ms=0)
    try:
        sut.issue(samples([0, 1, 2], lambda i: 50 + i))  # indices 50..52 of a 10-image library
        rec.wait(3)
        assert sut.fault.startswith("worker fault:") and "out of bounds" in sut.fault
        sut.reset()
        assert sut.error == sut.fault
        t0 = time.perf_counter()
        sut.issue(samples([3, 4]))  # valid indices, but the system is aborted: answered unmeasured
        rec.wait(5)
        assert time.perf_counter() - t0 < 1.0
    finally:
        sut.close()
    assert rec.answers == {i: -1 for i in range(5)} and s.sizes == []


def test_a_respond_that_raises_aborts_instead_of_killing_the_worker_silently():
    s, calls = FakeSession(), []

    def respond(ids, pred):
        calls.append(list(ids))
        if len(calls) == 1:
            raise RuntimeError("respond failed")

    sut = BatchingSUT([s], onehots(), respond, max_batch=2, max_queue_delay_ms=0)
    try:
        sut.issue(samples([0, 1]))
        deadline = time.perf_counter() + 5
        while sut.fault is None and time.perf_counter() < deadline:
            time.sleep(0.01)
        sut.issue(samples([2, 3]))
    finally:
        sut.close()
    assert sut.fault == "worker fault: respond failed"
    assert calls == [[0, 1], [2, 3]]  # answered once each: the failed batch is not answered twice


@pytest.mark.parametrize("max_batch, delay", [(0, 0.0), (1, -1.0), (1, math.nan)])
def test_batcher_refuses_bad_settings(max_batch, delay):
    with pytest.raises(ValueError):
        BatchingSUT([FakeSession()], onehots(), Recorder(), max_batch, delay)
    with pytest.raises(ValueError):
        BatchingSUT([], onehots(), Recorder())


# ---------------------------------------------------------------- LoadGen's verdict on fake systems

@pytest.fixture(scope="module")
def lg():
    """LoadGen (the [load] extra's mlcommons-loadgen); the tests that drive it skip without it."""
    pytest.importorskip("mlperf_loadgen", reason="mnistbench load needs mlcommons-loadgen (pip install -e '.[load]')")
    return loadgen()


def _point(lg, tmp_path, session, sc, qps, max_batch=1):
    sut = BatchingSUT([session], onehots(), respond_with(lg), max_batch, 0)
    try:
        return run_point(lg, sut, 100, sc, tmp_path / "logs", qps)
    finally:
        sut.close()


def test_a_slow_system_is_invalid_at_a_rate_with_a_latency_reason(lg, tmp_path):
    sc = Scenario("server", Limits(0.3, 64), bound_ms=5.0, percentile=99.0)
    p = _point(lg, tmp_path, FakeSession(0.010), sc, 100.0)
    r = p.result
    assert not r.valid and "latency constraint not met" in r.reasons
    assert r.latency_ms[99.0] >= 10.0  # every query took the session's 10 ms at least: ms, not ns or s
    assert r.latency_ms[50.0] <= r.latency_ms[90.0] <= r.latency_ms[99.0] <= r.max_ms + 1e-9
    assert r.query_count >= 64 and len(p.timings) == r.query_count  # Server: one sample a query
    assert 10.0 <= np.median(p.compute_ms()) < 40.0
    assert 50 < r.scheduled_per_s < 200  # Poisson at 100 QPS over ~0.6 s
    summary = (tmp_path / "logs" / "mlperf_log_summary.txt").read_text()
    assert "INVALID" in summary and "Server" in summary


def test_a_fast_system_at_a_low_rate_with_a_generous_bound_is_valid(lg, tmp_path):
    sc = Scenario("server", Limits(0.3, 64), bound_ms=50.0, percentile=90.0)
    p = _point(lg, tmp_path, FakeSession(), sc, 200.0)
    r = p.result
    assert r.valid and r.reasons == "" and p.error == ""
    assert r.latency_ms[90.0] < 50.0 and r.query_count == len(p.timings) >= 64
    assert "Run successful" in r.early_stopping


def test_a_runtime_error_makes_the_point_carry_it(lg, tmp_path):
    sc = Scenario("single-stream", Limits(0.2, 32), expected_ms=1.0)
    p = _point(lg, tmp_path, FakeSession(fail=True), sc, math.nan)
    assert p.error.startswith("boom") and len(p.timings) == p.result.query_count >= 32


def test_a_worker_fault_ends_the_loadgen_test_invalid_instead_of_hanging(lg, tmp_path):
    sc = Scenario("single-stream", Limits(0.2, 32), expected_ms=1.0)
    sut = BatchingSUT([FakeSession()], onehots(3), respond_with(lg), 1, 0)  # LoadGen's indices go past 3
    t0 = time.perf_counter()
    try:
        p = run_point(lg, sut, 100, sc, tmp_path / "logs", math.nan)
    finally:
        sut.close()
    assert time.perf_counter() - t0 < 30
    assert p.error.startswith("worker fault:")


@pytest.mark.parametrize("scenario", ["single-stream", "multi-stream"])
def test_an_early_stopping_estimate_loadgen_did_not_make_is_missing_not_zero(lg, tmp_path, scenario):
    """Too few queries for early stopping: LoadGen logs ``early_stopping_latency_ss``/``_ms`` as 0
    (no estimate). A row's missing value is NaN, never a zero (rows.py): 0 ms would read as an
    estimate of the percentile."""
    sc = Scenario(scenario, Limits(0.05, 1), expected_ms=5.0)
    p = _point(lg, tmp_path, FakeSession(0.005), sc, math.nan, max_batch=8)
    assert not p.result.valid and "early stopping not satisfied" in p.result.reasons
    assert "Need to process at least" in p.result.early_stopping
    assert math.isnan(p.result.early_stopping_ms), p.result.early_stopping_ms


# ---------------------------------------------------------------- the peak search (fake systems)

def _oracle(peak: float, capacity: float, over_ms: float = 30.0, stall_at: tuple = ()):
    """A system VALID at rates up to ``peak`` (p99 5 ms), INVALID above it (p99 ``over_ms``), answering
    at the rate asked up to ``capacity`` samples/s; the first test at each rate in ``stall_at`` is
    INVALID (a stall). Returns (test, calls)."""
    from mnistbench.bench.load.scenarios import Trial

    calls: list[float] = []
    stalls = set(stall_at)

    def test(q: float, step: int) -> Trial:
        assert step == len(calls)
        calls.append(q)
        if q in stalls:
            stalls.discard(q)
            return Trial(q, False, 60.0, q)
        ok = q <= peak
        return Trial(q, ok, 5.0 if ok else over_ms, min(q, capacity))
    return test, calls


def test_the_search_brackets_the_peak_within_its_tolerance_and_tests_each_invalid_rate_twice():
    from mnistbench.bench.load.scenarios import PEAK_STEPS, PEAK_TOLERANCE, search_peak

    test, calls = _oracle(peak=437.0, capacity=1000.0)
    tried = search_peak(test, capacity_qps=1000.0, bound_ms=20.0)
    assert tried[0].qps == 800.0  # 0.8x the system's rate on a backlog
    found = max(t.qps for t in tried if t.valid)
    assert 437.0 / (1 + PEAK_TOLERANCE) <= found <= 437.0
    invalid = [t.qps for t in tried if not t.valid]
    assert invalid and all(invalid.count(q) == 2 for q in invalid)  # each confirmed by a second test
    assert all([t.qps for t in tried].count(q) == 1 for q in {t.qps for t in tried if t.valid})
    assert len(tried) <= PEAK_STEPS and [t.qps for t in tried] == calls


def test_one_stall_below_the_peak_does_not_pull_the_search_down():
    from mnistbench.bench.load.scenarios import search_peak

    quiet = search_peak(_oracle(437.0, 1000.0)[0], 1000.0, 20.0)
    stalled = search_peak(_oracle(437.0, 1000.0, stall_at=(400.0,))[0], 1000.0, 20.0)
    best = max(t.qps for t in quiet if t.valid)
    assert max(t.qps for t in stalled if t.valid) == best
    assert [(t.qps, t.valid) for t in stalled[2:4]] == [(400.0, False), (400.0, True)]


def test_a_rate_the_system_cannot_keep_up_with_steps_to_what_it_answered_and_is_not_retested():
    from mnistbench.bench.load.scenarios import search_peak

    test, calls = _oracle(peak=700.0, capacity=1000.0, over_ms=500.0)
    tried = search_peak(test, capacity_qps=2000.0, bound_ms=20.0)  # a backlog estimate twice too high
    assert calls[:2] == [1600.0, pytest.approx(900.0)]  # 0.9x the 1,000/s it answered at, once
    assert 700.0 / 1.02 <= max(t.qps for t in tried if t.valid) <= 700.0


def test_a_bound_the_system_never_meets_ends_the_search_with_no_peak_at_the_floor():
    from mnistbench.bench.load.scenarios import FLOOR_DIVISOR, PEAK_STEPS, search_peak

    far = search_peak(_oracle(peak=0.0, capacity=1e9, over_ms=500.0)[0], 1000.0, 20.0)  # far over: 4x, once each
    assert not any(t.valid for t in far)
    assert [t.qps for t in far] == [800.0, 200.0, 50.0]  # 12.5 < 1000/64: not tried
    near = search_peak(_oracle(peak=0.0, capacity=1e9, over_ms=30.0)[0], 1000.0, 20.0)  # near: 2x, twice each
    assert not any(t.valid for t in near) and len(near) <= PEAK_STEPS
    assert [t.qps for t in near][:4] == [800.0, 800.0, 400.0, 400.0]
    assert min(t.qps for t in near) >= 1000.0 / FLOOR_DIVISOR


def test_read_result_reads_loadgen_lines_and_units(tmp_path):
    lines = [{"key": "result_validity", "value": "INVALID"}, {"key": "result_min_duration_met", "value": True},
             {"key": "result_perf_constraints_met", "value": False},
             {"key": "result_invalid_reason", "value": "Reduce target QPS to improve latency. "},
             {"key": "result_query_count", "value": 500},
             {"key": "result_completed_samples_per_sec", "value": 812.5},
             {"key": "result_scheduled_samples_per_sec", "value": 1000.25},
             {"key": "result_50.00_percentile_latency_ns", "value": 1_500_000},
             {"key": "result_99.00_percentile_latency_ns", "value": 12_250_000},
             {"key": "result_mean_latency_ns", "value": 2_000_000},
             {"key": "result_max_latency_ns", "value": 30_000_000},
             {"key": "early_stopping_result", "value": " * Early stopping 99.0th percentile estimate: 13000000"}]
    (tmp_path / "mlperf_log_detail.txt").write_text(
        "\n".join([":::MLLOG {broken", *(":::MLLOG " + json.dumps(e) for e in lines)]) + "\n")
    r = read_result(tmp_path, "server")
    assert not r.valid and r.reasons == "latency constraint not met; Reduce target QPS to improve latency."
    assert r.latency_ms == {50.0: 1.5, 99.0: 12.25} and r.mean_ms == 2.0 and r.max_ms == 30.0
    assert (r.query_count, r.samples_per_s, r.scheduled_per_s, r.early_stopping_ms) == (500, 812.5, 1000.25, 13.0)
    # multi-stream logs per-sample and per-query percentiles; the scenario's figure is per query (8 samples)
    ms = [{"key": "result_validity", "value": "VALID"},
          {"key": "result_99.00_percentile_per_query_latency_ns", "value": 4_000_000},
          {"key": "result_99.00_percentile_latency_ns", "value": 3_000_000},
          {"key": "result_50.00_percentile_latency_ns", "value": 1_000_000},
          {"key": "result_50.00_percentile_per_query_latency_ns", "value": 2_000_000}]
    (tmp_path / "mlperf_log_detail.txt").write_text("".join(":::MLLOG " + json.dumps(e) + "\n" for e in ms))
    assert read_result(tmp_path, "multi-stream").latency_ms == {99.0: 4.0, 50.0: 2.0}
    (tmp_path / "mlperf_log_detail.txt").write_text(":::MLLOG " + json.dumps({"key": "x", "value": 1}) + "\n")
    with pytest.raises(UsageError, match="recorded no result"):
        read_result(tmp_path, "server")
    with pytest.raises(UsageError, match="no detail log"):
        read_result(tmp_path / "nowhere", "server")


def test_timings_file_keeps_each_sample_to_the_microsecond(tmp_path):
    from mnistbench.bench.load.rows import save_timings

    base = 1_733_266_587_329_123
    t = np.array([[base, base + 1_999, base + 250_500, 1],
                  [base + 10, base + 3_000_000_001, base + 3_000_900_999, 8]], np.int64)
    path = save_timings(tmp_path / "q", "abc-r0", t)
    assert path == tmp_path / "q" / "abc-r0.npz"
    back = read_timings(path)
    want = t.copy()
    want[:, :3] = (t[:, :3] - base) // 1000 * 1000 + base
    assert back.dtype == np.int64 and (back == want).all()
    assert (back[:, 2] - back[:, 1] == [249_000, 900_000]).all()  # compute in ns, to the microsecond
    empty = read_timings(save_timings(tmp_path / "q", "none-r0", np.empty((0, 4), np.int64)))
    assert empty.shape == (0, 4)
    with pytest.raises(ValueError):
        save_timings(tmp_path / "q", "bad", np.zeros((3, 3), np.int64))
    with pytest.raises(ValueError):
        save_timings(tmp_path / "q", "long", np.array([[0, 2**32 * 1000, 2**32 * 1000, 1]], np.int64))
    (tmp_path / "q" / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UsageError, match="not a load timings file"):
        read_timings(tmp_path / "q" / "junk.npz")


# ---------------------------------------------------------------- every scenario on a real lenet5

@pytest.fixture(scope="module")
def lenet5_arts(mnist_small, tmp_path_factory):
    """A smoke-trained, exported lenet5 (the fixture of test_crash_safety, one model)."""
    from mnistbench.bench.measure.pipeline import Artifacts, export_model, train_model
    from mnistbench.models.registry import get_spec

    arts = Artifacts(tmp_path_factory.mktemp("load-arts"), "mnist", "smoke", 0)
    train_model(get_spec("lenet5"), mnist_small, arts, "cpu")
    export_model(get_spec("lenet5"), mnist_small, arts)
    return arts


@pytest.fixture()
def load_req(lg, lenet5_arts, real_data_root, tmp_path):
    def make(**kw):
        base = dict(names=("lenet5",), profile="smoke", artifacts_dir=lenet5_arts.root, data_dir=real_data_root,
                    null=False, min_duration_s=0.3, min_query_count=64, out_path=tmp_path / "load.csv",
                    command="mnistbench load lenet5 (test)")
        return LoadRequest(**{**base, **kw})
    return make


def _detail(log_dir: Path) -> dict:
    out = {}
    for line in (log_dir / "mlperf_log_detail.txt").read_text().splitlines():
        if line.startswith(":::MLLOG "):
            e = json.loads(line[9:])
            out.setdefault(e["key"], e["value"])
    return out


def _check_files(out, rec: LoadRecord) -> np.ndarray:
    """The files beside the CSV for ``rec``; returns its per-sample timings."""
    csv_path = out.csv_path
    assert is_load_csv(csv_path) and read_load_csv(csv_path) == out.rows
    system = json.loads(out.system_path.read_text())
    assert system["command"] == "mnistbench load lenet5 (test)"
    assert system["loadgen_version"] == rec.loadgen_version and system["loadgen_version"][0].isdigit()
    assert system["results_csv"] == csv_path.name
    logs = csv_path.with_name(csv_path.stem + ".loadgen") / rec.cell_id
    assert (logs / "mlperf_log_summary.txt").is_file() and (logs / "mlperf_log_detail.txt").is_file()
    assert not [p for p in logs.parent.iterdir() if p.name.startswith(".")]  # no partial folder left
    queries = csv_path.with_name(csv_path.stem + ".queries")
    assert sorted(p.name for p in queries.iterdir()) == sorted(f"{r.cell_id}.npz" for r in out.rows)
    t = read_timings(queries / f"{rec.cell_id}.npz")
    assert t.dtype == np.int64 and t.shape[1] == 4
    assert rec.cell_id == f"{rec.config_id}-r{rec.repeat}" and rec.schema_version == SCHEMA
    ident = {k: getattr(rec, k) for k in ("model", "variant", "task", "dataset", "runtime", "provider", "threads",
                                           "workers", "max_batch", "max_queue_delay_ms", "scenario", "kind",
                                           "target_qps", "latency_bound_ms", "latency_percentile", "min_duration_s",
                                           "min_query_count", "onnx_sha256", "checkpoint_profile", "checkpoint_seed")}
    assert rec.config_id == config_id(ident)
    return t


def _check_split(rec: LoadRecord, t: np.ndarray) -> None:
    """The row's queue/compute/batch figures are those of its timings file (kept to the microsecond), in ms."""
    queue, compute = (t[:, 1] - t[:, 0]) / MS, (t[:, 2] - t[:, 1]) / MS
    assert (queue >= 0).all() and (compute > 0).all()
    us = 0.0021  # two microseconds of rounding, in ms
    assert rec.queue_p50_ms == pytest.approx(np.percentile(queue, 50), abs=us)
    assert rec.queue_p99_ms == pytest.approx(np.percentile(queue, 99), abs=us)
    assert rec.compute_p50_ms == pytest.approx(np.percentile(compute, 50), abs=us)
    assert rec.compute_p99_ms == pytest.approx(np.percentile(compute, 99), abs=us)
    assert rec.batch_mean == pytest.approx(t[:, 3].mean())


@pytest.mark.slow
@pytest.mark.integration
def test_single_stream_on_lenet5(load_req):
    from mnistbench.bench.load.runner import execute

    out = execute(load_req(scenario="single-stream"), progress=lambda s: None, note=lambda s: None)
    (rec,) = out.rows
    assert (rec.model, rec.scenario, rec.kind, rec.status, rec.valid) == ("lenet5", "single-stream", "test", "ok",
                                                                          "VALID"), rec.invalid_reason
    t = _check_files(out, rec)
    assert len(t) == rec.query_count >= 64 and (t[:, 3] == 1).all()
    _check_split(rec, t)
    # LoadGen times from the scheduled start: never below the SUT's own issue-to-answer time, and in ms
    own_p50 = np.percentile((t[:, 2] - t[:, 0]) / MS, 50)
    assert own_p50 <= rec.latency_p50_ms < own_p50 + 5
    assert rec.latency_p50_ms <= rec.latency_p90_ms <= rec.latency_p99_ms <= rec.latency_max_ms
    assert rec.early_stopping_ms == pytest.approx(_detail(out.csv_path.with_name("load.loadgen") / rec.cell_id)
                                                  ["early_stopping_latency_ss"] / MS)
    # single-stream: one query at a time, so samples/s is about 1 / mean latency
    assert rec.samples_per_s == pytest.approx(1000 / rec.latency_mean_ms, rel=0.5)
    assert math.isnan(rec.target_qps) and math.isnan(rec.latency_bound_ms)


@pytest.mark.slow
@pytest.mark.integration
def test_multi_stream_on_lenet5_rides_in_batches_of_eight(load_req):
    from mnistbench.bench.load.runner import execute

    out = execute(load_req(scenario="multi-stream", max_batch=8, min_query_count=700), progress=lambda s: None,
                  note=lambda s: None)
    (rec,) = out.rows
    assert rec.valid == "VALID", rec.invalid_reason
    t = _check_files(out, rec)
    assert rec.batch_mean == 8.0 and (t[:, 3] == 8).all()
    assert len(t) == 8 * rec.query_count and rec.query_count >= 700
    _check_split(rec, t)
    assert rec.early_stopping_ms > 0 and rec.latency_p99_ms > 0
    wall_s = (t[:, 2].max() - t[:, 0].min()) / 1e9
    assert rec.samples_per_s == pytest.approx(len(t) / wall_s, rel=1e-3)


@pytest.mark.slow
@pytest.mark.integration
def test_verify_checks_a_load_csv_against_its_timings_and_logs_and_repair_mends_only_leftovers(load_req):
    """``verify`` of a load CSV (bench/load/verify.py): a fresh run is ok; each kind of damage is named;
    ``--repair`` removes only what no row names (and a torn tail), under the writer lock; ``--resume``
    measures only the rows that are not there."""
    from mnistbench.bench import api
    from mnistbench.bench.load.runner import execute
    from mnistbench.bench.measure.records import writer_lock

    out = execute(load_req(scenario="multi-stream", max_batch=8, min_query_count=100, repeat=2),
                  progress=lambda s: None, note=lambda s: None)
    p = out.csv_path
    (rep,) = api.verify(p)
    assert rep.problems == [] and rep.rows == 2 and rep.notes == []
    res = _cli("verify", p)
    assert res.exit_code == 0 and f"{p}: ok (2 rows)" in res.stdout, res.output
    queries, logs = p.with_name("load.queries"), p.with_name("load.loadgen")
    first, second = out.rows
    # a row whose figures were edited no longer matches its timings
    text = p.read_text()
    bad = text.replace(repr(first.batch_mean), repr(first.batch_mean + 0.5), 1)
    assert bad != text
    p.write_text(bad)
    (rep,) = api.verify(p)
    assert any(first.cell_id in x and "mean batch" in x for x in rep.problems), rep.problems
    # an identity edited by hand; a row appended twice
    p.write_text(text.replace(f",{first.threads},{first.workers},", f",{first.threads + 1},{first.workers},", 1))
    assert any("config_id does not match" in x for x in api.verify(p)[0].problems)
    p.write_text(text + text.splitlines(keepends=True)[1])
    assert any("2 rows of the same cell" in x for x in api.verify(p)[0].problems)
    # leftovers: an orphan timings file, a temporary file, a partial log folder; a missing timings file
    p.write_text(text)
    (queries / "0123456789abcdef-r9.npz").write_bytes((queries / f"{first.cell_id}.npz").read_bytes())
    (queries / ".x.npz.tmp").write_bytes(b"")
    (logs / f".{first.cell_id}.partial").mkdir()
    moved = (queries / f"{second.cell_id}.npz").read_bytes()
    (queries / f"{second.cell_id}.npz").unlink()
    (rep,) = api.verify(p)
    assert len(rep.problems) == 4, rep.problems
    res = _cli("verify", p)
    assert res.exit_code == 1 and "1 measured rows have no timings file" in res.stderr
    with writer_lock(p):  # a writer holds the file: --repair refuses, touching nothing
        res = _cli("verify", p, "--repair")
        assert res.exit_code == 2 and "a run is writing it" in res.stderr
        assert (queries / ".x.npz.tmp").exists()
    (rep,) = api.verify(p, repair=True)
    assert sorted(rep.repaired) == sorted(["removed 1 timings files without a row in load.queries/",
                                           "removed 1 temporary files in load.queries/",
                                           "removed 1 partial LoadGen log folders in load.loadgen/ (an interrupted test)"])
    assert rep.problems == ["1 measured rows have no timings file (e.g. %s)" % second.cell_id]  # never invented
    (queries / f"{second.cell_id}.npz").write_bytes(moved)
    # a torn tail: reported, then dropped by --repair; --resume measures the dropped row again
    p.write_bytes(p.read_bytes()[:-7])
    (rep,) = api.verify(p)
    assert rep.problems == ["the last line is a partial row (%d bytes without a newline)" % (len(text.splitlines()[-1]) - 6)]
    (rep,) = api.verify(p, repair=True)
    assert rep.repaired[0] == "dropped the partial last line" and rep.rows == 1
    assert any("timings files without a row" in x for x in rep.repaired)  # the dropped row's timings
    kept = read_load_csv(p)
    again = execute(load_req(scenario="multi-stream", max_batch=8, min_query_count=100, repeat=2, resume=True),
                    progress=lambda s: None, note=lambda s: None)
    rows = read_load_csv(p)
    assert len(rows) == 2 and rows[0] == kept[0] and {r.cell_id for r in rows} == {first.cell_id, second.cell_id}
    assert len(again.rows) == 2
    (rep,) = api.verify(p)
    assert rep.problems == [], rep.problems
    again = execute(load_req(scenario="multi-stream", max_batch=8, min_query_count=100, repeat=2, resume=True),
                    progress=lambda s: None, note=lambda s: None)
    assert read_load_csv(p) == rows  # nothing left to measure: nothing appended


@pytest.mark.slow
@pytest.mark.integration
def test_server_at_a_target_rate_on_lenet5(load_req):
    from mnistbench.bench.load.runner import execute

    # 300 QPS held at p90 <= 50 ms: VALID even on a 2-CPU host busy with other work (at 1000 QPS and p99 a
    # niced run beside two benchmarks was not)
    out = execute(load_req(scenario="server", target_qps=300.0, latency_bound_ms=50.0, latency_percentile=90.0,
                           min_query_count=500), progress=lambda s: None, note=lambda s: None)
    (rec,) = out.rows
    assert rec.valid == "VALID", rec.invalid_reason
    assert (rec.target_qps, rec.latency_bound_ms, rec.latency_percentile) == (300.0, 50.0, 90.0)
    t = _check_files(out, rec)
    assert len(t) == rec.query_count >= 500
    _check_split(rec, t)
    assert 210 < rec.scheduled_per_s < 390  # Poisson at 300 QPS
    assert rec.latency_p90_ms <= 50.0


@pytest.mark.slow
@pytest.mark.integration
def test_offline_on_lenet5_and_loadgen_accuracy_equals_onnxruntime_top1(load_req, mnist, lenet5_arts):
    import onnxruntime as ort
    from mnistbench.bench.load.runner import execute
    from mnistbench.bench.measure.pipeline import eval_inputs
    from mnistbench.models.registry import get_spec

    out = execute(load_req(scenario="offline", max_batch=32, accuracy=True), progress=lambda s: None,
                  note=lambda s: None)
    test, acc = out.rows
    assert (test.kind, acc.kind) == ("test", "accuracy")
    assert test.valid == "VALID" and test.query_count == 1, test.invalid_reason
    t = _check_files(out, test)
    d = _detail(out.csv_path.with_name("load.loadgen") / test.cell_id)
    assert len(t) == d["generated_samples_per_query"]  # every sample of Offline's one query
    assert (t[:, 3] <= 32).all() and test.batch_mean > 16
    _check_split(test, t)
    assert test.samples_per_s == pytest.approx(d["result_samples_per_second"])
    acc_logs = out.csv_path.with_name("load.loadgen") / acc.cell_id
    assert (acc_logs / "mlperf_log_detail.txt").is_file()

    # the same file through onnxruntime on the same preprocessed test set
    x, y = eval_inputs(get_spec("lenet5"), mnist)
    sess = ort.InferenceSession(str(lenet5_arts.onnx("lenet5")), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    pred = np.concatenate([sess.run(None, {name: x[i:i + 1000]})[0].argmax(1) for i in range(0, len(x), 1000)])
    assert acc.accuracy_top1 == float(np.mean(pred == y))
    assert 0.5 < acc.accuracy_top1 < 1.0  # a smoke-trained lenet5: learnt, not perfect


@pytest.mark.slow
@pytest.mark.integration
def test_find_peak_on_lenet5(load_req):
    from mnistbench.bench.load.runner import execute

    # p90 with a 20 ms bound: LoadGen's early stopping at p99 needs about 460 queries with none over the bound,
    # which the short tests here reach only at rates a busy 2-CPU host may not serve
    out = execute(load_req(scenario="server", find_peak=True, latency_bound_ms=20.0, latency_percentile=90.0),
                  progress=lambda s: None, note=lambda s: None)
    (rec,) = out.rows
    assert rec.kind == "peak" and rec.valid == "VALID" and math.isfinite(rec.peak_qps) and rec.peak_qps >= 1
    t = _check_files(out, rec)
    with open(out.csv_path.with_name("load.loadgen") / rec.cell_id / "tries.csv", newline="") as fh:
        tries = list(csv.DictReader(fh))
    assert len(tries) == rec.peak_tests and 2 <= rec.peak_tests <= 16
    valid = [float(r["target_qps"]) for r in tries if r["valid"] == "VALID"]
    assert rec.peak_qps == pytest.approx(max(valid), abs=1e-3)
    assert len(t) == rec.query_count > 0  # the timings of the VALID test at the peak
    assert rec.latency_p90_ms <= 20.0 and rec.latency_percentile == 90.0
    d = _detail(out.csv_path.with_name("load.loadgen") / rec.cell_id)
    assert d["result_validity"] == "VALID"  # the logs kept are those of the test at the peak


@pytest.mark.slow
@pytest.mark.integration
def test_interleaved_peak_searches_take_turns_a_test_at_a_time_and_compare_pairs_them(load_req, lenet5_arts,
                                                                                     tmp_path):
    import shutil

    from mnistbench.bench.load.runner import execute

    files = [tmp_path / "a.onnx", tmp_path / "b.onnx"]
    for f in files:
        shutil.copyfile(lenet5_arts.onnx("lenet5"), f)
    lines: list[str] = []
    out = execute(load_req(names=(), onnx=tuple(files), profile="foreign", scenario="server", find_peak=True,
                           latency_bound_ms=20.0, latency_percentile=90.0, interleave=True, repeat=2),
                  progress=lines.append, note=lambda s: None)
    assert sorted((r.model, r.repeat, r.kind) for r in out.rows) == [("a", 0, "peak"), ("a", 1, "peak"),
                                                                    ("b", 0, "peak"), ("b", 1, "peak")]
    assert all(r.valid == "VALID" and r.peak_qps >= 1 for r in out.rows), [r.invalid_reason for r in out.rows]
    for rep in (0, 1):
        # this repeat's test lines, in order: the two searches alternate while both run
        start = next(i for i, x in enumerate(lines) if x.startswith(f"repeat {rep + 1}/2"))
        tests = [x.split(":")[0] for x in lines[start:] if " QPS: " in x and x.split(":")[0] in ("a", "b")]
        rows = {r.model: r for r in out.rows if r.repeat == rep}
        n = min(rows["a"].peak_tests, rows["b"].peak_tests)
        first = tests[:2 * n]
        assert first[0::2] == [first[0]] * n and first[1::2] == [first[1]] * n and first[0] != first[1], first
        assert sum(rows[m].peak_tests for m in "ab") == len(tests[:rows["a"].peak_tests + rows["b"].peak_tests])
    for r in out.rows:
        with open(out.csv_path.with_name("load.loadgen") / r.cell_id / "tries.csv", newline="") as fh:
            assert len(list(csv.DictReader(fh))) == r.peak_tests
        assert 0 < r.wall_s and r.peak_rss_mib > 0 <= r.session_rss_mib  # a second copy may reuse freed pages
    changes = lc.compare(f"{out.csv_path}#a", f"{out.csv_path}#b")[0]
    c = next(c for c in changes if c.metric == "peak_qps")
    assert c.paired and c.n_base == c.n_new == 2


@pytest.mark.slow
@pytest.mark.integration
def test_the_load_command_sweeps_rates_with_repeats(lg, lenet5_arts, real_data_root, tmp_path):
    """The command line's options reach the request (LoadRequest is built positionally there)."""
    out_csv = tmp_path / "sweep.csv"
    res = _cli("load", "lenet5", "--profile", "smoke", "--artifacts-dir", lenet5_arts.root, "--data-dir",
               real_data_root, "--no-null", "--scenario", "server", "--qps-range", "1000,500", "--latency-bound-ms",
               "50", "--latency-percentile", "90", "--max-batch", "4", "--max-queue-delay-ms", "0.5", "--repeat", "2",
               "--loadgen-seed", "3", "--min-duration-s", "0.3", "--min-query-count", "64", "--out", out_csv)
    assert res.exit_code == 0, res.output
    rows = read_load_csv(out_csv)
    assert sorted((r.target_qps, r.repeat) for r in rows) == [(500.0, 0), (500.0, 1), (1000.0, 0), (1000.0, 1)]
    assert {(r.scenario, r.kind, r.latency_bound_ms, r.latency_percentile, r.max_batch, r.max_queue_delay_ms,
             r.min_duration_s, r.min_query_count, r.workers, r.threads) for r in rows} == \
        {("server", "test", 50.0, 90.0, 4, 0.5, 0.3, 64, 1, 1)}
    assert len({r.config_id for r in rows}) == 2 and len({r.cell_id for r in rows}) == 4
    assert all(r.valid == "VALID" and 1 <= r.batch_mean <= 4 for r in rows), [r.invalid_reason for r in rows]
    system = json.loads(out_csv.with_suffix(".system.json").read_text())
    assert system["load_request"]["seed"] == 3 and system["load_request"]["qps_points"] == [500.0, 1000.0]
    # the process's own command line, as `run` records it (in-process here: pytest's argv)
    assert system["limits"]["min_duration_s"] == 0.3 and system["command"] == " ".join(sys.argv)
    res = _cli("compare", out_csv, out_csv, "--fail-on", "p99:+10%")  # one file against itself: no change
    assert res.exit_code == 0 and "gate: pass" in res.output and "slower" not in res.output, res.output


# ---------------------------------------------------------------- compare of load CSVs

def make_row(**kw) -> LoadRecord:
    v = {c: "" for c in COLUMNS}
    v.update(schema_version=SCHEMA, repeat=0, timestamp_utc="2026-12-01T00:00:00Z", host="h", machine_id="m",
             model="lenet5", variant="fp32", task="classify", dataset="mnist", runtime="onnxruntime", provider="cpu",
             threads=1, workers=1, max_batch=8, max_queue_delay_ms=1.0, scenario="server", kind="peak",
             target_qps=math.nan, latency_bound_ms=5.0, latency_percentile=99.0, min_duration_s=10.0,
             min_query_count=1024, checkpoint_profile="smoke", checkpoint_seed="0", status="ok", valid="VALID",
             early_stopping_ms=math.nan, query_count=5000, samples_per_s=1000.0, scheduled_per_s=1000.0,
             peak_qps=1000.0, peak_tests=6, latency_p50_ms=1.0, latency_p90_ms=2.0, latency_p99_ms=3.0,
             latency_p999_ms=4.0, latency_mean_ms=1.2, latency_max_ms=5.0, queue_p50_ms=0.1, queue_p99_ms=0.5,
             compute_p50_ms=0.3, compute_p99_ms=0.6, batch_mean=2.0, accuracy_top1=math.nan, peak_rss_mib=100.0,
             session_rss_mib=10.0, wall_s=20.0, loadgen_version="6.0.17", mnistbench_version="0.1.0")
    v.update(kw)
    v["config_id"] = config_id(v)
    v["cell_id"] = f"{v['config_id']}-r{v['repeat']}"
    return LoadRecord(**v)


def write_load_csv(path: Path, recs) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(r.as_row() for r in recs)
    return path


def peaks(path: Path, values, p99=None, model="lenet5") -> list[LoadRecord]:
    p99 = p99 or [3.0] * len(values)
    return [make_row(repeat=i, peak_qps=float(q), latency_p99_ms=float(l), model=model)
            for i, (q, l) in enumerate(zip(values, p99))]


def _cli(*args):
    from mnistbench.bench.cli import app
    from typer.testing import CliRunner

    return CliRunner().invoke(app, [str(a) for a in args])


def _by_metric(changes):
    return {c.metric: c for c in changes}


def test_a_lower_peak_is_slower_and_the_gate_fails(tmp_path):
    base = write_load_csv(tmp_path / "base.csv", peaks(tmp_path, [1000, 1010, 990]))
    new = write_load_csv(tmp_path / "new.csv", peaks(tmp_path, [900, 905, 895]))
    changes, only_b, only_n, source = lc.compare(str(base), str(new))
    assert only_b == only_n == [] and source == "no noise profile"
    c = _by_metric(changes)["peak_qps"]
    assert c.verdict == "slower" and c.n_base == c.n_new == 3 and c.between_sigma == pytest.approx(0.03)
    expect = math.exp(np.mean(np.log([900, 905, 895])) - np.mean(np.log([1000, 1010, 990])))
    assert c.ratio == pytest.approx(expect) and c.high < 1 - 0.02
    assert c.base == pytest.approx(math.exp(np.mean(np.log([1000, 1010, 990]))))
    same = _by_metric(changes)["p99"]  # identical p99s: only the between-run spread is left (3%: wider than 2%)
    assert same.ratio == pytest.approx(1.0) and same.verdict == "inconclusive"
    half = 1.959963984540054 * 0.03
    assert (same.low, same.high) == pytest.approx((math.exp(-half), math.exp(half)))
    assert set(_by_metric(changes)) == {"peak_qps", "p50", "p99"}  # no throughput of a Server row
    res = _cli("compare", base, new, "--fail-on", "peak_qps:-5%")
    assert res.exit_code == 1, res.output
    assert "gate: FAIL peak_qps:-5%" in res.output
    # the other way round it is faster, and a drop rule does not fire
    back = _by_metric(lc.compare(str(new), str(base))[0])["peak_qps"]
    assert back.verdict == "faster" and back.ratio == pytest.approx(1 / expect)
    res = _cli("compare", new, base, "--fail-on", "peak_qps:-5%")
    assert res.exit_code == 0 and "gate: pass" in res.output, res.output


def test_identical_figures_are_no_change_and_pass(tmp_path):
    base = write_load_csv(tmp_path / "base.csv", peaks(tmp_path, [1000, 1010, 990]))
    new = write_load_csv(tmp_path / "new.csv", peaks(tmp_path, [1000, 1010, 990]))
    changes = lc.compare(str(base), str(new))[0]
    assert {c.verdict for c in changes} <= {"no change", "inconclusive"}
    assert all(c.ratio == pytest.approx(1.0) for c in changes)
    res = _cli("compare", base, new, "--fail-on", "peak_qps:-5%,p99:+10%")
    assert res.exit_code == 0 and "gate: pass" in res.output, res.output


def test_one_repeat_is_inconclusive_and_never_fails_the_gate(tmp_path):
    base = write_load_csv(tmp_path / "base.csv", peaks(tmp_path, [1000]))
    new = write_load_csv(tmp_path / "new.csv", peaks(tmp_path, [500, 505, 495]))
    c = _by_metric(lc.compare(str(base), str(new))[0])["peak_qps"]
    assert c.verdict == "inconclusive" and math.isnan(c.low) and math.isnan(c.high)
    assert c.ratio == pytest.approx(math.exp(np.mean(np.log([500, 505, 495])) - math.log(1000)))
    assert lc.gate([c], lc.parse_rules("peak_qps:-5%")) == []
    res = _cli("compare", base, new, "--fail-on", "peak_qps:-5%")
    assert res.exit_code == 0, res.output
    res = _cli("compare", base, new, "--fail-on", "peak_qps:-5%", "--fail-on-inconclusive")
    assert res.exit_code == 1 and "inconclusive" in res.output, res.output


def test_a_p99_rise_of_30_percent_fails_a_10_percent_rule(tmp_path):
    base = write_load_csv(tmp_path / "base.csv", peaks(tmp_path, [1000, 1000, 1000], p99=[3.0, 3.02, 2.98]))
    new = write_load_csv(tmp_path / "new.csv", peaks(tmp_path, [1000, 1000, 1000], p99=[3.9, 3.92, 3.88]))
    c = _by_metric(lc.compare(str(base), str(new))[0])["p99"]
    assert c.verdict == "slower" and c.ratio == pytest.approx(1.3, rel=0.01) and c.low > 1.02
    res = _cli("compare", base, new, "--fail-on", "p99:+10%")
    assert res.exit_code == 1 and "gate: FAIL p99:+10%" in res.output, res.output
    res = _cli("compare", base, new, "--fail-on", "p99:+40%")  # crossed only when it moved that far
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("rule", ["peak_qps:+5%", "throughput:+5%", "p99:-10%", "p50:-5%"])
def test_a_rule_in_the_better_direction_is_refused(tmp_path, rule):
    base = write_load_csv(tmp_path / "base.csv", peaks(tmp_path, [1000, 1010, 990]))
    with pytest.raises(UsageError, match="gets worse when it"):
        lc.parse_rules(rule)
    res = _cli("compare", base, base, "--fail-on", rule)
    assert res.exit_code == 2 and len([ln for ln in res.stderr.splitlines() if ln.strip()]) == 1, res.output


def test_parse_rules_reads_every_metric():
    rules = lc.parse_rules("peak_qps:-5%, p99:+10%,throughput:-2.5%,p50:+5%")
    assert [(r.metric, r.sign, r.amount) for r in rules] == [("peak_qps", -1, 5.0), ("p99", 1, 10.0),
                                                              ("throughput", -1, 2.5), ("p50", 1, 5.0)]
    for bad in ("peak_qps:5%", "p77:+5%", "", "peak_qps:-x%"):
        with pytest.raises(UsageError):
            lc.parse_rules(bad)


def test_a_load_csv_against_a_run_csv_is_refused(tmp_path):
    from mnistbench.bench.measure.records import COLUMNS as RUN_COLUMNS

    load_csv = write_load_csv(tmp_path / "load.csv", peaks(tmp_path, [1000, 1010]))
    run_csv = tmp_path / "run.csv"
    run_csv.write_text(",".join(RUN_COLUMNS) + "\n")
    assert not is_load_csv(run_csv) and is_load_csv(load_csv)
    for a, b in ((load_csv, run_csv), (run_csv, load_csv)):
        res = _cli("compare", a, b)
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert res.exit_code == 2 and len(lines) == 1 and "not one of each" in lines[0], res.output
    with pytest.raises(UsageError, match="not a load CSV"):
        lc.compare(str(load_csv), str(run_csv))


def test_two_models_of_one_file_are_not_widened_but_two_files_are(tmp_path):
    one = write_load_csv(tmp_path / "one.csv", peaks(tmp_path, [1000, 1010, 990])
                         + peaks(tmp_path, [900, 905, 895], model="zhu-mlp"))
    changes = lc.compare(f"{one}#lenet5", f"{one}#zhu-mlp")[0]
    c = _by_metric(changes)["peak_qps"]
    assert c.between_sigma == 0.0 and c.verdict == "slower"
    assert "lenet5" not in c.label() and c.key[0] == "fp32"  # the model left the key
    assert c.paired  # two models of one run: paired by repeat
    ratio, lo, hi, _, n = lc.judge_paired({0: 1000, 1: 1010, 2: 990}, {0: 900, 1: 905, 2: 895}, True)
    assert (c.low, c.high) == pytest.approx((lo, hi)) and n == 3
    other = write_load_csv(tmp_path / "other.csv", peaks(tmp_path, [900, 905, 895], model="zhu-mlp"))
    c2 = _by_metric(lc.compare(f"{one}#lenet5", f"{other}#zhu-mlp")[0])["peak_qps"]
    assert c2.between_sigma > 0 and c2.high - c2.low > c.high - c.low and not c2.paired
    assert c2.ratio == pytest.approx(c.ratio)
    with pytest.raises(UsageError, match="no measured rows of model"):
        lc.compare(f"{one}#lenet5", f"{one}#vgg")
    # one side selected by model, the other a whole file of another model: the model leaves both keys
    c3 = _by_metric(lc.compare(f"{one}#lenet5", str(other))[0])["peak_qps"]
    assert c3.ratio == pytest.approx(c.ratio) and c3.key[0] == "fp32"


def test_judge_matches_welch_t_from_scipy():
    from scipy import stats

    base, new = [1000.0, 1040.0, 980.0, 1010.0], [930.0, 905.0, 960.0]
    lb, ln_ = np.log(base), np.log(new)
    welch = stats.ttest_ind(ln_, lb, equal_var=False)
    ci = welch.confidence_interval(0.95)
    d = ln_.mean() - lb.mean()
    ratio, lo, hi, v = lc.judge(base, new, True, 0.0)
    assert ratio == pytest.approx(math.exp(d)) and lo == pytest.approx(math.exp(ci.low))
    assert hi == pytest.approx(math.exp(ci.high))
    assert v == ("slower" if math.exp(ci.high) < 0.98 else "inconclusive")
    # widened by sigma in quadrature: half = hypot(t * se, 1.96 * sigma)
    half_t = (ci.high - ci.low) / 2
    ratio, lo, hi, _ = lc.judge(base, new, True, 0.05)
    half = math.hypot(half_t, 1.959963984540054 * 0.05)
    assert (lo, hi) == pytest.approx((math.exp(d - half), math.exp(d + half)))
    # lower is better for latency: a higher figure is "slower"
    assert lc.judge([1.0, 1.01, 0.99], [2.0, 2.02, 1.98], False, 0.0)[3] == "slower"
    assert lc.judge([1.0, 1.01, 0.99], [2.0, 2.02, 1.98], True, 0.0)[3] == "faster"
    assert lc.judge([1.0, 1.01], [math.nan, 0.0], True, 0.0)[3] == "n/a"


def test_two_models_of_one_run_are_paired_by_repeat_so_the_rounds_drift_leaves_the_interval(tmp_path):
    from scipy import stats

    # the host's speed moves from round to round (x0.7 to x1.3) and both models of a round share it; the new
    # one is 8% lower in every round, give or take 1%
    drift = [1.0, 1.3, 0.7, 1.15, 0.85, 1.2]
    base = [1000.0 * f for f in drift]
    new = [920.0 * f * (1 + e) for f, e in zip(drift, [0.01, -0.01, 0.005, -0.005, 0.0, 0.01])]
    one = write_load_csv(tmp_path / "one.csv", peaks(tmp_path, base) + peaks(tmp_path, new, model="zhu-mlp"))
    c = _by_metric(lc.compare(f"{one}#lenet5", f"{one}#zhu-mlp")[0])["peak_qps"]
    d = np.log(new) - np.log(base)
    ci = stats.ttest_rel(np.log(new), np.log(base)).confidence_interval(0.95)
    assert c.paired and c.verdict == "slower"
    assert (c.ratio, c.low, c.high) == pytest.approx((math.exp(d.mean()), math.exp(ci.low), math.exp(ci.high)))
    assert c.high < 0.95 and c.low > 0.89  # about 0.92, narrow
    assert lc.judge(base, new, True, 0.0)[3] == "inconclusive"  # unpaired, the drift swamps 8%
    # a repeat with no partner is left out; one pair gives no interval; none gives nothing
    assert lc.judge_paired({0: 1000.0, 1: 1300.0, 5: 900.0}, {0: 920.0, 1: 1200.0, 7: 1.0}, True)[4] == 2
    assert lc.judge_paired({0: 1000.0, 1: 1300.0}, {0: 920.0, 2: 1.0}, True)[3] == "inconclusive"
    assert lc.judge_paired({0: 1000.0}, {1: 920.0}, True)[3] == "n/a"
    # lower is better for latency: a higher p99 in every round is slower
    assert lc.judge_paired({0: 1.0, 1: 2.0, 2: 1.5}, {0: 1.2, 1: 2.4, 2: 1.8}, False)[3] == "slower"


# ---------------------------------------------------------------- the load CSV's validation

def test_read_load_csv_reads_back_what_was_written(tmp_path):
    recs = peaks(tmp_path, [1000, 1010]) + [make_row(kind="accuracy", scenario="offline", accuracy_top1=0.98,
                                                     peak_qps=math.nan)]
    path = write_load_csv(tmp_path / "ok.csv", recs)
    back = read_load_csv(path)
    assert [r.peak_qps for r in back[:2]] == [1000.0, 1010.0] and back[2].accuracy_top1 == 0.98
    assert math.isnan(back[0].target_qps) and back[0] == recs[0]


@pytest.mark.parametrize("case", ["torn", "schema", "kind", "nan-peak", "inf-rate", "zero-rate", "other-columns",
                                  "column-order", "word-in-number", "accuracy-above-1"])
def test_read_load_csv_refuses(tmp_path, case):
    path = tmp_path / f"{case}.csv"
    good = peaks(tmp_path, [1000, 1010])
    if case == "torn":
        write_load_csv(path, good)
        with open(path, "a") as fh:
            fh.write(f"{SCHEMA},abc,def")
        words = "fewer cells"
    elif case == "schema":
        write_load_csv(path, [replace(good[0], schema_version="load-0")])
        words = "schema 'load-0'"
    elif case == "kind":
        write_load_csv(path, [replace(good[0], kind="sweep")])
        words = "kind 'sweep'"
    elif case == "nan-peak":
        write_load_csv(path, [replace(good[0], peak_qps=math.nan)])
        words = "finite, positive"
    elif case == "inf-rate":
        write_load_csv(path, [make_row(kind="test", samples_per_s=math.inf, target_qps=100.0)])
        words = "finite, positive"
    elif case == "zero-rate":
        write_load_csv(path, [make_row(kind="test", scenario="offline", samples_per_s=0.0)])
        words = "finite, positive"
    elif case == "accuracy-above-1":
        write_load_csv(path, [make_row(kind="accuracy", accuracy_top1=1.5)])
        words = "finite, positive"
    elif case == "other-columns":
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["schema_version", "kind", "peak_qps", "model"])
            w.writerow([SCHEMA, "peak", "1000", "lenet5"])
        words = "not a load results CSV"
    elif case == "column-order":
        cols = COLUMNS[1:] + COLUMNS[:1]
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerow(good[0].as_row())
        words = "other column order"
    else:  # a number cell holding a word
        write_load_csv(path, good)
        text = path.read_text().splitlines()
        text[1] = text[1].replace(",1000.0,", ",fast,", 1)
        path.write_text("\n".join(text) + "\n")
        words = "does not parse"
    with pytest.raises(UsageError) as err:
        read_load_csv(path)
    assert words in str(err.value) and "\n" not in str(err.value), err.value
    if case not in ("other-columns", "column-order"):
        assert f"line {4 if case == 'torn' else 2}:" in str(err.value)


def test_an_error_row_and_a_search_without_a_valid_rate_are_readable(tmp_path):
    recs = [make_row(status="error", error="session failed", peak_qps=math.nan, samples_per_s=math.nan),
            make_row(valid="INVALID", peak_qps=math.nan, invalid_reason="no rate tried was VALID")]
    assert len(read_load_csv(write_load_csv(tmp_path / "e.csv", recs))) == 2
    with pytest.raises(UsageError, match="cannot read"):
        read_load_csv(tmp_path / "absent.csv")


def test_report_draws_the_curve_with_its_knee_into_a_new_folder(tmp_path):
    """The load sections of `report` (drawn before the run report makes its folder): the Server sweep's
    curve PNG, and the knee at the last rate before p99 crosses the bound."""
    from mnistbench.bench.load import report as lr

    pts = [(1000.0, 1.0), (2000.0, 2.0), (3000.0, 4.5), (4000.0, 9.0)]
    rows = [make_row(kind="test", scenario="server", target_qps=q, samples_per_s=q, latency_p50_ms=p / 3,
                     latency_p99_ms=p, latency_bound_ms=5.0, peak_qps=math.nan, query_count=1000, repeat=r)
            for q, p in pts for r in range(2)]
    html = "\n".join(lr.sections(rows, tmp_path / "new" / "report"))
    assert (tmp_path / "new" / "report" / "load-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (c,) = lr.curves(rows).values()
    k, why = lr.knee(c, 5.0)
    assert c[k].target_qps == 3000.0 and "crosses 5 ms" in why and "data:image/png;base64" in html


def test_report_intervals_of_rates_and_latencies_are_on_the_log_never_below_zero(tmp_path):
    """Peaks that spread widely over three repeats (as this host gives: 3,666-6,987 QPS) get a
    geometric mean and a t interval on ln(peak), the committed study's [-2,639, 15,660] QPS was a
    linear one; the curve's p99 interval likewise (the study's [-0.835, 9.128] ms)."""
    from mnistbench.bench.load import report as lr
    from scipy import stats

    values = [800.0, 3000.0, 9000.0]
    rows = [make_row(repeat=i, peak_qps=q) for i, q in enumerate(values)]
    rows.append(make_row(repeat=3, peak_qps=math.nan, valid="INVALID"))  # a search that found no VALID rate
    ((label, (g, lo, hi, valid, n)),) = lr.peaks(rows).items()
    ln = np.log(values)
    h = stats.t.ppf(0.975, 2) * ln.std(ddof=1) / np.sqrt(3)
    assert (valid, n) == (3, 4) and "p99<=5ms" in label
    assert g == pytest.approx(np.exp(ln.mean())) and (lo, hi) == (pytest.approx(np.exp(ln.mean() - h)),
                                                                   pytest.approx(np.exp(ln.mean() + h)))
    linear = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)
    assert 0 < lo < g < hi and np.mean(values) - linear < 0  # a linear interval would go below 0
    p99s = [0.5, 4.0, 9.0]
    tests = [make_row(kind="test", scenario="server", target_qps=1000.0, samples_per_s=1000.0, latency_p50_ms=0.2,
                      latency_p99_ms=p, latency_bound_ms=5.0, peak_qps=math.nan, query_count=1000, repeat=r)
             for r, p in enumerate(p99s)]
    ((pt,),) = lr.curves(tests).values()
    assert pt.p99_ms == 4.0 and 0 < pt.p99_low < float(np.exp(np.log(p99s).mean())) < pt.p99_high
    html = "\n".join(lr.sections(rows + tests, tmp_path / "r"))
    assert "geometric mean over repeats" in html and "[-" not in html and "<td>3 of 4</td>" in html


# ---------------------------------------------------------------- best of load CSVs

def _peak_rows(values, acc, **kw):
    """Peak rows of one configuration (one per repeat) and its accuracy row."""
    rows = [make_row(repeat=i, peak_qps=float(q), **kw) for i, q in enumerate(values)]
    ident = {k: v for k, v in kw.items() if k not in ("max_batch", "max_queue_delay_ms", "workers")}
    rows.append(make_row(kind="accuracy", scenario="offline", latency_bound_ms=math.nan, latency_percentile=math.nan,
                         accuracy_top1=acc, peak_qps=math.nan, **ident))
    return rows


def test_best_of_load_rows_ranks_peaks_within_the_accuracy_budget_with_intervals_and_ties(tmp_path):
    from mnistbench.bench.load.best import best_load, geo_interval

    base = _peak_rows([1000, 1100, 1210], 0.9860, max_batch=1, max_queue_delay_ms=0.0)  # ORT fp32, one at a time
    batched = [make_row(repeat=i, peak_qps=float(q), max_batch=16) for i, q in enumerate([4000, 4400, 4840])]
    int8 = _peak_rows([9000, 9900, 10890], 0.9820, variant="int8")  # -0.40 pp: over a 0.2 pp budget
    ov = _peak_rows([3900, 4300, 4700], 0.9855, runtime="openvino")  # -0.05 pp: eligible, tied with batched
    unscored = [make_row(repeat=0, peak_qps=50000.0, runtime="torch")]  # no accuracy row: never eligible
    invalid = [make_row(repeat=i, peak_qps=math.nan, valid="INVALID", runtime="onnxruntime", threads=2)
               for i in range(2)]
    null = [make_row(repeat=0, peak_qps=90000.0, model="null-identity", task="null")]
    (v,) = best_load(base + batched + int8 + ov + unscored + invalid + null, max_accuracy_drop_pp=0.2)
    assert (v.model, v.scenario, v.bound, v.figure_label) == ("lenet5", "server", "p99<=5ms", "peak QPS")
    g, lo, hi = geo_interval([4000, 4400, 4840])
    assert v.best.label == "onnxruntime fp32 cpu t1 w1 batch 16/1ms" and v.best.figure == pytest.approx(4400.0)
    assert (v.best.low, v.best.high) == (pytest.approx(lo), pytest.approx(hi)) and g == pytest.approx(4400.0)
    # the t interval on ln: 3 repeats, sd of ln(1.1^k) = ln 1.1, t(0.975, 2) = 4.303
    assert hi / g == pytest.approx(math.exp(4.302652729911275 * math.log(1.1) / math.sqrt(3)), rel=1e-9)
    assert v.best.accuracy == pytest.approx(0.9860) and v.baseline_accuracy == pytest.approx(0.9860)
    assert v.baseline.label == "onnxruntime fp32 cpu t1 w1 batch off" and v.gain == pytest.approx(4.0)
    assert [c.label for c in v.tied] == ["openvino fp32 cpu t1 w1 batch 8/1ms"]
    assert [(c.label, round(d, 2)) for c, d in v.rejected] == [("onnxruntime int8 cpu t1 w1 batch 8/1ms", -0.4)]
    assert v.unscored == 1 and v.best.repeats == (3, 3)
    # a wider budget takes the int8 file; latency scenarios: lower is better
    (w,) = best_load(base + batched + int8, max_accuracy_drop_pp=0.5)
    assert w.best.label.startswith("onnxruntime int8") and w.gain == pytest.approx(9900 / 1100)
    ss = [make_row(repeat=i, scenario="single-stream", kind="test", latency_bound_ms=math.nan, latency_percentile=math.nan,
                   peak_qps=math.nan, latency_p90_ms=p, max_batch=1, runtime=rt)
          for rt, ps in (("onnxruntime", [0.2, 0.2]), ("openvino", [0.1, 0.1])) for i, p in enumerate(ps)]
    accs = [make_row(kind="accuracy", scenario="offline", latency_bound_ms=math.nan, latency_percentile=math.nan,
                     accuracy_top1=0.986, runtime=rt) for rt in ("onnxruntime", "openvino")]
    (s,) = best_load(ss + accs, 0.2)
    assert s.best.label.startswith("openvino") and s.best.figure == pytest.approx(0.1) and s.gain == pytest.approx(2.0)
    assert s.figure_label == "p90 ms" and not s.tied


def test_best_of_load_rows_without_accuracy_says_so_and_the_cli_prints_both_tables(tmp_path):
    from mnistbench.bench.load.best import best_load

    rows = [make_row(repeat=i, peak_qps=1000.0 + i) for i in range(2)]
    (v,) = best_load(rows, 0.2)
    assert v.best is None and "no accuracy of ONNX Runtime fp32" in v.note
    p = write_load_csv(tmp_path / "load.csv", _peak_rows([1000, 1100, 1210], 0.986, max_batch=1,
                                                         max_queue_delay_ms=0.0))
    res = _cli("best", p, "--format", "markdown")
    assert res.exit_code == 0, res.output
    assert "| lenet5 | server p99<=5ms (peak QPS) | onnxruntime fp32 cpu t1 w1 batch off | 1,100 [" in res.stdout
    assert "LoadGen accuracy-mode top-1 at most 0.2 pp" in res.stdout
