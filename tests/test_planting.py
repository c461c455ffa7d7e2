"""The calibration's planted copies: Mul-by-ones chains on the input or the output of a real
exported network, outputs bit-for-bit the same, the node count as asked, and the site each level
gets."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mnistbench.bench.analysis.planting import SMALL_LEVEL, planted, site_of
from mnistbench.exporters.onnx import export_onnx
from mnistbench.models.errors import UsageError
from mnistbench.models.registry import get_spec


@pytest.fixture(scope="module")
def lenet5_onnx(tmp_path_factory):
    spec = get_spec("lenet5")
    path = tmp_path_factory.mktemp("plant") / "lenet5.onnx"
    export_onnx(spec.build(), spec, path, {})
    return path


def _run(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("site", ["input", "output"])
def test_copies_compute_the_same_logits_with_k_extra_mul_nodes(lenet5_onnx, tmp_path, site):
    x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    base = planted(lenet5_onnx, tmp_path / "base.onnx", 0, 8)
    copy = planted(lenet5_onnx, tmp_path / "copy.onnx", 5, 8, site)
    assert np.array_equal(_run(base, x), _run(copy, x))
    g0, g = onnx.load(str(base)).graph, onnx.load(str(copy)).graph
    muls = [n for n in g.node if n.name.startswith("calibration_mul_")]
    assert len(g.node) == len(g0.node) + 5 and len(muls) == 5
    out = g.output[0].name
    if site == "output":  # the chain ends in the model's own output name, fed by the last original node
        assert muls[-1].output[0] == out and g.node[-1].output[0] == out
        assert [n.output[0] for n in g.node].count(out) == 1
    else:
        assert g.node[0].input[0] == g.input[0].name and muls[-1].output[0] in g.node[5].input
    assert [d.dim_value for d in g.output[0].type.tensor_type.shape.dim] == [8, 10]


def test_small_levels_go_on_the_output_and_larger_on_the_input():
    assert site_of(SMALL_LEVEL) == "output" and site_of(-SMALL_LEVEL) == "output" and site_of(0.005) == "output"
    assert site_of(0.02) == "input" and site_of(-0.03) == "input" and site_of(0.0) == "input"


def test_unknown_site_and_two_outputs_are_refused(lenet5_onnx, tmp_path):
    with pytest.raises(UsageError, match="unknown node site"):
        planted(lenet5_onnx, tmp_path / "x.onnx", 1, 8, "middle")
    m = onnx.load(str(lenet5_onnx))
    m.graph.output.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, [None, 10]))
    two = tmp_path / "two.onnx"
    onnx.save(m, str(two))
    with pytest.raises(UsageError, match="one output"):
        planted(two, tmp_path / "y.onnx", 1, 8, "output")


def test_refine_finds_the_count_whose_measured_ratio_is_nearest_the_level(lenet5_onnx, tmp_path, monkeypatch):
    """A copy's cost with a fixed part the big-copy slope misses (0.7% + 0.07% a node): the slope
    alone asks 14 nodes for 1% (measured 1.68%); refine measures that, removes the fixed part and
    lands on 4 nodes (0.98%)."""
    from types import SimpleNamespace

    from mnistbench.bench.analysis import calibrate as cal

    calls = []

    def fake_live(a, b, batch, inputs, work, stages=None, max_s=None):
        k = sum(n.name.startswith("calibration_mul_") for n in onnx.load(str(b)).graph.node)
        calls.append((k, stages))
        return SimpleNamespace(ratio=1 + 0.007 + 0.0007 * k), stages, 1.0

    monkeypatch.setattr(cal, "_live_ratio", fake_live)
    cfg = cal.Config("lenet5", lenet5_onnx, 8)
    k = cal.refine(cfg, 0.01, 14, 0.0007, np.zeros((8, 1, 28, 28), np.float32), tmp_path)
    assert k == 4 and calls[0] == (14, cal.REFINE_STAGES) and all(st == cal.REFINE_STAGES for _, st in calls)
    assert abs(0.007 + 0.0007 * k - 0.01) < 0.0005
