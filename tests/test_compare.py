"""compare and the regression gate (bench/analysis/compare.py), the live A/B (bench/analysis/live.py)
and calibration's live mode.

Pinned first, on rows built from the schema (no benchmark runs; block values chosen so that ratios
and medians are known by hand): every verdict edge, every ``--fail-on`` rule in both directions at,
just below and just above its threshold, repeats pooled, legacy pseudo-blocks, drift normalisation,
one-sided rows, system differences and loading result files. These pin exact numbers; they were
written to kill the survivors of mutation testing (issue 19, scripts/mutation.py).

Then on CSVs and samples written by the real runner: the decision rule is tested on real per-call
samples split into interleaved halves (no between-run drift, so deterministic given the samples).
End to end (real runs, CSVs, compare, gate), the slower side has 3x the MatMul operators: bursts of
load on this shared host have moved one run's p50 by up to 1.9x, so a smaller change measured across
runs would make a flaky test.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from mnistbench.bench.analysis import compare as cmp
from mnistbench.bench.cli import app
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.metrics import BlockCI, BlockSet
from mnistbench.bench.measure.records import CsvAppender, error_record
from mnistbench.bench.measure.runner import Axes, Target, run_matrix
from mnistbench.bench.measure.samples import CellSamples
from mnistbench.bench.measure.timing import TimingConfig
from mnistbench.models.errors import UsageError
from typer.testing import CliRunner


@pytest.fixture(autouse=True)
def no_between_run_spread(monkeypatch):
    """These tests pin the within-run rules: two sides with no between-run spread (sigma 0) unless a
    test asks for one; the reference network's movement still widens (tests/test_between_runs.py)."""
    from mnistbench.bench.measure import noiseprofile

    monkeypatch.setattr(noiseprofile, "DEFAULT_SIGMA", 0.0)


# --- Pinned on rows built from the schema (issue 19: written against mutation survivors) ---------------

MS = 1_000_000


def row(cell_id: str, model: str = "m", batch: int = 4, **kw):
    """An ``ok`` row of this schema with plausible figures."""
    r = error_record("", model=model, batch_size=batch, cell_id=cell_id, provider="cpu", runtime="onnxruntime",
                     variant="fp32", dataset="mnist", task="classification", threads_requested="1",
                     spinning="off", io_mode="end-to-end", intra_op_threads=1)
    base = dict(status="ok", error="", timed_iters=10, timed_wall_s=1.0, latency_p50_ms=1.0, throughput_ips=100.0,
                latency_p99_ms=math.nan, accuracy_top1=math.nan)
    base.update(kw)
    return dataclasses.replace(r, **base)


def cell(center_ms: float, m: int = 8, per: int = 5, spread: float = 0.001) -> CellSamples:
    """``m`` blocks of ``per`` equal calls; block k at center x (1 + spread x k) ms; wall = sum."""
    blocks = [np.full(per, round(center_ms * (1 + spread * k) * MS), np.int64) for k in range(m)]
    return CellSamples.from_blocks(blocks, [int(b.sum()) for b in blocks], list(range(m)))


def rset(label: str, cells: dict, refs: dict | None = None, systems=None, rows_kw=None) -> cmp.ResultSet:
    """cells: cell_id -> (model, CellSamples | None); refs likewise for the reference network."""
    rows, smp, rr = [], {}, []
    for cid, (model, s) in cells.items():
        rows.append(row(cid, model, **(rows_kw or {}).get(cid, {})))
        if s is not None:
            smp[cid] = s
    for cid, s in (refs or {}).items():
        rr.append(row(cid, "mnistbench-reference", task="reference"))
        smp[cid] = s
    return cmp.ResultSet(label, rows, smp, systems or [], rr)


def change(**kw) -> cmp.Change:
    base = dict(key=("m",), base_p50_ms=1.0, new_p50_ms=1.0, base_p99_ms=10.0, new_p99_ms=10.0, base_ips=100.0,
                new_ips=100.0, base_acc=0.99, new_acc=0.99, ratio=1.0, ratio_low=0.99, ratio_high=1.01,
                raw_low=0.99, raw_high=1.01, ref_ratio=math.nan, ref_low=math.nan, ref_high=math.nan,
                normalised=False, blocks=(8, 8), weak=False, verdict="no change")
    base.update(kw)
    return cmp.Change(**base)


