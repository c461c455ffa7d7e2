"""Timing loop, statistics, records, and the execution-provider check."""

from __future__ import annotations

import csv
import math
import time

import numpy as np
import onnx
import pytest
from mnistbench.bench.measure.metrics import (
    MIN_SAMPLES_P90,
    MIN_SAMPLES_P99,
    LatencyStats,
    throughput_ips,
    top1_accuracy,
)
from mnistbench.bench.measure.records import COLUMNS, BenchmarkRecord, CsvAppender
from mnistbench.bench.measure.runner import batch_input
from mnistbench.bench.measure.timing import TimingConfig, measure
from mnistbench.bench.runtimes import runtime as rt_mod
from mnistbench.bench.runtimes.runtime import OrtRuntime, SessionConfig, check_provider, provider_name
from mnistbench.models.errors import ProviderUnavailableError, UsageError


def test_measure_meets_both_minimums():
    calls = []
    s = measure(lambda: calls.append(1), TimingConfig(warmup_iters=3, warmup_s=0, min_iters=10, min_s=0))
    assert s.warmup_iters == 3 and len(s.ns) == 10 and len(calls) == 13
    s = measure(lambda: None, TimingConfig(warmup_iters=0, warmup_s=0, min_iters=1, min_s=0.05))
    assert len(s.ns) > 1 and s.wall_s >= 0.05  # duration bound kept it going
    s = measure(lambda: time.sleep(0.002), TimingConfig(0, 0, 5, 0))
    assert len(s.ns) == 5 and s.ns.min() >= 2_000_000  # ns, around the call


def test_stats_from_known_samples():
    ns = np.arange(1, 1001, dtype=np.int64) * 1_000_000  # 1..1000 ms
    st = LatencyStats.from_samples(ns)
    assert st.n == 1000 and st.min_ms == 1 and st.max_ms == 1000
    assert st.p50_ms == pytest.approx(500.5) and st.p90_ms == pytest.approx(900.1) and st.p99_ms == pytest.approx(990.01)
    assert st.mean_ms == pytest.approx(500.5) and st.std_ms == pytest.approx(np.std(np.arange(1, 1001), ddof=1))


def test_percentiles_refused_below_sample_thresholds():
    st = LatencyStats.from_samples(np.full(MIN_SAMPLES_P99 - 1, 1_000_000))
    assert math.isnan(st.p99_ms) and not math.isnan(st.p90_ms)
    st = LatencyStats.from_samples(np.full(MIN_SAMPLES_P90 - 1, 1_000_000))
    assert math.isnan(st.p90_ms) and math.isnan(st.p99_ms) and st.p50_ms == 1.0


def test_throughput_and_accuracy():
    assert throughput_ips(32, 100, 2.0) == 1600
    assert top1_accuracy(np.eye(10)[[1, 2, 3]], np.array([1, 2, 4])) == pytest.approx(2 / 3)


def test_batch_input_repeats_beyond_test_set():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    b = batch_input(x, 25)
    assert b.shape[0] == 25 and b.flags.c_contiguous and b[10, 0, 0, 0] == 0


def _record(**kw) -> BenchmarkRecord:
    base = {c: "x" for c in COLUMNS}
    base.update(batch_size=1, intra_op_threads=0, warmup_iters=1, timed_iters=1, eval_images=1, opset=18,
                schema_version=1, latency_p99_ms=float("nan"))
    base.update(kw)
    return BenchmarkRecord(**base)


def test_csv_appender_writes_header_once_and_nan_as_empty(tmp_path):
    path = tmp_path / "r" / "out.csv"
    sink = CsvAppender(path)
    assert not path.exists()  # nothing before the first finished cell
    sink.append(_record(model="a"))
    sink.append(_record(model="b"))
    rows = list(csv.DictReader(open(path)))
    assert [r["model"] for r in rows] == ["a", "b"] and rows[0]["latency_p99_ms"] == ""
    assert list(rows[0]) == COLUMNS


def test_unwritable_results_folder(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot create results folder"):
        CsvAppender(tmp_path / "file" / "sub" / "x.csv")


def _relu_model(path):
    h = onnx.helper
    g = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g",
                     [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 1, 28, 28])],
                     [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 1, 28, 28])])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))


def test_cpu_provider_is_confirmed_from_the_session(tmp_path):
    _relu_model(tmp_path / "m.onnx")
    r = OrtRuntime(tmp_path / "m.onnx", SessionConfig("cpu", intra_op_threads=1, spinning=False))
    assert r.providers_used == ["CPUExecutionProvider"] and r.create_ms > 0
    assert r.run(np.full((2, 1, 28, 28), -1, np.float32)).max() == 0
    check_provider("cpu")


def test_silent_fallback_to_cpu_is_an_error(tmp_path, monkeypatch):
    """onnxruntime-gpu lists CUDA where it cannot load and falls back; that must never pass as CUDA."""
    import onnxruntime as ort

    _relu_model(tmp_path / "m.onnx")
    real = ort.InferenceSession

    class FallsBack(real):
        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(rt_mod.ort, "InferenceSession", FallsBack)
    with pytest.raises(ProviderUnavailableError, match="fell back to CPUExecutionProvider"):
        OrtRuntime(tmp_path / "m.onnx", SessionConfig("cuda"))


def test_a_fallback_at_session_creation_names_onnx_runtimes_reason(tmp_path, monkeypatch):
    """ONNX Runtime's Python layer prints the EP's error and retries on the CPU; the error names it."""
    import onnxruntime as ort

    _relu_model(tmp_path / "m.onnx")
    real = ort.InferenceSession

    class FallsBackSaying(real):
        def __init__(self, *a, **k):
            print("*************** EP Error ***************")
            print("EP Error This session cannot use the graph capture feature as requested by the user "
                  "when using ['CUDAExecutionProvider', 'CPUExecutionProvider']")
            print("Falling back to ['CPUExecutionProvider'] and retrying.")
            super().__init__(*a, **k)

        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(rt_mod.ort, "InferenceSession", FallsBackSaying)
    with pytest.raises(ProviderUnavailableError) as info:
        OrtRuntime(tmp_path / "m.onnx", SessionConfig("cuda"))
    assert str(info.value).endswith("fell back to CPUExecutionProvider "
                                    "(This session cannot use the graph capture feature as requested by the user)")


def test_cuda_on_this_host_is_refused_unless_really_usable():
    try:
        check_provider("cuda")
    except ProviderUnavailableError as exc:
        assert "fell back" in str(exc) or "could not create" in str(exc)
    else:
        import torch

        if not torch.cuda.is_available():
            pytest.fail("check_provider('cuda') passed on a host where torch sees no GPU")


def test_unknown_provider():
    with pytest.raises(UsageError, match="choose one of: cpu, cuda, tensorrt"):
        provider_name("rocm")
