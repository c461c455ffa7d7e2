"""The benchmark matrix (bench/measure/runner.py).

Pinned first, without training: a row's figures from its blocks (``_record``), and the interleaved
run's exact call counts, rounds, cell ids, committed rows and samples, on a small MatMul-chain model
(a few seconds), some on a clock that steps only when the model runs. These pin exact numbers; they
were written to kill the survivors of mutation testing (issue 19, scripts/mutation.py).

Then on real trained models: rows, agreement, placement, samples, error rows.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from mnistbench.bench.measure import runner
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.metrics import BlockCI, BlockSet
from mnistbench.bench.measure.pipeline import (
    NULL_MODEL,
    Artifacts,
    eval_inputs,
    export_model,
    null_model,
    onnx_for,
    torch_builder,
    train_model,
)
from mnistbench.bench.measure.records import COLUMNS, read_csv
from mnistbench.bench.measure.runner import Axes, Target, _Cell, _record, plan, run_matrix
from mnistbench.bench.measure.samples import CellSamples
from mnistbench.bench.measure.timing import TimingConfig
from mnistbench.bench.runtimes import runtime as rt_mod
from mnistbench.bench.runtimes.runtime import Placement
from mnistbench.models.errors import UsageError
from mnistbench.models.registry import get_spec

# --- Pinned without training, on a MatMul chain (issue 19: written against mutation survivors) --------

MS = 1_000_000
QUALITY = {"accuracy_top1": 0.98, "test_mse": math.nan, "agreement_top1_vs_torch": 1.0, "max_abs_diff_vs_torch": 2e-6}


def fake_cell(flops=1_000_000, runtime="onnxruntime", provider="cpu", inputs=100) -> _Cell:
    t = Target("m", None, "classify", np.zeros((inputs, 1, 28, 28), np.float32), np.zeros(inputs, np.int64),
               flops=flops)
    values = dict(run_id="run", repeat=0, host="h", model="m", variant="fp32", dataset="mnist", task="classify",
                  runtime=runtime, provider=provider, batch_size=8, threads_requested="1", spinning="off",
                  io_mode="end-to-end", provider_options="", onnx_sha256="s", opset=18, cpu_model="c",
                  onnxruntime_version="1", torch_version="2", onnx_version="1", mnistbench_version="0",
                  checkpoint_profile="", checkpoint_seed="", checkpoint_sha256="", pinned_cpus="", config_id="cfg")
    return _Cell((t, runtime, provider, 1, False, "end-to-end"), 8, values, None, None, 3, 4.5, 7, dict(QUALITY),
                 Placement(5, 4, 1, 2, {}), "CPUExecutionProvider", 12.5, 0.001)


SMP = CellSamples.from_blocks([np.array([1, 2, 3], np.int64) * MS, np.array([4, 5], np.int64) * MS,
                               np.array([10], np.int64) * MS], [6 * MS, 9 * MS, 10 * MS], [0, 1, 2])


def test_record_figures_from_the_blocks():
    r = _record(fake_cell(), SMP, "run-r0-0003", {"cpu": 100.0, "cuda": 1000.0}, True, 2, 5)
    assert (r.cell_id, r.status, r.config_id, r.interleave_group, r.group_cells) == ("run-r0-0003", "ok", "cfg", "2", 5)
    assert (r.timed_iters, r.rounds, r.warmup_iters) == (6, 3, 7)
    assert r.timed_wall_s == pytest.approx(0.025)
    assert (r.latency_min_ms, r.latency_p50_ms, r.latency_max_ms) == (1.0, 3.5, 10.0)
    assert r.latency_mean_ms == pytest.approx(25 / 6)
    assert r.latency_std_ms == pytest.approx(np.std([1, 2, 3, 4, 5, 10], ddof=1))
    assert r.latency_cv == pytest.approx(r.latency_std_ms / r.latency_mean_ms)
    assert math.isnan(r.latency_p90_ms) and math.isnan(r.latency_p99_ms)
    assert r.throughput_ips == pytest.approx(8 * 6 / 0.025)
    assert r.achieved_gflops == pytest.approx(1e6 * 1920 / 1e9)
    assert r.achieved_gflops == 1e6 * r.throughput_ips / 1e9  # exactly: GFLOP/s, 10^9
    assert r.peak_fraction == pytest.approx(1e6 * 1920 / 1e9 / 100.0)
    ci = BlockCI.of(BlockSet.from_blocks(SMP.blocks(), SMP.block_wall_ns, SMP.block_round, 8))
    assert (r.latency_p50_ci_low_ms, r.latency_p50_ci_high_ms) == (ci.p50_low_ms, ci.p50_high_ms)
    assert (r.throughput_ci_low_ips, r.throughput_ci_high_ips) == (ci.ips_low, ci.ips_high)
    assert r.p50_ci_halfwidth_rel == pytest.approx((ci.p50_high_ms - ci.p50_low_ms) / 2 / 3.5)
    assert (r.session_create_ms, r.first_inference_ms, r.intra_op_threads) == (12.5, 4.5, 3)
    assert (r.providers_used, r.graph_optimization, r.eval_images) == ("CPUExecutionProvider", "all", 100)
    assert (r.nodes_total, r.nodes_on_provider, r.nodes_on_cpu, r.memcpy_nodes) == (5, 4, 1, 2)
    assert (r.accuracy_top1, r.max_abs_diff_vs_torch, r.flops_per_image) == (0.98, 2e-6, 1_000_000)


def test_record_peak_by_device_and_unknown_flops():
    r = _record(fake_cell(provider="cuda"), SMP, "c", {"cpu": 100.0, "cuda": 1000.0}, True, 1, 1)
    assert r.peak_fraction == pytest.approx(1.92 / 1000.0)
    r = _record(fake_cell(), SMP, "c", {"cpu": 0.0}, True, 1, 1)
    assert math.isnan(r.peak_fraction) and r.achieved_gflops == pytest.approx(1.92)
    r = _record(fake_cell(), SMP, "c", {}, True, 1, 1)
    assert math.isnan(r.peak_fraction)
    r = _record(fake_cell(flops=None), SMP, "c", {"cpu": 100.0}, True, 1, 1)
    assert r.flops_per_image == -1 and math.isnan(r.achieved_gflops) and math.isnan(r.peak_fraction)
    r = _record(fake_cell(runtime="torch"), SMP, "c", {"cpu": 100.0}, False, 1, 1)
    assert (r.graph_optimization, r.eval_images) == ("eager", 0)
    two = CellSamples.from_blocks([np.array([1, 3], np.int64) * MS] * 2, [4 * MS] * 2, [0, 1])
    r = _record(fake_cell(), two, "c", {}, True, 1, 1)
    assert r.rounds == 2 and math.isnan(r.latency_p50_ci_low_ms) and math.isnan(r.p50_ci_halfwidth_rel)


@pytest.fixture(scope="module")
def chain(tmp_path_factory, matmul_chain):
    return matmul_chain(tmp_path_factory.mktemp("chain") / "c2.onnx", 2)


def target(path, name="chain", n=16) -> Target:
    x = np.random.default_rng(1).random((n, 1, 28, 28), dtype=np.float32)
    return Target(name, path, "null", x, x[:0], flops=2 * 2 * 784 * 784)


def test_interleaved_run_exact_counts(chain, tmp_path):
    """warm-up 3 calls (0 s), 3 rounds of 2 calls (6 calls, 0 s): each cell gets exactly 3 blocks of
    2 calls, one per round, in round order; rows and samples are committed together."""
    timing = TimingConfig(warmup_iters=3, warmup_s=0.0, min_iters=6, min_s=0.0, rounds=3)
    out = tmp_path / "r.csv"
    seen = []
    rows = run_matrix([target(chain)], Axes(threads=(1,), spinning=(False,), batch_sizes=(1, 4)), out,
                      timing=timing, score=False, repeat=2, shuffle_seed=5, peak_gflops=50.0,
                      progress=lambda d, done, total: seen.append((d, done, total)))
    assert [r.batch_size for r in rows] == [1, 4] or [r.batch_size for r in rows] == [4, 1]
    smp = samples_io.load(out)
    run_id = rows[0].run_id
    assert [r.cell_id for r in rows] == [f"{run_id}-r2-0000", f"{run_id}-r2-0001"]
    assert [r.cell_id for r in read_csv(out)] == [r.cell_id for r in rows]
    for r in rows:
        s = smp[r.cell_id]
        assert (r.status, r.warmup_iters, r.timed_iters, r.rounds, r.repeat) == ("ok", 3, 6, 3, 2)
        assert s.block_n.tolist() == [2, 2, 2] and s.block_round.tolist() == [0, 1, 2]
        assert r.timed_wall_s == s.block_wall_ns.sum() / 1e9
        assert r.latency_p50_ms == pytest.approx(np.median(s.ns) / 1e6, rel=1e-12)
        assert r.throughput_ips == pytest.approx(r.batch_size * 6 / r.timed_wall_s)
        assert r.achieved_gflops == pytest.approx(2 * 2 * 784 * 784 * r.throughput_ips / 1e9)
        assert r.peak_fraction == pytest.approx(r.achieved_gflops / 50.0)
        assert (r.interleave_group, r.group_cells) == ("1", 2)
        assert math.isnan(r.accuracy_top1) and r.eval_images == 0
        assert r.first_inference_ms > 0 and r.session_create_ms > 0 and r.intra_op_threads == 1
        assert all(w >= n for w, n in zip(s.block_wall_ns, (s.blocks()[i].sum() for i in range(3))))
    rounds_seen = [d for d, _, _ in seen if "round" in d]
    assert rounds_seen == [f"group 1: round {i}/3 over 2 cells" for i in (1, 2, 3)]
    assert all(total == 2 for _, _, total in seen)


def test_groups_of_at_most_max_live_cells(chain, tmp_path):
    timing = TimingConfig(warmup_iters=1, warmup_s=0.0, min_iters=2, min_s=0.0, rounds=2)
    out = tmp_path / "g.csv"
    rows = run_matrix([target(chain)], Axes(threads=(1,), spinning=(False,), batch_sizes=(1, 2, 4)), out,
                      timing=timing, score=False, max_live=2, shuffle_seed=0)
    assert sorted((r.interleave_group, r.group_cells) for r in rows) == [("1", 2), ("1", 2), ("2", 1)]
    assert len(samples_io.load(out)) == 3 and all(r.timed_iters == 2 and r.rounds == 2 for r in rows)


def test_a_cell_failing_in_a_round_is_an_error_row(chain, tmp_path, monkeypatch):
    """A call that raises during round 2 makes that cell an error row (no samples); the other cell
    keeps all its rounds."""
    timing = TimingConfig(warmup_iters=1, warmup_s=0.0, min_iters=3, min_s=0.0, rounds=3)
    real = runner.measure_block
    calls = {"n": 0}

    def flaky(fn, min_iters, min_s, reentry=2, pause_s=0.005):
        calls["n"] += 1
        ns, wall = real(fn, min_iters, min_s, reentry, pause_s)
        if calls["n"] == 4:  # round 2, one of the cells
            from onnxruntime.capi.onnxruntime_pybind11_state import Fail
            raise Fail("boom\nsecond line")
        return ns, wall

    monkeypatch.setattr(runner, "measure_block", flaky)
    out = tmp_path / "e.csv"
    rows = run_matrix([target(chain)], Axes(threads=(1,), spinning=(False,), batch_sizes=(1, 4)), out,
                      timing=timing, score=False, shuffle_seed=1)
    by = {r.status: r for r in rows}
    assert sorted(by) == ["error", "ok"]
    assert by["error"].error == "Fail: boom" and math.isnan(by["error"].latency_p50_ms)
    assert by["ok"].rounds == 3 and by["ok"].timed_iters == 3
    assert list(samples_io.load(out)) == [by["ok"].cell_id]
    assert calls["n"] == 5  # the failed cell is skipped in round 3


class SteppingClock:
    """perf_counter / perf_counter_ns that advance only when the model runs: 100 ms a call."""

    STEP_NS = 100_000_000

    def __init__(self) -> None:
        self.t = 10**12
        self.calls: dict[int, int] = {}

    def ns(self) -> int:
        return self.t

    def s(self) -> float:
        return self.t / 1e9


def stepping_runtime(monkeypatch) -> "SteppingClock":
    """Every ONNX Runtime call takes exactly one clock step (counted per batch size); sleeps are free."""
    import time

    from mnistbench.bench.runtimes import runtime as rt_mod

    clock = SteppingClock()
    real = rt_mod.OrtRuntime.run

    def run(self, x):
        out = real(self, x)
        clock.t += clock.STEP_NS
        clock.calls[len(x)] = clock.calls.get(len(x), 0) + 1
        return out

    monkeypatch.setattr(rt_mod.OrtRuntime, "run", run)
    monkeypatch.setattr(time, "perf_counter_ns", clock.ns)
    monkeypatch.setattr(time, "perf_counter", clock.s)
    monkeypatch.setattr(time, "sleep", lambda s: None)
    return clock


def test_a_run_on_a_stepping_clock_has_exact_figures(chain, tmp_path, monkeypatch):
    """Every call takes exactly 100 ms on the clock. Warm-up: 2 calls and 0.25 s -> 3 calls, 100 ms
    each, so 2 re-entry calls fit a quarter of a 1 s block (2 x 0.1 <= 0.25). 2 rounds of at least 1
    call and 1 s -> 10 calls a block. Per cell: 1 first call + 3 warm-up + 2 x (2 + 10) = 28 calls;
    20 timed, 2.0 s, p50 100 ms, throughput batch x 10 images/s, first inference 100 ms."""
    clock = stepping_runtime(monkeypatch)
    timing = TimingConfig(warmup_iters=2, warmup_s=0.25, min_iters=2, min_s=2.0, rounds=2)
    out = tmp_path / "c.csv"
    rows = run_matrix([target(chain)], Axes(threads=(1,), spinning=(False,), batch_sizes=(1, 4)), out,
                      timing=timing, score=False, shuffle_seed=3)
    monkeypatch.undo()
    assert clock.calls == {1: 28, 4: 28}
    smp = samples_io.load(out)
    for r in rows:
        s = smp[r.cell_id]
        assert s.ns.tolist() == [clock.STEP_NS] * 20 and s.block_n.tolist() == [10, 10]
        assert s.block_wall_ns.tolist() == [10 * clock.STEP_NS] * 2
        assert (r.warmup_iters, r.timed_iters, r.rounds) == (3, 20, 2)
        assert r.timed_wall_s == 2.0 and r.latency_p50_ms == 100.0 and r.latency_std_ms == 0.0
        assert r.throughput_ips == pytest.approx(r.batch_size * 10.0)
        assert r.first_inference_ms == pytest.approx(100.0)
        assert math.isnan(r.latency_p50_ci_low_ms)  # 2 blocks: no interval


def test_slow_cells_skip_the_reentry_calls(chain, tmp_path, monkeypatch):
    """The same with a 0.5 s block (min_s 1.0 over 2 rounds): 2 x 100 ms is over a quarter of it, so
    no re-entry calls: 1 + 3 + 2 x 5 = 14 calls."""
    clock = stepping_runtime(monkeypatch)
    timing = TimingConfig(warmup_iters=2, warmup_s=0.25, min_iters=2, min_s=1.0, rounds=2)
    rows = run_matrix([target(chain)], Axes(threads=(1,), spinning=(False,), batch_sizes=(2,)), tmp_path / "s.csv",
                      timing=timing, score=False, shuffle_seed=3)
    monkeypatch.undo()
    assert clock.calls == {2: 14}
    assert rows[0].timed_iters == 10 and rows[0].timed_wall_s == 1.0


class _Chain(__import__("torch").nn.Module):
    """A small PyTorch model of the chain's shape (N, 1, 28, 28) -> (N, 10), for torch rows."""

    def forward(self, x):
        return x.reshape(len(x), -1)[:, :10] * 2


