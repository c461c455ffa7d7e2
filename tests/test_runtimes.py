"""Runtimes behind one interface (bench/runtimes/base.py): the registry, and a runtime registered in a
few lines (onnx's pure-Python reference evaluator) that `run` and the live A/B measure like any other."""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
from mnistbench.bench import api
from mnistbench.bench.cli import app
from mnistbench.bench.measure.runner import RUNTIME_VARIANTS, RUNTIMES, applies
from mnistbench.bench.runtimes.base import Runtime, get_runtime, register, runtime_names, unregister
from mnistbench.models.errors import UsageError
from onnx.reference import ReferenceEvaluator
from typer.testing import CliRunner


class ReferenceSession:
    """A session of onnx's reference evaluator: float32 batch in, the first output out."""

    def __init__(self, path):
        t0 = time.perf_counter()
        self.evaluator = ReferenceEvaluator(str(path))
        self.create_ms = (time.perf_counter() - t0) * 1e3
        self.providers_used, self.input_dtype = ["onnx-reference"], np.float32

    def prepare(self, x):
        pass

    def run(self, x):
        return self.evaluator.run(None, {self.evaluator.input_names[0]: x})[0]


class OnnxReference(Runtime):
    name, variants, graph_optimization = "onnx-reference", ("fp32", "foreign"), "none"

    def open(self, target, provider, threads, spinning, io_mode, gpu):
        return ReferenceSession(target.path)


@pytest.fixture()
def reference_runtime():
    register(OnnxReference)
    yield get_runtime("onnx-reference")
    unregister("onnx-reference")


def test_the_built_in_runtimes_are_registered_in_order():
    assert runtime_names()[:4] == RUNTIMES == ("onnxruntime", "torch", "torch.compile", "openvino")
    assert RUNTIME_VARIANTS["onnxruntime"] == ("fp32", "int8", "fp16", "fp16-io", "foreign")
    assert RUNTIME_VARIANTS["openvino"] == ("fp32", "bf16", "int8", "foreign")
    assert get_runtime("torch").needs_checkpoint and not get_runtime("openvino").needs_checkpoint
    assert [get_runtime(n).graph_optimization for n in RUNTIMES] == ["all", "eager", "compiled", "compiled"]


@pytest.mark.parametrize("runtime, provider, io_mode, exists", [
    ("onnxruntime", "tensorrt", "end-to-end", True), ("onnxruntime", "cuda", "device-graph", True),
    ("onnxruntime", "tensorrt", "device-graph", False), ("onnxruntime", "cpu", "device", False),
    ("onnxruntime", "tensorrt", "device", True), ("torch", "cuda", "device", True),
    ("torch", "tensorrt", "end-to-end", False), ("torch.compile", "cuda", "device-graph", False),
    ("openvino", "cuda", "end-to-end", False), ("openvino", "cpu", "end-to-end", True),
])
def test_which_cells_exist(runtime, provider, io_mode, exists):
    assert applies(runtime, provider, io_mode) is exists


def test_a_name_is_registered_once_and_an_unknown_one_lists_the_registered(reference_runtime):
    with pytest.raises(ValueError, match="already registered"):
        register(OnnxReference)
    with pytest.raises(UsageError, match="unknown runtime 'nope'; choose one of: onnxruntime, torch, torch.compile, "
                                         "openvino, onnx-reference"):
        get_runtime("nope")


@pytest.mark.integration
@pytest.mark.slow
def test_a_registered_runtime_runs_through_run_like_onnx_runtime(reference_runtime, matmul_chain, tmp_path,
                                                                 real_data_root):
    if not (real_data_root / "mnist").is_dir():
        pytest.skip(f"real MNIST not found under {real_data_root}")
    chain = matmul_chain(tmp_path / "chain.onnx", 2)
    out = tmp_path / "r.csv"
    res = CliRunner().invoke(app, ["run", "--onnx", str(chain), "--runtime", "onnxruntime,onnx-reference",
                                   "--batch-sizes", "4", "--rounds", "2", "--min-s", "0.05", "--threads", "1",
                                   "--no-null", "--no-reference", "--out", str(out), "--data-dir", str(real_data_root)])
    assert res.exit_code == 0, res.output
    rows = {r["runtime"]: r for r in csv.DictReader(open(out))}
    ref, ort = rows["onnx-reference"], rows["onnxruntime"]
    assert (ref["status"], ref["providers_used"], ref["graph_optimization"], ref["spinning"]) == \
        ("ok", "onnx-reference", "none", "n/a")
    # the same file on the full test set: the same top-1 from both runtimes, and real timings
    assert ref["accuracy_top1"] == ort["accuracy_top1"] and 0 < float(ref["accuracy_top1"]) < 1
    assert float(ref["latency_p50_ms"]) > 0 and float(ref["throughput_ips"]) > 0
    assert ref["config_id"] != ort["config_id"]


@pytest.mark.integration
@pytest.mark.slow
def test_a_registered_runtime_runs_through_the_live_ab(reference_runtime, matmul_chain, tmp_path, real_data_root):
    if not (real_data_root / "mnist").is_dir():
        pytest.skip(f"real MNIST not found under {real_data_root}")
    a, b = matmul_chain(tmp_path / "c1.onnx", 1), matmul_chain(tmp_path / "c8.onnx", 8)
    res = api.compare_live(str(a), str(b), axes=api.Axes(runtimes=("onnx-reference",), threads=(1,),
                                                         batch_sizes=(4,)),
                           timing=api.TimingConfig(min_s=0.05, rounds=3), sessions=1, max_s=30,
                           out_path=tmp_path / "live.csv", data_dir=real_data_root, artifacts_dir=tmp_path / "arts")
    (c,) = res.changes
    assert c.key[2] == "onnx-reference" and c.verdict == "slower" and c.ratio > 2, c
    rows = list(csv.DictReader(open(tmp_path / "live.csv")))
    assert {r["runtime"] for r in rows} == {"onnx-reference"}
