"""compare and the regression gate, on CSVs and samples written by the real runner.

The decision rule is tested on real per-call samples split into interleaved halves (no
between-run drift, so deterministic given the samples). End to end (real runs, CSVs, compare,
gate), the slower side has 3x the MatMul operators: bursts of load on this shared host have moved
one run's p50 by up to 1.9x, so a smaller change measured across runs would make a flaky test.
"""

from __future__ import annotations


import json
import math
import numpy as np
import pytest
from typer.testing import CliRunner

from mnistbench.bench.analysis import compare as cmp
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.metrics import BlockCI, BlockSet
from mnistbench.bench.measure.samples import CellSamples
from mnistbench.bench.cli import app
from mnistbench.bench.measure.runner import Axes, Target, run_matrix
from mnistbench.bench.measure.timing import TimingConfig
from mnistbench.models.errors import UsageError


@pytest.fixture(autouse=True)
def no_between_run_spread(monkeypatch):
    """These tests pin the within-run rules: two sides with no between-run spread (sigma 0) unless a
    test asks for one; the reference network's movement still widens (tests/test_between_runs.py)."""
    from mnistbench.bench.measure import noiseprofile

    monkeypatch.setattr(noiseprofile, "DEFAULT_SIGMA", 0.0)


runner = CliRunner()
TIMING = TimingConfig(warmup_iters=20, warmup_s=0.02, min_iters=100, min_s=0.05)


def measured(tmp, name, path, out, threads=1, batch=4, timing=TIMING):
    x = np.random.default_rng(1).random((16, 1, 28, 28), dtype=np.float32)
    t = Target("chain", path, "null", x, x[:0])  # same model name on both sides: the rows must join
    run_matrix([t], Axes(threads=(threads,), spinning=(False,), batch_sizes=(batch,)), out, timing=timing, score=False)
    return cmp.load(out)


@pytest.fixture(scope="module")
def chains(tmp_path_factory, matmul_chain):
    d = tmp_path_factory.mktemp("chains")
    return matmul_chain(d / "c10.onnx", 10), matmul_chain(d / "c30.onnx", 30)


def _row(rs_row, model, batch, cell_id, p50_ms, task="null"):
    import dataclasses

    return dataclasses.replace(rs_row, model=model, batch_size=batch, cell_id=cell_id, latency_p50_ms=p50_ms, task=task)


def synthetic(template, blocks_ms: dict[str, list[np.ndarray]], label: str, ref: list[np.ndarray] | None = None):
    """A ResultSet whose cells have exactly the given blocks (ms per call); one round per block."""
    rows, smp, refs = [], {}, []
    for name, blocks in [*blocks_ms.items(), *([("mnistbench-reference", ref)] if ref else [])]:
        cid = f"{label}-{name}"
        ns = [np.round(b * 1e6).astype(np.int64) for b in blocks]
        smp[cid] = CellSamples.from_blocks(ns, [int(x.sum()) for x in ns], list(range(len(ns))))
        r = _row(template, name, 4, cid, float(np.median(np.concatenate(blocks))),
                 "reference" if name == "mnistbench-reference" else "null")
        (refs if r.task == "reference" else rows).append(r)
    return cmp.ResultSet(label, rows, smp, [], refs)


def noisy_blocks(rng, center: float, m: int = 8, per: int = 400, drift: float = 0.01) -> list[np.ndarray]:
    """``m`` blocks of ``per`` calls around ``center`` ms: lognormal call noise, each block shifted
    by a normal block effect of sd ``drift`` (what a shared machine does between blocks)."""
    return [center * (1 + rng.normal(0, drift)) * rng.lognormal(0, 0.05, per) for _ in range(m)]


@pytest.fixture(scope="module")
def template(chains, tmp_path_factory):
    d = tmp_path_factory.mktemp("tpl")
    return measured(d, "t", chains[0], d / "t.csv").rows[0]


