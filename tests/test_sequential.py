"""The sequential test of the live A/B: its intervals, verdicts, look schedule and false-alarm rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mnistbench.bench.analysis import sequential as seq
from scipy import stats


def test_each_look_spends_an_equal_share_of_alpha():
    """16 scheduled looks and one final look: each at 1 - 0.05/17, so that the union bound keeps the
    overall two-sided error at 5%; the first look after 6 stages."""
    assert seq.ALPHA == 0.05 and len(seq.LOOKS) == 16 and seq.LOOKS[0] == 6 and seq.LOOKS[-1] == 200
    assert list(seq.LOOKS) == sorted(set(seq.LOOKS))
    assert seq.look_level() == pytest.approx(1 - 0.05 / 17, abs=1e-15)
    assert seq.look_level(0.1, (3, 5)) == pytest.approx(1 - 0.1 / 3, abs=1e-15)


def test_interval_is_student_t_on_the_stage_log_ratios():
    d = np.array([0.031, 0.012, 0.044, 0.027, 0.019, 0.035])
    level = 0.99
    ratio, lo, hi = seq.interval(d, level)
    half = stats.t.ppf(0.995, 5) * d.std(ddof=1) / math.sqrt(6)
    assert ratio == pytest.approx(math.exp(d.mean()), rel=1e-12)
    assert (lo, hi) == pytest.approx((math.exp(d.mean() - half), math.exp(d.mean() + half)), rel=1e-12)
    assert math.isnan(seq.interval(d[:1], level)[1]) and math.isnan(seq.interval(np.array([]), level)[0])
    assert seq.interval(np.array([0.1, 0.1, 0.1]), level) == pytest.approx((math.exp(0.1),) * 3)
    assert seq.interval(np.array([0.1, math.nan, 0.1, 0.1]), level)[0] == pytest.approx(math.exp(0.1))


@pytest.mark.parametrize("lo, hi, verdict", [
    (1.0001, 1.2, "slower"), (1.0, 1.2, "inconclusive"), (0.8, 0.9999, "faster"), (0.8, 1.0, "inconclusive"),
    (0.99, 1.01, "no change"), (0.9899, 1.005, "inconclusive"), (0.995, 1.0101, "inconclusive"),
    (math.nan, 1.0, "n/a")])
def test_verdict_edges(lo, hi, verdict):
    assert seq.verdict(lo, hi, 0.01) == verdict


def test_the_test_looks_only_on_schedule_and_stops_once_decided():
    t = seq.SequentialTest(band=0.01)
    for d in (0.5, 0.52, 0.51, 0.5, 0.52):
        t.add(d)
        assert t.look() == "inconclusive" and t.looked == 0  # 1 to 5 stages: no scheduled look
    t.add(0.51)
    assert t.due() and t.look() == "slower" and t.looked == 1 and t.decided
    assert t.ratio == pytest.approx(math.exp(np.mean([0.5, 0.52, 0.51, 0.5, 0.52, 0.51])), rel=1e-9) and t.low > 1
    t.add(-5.0)
    assert t.look(final=True) == "slower" and t.looked == 1  # decided: later stages change nothing
    u = seq.SequentialTest(band=0.01)
    for d in (0.0, 0.001, -0.001, 0.0005, 0.0, -0.0005, 0.0002):
        u.add(d)
    assert u.n == 7 and not u.due() and u.look() == "inconclusive" and u.looked == 0  # 7: not scheduled
    assert u.look(final=True) == "no change" and u.looked == 1  # the final look judges off schedule
    w = seq.SequentialTest(band=0.01)
    w.add(0.1)
    assert w.look(final=True) == "inconclusive"  # one stage: no interval, keep "inconclusive"


@pytest.mark.parametrize("df", [None, 3])
def test_false_alarm_rate_on_10000_simulated_aa_streams_stays_below_nominal(df):
    """10,000 A/A streams of 200 stages (normal, and heavy-tailed Student t with 3 degrees of freedom),
    looked at on every scheduled count: the fraction ever called slower or faster is at most alpha
    (5%). Looking after every stage at the plain 95% interval instead alarms far more often: the
    procedure's spending is what holds the rate."""
    rate = seq.simulate_false_alarms(10_000, 200, sd=0.02, seed=1, df=df)
    assert 0 < rate <= seq.ALPHA, rate
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2000, 200)) * 0.02
    n = np.arange(1, 201)
    m = np.cumsum(x, 1) / n
    sd = np.sqrt(np.maximum(np.cumsum(x * x, 1) - n * m * m, 0) / np.maximum(n - 1, 1))
    half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    naive = ((np.abs(m) > half)[:, 2:]).any(1).mean()  # peeking at 95% after every stage from 3 on
    assert naive > 3 * seq.ALPHA, naive


def test_the_simulation_detects_a_real_change():
    """The same machinery with a 3% true slowdown and 2% stage spread: (almost) every stream ends
    `slower` within 40 stages: the simulation can see an alarm when there is one to see."""
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(200):
        t = seq.SequentialTest(band=0.01)
        for d in rng.normal(math.log(1.03), 0.02, 40):
            t.add(d)
            if t.look() in seq.DECIDED:
                break
        hits += t.verdict == "slower"
    assert hits >= 190, hits


def test_the_vectorised_simulation_is_the_test_run_stream_by_stream():
    """simulate_false_alarms on given draws (A/A streams and streams with a real 1.5% shift, so that
    both alarms and no-change stops happen) gives exactly the fraction that SequentialTest, fed
    stage by stage with its scheduled looks and a final look, ends slower or faster."""
    x = np.vstack([seq.simulated_draws(600, 70, sd=0.02, seed=4), seq.simulated_draws(600, 70, sd=0.02, seed=5,
                                                                                      shift=math.log(1.015))])
    ends = []
    for row in x:
        t = seq.SequentialTest(band=0.01)
        for i, d in enumerate(row):
            t.add(d)
            if t.look(final=i == len(row) - 1) in seq.DECIDED:
                break
        ends.append(t.verdict)
    expected = sum(v in ("slower", "faster") for v in ends) / len(ends)
    assert 0.2 < expected < 0.8 and "no change" in ends  # both kinds of stop are exercised
    assert seq.simulate_false_alarms(0, 0, draws=x) == pytest.approx(expected, abs=1e-12)


def test_simulated_draws_have_the_asked_spread_and_shift():
    for df in (None, 5):
        x = seq.simulated_draws(400, 500, sd=0.02, seed=6, df=df, shift=0.01)
        assert x.shape == (400, 500)
        assert x.std() == pytest.approx(0.02, rel=0.03) and x.mean() == pytest.approx(0.01, abs=2e-4)