def test_documented_constants():
    """README: noise 2% between runs (1% live); schema-4 files cut into 8 pseudo-blocks; rows join on
    the configuration, never on the run."""
    assert (cmp.NOISE, cmp.LIVE_NOISE, cmp.LEGACY_BLOCKS) == (0.02, 0.01, 8)
    assert cmp.KEY == ("model", "variant", "runtime", "provider", "batch_size", "threads_requested", "spinning",
                       "io_mode", "dataset")
    assert cmp.VERDICTS == ("faster", "slower", "no change", "inconclusive", "n/a")


@pytest.mark.parametrize("noise", [0.02, 0.05])
def test_verdict_at_below_above_each_edge(noise):
    up, down = 1 + noise, 1 - noise
    assert cmp.verdict(up, up + 0.1, noise) == "inconclusive"  # touching the edge is not beyond it
    assert cmp.verdict(up + 1e-9, up + 0.1, noise) == "slower"
    assert cmp.verdict(down - 0.1, down, noise) == "inconclusive"
    assert cmp.verdict(down - 0.1, down - 1e-9, noise) == "faster"
    assert cmp.verdict(down, up, noise) == "no change"  # the whole band, edges included
    assert cmp.verdict(down - 1e-9, up, noise) == "inconclusive"
    assert cmp.verdict(down, up + 1e-9, noise) == "inconclusive"
    assert cmp.verdict(1.0, 1.0, noise) == "no change"
    assert cmp.verdict(math.nan, 1.0, noise) == "n/a"
    assert cmp.verdict(1.0, math.nan, noise) == "n/a"


def test_change_ratios():
    c = change(base_p50_ms=2.0, new_p50_ms=3.0, base_ips=200.0, new_ips=150.0, base_acc=0.99, new_acc=0.97)
    assert c.p50_ratio == 1.5
    assert c.ips_ratio == 0.75
    assert c.acc_delta_pp == pytest.approx(-2.0)
    assert math.isnan(change(base_p50_ms=0.0).p50_ratio)
    assert math.isnan(change(base_ips=0.0).ips_ratio)
    assert change(base_ips=200.0, new_ips=150.0, normalised=True, ref_ratio=1.2).ips_ratio == pytest.approx(0.9)


def crossed(rule: str, **kw) -> bool:
    (r,) = cmp.parse_rules(rule)
    return r.crossed(change(**kw))


def test_p50_plus_rule():
    assert crossed("p50:+5%", verdict="slower", ratio=1.05)
    assert not crossed("p50:+5%", verdict="slower", ratio=1.0499)
    assert crossed("p50:+5%", verdict="slower", ratio=1.3)
    for v in ("no change", "inconclusive", "faster", "n/a"):
        assert not crossed("p50:+5%", verdict=v, ratio=1.3)
    assert not crossed("p50:+5%", verdict="slower", ratio=math.nan)


def test_p50_minus_rule():
    assert crossed("p50:-5%", verdict="faster", ratio=0.95)
    assert not crossed("p50:-5%", verdict="faster", ratio=0.9501)
    assert crossed("p50:-5%", verdict="faster", ratio=0.7)
    assert not crossed("p50:-5%", verdict="slower", ratio=0.7)
    assert not crossed("p50:-5%", verdict="slower", ratio=1.3)


