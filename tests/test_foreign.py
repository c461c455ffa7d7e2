"""`run --onnx`: MNIST classifiers mnistbench did not produce, in every input shape it accepts.

The ONNX files are built here with onnx.helper from a really trained zhu-mlp
(784 -> 300 sigmoid -> 10), so each variant must reproduce that model's
accuracy exactly; only the graph's packaging differs.
"""

from __future__ import annotations

import csv

import numpy as np
import onnx
import pytest
import torch
from mnistbench.bench.cli import app
from mnistbench.bench.runtimes.foreign import inspect
from mnistbench.models.errors import UsageError
from mnistbench.models.preprocess import preprocess
from mnistbench.models.registry import get_spec
from mnistbench.models.train import train
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture(scope="module")
def mlp(mnist_small, mnist):
    """Trained zhu-mlp weights and its accuracy on the full real test set (PyTorch)."""
    res = train(get_spec("zhu-mlp"), mnist_small, profile="smoke", device="cpu")
    sd = {k: v.numpy() for k, v in res.model.state_dict().items()}
    with torch.no_grad():
        logits = res.model(torch.from_numpy(preprocess(mnist.test_images, "unit"))).numpy()
    return sd, float(np.mean(logits.argmax(1) == mnist.test_labels))


def build(path, sd, *, in_shape, opset=18, softmax=False, raw=False, external=False, ir=None):
    """An MLP graph: [Mul 1/255] -> Reshape(N,784) -> Gemm -> Sigmoid -> Gemm [-> Softmax]."""
    inits = [numpy_helper.from_array(sd["net.1.weight"], "w1"), numpy_helper.from_array(sd["net.1.bias"], "b1"),
             numpy_helper.from_array(sd["net.3.weight"], "w2"), numpy_helper.from_array(sd["net.3.bias"], "b2"),
             numpy_helper.from_array(np.array([-1, 784], np.int64), "flat"),
             numpy_helper.from_array(np.array(1 / 255, np.float32), "scale")]
    nodes, x = [], "image"
    if raw:
        nodes.append(helper.make_node("Mul", [x, "scale"], ["scaled"]))
        x = "scaled"
    nodes += [helper.make_node("Reshape", [x, "flat"], ["f"]),
              helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], transB=1),
              helper.make_node("Sigmoid", ["h"], ["s"]),
              helper.make_node("Gemm", ["s", "w2", "b2"], ["logits" if not softmax else "z"], transB=1)]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["logits"], axis=1))
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("image", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [in_shape[0], 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="someone-else")
    m.ir_version = ir or (3 if opset <= 8 else 8)
    if ir is None and opset <= 8:
        m.ir_version = 4  # IR 4: initializers need not be graph inputs
    onnx.checker.check_model(m)
    if external:
        onnx.save(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data")  # weights external, small shape tensors inline
    else:
        onnx.save(m, str(path))
    return path


VARIANTS = {
    "nchw-dynamic": dict(in_shape=["N", 1, 28, 28]),
    "nhwc": dict(in_shape=["N", 28, 28, 1]),
    "flat": dict(in_shape=["N", 784]),
    "hw": dict(in_shape=["N", 28, 28]),
    "softmax-output": dict(in_shape=["N", 1, 28, 28], softmax=True),
    "opset7": dict(in_shape=["N", 1, 28, 28], opset=7),
    "external-data": dict(in_shape=["N", 1, 28, 28], external=True),
}


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_foreign_variants_reproduce_the_models_accuracy(variant, mlp, real_data_root, tmp_path):
    sd, acc = mlp
    path = build(tmp_path / f"{variant}.onnx", sd, **VARIANTS[variant])
    out = tmp_path / "r.csv"
    res = runner.invoke(app, ["run", "--onnx", str(path), "--batch-sizes", "1,16", "--min-s", "0", "--min-iters", "3",
                              "--no-null", "--data-dir", str(real_data_root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [r for r in csv.DictReader(open(out)) if r["task"] != "reference"]  # the drift reference aside
    assert [r["batch_size"] for r in rows] == ["1", "16"]
    for r in rows:
        assert r["variant"] == "foreign" and r["model"] == variant and r["status"] == "ok"
        assert float(r["accuracy_top1"]) == pytest.approx(acc, abs=1e-4)
        assert r["flops_per_image"] == "-1" and r["agreement_top1_vs_torch"] == ""
    if variant == "external-data":
        assert (tmp_path / f"{variant}.onnx.data").stat().st_size > 900_000


@pytest.mark.integration
def test_fixed_batch_runs_only_at_its_size_and_scores_every_image(mlp, real_data_root, tmp_path):
    sd, acc = mlp
    path = build(tmp_path / "fixed.onnx", sd, in_shape=[32, 1, 28, 28])  # 10,000 is not a multiple of 32
    out = tmp_path / "r.csv"
    res = runner.invoke(app, ["run", "--onnx", str(path), "--min-s", "0", "--min-iters", "3", "--no-null",
                              "--data-dir", str(real_data_root), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "fixed batch size 32" in res.stderr
    rows = [r for r in csv.DictReader(open(out)) if r["task"] != "reference"]  # the drift reference aside
    assert [r["batch_size"] for r in rows] == ["32"]
    assert float(rows[0]["accuracy_top1"]) == pytest.approx(acc, abs=1e-4) and rows[0]["eval_images"] == "10000"


@pytest.mark.slow
@pytest.mark.integration
def test_preprocess_choice_matters_for_a_raw_pixel_model(mlp, real_data_root, tmp_path):
    sd, acc = mlp
    path = build(tmp_path / "raw.onnx", sd, in_shape=["N", 1, 28, 28], raw=True)
    accs = {}
    for kind in ("raw", "unit"):
        out = tmp_path / f"{kind}.csv"
        res = runner.invoke(app, ["run", "--onnx", str(path), "--preprocess", kind, "--batch-sizes", "8",
                                  "--min-s", "0", "--min-iters", "3", "--no-null", "--data-dir", str(real_data_root),
                                  "--out", str(out)])
        assert res.exit_code == 0, res.output
        accs[kind] = float(next(r for r in csv.DictReader(open(out)) if r["task"] != "reference")["accuracy_top1"])
    assert accs["raw"] == pytest.approx(acc, abs=1e-4) and accs["unit"] < acc - 0.2


def test_layout_detection_and_override(mlp, tmp_path):
    sd, _ = mlp
    assert inspect(build(tmp_path / "a.onnx", sd, in_shape=["N", 28, 28, 1])).layout == "nhwc"
    m = inspect(build(tmp_path / "b.onnx", sd, in_shape=[4, 1, 28, 28], opset=7))
    assert (m.layout, m.fixed_batch, m.opset) == ("nchw", 4, 7)
    assert inspect(tmp_path / "b.onnx", "nhwc").layout == "nhwc"  # the user's word wins when the rank fits
    with pytest.raises(UsageError, match="needs an input of rank 2"):
        inspect(tmp_path / "b.onnx", "flat")


@pytest.mark.parametrize("shape, message", [
    (["N", 3, 28, 28], "is no MNIST layout"),
    (["N", 1, 28, 28, 1], "rank 5"),
    (["N", 32, 32], "is no MNIST layout"),
])
def test_wrong_input_shapes_are_refused(mlp, tmp_path, shape, message):
    sd, _ = mlp
    h = helper
    g = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "g", [h.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                     [h.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 18)])
    m.ir_version = 10
    onnx.save(m, str(tmp_path / "w.onnx"))
    with pytest.raises(UsageError, match=message):
        inspect(tmp_path / "w.onnx")


def test_a_batch_axis_written_as_minus_one_is_dynamic(mlp, real_data_root, tmp_path):
    """tf2onnx and others write a dynamic axis as dim_value -1: inspected as dynamic, and run at every
    batch size asked (it ended in `need at least one array to concatenate` before)."""
    sd, acc = mlp
    path = build(tmp_path / "neg.onnx", sd, in_shape=[-1, 1, 28, 28])
    assert inspect(path).fixed_batch is None
    out = tmp_path / "r.csv"
    res = runner.invoke(app, ["run", "--onnx", str(path), "--min-s", "0", "--min-iters", "3", "--no-null",
                              "--no-reference", "--batch-sizes", "1,8", "--data-dir", str(real_data_root),
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(out)))
    assert [r["batch_size"] for r in rows] == ["1", "8"]
    assert float(rows[0]["accuracy_top1"]) == pytest.approx(acc, abs=1e-4)
