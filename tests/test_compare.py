"""compare and the regression gate, on CSVs and samples written by the real runner.

Noise calibration at test size: A/A comparisons (the same graph measured on both sides, 5
interleaved runs a side, pooled as `--repeat` pools them) must not be flagged in at least 19 of 20
repeats, and a graph with 20% more MatMul operators must be flagged every time.
"""

from __future__ import annotations


import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from mnistbench.bench import compare as cmp
from mnistbench.bench.cli import app
from mnistbench.bench.runner import Axes, Target, run_matrix
from mnistbench.bench.timing import TimingConfig
from mnistbench.models.errors import UsageError

runner = CliRunner()
TIMING = TimingConfig(warmup_iters=20, warmup_s=0.02, min_iters=100, min_s=0.05)


def matmul_chain(path, k: int):
    """(N, 1, 28, 28) -> reshape -> k MatMuls with a fixed 784 x 784 weight -> 10 columns."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((784, 784)) / 28).astype(np.float32)
    nodes = [helper.make_node("Reshape", ["input", "shape"], ["h0"])]
    for i in range(k):
        nodes.append(helper.make_node("MatMul", [f"h{i}", "w"], [f"h{i + 1}"]))
    nodes.append(helper.make_node("Slice", [f"h{k}", "start", "end", "axis"], ["logits"]))
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([-1, 784], np.int64), "shape"),
             numpy_helper.from_array(np.array([0], np.int64), "start"),
             numpy_helper.from_array(np.array([10], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "axis")]
    g = helper.make_graph(nodes, f"chain{k}", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10  # onnx writes IR 14 by default; ONNX Runtime 1.31 reads up to 13
    onnx.save(m, str(path))
    return path


def measured(tmp, name, path, out, threads=1, batch=4):
    x = np.random.default_rng(1).random((16, 1, 28, 28), dtype=np.float32)
    t = Target("chain", path, "null", x, x[:0])  # same model name on both sides: the rows must join
    run_matrix([t], Axes(threads=(threads,), spinning=(False,), batch_sizes=(batch,)), out, timing=TIMING, score=False)
    return cmp.load(out)


def sides(tmp, base_path, new_path, runs=3):
    """``runs`` runs a side in ABBA order (base, new, new, base, ...), so order and linear drift
    cancel; each side is pooled from its folder as `--repeat` pools runs: the verdict uses the
    median over runs, which one burst cannot move. (With base always first, every flagged A/A
    pair came out "new slower": an order effect, not noise.)"""
    for i in range(runs):
        order = (("base", base_path), ("new", new_path))
        for side, path in (order if i % 2 == 0 else order[::-1]):
            (tmp / side).mkdir(parents=True, exist_ok=True)
            measured(tmp, side, path, tmp / side / f"{i}.csv")
    return cmp.load(tmp / "base"), cmp.load(tmp / "new")


@pytest.fixture(scope="module")
def chains(tmp_path_factory):
    d = tmp_path_factory.mktemp("chains")
    return matmul_chain(d / "c10.onnx", 10), matmul_chain(d / "c12.onnx", 12)


def test_aa_is_not_flagged_in_at_least_19_of_20(chains, tmp_path):
    flagged = []
    for i in range(20):
        (c,), _, _ = cmp.compare(*sides(tmp_path / f"aa{i}", chains[0], chains[0], runs=5))
        if c.verdict in ("slower", "faster"):
            flagged.append(round(c.p50_ratio, 3))
    assert len(flagged) <= 1, flagged


def test_genuine_slowdown_is_flagged(chains, tmp_path):
    verdicts = []
    for i in range(3):
        (c,), _, _ = cmp.compare(*sides(tmp_path / f"s{i}", chains[0], chains[1]))
        verdicts.append((c.verdict, round(c.p50_ratio, 3)))
    assert all(v == "slower" for v, _ in verdicts), verdicts


def test_gate_cli_exit_codes_markdown_and_one_sided_rows(chains, tmp_path):
    base = tmp_path / "base.csv"
    measured(tmp_path, "a", chains[0], base)
    slow = tmp_path / "slow.csv"
    measured(tmp_path, "b", chains[1], slow)
    other = tmp_path / "other.csv"
    measured(tmp_path, "c", chains[0], other, batch=8)  # another configuration: joins nothing
    res = runner.invoke(app, ["compare", str(base), str(slow), "--fail-on", "p50:+5%", "--format", "markdown"])
    assert res.exit_code == 1, res.output
    assert "| chain |" in res.stdout and "slower" in res.stdout and "crosses p50:+5%" in res.stderr
    res = runner.invoke(app, ["compare", str(base), str(slow), "--fail-on", "p50:+80%"])
    assert res.exit_code == 0 and "gate: passed" in res.stderr
    res = runner.invoke(app, ["compare", str(base), str(other)])
    assert res.exit_code == 0 and "only in base: chain" in res.stderr and "only in new: chain" in res.stderr
    for bad in (["compare", str(base), str(slow), "--fail-on", "p50:5"], ["compare", str(base), str(tmp_path / "nope.csv")],
                ["compare", str(base), str(slow), "--fail-on", "accuracy:-1%"]):
        res = runner.invoke(app, bad)
        assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.output


def test_rules_parse():
    rules = cmp.parse_rules("p50:+5%, accuracy:-0.1pp,throughput:-5%")
    assert [str(r) for r in rules] == ["p50:+5%", "accuracy:-0.1pp", "throughput:-5%"]
    with pytest.raises(UsageError):
        cmp.parse_rules("latency:+5%")


def test_verdicts_from_samples():
    rng = np.random.default_rng(0)
    base = rng.normal(100, 5, 2000)
    assert cmp.test_change(base, rng.normal(100, 5, 2000), 1.0)[1] in ("same", "noise")
    assert cmp.test_change(base, rng.normal(102, 5, 2000), 1.02)[1] == "noise"  # significant but below 5%
    assert cmp.test_change(base, rng.normal(115, 5, 2000), 1.15)[1] == "slower"
    assert cmp.test_change(None, base, 1.0)[1] == "n/a"
