"""OpenVINO rows beside ONNX Runtime and PyTorch, precision (bf16) rows, and the fair torch.compile
baseline, on real trained models."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from mnistbench.bench.analysis.report import variants
from mnistbench.bench.cli import app
from mnistbench.bench.measure.pipeline import Artifacts, eval_inputs, export_model, onnx_for, torch_builder, train_model
from mnistbench.bench.measure.runner import Axes, Target, plan, run_matrix
from mnistbench.bench.measure.timing import TimingConfig
from mnistbench.bench.runtimes.torch_eager import TorchRuntime
from mnistbench.models.registry import get_spec
from typer.testing import CliRunner

FAST = TimingConfig(warmup_iters=2, warmup_s=0, min_iters=5, min_s=0)
runner = CliRunner()


def _targets(arts, data, names, precisions=("fp32", "bf16")):
    out = []
    for name in names:
        spec = get_spec(name)
        path, meta = onnx_for(spec, arts)
        x, y = eval_inputs(spec, data)
        # one array per target, as `run` builds them (equal values, distinct objects)
        out += [Target(name, path, spec.task, x.copy(), y.copy(), torch_builder(spec, arts), spec.flops, "mnist",
                       "smoke", "0", meta["checkpoint_sha256"], variant=p) for p in precisions]
    return out


@pytest.fixture(scope="module")
def trained(mnist_small, tmp_path_factory):
    """lenet5 and zhu-conv-autoencoder trained (smoke) and exported, scored on 1,000 real test images."""
    arts = Artifacts(tmp_path_factory.mktemp("arts"), "mnist", "smoke", 0)
    for name in ("lenet5", "zhu-conv-autoencoder"):
        spec = get_spec(name)
        train_model(spec, mnist_small, arts, "cpu")
        export_model(spec, mnist_small, arts)
    return arts, mnist_small


@pytest.mark.slow
def test_precision_rows_only_where_the_runtime_applies_it(trained):
    arts, data = trained
    targets = _targets(arts, data, ["lenet5"])
    groups = plan(targets, Axes(("onnxruntime", "torch", "openvino"), ("cpu", "cuda")))
    got = sorted((g[0].variant, g[1], g[2]) for g in groups)
    # ONNX Runtime runs the fp32 file as written (its reduced precisions are int8/fp16 files);
    # OpenVINO runs on the CPU only; PyTorch on cpu and cuda
    assert got == [("bf16", "openvino", "cpu"), ("bf16", "torch", "cpu"), ("bf16", "torch", "cuda"),
                   ("fp32", "onnxruntime", "cpu"), ("fp32", "onnxruntime", "cuda"), ("fp32", "openvino", "cpu"),
                   ("fp32", "torch", "cpu"), ("fp32", "torch", "cuda")]
    # an int8 file is never run by PyTorch (its rows would be fp32 under an int8 label)
    int8 = [Target("lenet5", targets[0].path, "classify", targets[0].inputs, targets[0].labels,
                   targets[0].build_torch, variant="int8")]
    assert {g[1] for g in plan(int8, Axes(("onnxruntime", "torch", "torch.compile", "openvino")))} == \
        {"onnxruntime", "openvino"}


@pytest.mark.slow
@pytest.mark.integration
def test_openvino_and_bf16_rows(trained, tmp_path):
    ov = pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install -e \".[openvino]\")")
    from mnistbench.bench.runtimes.openvino_runtime import capabilities, openvino_version

    arts, data = trained
    targets = _targets(arts, data, ["lenet5", "zhu-conv-autoencoder"])
    rows = run_matrix(targets, Axes(("onnxruntime", "openvino", "torch"), ("cpu",), (1,), (None,), (1, 8)),
                      tmp_path / "r.csv", timing=FAST)
    by = {(r.model, r.runtime, r.variant, r.batch_size): r for r in rows}
    # per model: ORT fp32, OpenVINO fp32 + bf16, torch fp32 + bf16, at 2 batch sizes
    assert len(rows) == 2 * 5 * 2 and not any(k[1] == "onnxruntime" and k[2] == "bf16" for k in by)
    native_bf16 = "BF16" in capabilities()
    version = ov.__version__.split("-")[0]
    assert openvino_version() == version
    for (model, runtime, variant, b), r in by.items():
        if runtime == "openvino":
            assert r.provider_options == f"openvino={version};precision={variant};hint=LATENCY;streams=1"
            if variant == "bf16" and not native_bf16:  # e.g. an AMD EPYC without avx512_bf16: no session opened
                assert r.status == "error" and "does not support" in r.error and r.providers_used == ""
                continue
            assert r.providers_used == "openvino-CPU" and r.graph_optimization == "compiled"
            assert r.intra_op_threads == 1 and r.session_create_ms > 0 and r.nodes_total == -1
        assert r.status == "ok", r.error
        ort_row = by[(model, "onnxruntime", "fp32", b)]
        if variant == "fp32":
            # the same ONNX file: OpenVINO fp32 matches ONNX Runtime and PyTorch
            assert r.max_abs_diff_vs_torch < 1e-4
            if r.task == "classify":
                assert r.agreement_top1_vs_torch == 1.0 and r.accuracy_top1 == ort_row.accuracy_top1
        else:
            # bf16 really ran at reduced precision (outputs differ from fp32) and stayed accurate
            assert r.max_abs_diff_vs_torch > 1e-4
            if r.task == "classify":
                assert r.agreement_top1_vs_torch > 0.98 and abs(r.accuracy_top1 - ort_row.accuracy_top1) < 0.01
            else:
                assert r.test_mse == pytest.approx(ort_row.test_mse, rel=0.05)
    # each reduced-precision row is compared with fp32 of its own runtime
    header, cells = variants(rows)
    pairs = {(c[0], c[1], c[2], c[4]) for c in cells}
    assert ("lenet5", "torch", "bf16", "8") in pairs
    assert ("lenet5", "openvino", "bf16", "8") in pairs or not native_bf16
    for c in cells:
        base = by[(c[0], c[1], "fp32", int(c[4]))]
        assert c[5] == f"{base.throughput_ips:,.0f}"


@pytest.mark.slow
@pytest.mark.integration
def test_openvino_bf16_on_a_cpu_without_it_is_an_error_row(trained, tmp_path, monkeypatch):
    pytest.importorskip("openvino", reason="the openvino extra is not installed (pip install -e \".[openvino]\")")
    from mnistbench.bench.runtimes import openvino_runtime

    monkeypatch.setattr(openvino_runtime, "capabilities", lambda core=None: ["FP32", "INT8"])
    arts, data = trained
    rows = run_matrix(_targets(arts, data, ["lenet5"]), Axes(("openvino",), batch_sizes=(4,)), tmp_path / "r.csv",
                      timing=FAST)
    status = {r.variant: (r.status, r.error) for r in rows}
    assert status["fp32"] == ("ok", "")
    assert status["bf16"][0] == "error" and "openvino bf16: this CPU does not support it" in status["bf16"][1]


def test_missing_openvino_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if the extra were not installed
    res = runner.invoke(app, ["run", "lenet5", "--runtime", "openvino", "--artifacts-dir", str(tmp_path)])
    assert res.exit_code == 1
    assert res.stderr.strip() == ('mnistbench: error: the openvino runtime needs the openvino package: '
                                  'pip install -e ".[openvino]"')


@pytest.mark.parametrize("args, message", [
    (["--precision", "bf16"], "precision bf16 needs --runtime openvino, torch or torch.compile"),
    (["--precision", "fp8", "--runtime", "torch"], "unknown precision 'fp8'"),
    (["--precision", "bf16", "--variant", "int4", "--runtime", "torch"], "unknown variant 'int4'"),
])
def test_precision_bad_input(args, message, tmp_path):
    res = runner.invoke(app, ["run", "lenet5", *args, "--artifacts-dir", str(tmp_path)])
    assert res.exit_code == 2 and message in res.stderr


@pytest.mark.slow
@pytest.mark.integration
def test_torch_compile_static_per_batch_size_compiles_before_timing(trained):
    arts, data = trained
    spec = get_spec("lenet5")
    build = torch_builder(spec, arts)
    import torch._inductor.config as inductor_config
    from torch._dynamo.utils import counters

    eager = TorchRuntime(build, "cpu")
    alive = []
    for b in (32, 8):
        x = np.ascontiguousarray(eval_inputs(spec, data)[0][:b])
        rt = TorchRuntime(build, "cpu", compile=True)
        before = rt.create_ms
        counters.clear()
        rt.prepare(x)  # compiles now: cold start, not a timed call
        assert rt.create_ms > before and counters["stats"]["unique_graphs"] == 1
        assert inductor_config.freezing  # CPU inference: weights folded and prepacked
        for _ in range(3):
            y = rt.run(x)
        assert counters["stats"]["unique_graphs"] == 1  # timed calls never recompile
        assert np.abs(y - eager.run(x)).max() < 1e-4
        alive.append((rt, x))
    counters.clear()
    alive[0][0].run(alive[0][1])  # interleaved: the batch-32 copy again, after the batch-8 copy compiled
    assert counters["stats"]["unique_graphs"] == 0  # its compiled code survived (no compiler reset)


def test_openvino_compiles_each_batch_size_once(trained, monkeypatch):
    """A dynamic batcher (``mnistbench load``) alternates batch sizes call by call: each shape is
    compiled once and kept, and every shape answers as the others do."""
    pytest.importorskip("openvino")
    from mnistbench.bench.runtimes.openvino_runtime import OpenVinoRuntime

    arts, _ = trained
    path = onnx_for(get_spec("lenet5"), arts)[0]
    s = OpenVinoRuntime(path, "fp32", 1)
    calls = []
    real = s.core.compile_model
    monkeypatch.setattr(s.core, "compile_model", lambda *a, **k: calls.append(1) or real(*a, **k), raising=False)
    x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    outs = {b: s.run(x[:b]) for b in (1, 4, 8, 1, 4, 8, 4)}
    assert len(calls) == 3 and sorted(s._requests) == [(1, 1, 28, 28), (4, 1, 28, 28), (8, 1, 28, 28)]
    assert np.allclose(outs[4], s.run(x[:8])[:4], atol=1e-5) and np.allclose(outs[1], outs[8][:1], atol=1e-5)
