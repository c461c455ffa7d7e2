"""Memory columns (schema 7): the process's peak resident set over a cell's blocks and the resident
growth of opening its session, in MiB, measured on real ONNX Runtime sessions of models whose weights
differ by a known size."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from mnistbench.bench.measure import memory
from mnistbench.bench.measure.records import read_csv
from mnistbench.bench.measure.runner import Axes, Target, run_matrix
from mnistbench.bench.measure.timing import TimingConfig
from onnx import TensorProto, helper, numpy_helper


def wide(path, columns: int):
    """(N, 1, 28, 28) -> (N, 10) through one MatMul with a 784 x ``columns`` float32 weight
    (``columns * 784 * 4`` bytes), then the first 10 columns."""
    w = np.full((784, columns), 1e-3, np.float32)
    g = helper.make_graph(
        [helper.make_node("Reshape", ["input", "shape"], ["h"]), helper.make_node("MatMul", ["h", "w"], ["y"]),
         helper.make_node("Slice", ["y", "start", "end", "axis"], ["logits"])], "wide",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([-1, 784], np.int64), "shape"),
         numpy_helper.from_array(np.array([0], np.int64), "start"), numpy_helper.from_array(np.array([10], np.int64), "end"),
         numpy_helper.from_array(np.array([1], np.int64), "axis")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10
    onnx.save(m, str(path))
    return path


def test_a_window_sees_a_peak_that_is_gone_by_its_end():
    w = memory.PeakWindow()
    block = np.ones(256 * memory.MIB // 8)  # 256 MiB, touched
    block.sum()
    del block
    after = memory.rss_bytes() / memory.MIB
    if not w.exact:
        pytest.skip("no resettable peak resident set here (/proc/self/clear_refs): the window reads its ends only")
    assert w.peak_mib() >= after + 200  # the freed 256 MiB still show in the window's peak
    assert memory.PeakWindow().peak_mib() < after + 50  # a new window starts from now


def test_rows_carry_session_growth_and_peak_in_mib(tmp_path):
    small, big = wide(tmp_path / "small.onnx", 16), wide(tmp_path / "big.onnx", 40_000)  # 0.05 MB and 125 MB of weights
    x = np.random.default_rng(0).random((8, 1, 28, 28), dtype=np.float32)
    targets = [Target(n, p, "null", x, x[:0], flops=None) for n, p in (("small", small), ("big", big))]
    out = tmp_path / "m.csv"
    rss_before = memory.rss_bytes() / memory.MIB
    rows = run_matrix(targets, Axes(threads=(1,), batch_sizes=(1,)), out, score=False,
                      timing=TimingConfig(warmup_iters=2, warmup_s=0.0, min_iters=4, min_s=0.0, rounds=2))
    by = {r.model: r for r in read_csv(out)}
    assert [r.model for r in rows] == [r.model for r in read_csv(out)]
    weights_mib = 784 * 40_000 * 4 / memory.MIB  # 119.6 MiB
    assert by["big"].session_rss_mib >= 0.8 * weights_mib  # the session holds its weights
    assert abs(by["small"].session_rss_mib) < 0.2 * weights_mib
    for r in by.values():  # both sessions alive in one group: the peak is the group's footprint, in MiB
        assert math.isfinite(r.peak_rss_mib) and weights_mib < r.peak_rss_mib < rss_before + 4 * weights_mib + 256