def test_torch_rows_have_no_placement_and_their_own_labels(chain, tmp_path):
    """PyTorch cells: no ONNX Runtime placement (-1 in every node column), eager graph, no spinning."""
    x = np.random.default_rng(1).random((16, 1, 28, 28), dtype=np.float32)
    t = Target("chain", chain, "null", x, x[:0], build_torch=_Chain, flops=None)
    timing = TimingConfig(warmup_iters=1, warmup_s=0.0, min_iters=2, min_s=0.0, rounds=2)
    rows = run_matrix([t], Axes(runtimes=("onnxruntime", "torch"), threads=(1,), spinning=(False,),
                                batch_sizes=(2,)), tmp_path / "t.csv", timing=timing, score=False)
    by = {r.runtime: r for r in rows}
    assert sorted(by) == ["onnxruntime", "torch"]
    tr = by["torch"]
    assert (tr.nodes_total, tr.nodes_on_provider, tr.nodes_on_cpu, tr.memcpy_nodes) == (-1, -1, -1, -1)
    assert (tr.graph_optimization, tr.spinning, tr.providers_used) == ("eager", "n/a", "torch-cpu")
    assert (tr.timed_iters, tr.rounds, tr.flops_per_image) == (2, 2, -1)
    o = by["onnxruntime"]
    assert o.nodes_total > 0 and o.nodes_on_provider == o.nodes_total == o.nodes_on_cpu and o.memcpy_nodes == 0
    assert (o.graph_optimization, o.spinning) == ("all", "off")


