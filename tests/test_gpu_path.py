"""The CUDA path: option building, io-mode selection, CUDA-graph checks, fp16, TensorRT skipping,
GPU training options. Unit tests run everywhere; tests that need a GPU are marked and skip with a
reason on CPU-only hosts."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import pytest
import torch
from mnistbench.bench.cli import app
from mnistbench.bench.measure.records import COLUMNS, read_csv
from mnistbench.bench.measure.runner import AUTO, Axes, Target, applies, plan
from mnistbench.bench.runtimes.runtime import (
    GpuOptions,
    OrtRuntime,
    Placement,
    SessionConfig,
    cuda_graph_blockers,
    options_label,
    provider_options,
    validate_config,
)
from mnistbench.bench.runtimes.torch_eager import TorchRuntime
from mnistbench.models.errors import ProviderUnavailableError, UsageError
from mnistbench.models.registry import get_spec
from typer.testing import CliRunner

runner = CliRunner()


def _cuda_usable() -> bool:
    from mnistbench.bench.runtimes.runtime import check_provider

    try:
        check_provider("cuda")
        return torch.cuda.is_available()
    except ProviderUnavailableError:
        return False


needs_gpu = pytest.mark.skipif(not _cuda_usable(), reason="needs a usable CUDA GPU (ONNX Runtime CUDA EP and torch)")


# ---------------------------------------------------------------- provider options


def test_cuda_options_default_to_fp32_math_and_ort_search():
    (ep, opts), (cpu, _) = provider_options(SessionConfig("cuda"))
    assert ep == "CUDAExecutionProvider" and cpu == "CPUExecutionProvider"
    assert opts == {"device_id": "0", "cudnn_conv_algo_search": "EXHAUSTIVE", "use_tf32": "0",
                    "enable_cuda_graph": "0"}


def test_cuda_graph_heuristic_tf32_and_device_are_passed_through():
    cfg = SessionConfig("cuda", io_mode="device-graph", gpu=GpuOptions(1, "heuristic", True))
    opts = provider_options(cfg)[0][1]
    assert opts == {"device_id": "1", "cudnn_conv_algo_search": "HEURISTIC", "use_tf32": "1", "enable_cuda_graph": "1"}
    assert options_label(cfg) == ("cudnn_conv_algo_search=HEURISTIC;device_id=1;enable_cuda_graph=1;use_tf32=1")


def test_torch_cuda_rows_search_cudnn_as_onnx_runtime_does():
    from mnistbench.bench.runtimes.base import get_runtime

    for name in ("torch", "torch.compile"):
        label = get_runtime(name).options_label
        assert label(None, "cuda", "end-to-end", GpuOptions()) == "cudnn_benchmark=1;tf32=0"  # EXHAUSTIVE <-> benchmark
        assert label(None, "cuda", "device", GpuOptions(0, "heuristic", True)) == "cudnn_benchmark=0;tf32=1"
        assert label(None, "cpu", "end-to-end", GpuOptions()) == ""


def test_tensorrt_falls_back_to_cuda_then_cpu_and_cpu_has_no_options():
    names = [n for n, _ in provider_options(SessionConfig("tensorrt"))]
    assert names == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_options(SessionConfig("cpu")) == [("CPUExecutionProvider", {})]
    assert options_label(SessionConfig("cpu")) == ""


@pytest.mark.parametrize("cfg,message", [
    (SessionConfig("cpu", io_mode="device"), "needs a GPU provider"),
    (SessionConfig("tensorrt", io_mode="device-graph"), "need the cuda provider"),
    (SessionConfig("cuda", io_mode="pinned"), "unknown io mode"),
    (SessionConfig("cuda", gpu=GpuOptions(cudnn_conv_algo_search="fastest")), "unknown cuDNN"),
    (SessionConfig("cuda", gpu=GpuOptions(device_id=-1)), "--device-id"),
])
def test_invalid_combinations_are_refused(cfg, message):
    with pytest.raises(UsageError, match=message):
        validate_config(cfg)


# ---------------------------------------------------------------- io modes in the plan


def test_device_modes_apply_only_where_they_mean_something():
    assert applies("onnxruntime", "cpu", "end-to-end") and not applies("onnxruntime", "cpu", "device")
    assert applies("onnxruntime", "cuda", "device-graph") and not applies("torch", "cuda", "device-graph")
    assert applies("torch", "cuda", "device") and not applies("torch", "tensorrt", "device")
    assert applies("onnxruntime", "tensorrt", "device") and not applies("onnxruntime", "tensorrt", "device-graph")


def test_plan_expands_io_modes_for_gpu_providers_only(tmp_path):
    t = Target("m", tmp_path / "m.onnx", "classify", np.zeros((1, 1, 28, 28), np.float32), np.zeros(1, np.int64),
               build_torch=lambda: None)
    axes = Axes(("onnxruntime", "torch"), ("cpu", "cuda"), (AUTO,), (None,), (1,),
                ("end-to-end", "device", "device-graph"))
    cells = {(rt, prov, io) for _, rt, prov, _, _, io in plan([t], axes)}
    assert cells == {("onnxruntime", "cpu", "end-to-end"), ("torch", "cpu", "end-to-end"),
                     ("onnxruntime", "cuda", "end-to-end"), ("onnxruntime", "cuda", "device"),
                     ("onnxruntime", "cuda", "device-graph"), ("torch", "cuda", "end-to-end"),
                     ("torch", "cuda", "device")}


# ---------------------------------------------------------------- CUDA graph requirements


def test_cuda_graph_blockers_follow_ort_policy_memcpy_blocks_cpu_shape_nodes_do_not():
    assert cuda_graph_blockers(Placement(12, 12, 0, 0, {"CUDAExecutionProvider": 12})) is None
    # ONNX Runtime allows CPU nodes that only compute shapes (no copies): its session decides.
    assert cuda_graph_blockers(Placement(12, 10, 2, 0, {})) is None
    why = cuda_graph_blockers(Placement(12, 10, 2, 1, {}))
    assert "1 Memcpy nodes" in why and "2 of 12 nodes on the CPU EP" in why


def test_device_binding_logic_on_host_memory(tmp_path):
    """The IO-binding path (bind once, rebind or update in place, static shape under a graph) run on
    host memory, which is the only device here: the CUDA run is the GPU test below."""
    import dataclasses

    from mnistbench.exporters.onnx import export_onnx

    spec = get_spec("lenet5")
    torch.manual_seed(0)
    path = tmp_path / "l.onnx"
    export_onnx(spec.build().eval(), spec, path, {})
    rng = np.random.default_rng(0)
    x1, x2 = (rng.random((8, 1, 28, 28), dtype=np.float32) for _ in range(2))
    ref = OrtRuntime(path, SessionConfig("cpu"))
    for mode in ("device", "device-graph"):
        rt = OrtRuntime(path, SessionConfig("cpu"))
        rt.cfg, rt._device_type = dataclasses.replace(rt.cfg, io_mode=mode), "cpu"
        rt.prepare(x1)
        y_buffer = rt.run(x1)
        np.testing.assert_allclose(y_buffer.numpy(), ref.run(x1), atol=1e-6)
        y2 = rt.run(x2)  # new data: device mode rebinds, device-graph writes into the bound buffer
        np.testing.assert_allclose(y2.numpy(), ref.run(x2), atol=1e-6)
        assert (y2 is y_buffer) == (mode == "device-graph")
        if mode == "device-graph":
            with pytest.raises(UsageError, match="static shape"):
                rt.run(x1[:4])
        else:
            assert rt.run(x1[:4]).numpy().shape == (4, 10)


# ---------------------------------------------------------------- fallback detection on this host


@pytest.mark.skipif(_cuda_usable(), reason="checks the fallback on a host where CUDA is not usable")
def test_cuda_session_that_falls_back_is_an_error_not_a_row(tmp_path):
    spec = get_spec("zhu-mlp")
    from mnistbench.exporters.onnx import export_onnx

    path = tmp_path / "m.onnx"
    export_onnx(spec.build().eval(), spec, path, {})
    with pytest.raises(ProviderUnavailableError, match="cuda"):
        OrtRuntime(path, SessionConfig("cuda", io_mode="device"))


def test_torch_runtime_guards():
    with pytest.raises(UsageError, match="needs a GPU provider"):
        TorchRuntime(lambda: torch.nn.Identity(), "cpu", io_mode="device")
    with pytest.raises(UsageError, match="io modes"):
        TorchRuntime(lambda: torch.nn.Identity(), "cuda", io_mode="device-graph")
    rt = TorchRuntime(lambda: torch.nn.Flatten(), "cpu")
    rt.prepare(np.ones((2, 1, 2, 2), np.float32))  # end-to-end: nothing bound
    assert rt.run(np.ones((2, 1, 2, 2), np.float32)).shape == (2, 4) and rt.name == "torch"


@pytest.mark.parametrize("args,message", [
    (["--io-mode", "device"], "needs --provider cuda or tensorrt"),
    (["--cuda-graph"], "--cuda-graph needs --provider cuda (it captures"),
    (["--tf32"], "--tf32 only acts with --provider cuda or tensorrt"),
    (["--io-mode", "pinned", "--provider", "cuda"], "unknown io mode"),
    (["--cudnn-algo", "fastest"], "unknown cuDNN"),
])
def test_run_refuses_gpu_options_that_cannot_apply(args, message):
    res = runner.invoke(app, ["run", "--profile", "smoke", *args])
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr


# ---------------------------------------------------------------- schema 4 reads schema 3


def test_results_of_schema_3_still_read(tmp_path):
    from mnistbench.bench.measure.records import error_record

    rec = error_record("x", model="m", batch_size=1, io_mode="device", provider_options="a=1")
    path = tmp_path / "old.csv"
    old_cols = [c for c in COLUMNS if c not in ("io_mode", "provider_options")]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=old_cols, extrasaction="ignore")
        w.writeheader()
        w.writerow(rec.as_row())
    (row,) = read_csv(path)
    assert row.io_mode == "end-to-end" and row.provider_options == "" and row.model == "m"


# ---------------------------------------------------------------- fp16 variant


def test_fp16_variant_keeps_float32_io_and_agrees(tmp_path):
    from mnistbench.exporters.onnx import export_onnx
    from mnistbench.exporters.variants import convert_fp16

    spec = get_spec("lenet5")
    torch.manual_seed(0)
    model = spec.build().eval()
    src, dst = tmp_path / "l.onnx", tmp_path / "l.fp16.onnx"
    export_onnx(model, spec, src, {})
    proto = convert_fp16(src, dst)
    inits = {i.data_type for i in proto.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in inits and onnx.TensorProto.FLOAT not in inits
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["mnistbench.variant"] == "fp16" and meta["mnistbench.model"] == "lenet5"
    x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    y32 = OrtRuntime(src, SessionConfig("cpu")).run(x)
    y16 = OrtRuntime(dst, SessionConfig("cpu")).run(x)
    assert y16.dtype == np.float32
    diff = np.abs(y16 - y32).max()
    assert 0 < diff < 1e-2  # fp16 rounding: not identical, close
    assert np.mean(y16.argmax(1) == y32.argmax(1)) >= 0.98


@pytest.mark.slow
def test_export_fp16_on_real_mnist_reports_parity(mnist_small, tmp_path):
    from mnistbench.bench.measure.pipeline import Artifacts, export_fp16, export_model, train_model

    spec = get_spec("zhu-cnn")
    arts = Artifacts(tmp_path, "mnist", "smoke", 0)
    train_model(spec, mnist_small, arts, "cpu")
    export_model(spec, mnist_small, arts)
    rep = export_fp16(spec, mnist_small, arts)
    assert rep["top1_agreement_vs_torch"] >= 0.99 and rep["max_abs_diff_vs_torch"] < 0.05
    assert json.loads((arts.dir / "zhu-cnn.fp16.export.json").read_text())["variant"] == "fp16"
    assert arts.onnx("zhu-cnn", "fp16").is_file()

    # fp16-io: float16 in and out, fed float16 by the parity report and by the runner
    rep = export_fp16(spec, mnist_small, arts, io_float16=True)
    path = arts.onnx("zhu-cnn", "fp16-io")
    proto = onnx.load(str(path))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert rep["variant"] == "fp16-io" and rep["top1_agreement_vs_torch"] >= 0.99
    assert rep["max_abs_diff_vs_fp32"] < 0.05
    rt = OrtRuntime(path, SessionConfig("cpu"))
    assert rt.input_dtype == np.float16

    from mnistbench.bench.measure.pipeline import eval_inputs, torch_builder
    from mnistbench.bench.measure.runner import run_matrix
    from mnistbench.bench.measure.timing import TimingConfig

    x, y = eval_inputs(spec, mnist_small)
    t = Target("zhu-cnn", path, "classify", x, y, torch_builder(spec, arts), spec.flops, variant="fp16-io")
    rows = run_matrix([t], Axes(batch_sizes=(1, 8)), arts.root / "f.csv",
                      timing=TimingConfig(warmup_iters=1, warmup_s=0, min_iters=3, min_s=0))
    assert [r.status for r in rows] == ["ok", "ok"] and rows[0].variant == "fp16-io", [r.error for r in rows]
    assert rows[0].agreement_top1_vs_torch >= 0.99 and rows[0].max_abs_diff_vs_torch < 0.05


# ---------------------------------------------------------------- TensorRT skipped with a reason


@pytest.mark.skipif(_cuda_usable(), reason="checks TensorRT skipping on a host without it")
def test_tensorrt_absent_is_skipped_with_a_reason_when_other_providers_remain(monkeypatch, tmp_path):
    from mnistbench.bench.launch import planning

    assert planning.check_runtime_providers(["onnxruntime"], ["cpu", "tensorrt"]) == ["cpu"]
    with pytest.raises(ProviderUnavailableError):
        planning.check_runtime_providers(["onnxruntime"], ["tensorrt"])


# ---------------------------------------------------------------- GPU training options


def test_bf16_autocast_and_channels_last_train_on_cpu(tiny_dataset):
    from dataclasses import replace

    from mnistbench.models.train import train

    base = get_spec("zhu-cnn")
    spec = replace(base, recipe=replace(base.recipe, epochs=4, batch_size=32))  # 64 steps on the 512 images
    res = train(spec, tiny_dataset, profile="paper", device="cpu", amp="bf16", channels_last=True)
    assert res.meta["amp"] == "bf16" and res.meta["channels_last"] is True
    assert res.meta["test_metric"] > 0.5  # it learns (chance is 0.1)
    assert all(p.dtype == torch.float32 for p in res.model.parameters())  # weights stay fp32
    with pytest.raises(UsageError, match="--amp"):
        train(get_spec("zhu-cnn"), tiny_dataset, profile="smoke", device="cpu", amp="fp8")


# ---------------------------------------------------------------- on a real GPU


@needs_gpu
def test_device_mode_and_cuda_graph_match_end_to_end(tmp_path):
    from mnistbench.exporters.onnx import export_onnx

    spec = get_spec("lenet5")
    path = tmp_path / "l.onnx"
    export_onnx(spec.build().eval(), spec, path, {})
    x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    ref = OrtRuntime(path, SessionConfig("cuda")).run(x)
    x2 = np.random.default_rng(1).random((8, 1, 28, 28), dtype=np.float32)
    ref2 = OrtRuntime(path, SessionConfig("cuda")).run(x2)
    for mode in ("device", "device-graph"):
        rt = OrtRuntime(path, SessionConfig("cuda", io_mode=mode))
        rt.prepare(x)
        for _ in range(4):  # regular runs, capture, replays
            out = rt.run(x).numpy()
        np.testing.assert_allclose(out, ref, atol=1e-5)
        # new data of the same shape: written into the bound buffer, so a replay sees it
        np.testing.assert_allclose(rt.run(x2).numpy(), ref2, atol=1e-5)
    with pytest.raises(UsageError, match="static shape"):
        rt.run(x[:4])


@needs_gpu
def test_matrix_on_cuda_every_io_mode_with_gpu_peak(tmp_path):
    from mnistbench.bench.measure.runner import run_matrix
    from mnistbench.bench.measure.system import gemm_peaks
    from mnistbench.bench.measure.timing import TimingConfig
    from mnistbench.exporters.onnx import export_onnx

    spec = get_spec("lenet5")
    torch.manual_seed(0)
    model = spec.build().eval()
    path = tmp_path / "l.onnx"
    export_onnx(model, spec, path, {})
    x = np.random.default_rng(0).random((600, 1, 28, 28), dtype=np.float32)
    y = np.zeros(600, np.int64)
    t = Target("lenet5", path, "classify", x, y, lambda: model, spec.flops)
    peaks = gemm_peaks(["cuda"])
    assert peaks["cuda"] > peaks["cpu"]
    axes = Axes(("onnxruntime", "torch"), ("cuda",), (0,), (None,), (1, 64),
                ("end-to-end", "device", "device-graph"))
    rows = run_matrix([t], axes, tmp_path / "g.csv", peak_gflops=peaks,
                      timing=TimingConfig(warmup_iters=2, warmup_s=0, min_iters=10, min_s=0))
    # onnxruntime: 3 io modes; torch: end-to-end and device; x 2 batch sizes
    assert len(rows) == (3 + 2) * 2 and all(r.status == "ok" for r in rows), [r.error for r in rows]
    for r in rows:
        assert r.providers_used.split(";")[0] in ("CUDAExecutionProvider", "torch-cuda")
        assert r.agreement_top1_vs_torch >= 0.99 and r.max_abs_diff_vs_torch < 1e-3
        assert r.peak_fraction == pytest.approx(r.achieved_gflops / peaks["cuda"])
        if r.runtime == "torch":
            assert r.provider_options == "cudnn_benchmark=1;tf32=0"
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32


@needs_gpu
def test_torch_cuda_device_mode(tmp_path):
    rt = TorchRuntime(lambda: get_spec("lenet5").build(), "cuda", io_mode="device")
    x = np.zeros((4, 1, 28, 28), np.float32)
    rt.prepare(x)
    assert rt.run(x).device.type == "cuda"


# ---------------------------------------------------------------- the device-side proof script


def _device_sh(tmp_path, *steps):
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GPU_STAGE": str(tmp_path / "stage"), "PYTHON": __import__("sys").executable}
    return subprocess.run(["bash", str(root / "scripts/gpu/device.sh"), *steps], capture_output=True, text=True,
                          env=env, timeout=120)


def test_device_script_refuses_unknown_steps_and_missing_parts(tmp_path):
    res = _device_sh(tmp_path)
    assert res.returncode == 2 and "name one or more steps" in res.stderr
    res = _device_sh(tmp_path, "status", "reboot")
    assert res.returncode == 2 and "unknown step 'reboot'" in res.stderr and "staged parts: 0" in res.stdout
    res = _device_sh(tmp_path, "install")
    assert res.returncode == 2 and "no wheel.sha256 staged yet" in res.stderr
    # parts staged but one missing: named, nothing installed
    parts = tmp_path / "stage" / "parts"
    parts.mkdir(parents=True, exist_ok=True)  # made by the calls above
    (parts / "wheel.sha256").write_text("0" * 64 + " onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl 3\n")
    (parts / "part-00").write_bytes(b"a")
    (parts / "part-02").write_bytes(b"c")
    res = _device_sh(tmp_path, "install")
    assert res.returncode == 2 and "2 of 3 wheel parts staged (missing: part-01" in res.stderr
    (parts / "part-01").write_bytes(b"b")
    res = _device_sh(tmp_path, "install")
    assert res.returncode == 2 and "does not match its SHA-256" in res.stderr
    assert not (tmp_path / "stage" / "site").exists()


def test_gemm_peak_per_device_cuda_only_where_torch_sees_a_gpu():
    from mnistbench.bench.measure.system import gemm_peaks

    peaks = gemm_peaks(["cpu", "cuda"])
    assert peaks["cpu"] > 0
    assert ("cuda" in peaks) == torch.cuda.is_available()
    assert set(gemm_peaks(["cpu"])) == {"cpu"}