def test_p99_rules_and_normalisation():
    assert crossed("p99:+10%", verdict="slower", base_p99_ms=10.0, new_p99_ms=11.0)
    assert not crossed("p99:+10%", verdict="slower", base_p99_ms=10.0, new_p99_ms=10.99)
    assert crossed("p99:+10%", verdict="slower", base_p99_ms=10.0, new_p99_ms=20.0)
    assert not crossed("p99:+10%", verdict="no change", base_p99_ms=10.0, new_p99_ms=20.0)
    assert not crossed("p99:+10%", verdict="slower", base_p99_ms=0.0, new_p99_ms=20.0)
    assert not crossed("p99:+10%", verdict="slower", base_p99_ms=math.nan, new_p99_ms=20.0)
    # drift-normalised: a 21% p99 change over a machine that slowed by 20% is 0.8%
    assert crossed("p99:+10%", verdict="slower", base_p99_ms=10.0, new_p99_ms=12.1)
    assert not crossed("p99:+10%", verdict="slower", base_p99_ms=10.0, new_p99_ms=12.1, normalised=True,
                       ref_ratio=1.2)
    assert crossed("p99:-10%", verdict="faster", base_p99_ms=10.0, new_p99_ms=8.99)
    assert not crossed("p99:-10%", verdict="faster", base_p99_ms=10.0, new_p99_ms=9.01)
    assert not crossed("p99:-10%", verdict="slower", base_p99_ms=10.0, new_p99_ms=5.0)


def test_throughput_rules():
    """``throughput:-`` fails on a cell judged slower whose throughput fell that far; ``+`` on faster."""
    assert crossed("throughput:-5%", verdict="slower", base_ips=100.0, new_ips=95.0)
    assert not crossed("throughput:-5%", verdict="slower", base_ips=100.0, new_ips=95.01)
    assert crossed("throughput:-5%", verdict="slower", base_ips=100.0, new_ips=50.0)
    assert not crossed("throughput:-5%", verdict="faster", base_ips=100.0, new_ips=50.0)
    assert not crossed("throughput:-5%", verdict="inconclusive", base_ips=100.0, new_ips=50.0)
    assert not crossed("throughput:-5%", verdict="slower", base_ips=0.0, new_ips=50.0)
    assert crossed("throughput:+5%", verdict="faster", base_ips=100.0, new_ips=105.0)
    assert not crossed("throughput:+5%", verdict="faster", base_ips=100.0, new_ips=104.99)
    assert not crossed("throughput:+5%", verdict="slower", base_ips=100.0, new_ips=200.0)
    # normalised: 95 images/s on a machine whose reference slowed 10% is 104.5% of the base
    assert not crossed("throughput:-5%", verdict="slower", base_ips=100.0, new_ips=95.0, normalised=True,
                       ref_ratio=1.1)
    assert crossed("throughput:-5%", verdict="slower", base_ips=100.0, new_ips=80.0, normalised=True, ref_ratio=1.1)


def test_accuracy_rules_in_percentage_points_whatever_the_verdict():
    assert crossed("accuracy:-0.1pp", base_acc=0.99, new_acc=0.989, verdict="n/a")
    assert not crossed("accuracy:-0.1pp", base_acc=0.99, new_acc=0.9891)
    assert crossed("accuracy:-0.1pp", base_acc=0.99, new_acc=0.95)
    assert not crossed("accuracy:-0.1pp", base_acc=0.99, new_acc=0.999)  # better is never a failure
    assert not crossed("accuracy:-0.1pp", base_acc=math.nan, new_acc=0.5)
    assert crossed("accuracy:+0.5pp", base_acc=0.99, new_acc=0.995)
    assert not crossed("accuracy:+0.5pp", base_acc=0.99, new_acc=0.9949)
    assert not crossed("accuracy:+0.5pp", base_acc=0.99, new_acc=0.9)


def test_parse_rules_and_their_text():
    rules = cmp.parse_rules(" p50:+5% , accuracy:-0.1pp,throughput:-5%,p99:+12.5%")
    assert [(r.metric, r.sign, r.amount, r.unit) for r in rules] == [
        ("p50", 1, 5.0, "%"), ("accuracy", -1, 0.1, "pp"), ("throughput", -1, 5.0, "%"), ("p99", 1, 12.5, "%")]
    assert [str(r) for r in rules] == ["p50:+5%", "accuracy:-0.1pp", "throughput:-5%", "p99:+12.5%"]
    for bad in ("p50:5%", "p50:+5", "accuracy:-1%", "p50:+1pp", "latency:+5%", "p50:+x%", "", "p50:+5%,"):
        with pytest.raises(UsageError):
            cmp.parse_rules(bad)