def test_requested_threads_are_used_as_given(chain, tmp_path):
    """An explicit thread count is never replaced by the auto probe's choice."""
    timing = TimingConfig(warmup_iters=1, warmup_s=0.0, min_iters=1, min_s=0.0, rounds=1)
    (r,) = run_matrix([target(chain)], Axes(threads=(2,), spinning=(False,), batch_sizes=(1,)), tmp_path / "t.csv",
                      timing=timing, score=False)
    assert (r.threads_requested, r.intra_op_threads) == ("2", 2)


def test_a_failing_reference_is_dropped_and_a_failing_model_is_an_error_row(chain, tmp_path, matmul_chain,
                                                                           monkeypatch):
    from mnistbench.bench.runtimes import runtime as rt_mod
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    bad = matmul_chain(tmp_path / "bad.onnx", 1)
    real, real_init = rt_mod.OrtRuntime.run, rt_mod.OrtRuntime.__init__

    def init(self, path, cfg):
        real_init(self, path, cfg)
        self.pin_bad = str(path).endswith("bad.onnx")

    def run(self, x):
        if self.pin_bad:
            raise Fail("no")
        return real(self, x)

    monkeypatch.setattr(rt_mod.OrtRuntime, "__init__", init)
    monkeypatch.setattr(rt_mod.OrtRuntime, "run", run)
    timing = TimingConfig(warmup_iters=1, warmup_s=0.0, min_iters=1, min_s=0.0, rounds=1)
    axes = Axes(threads=(1,), spinning=(False,), batch_sizes=(1,))
    ref = Target("mnistbench-reference", bad, "reference", target(chain).inputs, np.zeros(0))
    rows = run_matrix([target(chain), ref], axes, tmp_path / "r.csv", timing=timing, score=False)
    assert [(r.model, r.status) for r in rows] == [("chain", "ok")]
    rows = run_matrix([target(bad, name="broken")], axes, tmp_path / "b.csv", timing=timing, score=False)
    assert [(r.model, r.status, r.error) for r in rows] == [("broken", "error", "Fail: no")]