def test_verdicts_on_synthetic_blocks_with_known_ratios(template):
    """Deterministic given the blocks: identical blocks are `no change`; a 20% shift is `slower` with
    its ratio; the reverse is `faster`; a 1% shift with 1% block noise cannot be decided at a 2%
    threshold against... it is `no change` or `inconclusive`, never a change."""
    rng = np.random.default_rng(7)
    base = noisy_blocks(rng, 1.0)
    b = synthetic(template, {"m": base}, "b")
    for scale, expect in ((1.0, {"no change"}), (1.2, {"slower"}), (1 / 1.2, {"faster"}),
                          (1.01, {"no change", "inconclusive"})):
        n = synthetic(template, {"m": [x * scale for x in base]}, "n")
        (c,), _, _ = cmp.compare(b, n)
        assert c.verdict in expect, (scale, c)
        assert c.ratio == pytest.approx(scale, rel=1e-3)  # every block scaled: the typical block p50 too
        assert c.ratio_low <= c.ratio <= c.ratio_high and c.blocks == (8, 8) and not c.weak
    (c,), _, _ = cmp.compare(b, synthetic(template, {"m": [x * 1.2 for x in base]}, "n"), noise=0.25)
    assert c.verdict in ("no change", "inconclusive")  # within a 25% noise threshold a 20% change is not called


def test_typical_block_p50_ignores_a_slowed_minority_of_blocks(template):
    """Load only adds time. Two of eight blocks 2x slower (a burst of load) leave the typical block p50
    (25th percentile of the block medians) and the verdict unmoved, while the p50 of all calls moves;
    the same cell 10% slower in every block is `slower` with ratio 1.10."""
    rng = np.random.default_rng(5)
    base = noisy_blocks(rng, 1.0, drift=0.002)
    bs = BlockSet.from_blocks([np.round(b * 1e6) for b in base], [1] * 8, list(range(8)), 4)
    assert bs.typical_ms == pytest.approx(np.quantile([np.median(b) for b in base], 0.25), rel=1e-5)
    assert bs.typical_ms < bs.p50_ms  # a low quantile of the blocks, not their median
    burst = [x * (2.0 if i in (2, 5) else 1.0) for i, x in enumerate(base)]
    (c,), _, _ = cmp.compare(synthetic(template, {"m": base}, "b"), synthetic(template, {"m": burst}, "n"))
    assert c.ratio == pytest.approx(1.0, abs=0.005) and c.verdict in ("no change", "inconclusive")
    assert c.p50_ratio > 1.02  # the median of all calls was moved by the burst
    (c,), _, _ = cmp.compare(synthetic(template, {"m": base}, "b"),
                             synthetic(template, {"m": [x * 1.1 for x in base]}, "n"))
    assert c.verdict == "slower" and c.ratio == pytest.approx(1.1, rel=1e-3) and c.ratio_low > 1.05


def test_interval_width_follows_block_spread_not_call_count(template):
    """Calls inside a block are not independent evidence: more calls per block do not narrow the
    interval, more spread between blocks widens it."""
    rng = np.random.default_rng(3)
    quiet, busy = noisy_blocks(rng, 1.0, drift=0.002), noisy_blocks(rng, 1.0, drift=0.05)
    many = noisy_blocks(rng, 1.0, per=4000, drift=0.002)
    w = {}
    for name, blocks in (("quiet", quiet), ("busy", busy), ("many", many)):
        bs = BlockSet.from_blocks([np.round(b * 1e6) for b in blocks], [1] * 8, list(range(8)), 4)
        ci = BlockCI.of(bs)
        w[name] = (ci.p50_high_ms - ci.p50_low_ms) / bs.p50_ms
    assert w["busy"] > 4 * w["quiet"] and w["many"] > w["quiet"] / 4, w


def test_verdict_rule_edges():
    assert cmp.verdict(1.021, 1.2, 0.02) == "slower" and cmp.verdict(1.02, 1.2, 0.02) == "inconclusive"
    assert cmp.verdict(0.8, 0.979, 0.02) == "faster" and cmp.verdict(0.8, 0.98, 0.02) == "inconclusive"
    assert cmp.verdict(0.98, 1.02, 0.02) == "no change" and cmp.verdict(0.979, 1.0, 0.02) == "inconclusive"
    assert cmp.verdict(float("nan"), 1.0, 0.02) == "n/a"
    assert cmp.NOISE == 0.02 and cmp.LIVE_NOISE == 0.01  # the calibrated defaults the README states


