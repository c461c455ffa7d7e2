"""The benchmark matrix on real trained models: rows, agreement, placement, samples, error rows."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from mnistbench.bench.runtimes import runtime as rt_mod
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.pipeline import (NULL_MODEL, Artifacts, export_model, null_model, onnx_for, eval_inputs,
                                       torch_builder, train_model)
from mnistbench.bench.measure.records import COLUMNS, read_csv
from mnistbench.bench.measure.runner import Axes, Target, plan, run_matrix
from mnistbench.bench.measure.timing import TimingConfig
from mnistbench.models.errors import UsageError
from mnistbench.models.registry import get_spec

FAST = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=5, min_s=0)


@pytest.fixture(scope="module")
def trained(mnist_small, tmp_path_factory):
    """lenet5 and zhu-conv-autoencoder trained (smoke) and exported; targets on 1,000 real test images."""
    arts = Artifacts(tmp_path_factory.mktemp("arts"), "mnist", "smoke", 0)
    targets = []
    for name in ("lenet5", "zhu-conv-autoencoder"):
        spec = get_spec(name)
        train_model(spec, mnist_small, arts, "cpu")
        export_model(spec, mnist_small, arts)
        path, meta = onnx_for(spec, arts)
        x, y = eval_inputs(spec, mnist_small)
        targets.append(Target(name, path, spec.task, x, y, torch_builder(spec, arts), spec.flops, "mnist",
                              "smoke", "0", meta["checkpoint_sha256"]))
    return arts, targets


@pytest.mark.integration
def test_matrix_rows_agreement_placement_and_samples(trained, tmp_path):
    arts, targets = trained
    axes = Axes(("onnxruntime", "torch"), ("cpu",), (1,), (True, False), (1, 8))
    out = tmp_path / "r.csv"
    rows = run_matrix(targets, axes, out, timing=FAST, peak_gflops=100.0)
    # per model: ORT x 2 spinning + torch x 1 (no spinning axis), x 2 batch sizes
    assert len(rows) == 2 * (2 + 1) * 2
    assert [r.model for r in read_csv(out)] == [r.model for r in rows]
    for r in rows:
        assert r.status == "ok" and r.timed_iters >= 5 and r.latency_p50_ms > 0 and r.intra_op_threads == 1
        assert r.flops_per_image == get_spec(r.model).flops
        assert r.achieved_gflops == pytest.approx(r.flops_per_image * r.throughput_ips / 1e9)
        assert r.peak_fraction == pytest.approx(r.achieved_gflops / 100.0)
        assert r.checkpoint_sha256 and r.checkpoint_profile == "smoke" and len(r.onnx_sha256) == 64
        if r.runtime == "onnxruntime":
            assert r.nodes_total > 0 and r.nodes_on_provider == r.nodes_total == r.nodes_on_cpu
            assert r.memcpy_nodes == 0 and r.spinning in ("on", "off")
            assert r.max_abs_diff_vs_torch < 1e-4
        else:
            assert r.providers_used == "torch-cpu" and r.spinning == "n/a" and r.nodes_total == -1
            assert r.max_abs_diff_vs_torch == 0.0
        if r.task == "classify":
            assert r.agreement_top1_vs_torch >= 0.999 and 0.1 < r.accuracy_top1 <= 1
        else:
            assert math.isnan(r.accuracy_top1) and r.test_mse > 0
    samples = samples_io.load(out)
    assert sorted(samples) == sorted(r.cell_id for r in rows)
    for r in rows:
        s = samples[r.cell_id]
        assert len(s.ns) == r.timed_iters and np.median(s.ns) / 1e6 == pytest.approx(r.latency_p50_ms)
        # interleaved: one block per round, each block of at least ceil(min_iters / rounds) calls
        assert r.rounds == FAST.rounds == len(s.block_n) and list(s.block_round) == list(range(FAST.rounds))
        assert all(n >= FAST.block_iters for n in s.block_n)
        assert r.timed_wall_s == pytest.approx(s.block_wall_ns.sum() / 1e9)
        assert r.throughput_ips == pytest.approx(r.batch_size * r.timed_iters / r.timed_wall_s)
        assert r.latency_p50_ci_low_ms <= r.latency_p50_ms <= r.latency_p50_ci_high_ms
        assert r.throughput_ci_low_ips <= r.throughput_ips <= r.throughput_ci_high_ips
        assert r.interleave_group == "1" and r.group_cells == len(rows) and len(r.config_id) == 16
    assert len({r.config_id for r in rows}) == len(rows)


@pytest.mark.integration
def test_null_model_measures_the_floor(trained, tmp_path):
    arts, targets = trained
    x = targets[0].inputs
    import torch

    null = Target(NULL_MODEL, null_model(tmp_path), "null", x, x[:0], torch.nn.Identity)
    rows = run_matrix([null, targets[0]], Axes(batch_sizes=(1,)), tmp_path / "n.csv", timing=FAST)
    assert rows[0].model == NULL_MODEL and rows[0].nodes_total >= 0
    assert math.isnan(rows[0].accuracy_top1) and rows[0].max_abs_diff_vs_torch == 0.0
    assert rows[0].latency_p50_ms < rows[1].latency_p50_ms  # the floor is below a real model


@pytest.mark.integration
def test_provider_mismatch_mid_run_is_an_error_row_not_a_mislabelled_one(trained, tmp_path, monkeypatch):
    arts, targets = trained
    import onnxruntime as ort

    class FallsBack(ort.InferenceSession):
        def get_providers(self):
            return ["CPUExecutionProvider"]

    monkeypatch.setattr(rt_mod.ort, "InferenceSession", FallsBack)
    rows = run_matrix(targets[:1], Axes(providers=("cuda",), batch_sizes=(1, 4)), tmp_path / "e.csv", timing=FAST)
    assert [(r.provider, r.status, r.batch_size) for r in rows] == [("cuda", "error", 1), ("cuda", "error", 4)]
    assert all("fell back" in r.error and math.isnan(r.latency_p50_ms) for r in rows)
    written = list(csv.DictReader(open(tmp_path / "e.csv")))
    assert [w["status"] for w in written] == ["error", "error"] and written[0]["throughput_ips"] == ""


def test_plan_shuffles_groups_reproducibly(tmp_path):
    x = np.zeros((4, 1, 28, 28), np.float32)
    ts = [Target(f"m{i}", tmp_path / "x.onnx", "classify", x, x[:, 0, 0, 0]) for i in range(6)]
    axes = Axes(threads=(1, 2))
    a, b, c = plan(ts, axes, 1), plan(ts, axes, 1), plan(ts, axes, None)
    assert a == b and a != c and sorted(map(str, a)) == sorted(map(str, c)) and len(c) == 12


def test_read_csv_rejects_foreign_and_malformed_files(tmp_path):
    foreign = tmp_path / "f.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="missing columns"):
        read_csv(foreign)
    bad = tmp_path / "b.csv"
    bad.write_text(",".join(COLUMNS) + "\n" + ",".join("x" for _ in COLUMNS) + "\n")
    with pytest.raises(UsageError, match="line 2"):
        read_csv(bad)


@pytest.mark.integration
def test_a_failing_cell_is_an_error_row_and_the_matrix_goes_on(trained, tmp_path, monkeypatch):
    """A runtime failure in one cell (here ONNX Runtime's Fail at batch 8, as a GPU out of memory at a
    large batch would raise) gives that cell an error row naming the error; the other cells run."""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    arts, targets = trained
    real_run = rt_mod.OrtRuntime.run

    def run(self, x):
        if len(x) == 8:
            raise Fail("[ONNXRuntimeError] : 1 : FAIL : CUDA failure 2: out of memory\nmore detail")
        return real_run(self, x)

    monkeypatch.setattr(rt_mod.OrtRuntime, "run", run)
    out = tmp_path / "f.csv"
    rows = run_matrix(targets[:1], Axes(batch_sizes=(1, 8, 32)), out, timing=FAST)
    by_batch = {r.batch_size: r for r in rows}
    assert sorted((b, r.status) for b, r in by_batch.items()) == [(1, "ok"), (8, "error"), (32, "ok")]
    assert by_batch[8].error == "Fail: [ONNXRuntimeError] : 1 : FAIL : CUDA failure 2: out of memory"
    assert math.isnan(by_batch[8].latency_p50_ms) and by_batch[32].latency_p50_ms > 0
    assert sorted(w["status"] for w in csv.DictReader(open(out))) == ["error", "ok", "ok"]
    samples = samples_io.load(out)
    assert sorted(samples) == sorted(r.cell_id for r in rows if r.status == "ok")
    assert len({r.cell_id for r in rows}) == 3


def test_an_ep_failure_at_run_time_raises_instead_of_rerunning_on_cpu(tmp_path):
    """ONNX Runtime's Python layer re-runs a call on the CPU EP after an EP failure (EPFail) unless
    fallback is off; mnistbench turns it off, so such a call can never be timed under a GPU label."""
    import onnx
    from onnxruntime.capi.onnxruntime_pybind11_state import EPFail

    from mnistbench.bench.runtimes.runtime import OrtRuntime, SessionConfig

    h = onnx.helper
    x = h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])
    y = h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])
    m = h.make_model(h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                     opset_imports=[h.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "m.onnx")
    rt = OrtRuntime(tmp_path / "m.onnx", SessionConfig("cpu"))
    inner = rt.session._sess

    class FailsOnce:
        def __getattr__(self, name):
            return getattr(inner, name)

        def run(self, *a, **k):
            raise EPFail("kernel launch failed")

    rt.session._sess = FailsOnce()
    with pytest.raises(EPFail, match="kernel launch failed"):
        rt.run(np.ones((2, 4), np.float32))