def test_gate_lists_each_failing_pair():
    slow, fine = change(verdict="slower", ratio=1.2), change(verdict="no change", ratio=1.0, new_acc=0.5)
    rules = cmp.parse_rules("p50:+5%,accuracy:-1pp")
    assert cmp.gate([slow, fine], rules) == [(slow, rules[0]), (fine, rules[1])]
    assert cmp.gate([change()], rules) == []


def test_known_ratio_verdicts_and_figures():
    """Blocks 0.1% apart: a 20% slower cell is `slower` with ratio 1.2, its interval within 1.2 x
    (1 +- 0.7%); 20% faster is `faster`; the same blocks are `no change` with ratio 1."""
    b = rset("b", {"b0": ("m", cell(1.0))})
    for scale, want in ((1.2, "slower"), (1 / 1.2, "faster"), (1.0, "no change")):
        (c,), ob, on = cmp.compare(b, rset("n", {"n0": ("m", cell(scale))}))
        assert (ob, on) == ([], [])
        assert c.verdict == want
        assert c.ratio == pytest.approx(scale, rel=1e-6)
        assert scale / 1.0071 <= c.ratio_low <= c.ratio <= c.ratio_high <= scale * 1.0071
        assert (c.raw_low, c.raw_high) == (c.ratio_low, c.ratio_high)
        assert c.blocks == (8, 8) and not c.weak and not c.normalised
        assert c.base_p50_ms == pytest.approx(1.0035, rel=1e-3) and c.new_p50_ms == pytest.approx(1.0035 * scale,
                                                                                                    rel=1e-3)
        assert c.base_ips == pytest.approx(4 * 40 / (cell(1.0).block_wall_ns.sum() / 1e9))
        assert math.isnan(c.ref_ratio)
    (c,), _, _ = cmp.compare(b, rset("n", {"n0": ("m", cell(1.03))}), noise=0.05)
    assert c.verdict == "no change"  # 3% is within a 5% noise threshold


def test_typical_block_p50_is_the_25th_percentile_of_block_medians():
    """Blocks at 1, 2, ..., 8 ms: typical = 2.75 ms (rank 1.75); a new side at 2, 2, ..., 2 ms has
    ratio 2 / 2.75, whatever its median over all calls."""
    blocks = [np.full(3, k * MS, np.int64) for k in range(1, 9)]
    b = rset("b", {"b0": ("m", CellSamples.from_blocks(blocks, [int(x.sum()) for x in blocks], list(range(8))))})
    (c,), _, _ = cmp.compare(b, rset("n", {"n0": ("m", cell(2.0, spread=0.0))}))
    assert c.ratio == pytest.approx(2 / 2.75)
    assert c.base_p50_ms == 4.5


def test_repeats_are_pooled():
    """Three repeats of the base (3, 1 and 2 ms, 4 blocks each) form one set of 12 blocks: the
    typical block p50 is 1 ms (not repeat 0's 3 ms), p50 the median of all calls (2 ms)."""
    b = rset("b", {"r0": ("m", cell(3.0, m=4, spread=0.0)), "r1": ("m", cell(1.0, m=4, spread=0.0)),
                   "r2": ("m", cell(2.0, m=4, spread=0.0))},
             rows_kw={"r0": dict(latency_p99_ms=5.0, accuracy_top1=0.9, intra_op_threads=2),
                      "r1": dict(latency_p99_ms=1.0, accuracy_top1=0.8),
                      "r2": dict(latency_p99_ms=math.nan, accuracy_top1=0.95)})
    n = rset("n", {"n0": ("m", cell(1.0, m=4, spread=0.0))}, rows_kw={"n0": dict(latency_p99_ms=2.0)})
    (c,), _, _ = cmp.compare(b, n)
    assert c.blocks == (12, 4)
    assert c.ratio == pytest.approx(1.0)
    assert c.base_p50_ms == 2.0
    assert c.base_p99_ms == 3.0  # median over repeats, the empty one left out
    assert c.base_acc == pytest.approx(0.9)
    assert math.isnan(c.new_acc)
    assert c.threads_used == ("1,2", "1")