def test_drift_of_the_machine_is_divided_out_by_the_reference(template):
    """The second run found the machine 30% slower (the reference shows it); the model did not change:
    judged on the reference-normalised ratio it is `no change`; by default the raw ratio's interval
    holds the reference's movement, so it is `inconclusive` (within the runs alone it would be
    `slower`). When the reference did not move, the raw ratio is judged."""
    rng = np.random.default_rng(11)
    base, ref = noisy_blocks(rng, 1.0, drift=0.003), noisy_blocks(rng, 0.5, drift=0.003)
    b = synthetic(template, {"m": base}, "b", ref)
    n = synthetic(template, {"m": [x * 1.3 for x in base]}, "n", [x * 1.3 for x in ref])
    (c,), _, _ = cmp.compare(b, n)  # by default the reference is reported, not divided by
    assert not c.normalised and c.verdict == "inconclusive" and c.ref_ratio == pytest.approx(1.3, rel=1e-3)
    assert cmp.verdict(c.raw_low, c.raw_high, cmp.NOISE) == "slower" and "+30%" in c.reason
    (c,), _, _ = cmp.compare(b, n, drift_correction=True)
    assert c.normalised and c.ref_ratio == pytest.approx(1.3, rel=1e-3) and c.p50_ratio == pytest.approx(1.3, rel=1e-3)
    assert c.ratio == pytest.approx(1.0, abs=1e-3) and c.verdict == "no change"
    assert cmp.verdict(c.raw_low, c.raw_high, cmp.NOISE) == "slower"
    n2 = synthetic(template, {"m": [x * 1.3 for x in base]}, "n", ref)  # the model really is 30% slower
    (c2,), _, _ = cmp.compare(b, n2, drift_correction=True)
    assert not c2.normalised and c2.verdict == "slower" and c2.ratio == pytest.approx(1.3, rel=1e-3)


def test_gate_rules_in_both_directions_at_and_around_thresholds(template):
    rng = np.random.default_rng(5)
    base = noisy_blocks(rng, 1.0, drift=0.001)
    b = synthetic(template, {"m": base}, "b")

    def change(scale):
        (c,), _, _ = cmp.compare(b, synthetic(template, {"m": [x * scale for x in base]}, "n"))
        return c

    slow10, fast10 = change(1.10), change(1 / 1.10)
    assert slow10.verdict == "slower" and fast10.verdict == "faster"
    r = cmp.parse_rules
    assert cmp.gate([slow10], r("p50:+5%")) and not cmp.gate([slow10], r("p50:+10.5%"))
    assert cmp.gate([slow10], r("p50:+9.9%"))  # at/just below the moved amount it fails, just above it passes
    assert not cmp.gate([fast10], r("p50:+5%")) and cmp.gate([fast10], r("p50:-5%"))
    assert cmp.gate([slow10], r("throughput:-5%")) and not cmp.gate([fast10], r("throughput:-5%"))
    assert cmp.gate([fast10], r("throughput:+5%")) and not cmp.gate([slow10], r("throughput:+5%"))
    assert cmp.gate([slow10], r("p99:+5%")) is not None
    import dataclasses

    acc = dataclasses.replace(slow10, base_acc=0.99, new_acc=0.985)
    assert cmp.gate([acc], r("accuracy:-0.4pp")) and not cmp.gate([acc], r("accuracy:-0.6pp"))
    assert not cmp.gate([acc], r("accuracy:+0.1pp"))
    same = change(1.0)
    assert same.verdict == "no change" and not cmp.gate([same], r("p50:+0%,throughput:-0%"))


def test_legacy_samples_compare_weakly(chains, tmp_path, template):
    """A schema-4 row's samples (one contiguous loop in <stem>.samples.npz) still compare, split into
    contiguous pseudo-blocks and marked weak."""
    rng = np.random.default_rng(2)
    ns = np.round(rng.lognormal(0, 0.05, 4000) * 1e6).astype(np.int64)
    legacy = samples_io._legacy(ns)
    r = _row(template, "m", 4, "old", float(np.median(ns)) / 1e6)
    b = cmp.ResultSet("b", [r], {"old": legacy}, [])
    n = cmp.ResultSet("n", [r], {"old": samples_io._legacy((ns * 1.5).astype(np.int64))}, [])
    (c,), _, _ = cmp.compare(b, n)
    assert c.weak and c.blocks == (8, 8) and c.verdict == "slower"