@pytest.mark.parametrize("threads", [0, runner.AUTO])
def test_threads_0_is_the_runtimes_choice_and_auto_is_probed(chain, tmp_path, threads):
    """threads 0 rows say 0 (ONNX Runtime's own choice); auto rows name a probed count."""
    timing = TimingConfig(warmup_iters=1, warmup_s=0.0, min_iters=1, min_s=0.0, rounds=1)
    (r,) = run_matrix([target(chain)], Axes(threads=(threads,), spinning=(False,), batch_sizes=(1,)),
                      tmp_path / "t.csv", timing=timing, score=False)
    if threads == 0:
        assert (r.threads_requested, r.intra_op_threads) == ("0", 0)
    else:
        assert r.threads_requested == "auto" and r.intra_op_threads in runner.thread_candidates()


def test_scored_rows_compare_against_pytorch(chain, tmp_path):
    """score=True: accuracy over the target's images and agreement with the PyTorch model's outputs."""
    x = np.random.default_rng(1).random((16, 1, 28, 28), dtype=np.float32)
    t = Target("chain", chain, "classify", x, np.zeros(16, np.int64), build_torch=_Chain, flops=None)
    timing = TimingConfig(warmup_iters=1, warmup_s=0.0, min_iters=1, min_s=0.0, rounds=1)
    (r,) = run_matrix([t], Axes(threads=(1,), spinning=(False,), batch_sizes=(1,)), tmp_path / "s.csv",
                      timing=timing, score=True)
    assert r.status == "ok" and r.eval_images == 16
    assert 0.0 <= r.accuracy_top1 <= 1.0 and 0.0 <= r.agreement_top1_vs_torch <= 1.0
    assert r.max_abs_diff_vs_torch > 0  # a different model: the comparison really ran


# --- On real trained models -----------------------------------------------------------------------

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    from mnistbench.bench.runtimes.runtime import OrtRuntime, SessionConfig
    from onnxruntime.capi.onnxruntime_pybind11_state import EPFail

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