def test_too_few_blocks_or_no_samples_is_not_judged():
    (c,), _, _ = cmp.compare(rset("b", {"b": ("m", cell(1.0, m=2))}), rset("n", {"n": ("m", cell(2.0, m=2))}))
    assert c.verdict == "n/a" and c.ratio == pytest.approx(2.0, rel=1e-3) and math.isnan(c.ratio_low)
    (c,), _, _ = cmp.compare(rset("b", {"b": ("m", cell(1.0, m=3))}), rset("n", {"n": ("m", cell(2.0, m=3))}))
    assert c.verdict == "slower" and c.blocks == (3, 3)
    (c,), _, _ = cmp.compare(rset("b", {"b": ("m", None)}, rows_kw={"b": dict(latency_p50_ms=7.0)}),
                             rset("n", {"n": ("m", cell(2.0))}))
    assert c.verdict == "n/a" and c.blocks == (0, 8) and math.isnan(c.ratio)
    assert c.base_p50_ms == 7.0 and c.base_ips == 100.0  # from the row


def test_legacy_samples_are_cut_into_8_pseudo_blocks_and_marked_weak():
    legacy = CellSamples(np.arange(1, 17, dtype=np.int64) * MS, np.array([16]), np.array([0]), np.array([0]), False)
    short = CellSamples(np.full(5, MS, np.int64), np.array([5]), np.array([0]), np.array([0]), False)
    bs, weak = cmp.block_set([row("x")], {"x": legacy})
    assert weak and bs.m == 8
    assert bs.n.tolist() == [2.0] * 8
    assert bs.wall_s.tolist() == pytest.approx([(2 * k + 1) * 2 * MS / 1e9 + MS / 1e9 for k in range(8)])
    assert bs.rounds.tolist() == [0] * 8
    bs, weak = cmp.block_set([row("y")], {"y": short})
    assert weak and bs.m == 5
    (c,), _, _ = cmp.compare(rset("b", {"b": ("m", legacy)}, rows_kw={"b": dict(throughput_ips=123.0)}),
                             rset("n", {"n": ("m", cell(1.0))}))
    assert c.weak and c.blocks == (8, 8)
    assert c.base_ips == 123.0  # a weak side keeps the rows' throughput
    assert cmp.block_set([row("z")], {}) == (None, False)
    zero = CellSamples(np.zeros(3, np.int64), np.array([3]), np.array([0]), np.array([0]), False)
    assert cmp.block_set([row("w")], {"w": zero})[0].wall_s.tolist() == [1e-9] * 3  # never a zero wall time


