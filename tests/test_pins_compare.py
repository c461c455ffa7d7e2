"""`compare` and its gate, pinned (issue 19): every verdict edge, every ``--fail-on`` rule in both
directions at, just below and just above its threshold, repeats pooled, legacy pseudo-blocks, drift
normalisation, one-sided rows, system differences and loading result files.

Rows are built from the schema (no benchmark runs): the block values are chosen so that ratios and
medians are known by hand.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from mnistbench.bench.analysis import compare as cmp
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.records import CsvAppender, error_record
from mnistbench.bench.measure.samples import CellSamples
from mnistbench.models.errors import UsageError


@pytest.fixture(autouse=True)
def no_between_run_spread(monkeypatch):
    """These tests pin the within-run rules: two sides with no between-run spread (sigma 0) unless a
    test asks for one; the reference network's movement still widens (tests/test_between_runs.py)."""
    from mnistbench.bench.measure import noiseprofile

    monkeypatch.setattr(noiseprofile, "DEFAULT_SIGMA", 0.0)


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
