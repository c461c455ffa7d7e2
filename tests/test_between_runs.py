"""Between-run uncertainty of separate-run verdicts: the reference's movement and the host's noise
profile widen the interval, so a change that the machine's own movement could explain is never
called slower or faster."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from mnistbench.bench.analysis import compare as cmp
from mnistbench.bench.cli import app
from mnistbench.bench.measure import noiseprofile
from mnistbench.bench.measure.records import BenchmarkRecord
from mnistbench.bench.measure.samples import CellSamples
from typer.testing import CliRunner

runner = CliRunner()


def _record(**kw) -> BenchmarkRecord:
    import dataclasses

    defaults = {f.name: (math.nan if f.type in ("float", float) else
                         0 if f.type in ("int", int) else "") for f in dataclasses.fields(BenchmarkRecord)}
    defaults.update(status="ok", variant="fp32", runtime="onnxruntime", provider="cpu", threads_requested="1",
                    spinning="off", io_mode="end-to-end", dataset="mnist", intra_op_threads=1)
    defaults.update(kw)
    return BenchmarkRecord(**defaults)


def result_set(label: str, scale: float, ref_scale: float | None, systems=None, seed=0) -> cmp.ResultSet:
    """One model cell (16 blocks of 200 calls around 1 ms x ``scale``, block spread 0.3%) and, unless
    ``ref_scale`` is None, a reference cell around 0.5 ms x ``ref_scale``."""
    rng = np.random.default_rng(seed)
    rows, refs, smp = [], [], {}
    for name, task, centre in (("m", "null", 1.0 * scale), ("mnistbench-reference", "reference",
                                                            None if ref_scale is None else 0.5 * ref_scale)):
        if centre is None:
            continue
        blocks = [np.round(centre * (1 + rng.normal(0, 0.003)) * rng.lognormal(0, 0.02, 200) * 1e6).astype(np.int64)
                  for _ in range(16)]
        cid = f"{label}-{name}"
        smp[cid] = CellSamples.from_blocks(blocks, [int(b.sum()) for b in blocks], list(range(16)))
        r = _record(model=name, task=task, batch_size=32, cell_id=cid,
                    latency_p50_ms=float(np.median(np.concatenate(blocks))) / 1e6)
        (refs if task == "reference" else rows).append(r)
    return cmp.ResultSet(label, rows, smp, systems or [], refs)


def test_a_pair_whose_reference_moved_20_percent_is_inconclusive_not_slower():
    """The second run found the machine 20% slower (the reference shows it) and the model 20% slower:
    within the runs that is `slower` [1.19, 1.21]; with the reference's movement inside the interval
    it is `inconclusive`, and the reason gives the figure and names --live."""
    base, new = result_set("b", 1.0, 1.0), result_set("n", 1.2, 1.2, seed=1)
    (c,), _, _ = cmp.compare(base, new, sigma=0.0)
    assert cmp.verdict(c.raw_low, c.raw_high, cmp.NOISE) == "slower" and c.raw_low > 1.15
    assert c.verdict == "inconclusive" and c.ratio_low < 1 - cmp.NOISE < 1 + cmp.NOISE < c.ratio_high
    assert c.between_sigma == pytest.approx(math.log(c.ref_ratio), rel=1e-9)
    assert f"the machine's speed changed by {c.ref_ratio - 1:+.0%} between the runs (reference network)" in c.reason
    assert c.ref_ratio == pytest.approx(1.2, abs=0.015)
    assert "compare with --live" in c.reason


def test_a_real_change_on_a_still_machine_is_still_called():
    """The reference did not move (and the host's spread is 1%): a 20% slowdown is `slower`, a 20%
    speedup `faster`; nothing is widened beyond sqrt(within^2 + (1.96 * 1%)^2)."""
    base = result_set("b", 1.0, 1.0)
    (c,), _, _ = cmp.compare(base, result_set("n", 1.2, 1.0, seed=1), sigma=0.01)
    assert c.verdict == "slower" and c.reason == "" and c.between_sigma == pytest.approx(0.01)
    lr = math.log(c.ratio)
    assert math.log(c.ratio_high) - lr == pytest.approx(math.hypot(math.log(c.raw_high) - lr, cmp.Z95 * 0.01), rel=1e-9)
    (c,), _, _ = cmp.compare(base, result_set("n", 1 / 1.2, 1.0, seed=1), sigma=0.01)
    assert c.verdict == "faster"


def test_the_host_profile_alone_can_make_a_change_inconclusive():
    """No reference rows, a host whose separate runs spread by 8% (sd of ln ratio): a 10% change
    could be the machine, so it is inconclusive, and the reason names the profile."""
    base, new = result_set("b", 1.0, None), result_set("n", 1.1, None, seed=1)
    (c,), _, _ = cmp.compare(base, new, sigma=0.08)
    assert c.verdict == "inconclusive" and "noise profile" in c.reason and c.between_sigma == 0.08
    (c,), _, _ = cmp.compare(base, new, sigma=0.0)
    assert c.verdict == "slower" and c.reason == ""


def test_widen_adds_the_between_run_term_in_quadrature_in_log_space():
    lo, hi = cmp.widen(1.1, 1.05, 1.2, 0.05)
    w = cmp.Z95 * 0.05
    assert math.log(1.1) - math.log(lo) == pytest.approx(math.hypot(math.log(1.1 / 1.05), w), rel=1e-12)
    assert math.log(hi) - math.log(1.1) == pytest.approx(math.hypot(math.log(1.2 / 1.1), w), rel=1e-12)
    assert cmp.widen(1.1, 1.05, 1.2, 0.0) == (1.05, 1.2)
    assert all(math.isnan(v) for v in cmp.widen(math.nan, math.nan, math.nan, 0.1))
    assert cmp.reference_movement([1.2, 1 / 1.2]) == pytest.approx(math.log(1.2), rel=1e-12)
    assert math.isnan(cmp.reference_movement([math.nan, -1.0]))


def test_noise_profile_store_round_trip_and_rejects_damaged_files(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTBENCH_CACHE", str(tmp_path / "cache"))
    assert noiseprofile.cache_path() == tmp_path / "cache" / "noise-profile.json"
    assert noiseprofile.load() is None
    p = noiseprofile.save(0.021, 20, "as-is", "mnistbench doctor --calibrate")
    assert noiseprofile.load() == p and p["sigma_log"] == 0.021 and p["trials"] == 20
    data = json.loads(noiseprofile.cache_path().read_text())
    assert data["schema"] == 1 and list(data["profiles"]) == [noiseprofile.host_key()]
    with pytest.raises(ValueError):
        noiseprofile.save(0.02, noiseprofile.MIN_TRIALS - 1, "as-is", "x")
    with pytest.raises(ValueError):
        noiseprofile.save(math.nan, 20, "as-is", "x")
    for damaged in ("{", "[]", '{"schema": 2, "profiles": {}}', '{"schema": 1, "profiles": []}',
                    json.dumps({"schema": 1, "profiles": {noiseprofile.host_key(): {"sigma_log": "0.02", "trials": 20}}})):
        noiseprofile.cache_path().write_text(damaged)
        assert noiseprofile.load() is None, damaged


def test_sigma_comes_from_the_runs_then_this_host_then_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTBENCH_CACHE", str(tmp_path))
    rec = {"sigma_log": 0.05, "trials": 10}
    here = dict(zip(("host", "cpu_model", "machine_id"), noiseprofile.host_key().split("|")))
    assert noiseprofile.sigma_of([{**here, "noise_profile": rec}, {**here, "noise_profile": None}]) == (
        0.05, "the runs' noise profile")
    assert noiseprofile.sigma_of([here, here]) == (noiseprofile.DEFAULT_SIGMA, "no noise profile")
    noiseprofile.save(0.012, 12, "quiet", "x")
    assert noiseprofile.sigma_of([here, here]) == (0.012, "this host's noise profile")
    other = {**here, "host": "elsewhere"}
    assert noiseprofile.sigma_of([here, other]) == (noiseprofile.DEFAULT_SIGMA, "no noise profile")
    assert noiseprofile.sigma_of([]) == (noiseprofile.DEFAULT_SIGMA, "no noise profile")


def test_compare_cli_says_when_no_profile_is_known_and_takes_noise_auto(tmp_path, monkeypatch):
    monkeypatch.setenv("MNISTBENCH_CACHE", str(tmp_path))
    base, new = result_set("b", 1.0, 1.0), result_set("n", 1.2, 1.2, seed=1)
    monkeypatch.setattr(cmp, "load", lambda p: base if str(p) == "b" else new)
    res = runner.invoke(app, ["compare", "b", "n", "--noise", "auto", "--fail-on", "p50:+5%"])
    assert res.exit_code == 0, res.output
    assert "inconclusive" in res.stdout and "no noise profile" not in res.stderr  # the reference decided it
    assert "between the runs (reference network)" in res.stderr and "gate: passed" in res.stderr
    small = result_set("n", 1.04, 1.0, seed=1)  # 4% with a still reference: only the default 3% spread hides it
    monkeypatch.setattr(cmp, "load", lambda p: base if str(p) == "b" else small)
    res = runner.invoke(app, ["compare", "b", "n", "--fail-on", "p50:+3%"])
    assert res.exit_code == 0 and "no noise profile for this host" in res.stderr, res.output
    assert "this host's separate runs differ by" in res.stderr
    res = runner.invoke(app, ["compare", "b", "n", "--noise", "loud"])
    assert res.exit_code == 2 and "--noise is auto or a fraction" in res.stderr


def test_gate_messages_name_the_live_cure_and_omit_accuracy_of_unscored_rows(capsys):
    """A live A/B's inconclusive cell says to raise --max-s (not to "use --live"); a gate line of an
    unscored row shows no "accuracy +nan pp"; separate runs keep "measure more or use --live"."""
    from mnistbench.bench import api
    from mnistbench.bench.cli import console

    base, new = result_set("b", 1.0, 1.0), result_set("n", 1.3, 1.0, seed=1)
    (slow,), _, _ = cmp.compare(base, new, sigma=0.0)
    (unsure,), _, _ = cmp.compare(base, result_set("n", 1.02, 1.0, seed=1), sigma=0.05)
    assert slow.verdict == "slower" and unsure.verdict == "inconclusive" and math.isnan(slow.acc_delta_pp)
    live = api.gate([api.Comparison("live", [slow, unsure], [], live=True)], "p50:+5%")
    console.show_gate(live)
    err = capsys.readouterr().err
    assert "raise --max-s to keep measuring" in err and "use --live" not in err
    assert "crosses p50:+5%" in err and "nan" not in err and "accuracy" not in err
    console.show_gate(api.gate([api.Comparison("a -> b", [unsure], [])], "p50:+5%"))
    assert "measure more or use --live" in capsys.readouterr().err


def test_cache_location_and_machine_id(tmp_path, monkeypatch):
    monkeypatch.delenv("MNISTBENCH_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert noiseprofile.cache_path() == tmp_path / "xdg" / "mnistbench" / "noise-profile.json"
    deep = tmp_path / "a" / "b" / "noise-profile.json"  # missing folders are made
    assert noiseprofile.save(0.02, 8, "as-is", "x", path=deep) == noiseprofile.load(path=deep)
    mid = tmp_path / "machine-id"
    mid.write_text("0123456789abcdef" * 5 + "\n")
    real = noiseprofile.Path

    def fake(p, *a):
        return real(mid) if p == "/etc/machine-id" else real(p, *a)

    monkeypatch.setattr(noiseprofile, "Path", fake)
    assert noiseprofile.machine_id() == ("0123456789abcdef" * 5)[:64]
    mid.unlink()
    assert noiseprofile.machine_id() == ""


def test_a_sub_millisecond_base_cell_is_judged_like_any_other():
    """A base cell of 0.05 ms (a null-sized model at batch 1) against 0.075 ms: slower, ratio about 1.5."""
    base, new = result_set("b", 0.05, 1.0), result_set("n", 0.075, 1.0, seed=1)
    (c,), _, _ = cmp.compare(base, new, sigma=0.0)
    assert c.verdict == "slower" and c.ratio == pytest.approx(1.5, rel=0.02) and c.base_p50_ms < 0.06


def test_a_throughput_rule_trips_on_a_base_below_one_image_per_second():
    """Throughput ratios of slow cells (a base of 0.5 images/s) are figures, not NaN, so `throughput:-5%` gates them."""
    import dataclasses

    base, new = result_set("b", 1.0, 1.0), result_set("n", 1.3, 1.0, seed=1)
    (c,), _, _ = cmp.compare(base, new, sigma=0.0)
    slow = dataclasses.replace(c, base_ips=0.5, new_ips=0.4, normalised=False)
    assert slow.verdict == "slower" and slow.ips_ratio == pytest.approx(0.8)
    assert cmp.gate([slow], cmp.parse_rules("throughput:-5%")) and not cmp.gate([slow], cmp.parse_rules("throughput:-25%"))