def test_rules_parse():
    rules = cmp.parse_rules("p50:+5%, accuracy:-0.1pp,throughput:-5%")
    assert [str(r) for r in rules] == ["p50:+5%", "accuracy:-0.1pp", "throughput:-5%"]
    with pytest.raises(UsageError):
        cmp.parse_rules("latency:+5%")


def test_gate_cli_end_to_end_exit_codes_markdown_and_one_sided_rows(chains, tmp_path):
    """Real runs: the slower side has 3x the MatMuls (a change no burst of load on this host hides)."""
    base, slow, other = tmp_path / "base.csv", tmp_path / "slow.csv", tmp_path / "other.csv"
    measured(tmp_path, "a", chains[0], base)
    measured(tmp_path, "b", chains[1], slow)
    measured(tmp_path, "c", chains[0], other, batch=8)  # another configuration: joins nothing
    res = runner.invoke(app, ["compare", str(base), str(slow), "--fail-on", "p50:+5%", "--format", "markdown"])
    assert res.exit_code == 1, res.output
    assert "| chain |" in res.stdout and "slower" in res.stdout and "crosses p50:+5%" in res.stderr
    res = runner.invoke(app, ["compare", str(base), str(slow), "--fail-on", "p50:+900%"])
    assert res.exit_code == 0 and "gate: passed" in res.stderr
    res = runner.invoke(app, ["compare", str(base), str(other)])
    assert res.exit_code == 0 and "only in base: chain" in res.stderr and "only in new: chain" in res.stderr
    for bad in (["compare", str(base), str(slow), "--fail-on", "p50:5"], ["compare", str(base), str(tmp_path / "nope.csv")],
                ["compare", str(base), str(slow), "--fail-on", "accuracy:-1%"],
                ["compare", str(base), str(slow), "--noise", "2"]):
        res = runner.invoke(app, bad)
        assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.output


def test_gate_never_passes_what_it_could_not_judge(chains, tmp_path):
    """Without raw samples a 10x slower run must not pass a p50 gate (it used to)."""
    import shutil

    base, slow = tmp_path / "base.csv", tmp_path / "slow.csv"
    measured(tmp_path, "a", chains[0], base)
    measured(tmp_path, "b", chains[1], slow)
    shutil.rmtree(tmp_path / "slow.samples")
    res = runner.invoke(app, ["compare", str(base), str(slow), "--fail-on", "p50:+5%"])
    assert res.exit_code == 1 and "cannot be judged" in res.stderr and "gate: passed" not in res.stderr


def test_inconclusive_is_reported_and_fails_only_when_asked(template, tmp_path, monkeypatch):
    rng = np.random.default_rng(9)
    base = noisy_blocks(rng, 1.0, drift=0.08)  # a very busy machine: wide intervals
    b = synthetic(template, {"m": base}, "b")
    n = synthetic(template, {"m": [x * 1.02 for x in noisy_blocks(rng, 1.0, drift=0.08)]}, "n")
    (c,), _, _ = cmp.compare(b, n)
    assert c.verdict == "inconclusive"
    from mnistbench.bench.cli import app as cli

    monkeypatch.setattr(cmp, "load", lambda p: b if str(p) == "b" else n)
    res = runner.invoke(app, ["compare", "b", "n", "--fail-on", "p50:+5%"])
    assert res.exit_code == 0 and "inconclusive" in res.stderr and "gate: passed" in res.stderr
    res = runner.invoke(app, ["compare", "b", "n", "--fail-on", "p50:+5%", "--fail-on-inconclusive"])
    assert res.exit_code == 1 and "inconclusive" in res.stderr
    assert cli is not None