def test_drift_normalisation_by_the_reference():
    """Only with drift_correction (off by default, cmp.DRIFT_CORRECTION): the default judges the raw
    ratio, reports the reference's, and widens the interval by the reference's movement (so a 30%
    change while the machine moved 30% is inconclusive, with the figure); the correction divides
    by the reference instead and widens only by the host's spread."""
    assert cmp.DRIFT_CORRECTION is False
    ref = {"ref": cell(0.5)}
    b = rset("b", {"b0": ("m", cell(1.0))}, refs=ref)
    n = rset("n", {"n0": ("m", cell(1.3))}, refs={"ref2": cell(0.5 * 1.3)})
    (c,), _, _ = cmp.compare(b, n)
    assert not c.normalised and c.ratio == pytest.approx(1.3, rel=1e-6) and c.verdict == "inconclusive"
    assert c.raw_low > 1.25 and "changed by +30% between the runs" in c.reason
    assert c.between_sigma == pytest.approx(math.log(1.3), rel=1e-6)
    assert c.ref_ratio == pytest.approx(1.3, rel=1e-6)  # reported, not divided by
    (c,), _, _ = cmp.compare(b, n, drift_correction=True)
    assert c.normalised
    assert c.ref_ratio == pytest.approx(1.3, rel=1e-6)
    assert c.ref_low > 1
    assert c.ratio == pytest.approx(1.0, rel=1e-6)
    assert c.verdict == "no change"
    assert c.raw_low > 1.25 and c.raw_high < 1.35
    # the reference did not move: the raw ratio stands
    (c,), _, _ = cmp.compare(b, rset("n", {"n0": ("m", cell(1.3))}, refs={"ref2": cell(0.5)}), drift_correction=True)
    assert not c.normalised and c.ratio == pytest.approx(1.3, rel=1e-6) and c.verdict == "slower"
    assert c.ref_ratio == pytest.approx(1.0)
    # the machine got faster: ratio divided by the reference's ratio below 1
    (c,), _, _ = cmp.compare(b, rset("n", {"n0": ("m", cell(1.0))}, refs={"ref2": cell(0.4)}), drift_correction=True)
    assert c.normalised and c.ref_high < 1 and c.ratio == pytest.approx(1.25, rel=1e-6) and c.verdict == "slower"
    # a reference on one side only: no correction
    (c,), _, _ = cmp.compare(b, rset("n", {"n0": ("m", cell(1.3))}), drift_correction=True)
    assert not c.normalised and math.isnan(c.ref_ratio)


def test_one_sided_rows_are_listed():
    b = rset("b", {"b0": ("m", cell(1.0)), "b1": ("only-base", cell(1.0))})
    n = rset("n", {"n0": ("m", cell(1.0)), "n1": ("only-new", cell(1.0))})
    changes, ob, on = cmp.compare(b, n)
    assert [c.key[0] for c in changes] == ["m"]
    assert [k[0] for k in ob] == ["only-base"] and [k[0] for k in on] == ["only-new"]
    assert changes[0].key == cmp.key(b.rows[0])


def test_system_differences_are_named():
    a = {"cpu_model": "A", "onnxruntime": "1.20", "host": "h1", "extra": 1}
    b = {"cpu_model": "B", "onnxruntime": "1.20", "host": "h2", "torch": "2.1", "extra": 2}
    base, new = rset("b", {"b": ("m", None)}, systems=[a]), rset("n", {"n": ("m", None)}, systems=[b])
    assert cmp.system_differences(base, new) == ['cpu_model: "A" -> "B"', 'torch: ? -> "2.1"', 'host: "h1" -> "h2"']
    assert cmp.system_differences(base, rset("n", {"n": ("m", None)}, systems=[dict(a)])) == []
    two = rset("n", {"n": ("m", None)}, systems=[a, dict(a, cpu_model="C")])
    assert cmp.system_differences(base, two) == ['cpu_model: "A" -> "A" | "C"']
    assert cmp.system_differences(rset("b", {"b": ("m", None)}), rset("n", {"n": ("m", None)})) == []


def test_load_files_and_folders(tmp_path):
    csv = tmp_path / "run.csv"
    app = CsvAppender(csv)
    app.append(row("c0"))
    app.append(row("c1", task="reference", model="mnistbench-reference"))
    app.append(error_record("it broke", model="bad", cell_id="c2"))
    samples_io.save(csv, "c0", cell(1.0))
    samples_io.save(csv, "c1", cell(0.5))
    (tmp_path / "run.system.json").write_text(json.dumps({"cpu_model": "X"}))
    rs = cmp.load(csv)
    assert [r.cell_id for r in rs.rows] == ["c0"] and [r.cell_id for r in rs.references] == ["c1"]
    assert set(rs.samples) == {"c0", "c1"} and rs.systems == [{"cpu_model": "X"}]
    assert rs.samples["c0"].ns.tolist() == cell(1.0).ns.tolist()
    assert [r.cell_id for r in cmp.load(tmp_path).rows] == ["c0"]
    assert cmp.ResultSet("x", [], {}, []).references == []
    with pytest.raises(UsageError, match="does not exist"):
        cmp.load(tmp_path / "nope.csv")
    with pytest.raises(UsageError, match="no results CSV"):
        cmp.load(tmp_path / "run.csv.samples" if (tmp_path / "run.csv.samples").is_dir() else _empty(tmp_path))
    (tmp_path / "run.system.json").write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        cmp.load(csv)
    only_err = tmp_path / "e" / "err.csv"
    CsvAppender(only_err).append(error_record("x", model="bad", cell_id="e0"))
    with pytest.raises(UsageError, match="no measured rows"):
        cmp.load(only_err)


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_changes_and_rules_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        change().verdict = "faster"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cmp.parse_rules("p50:+5%")[0].amount = 50.0