def test_live_ab_flags_a_real_change_and_not_itself(chains, tmp_path, real_data_root):
    """--live: both models in one process, blocks alternating, paired by round."""
    from mnistbench.models.data import load_dataset  # noqa: F401 (skip below when the data is absent)

    if not (real_data_root / "mnist").is_dir():
        pytest.skip(f"real MNIST not found under {real_data_root}")
    common = ["--batch-sizes", "4", "--rounds", "6", "--min-s", "0.3", "--threads", "1", "--data-dir",
              str(real_data_root), "--format", "markdown", "--max-s", "12"]
    # 3x the MatMuls against the same model: far apart whatever the load (a 3% A/B is a benchmark
    # figure, in results/calibration, not a test: bursts of load here move single blocks by 40%)
    res = runner.invoke(app, ["compare", "--live", str(chains[0]), str(chains[1]), *common, "--fail-on", "p50:+100%"])
    assert res.exit_code == 1 and "slower" in res.stdout and "crosses p50:+100%" in res.stderr, res.output
    res = runner.invoke(app, ["compare", "--live", str(chains[0]), str(chains[0]), *common, "--fail-on", "p50:+100%"])
    assert res.exit_code == 0 and "A:c10 -> B:c10" in res.stdout and "gate: passed" in res.stderr, res.output


def test_live_runs_stages_of_fresh_sessions_until_the_sequential_test_decides(chains, tmp_path):
    """Each stage opens `sessions` fresh sessions a side (rows <name>#<stage>.<k>), measures them in
    the same rounds, and gives one round-paired log ratio; the test looks at stage 6 (the first
    scheduled look) and stops: 3x the MatMuls is `slower` there, with the ratio and interval of the
    six stage values, and the stages and seconds it took."""
    from mnistbench.bench.analysis import sequential as seq
    from mnistbench.bench.analysis.live import live_compare, stage_log_ratio

    x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    ta = Target("a", chains[0], "null", x, x[:0], None, None, fixed_batch=4, variant="foreign")
    tb = Target("b", chains[1], "null", x, x[:0], None, None, fixed_batch=4, variant="foreign")
    out = tmp_path / "live.csv"
    res = live_compare(ta, tb, Axes(threads=(1,), batch_sizes=(4,)), out, TimingConfig(min_s=0.1, rounds=4),
                       sessions=2, max_s=60)
    rs = cmp.load(out)
    names = sorted(r.model for r in rs.rows)
    assert names == sorted(f"{s}#{st}.{k}" for s in "ab" for st in range(1, 7) for k in (1, 2)), names
    assert {len(rs.samples[r.cell_id].blocks()) for r in rs.rows} == {4}
    (c,) = res.changes
    d = []
    for st in range(1, 7):
        sets = {s: [cmp.block_set([r], rs.samples)[0] for r in rs.rows if r.model.startswith(f"{s}#{st}.")] for s in "ab"}
        d.append(stage_log_ratio(sets["a"], sets["b"]))
    assert (c.ratio, c.ratio_low, c.ratio_high) == pytest.approx(seq.interval(np.array(d), seq.look_level()), rel=1e-9)
    assert c.ratio > 1.5 and c.verdict == "slower" and res.stages[4][0] == 6 and 0 < res.stages[4][1] < 60
    # sessions are built alternately, the leading side alternating by stage (creation order falls on both alike)
    order = [r.model for r in rs.rows]  # rows land in the order their sessions were built
    assert order[:8] == ["a#1.1", "b#1.1", "b#1.2", "a#1.2", "b#2.1", "a#2.1", "a#2.2", "b#2.2"], order[:8]
    # a batch size that neither fixed-batch side accepts is dropped, not waited for; `stages` runs exactly that many
    res = live_compare(ta, tb, Axes(threads=(1,), batch_sizes=(1, 4)), tmp_path / "fixed.csv",
                       TimingConfig(min_s=0.1, rounds=3), sessions=1, stages=2)
    assert [c.key[4] for c in res.changes] == [4] and res.stages[4][0] == 2 and res.changes[0].ratio > 1.5
    with pytest.raises(UsageError, match="--sessions"):
        live_compare(ta, tb, Axes(threads=(1,), batch_sizes=(4,)), tmp_path / "x.csv", sessions=0)
    with pytest.raises(UsageError, match="--max-s"):
        live_compare(ta, tb, Axes(threads=(1,), batch_sizes=(4,)), tmp_path / "y.csv", max_s=0.5)


def test_stage_log_ratio_pairs_blocks_by_round():
    """Per round: mean ln(block median) of the new side minus the base side's; then the median over
    rounds. A round where the whole machine ran 50% slower moves both sides and not the estimate."""
    from mnistbench.bench.analysis.live import stage_log_ratio

    def bset(meds, rounds):
        blocks = [np.full(5, int(m * 1e6), np.int64) for m in meds]
        return BlockSet.from_blocks(blocks, [int(b.sum()) for b in blocks], rounds, 4)

    base = [bset([1.0, 1.5, 1.0], [0, 1, 2]), bset([1.0, 1.5, 1.0], [0, 1, 2])]
    new = [bset([1.1, 1.65, 1.1], [0, 1, 2])]
    assert stage_log_ratio(base, new) == pytest.approx(math.log(1.1), rel=1e-6)
    skew = [bset([1.2, 1.0, 1.3], [0, 1, 2])]  # per round: ln 1.2, 0, ln 1.3 -> median ln 1.2
    assert stage_log_ratio([bset([1.0, 1.0, 1.0], [0, 1, 2])], skew) == pytest.approx(math.log(1.2), rel=1e-6)
    assert math.isnan(stage_log_ratio(base, [bset([1.0], [7])]))  # no round shared


def test_calibration_live_mode_runs_no_separate_process(tmp_path, chains, monkeypatch):
    """doctor --calibrate --calibrate-modes live: per-node cost, live trials and truth only; no run
    process is started, and every trial row is a live one, judged with the live gate."""
    import csv as _csv

    from mnistbench.bench.analysis import calibrate as cal

    calls = []

    def fake_live(a, b, batch, inputs, work, stages=None, max_s=cal.LIVE_MAX_S):
        calls.append((a.name, b.name, stages, max_s))
        import onnx

        def cost(path):  # a fake clock: 0.4% per planted Mul node
            return 1.0 + 0.004 * sum(n.name.startswith("calibration_mul") for n in onnx.load(str(path)).graph.node)

        slow = cost(b) / cost(a)
        c = cmp.Change(("x",), 1.0, slow, 1.0, slow, 1.0, 1 / slow, math.nan, math.nan, slow, slow - 0.001,
                       slow + 0.001, slow - 0.001, slow + 0.001, math.nan, math.nan, math.nan, False, (10, 10),
                       False, cmp.verdict(slow - 0.001, slow + 0.001, cmp.LIVE_NOISE))
        return c, 3, 9.0

    monkeypatch.setattr(cal, "_live_ratio", fake_live)
    monkeypatch.setattr(cal, "run_side", lambda *a, **k: pytest.fail("a separate run in live mode"))
    configs = [cal.Config("c10", chains[0], 4)]
    x = np.zeros((8, 1, 28, 28), np.float32)
    out = cal.study(configs, x, tmp_path / "cal", trials=2, modes=("live",))
    rows = list(_csv.DictReader(open(tmp_path / "cal" / "trials.csv")))
    assert {r["mode"] for r in rows} == {"live"} and len(rows) == 2 * len(cal.LIVE_LEVELS) == len(out["rows"])
    assert {float(r["level"]) for r in rows} == set(cal.LIVE_LEVELS)
    assert set(out["truth"]) == {("c10-b4", abs(lv)) for lv in cal.LIVE_LEVELS if lv}
    assert {r["stages"] for r in rows} == {"3"} and {r["decide_s"] for r in rows} == {"9.0"}
    # the 1% level gets the longer budget, truth runs a fixed number of stages
    assert {m for _, _, st, m in calls if st is None} == {cal.LIVE_MAX_S, cal.LIVE_MAX_S_1PCT}
    assert {st for _, _, st, _ in calls if st is not None} == {cal.PROBE_STAGES, cal.TRUTH_STAGES}
    # a planted speedup is measured with the slowed copy as the base and reported as a ratio below 1
    speed = [r for r in rows if float(r["level"]) < 0]
    assert speed and all(float(r["ratio"]) < 1 for r in speed)
    assert json.loads((tmp_path / "cal" / "system.json").read_text())["condition"]["condition"] == "as-is"
    with pytest.raises(UsageError, match="calibration modes"):
        cal.study(configs, x, tmp_path / "cal2", trials=1, modes=("both",))