def test_zero_latencies_are_never_divided_by():
    """A side whose calls all read 0 ns (a clock too coarse for the model) gives no ratio and no
    verdict; a reference at 0 ns gives no drift correction, never a division by zero."""
    zero = cell(0.0, spread=0.0)
    (c,), _, _ = cmp.compare(rset("b", {"b": ("m", zero)}), rset("n", {"n": ("m", cell(1.0))}))
    assert math.isnan(c.ratio) and c.verdict == "n/a" and c.blocks == (8, 8)
    b = rset("b", {"b0": ("m", cell(1.0))}, refs={"ref": zero})
    (c,), _, _ = cmp.compare(b, rset("n", {"n0": ("m", cell(1.3))}, refs={"ref2": cell(0.5)}), drift_correction=True)
    assert not c.normalised and math.isnan(c.ref_ratio) and c.verdict == "slower"


def test_p50_ratio_of_sub_millisecond_latencies():
    assert change(base_p50_ms=0.5, new_p50_ms=1.0).p50_ratio == 2.0
    assert change(base_p50_ms=0.04, new_p50_ms=0.05).p50_ratio == pytest.approx(1.25)


def test_separate_runs_are_resampled_independently():
    """compare() pairs nothing: each side's blocks are drawn on their own (paired resampling is only
    for the rounds of one process, --live), so the interval is that of independent draws."""
    b, n = rset("b", {"b0": ("m", cell(1.0, spread=0.01))}), rset("n", {"n0": ("m", cell(1.1, spread=0.01))})
    (c,), _, _ = cmp.compare(b, n)
    bs, _ = cmp.block_set(b.rows, b.samples)
    nb, _ = cmp.block_set(n.rows, n.samples)
    unpaired = cmp.percentile_ci(cmp.ratio_draws(bs, nb, np.random.default_rng(0), paired=False))
    paired = cmp.percentile_ci(cmp.ratio_draws(bs, nb, np.random.default_rng(0), paired=True))
    assert (c.ratio_low, c.ratio_high) == unpaired
    assert paired != unpaired


def test_a_field_only_in_the_base_system_is_named():
    base = rset("b", {"b": ("m", None)}, systems=[{"torch": "2.1"}])
    assert cmp.system_differences(base, rset("n", {"n": ("m", None)}, systems=[{}])) == ['torch: "2.1" -> ?']


# --- On CSVs and samples written by the real runner ------------------------------------------------

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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert {st for _, _, st, _ in calls if st is not None} == {cal.PROBE_STAGES, cal.TRUTH_STAGES,
                                                              cal.TRUTH_STAGES_SMALL, cal.REFINE_STAGES}
    # the 1% copy's nodes are on the output, costed by their own probe; the 3% ones on the input
    probes = {b.split("-")[2] for _, b, st, _ in calls if st == cal.PROBE_STAGES}
    assert probes == {"input", "output"}
    assert "c10-b4 (output nodes)" in (tmp_path / "cal" / "summary.md").read_text()
    # a planted speedup is measured with the slowed copy as the base and reported as a ratio below 1
    speed = [r for r in rows if float(r["level"]) < 0]
    assert speed and all(float(r["ratio"]) < 1 for r in speed)
    assert json.loads((tmp_path / "cal" / "system.json").read_text())["condition"]["condition"] == "as-is"
    with pytest.raises(UsageError, match="calibration modes"):
        cal.study(configs, x, tmp_path / "cal2", trials=1, modes=("both",))
