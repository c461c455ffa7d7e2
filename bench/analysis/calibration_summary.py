"""The summary of a calibration study (:mod:`.calibrate`): verdict rates against planted change per
mode, and every separate-run trial judged again with the between-run spread the study measured."""

from __future__ import annotations

import math

import numpy as np

from ..measure import noiseprofile
from ..measure.defaults import LIVE_MAX_S
from . import compare as cmp


def level_text(lv: float) -> str:
    """A planted level as the tables print it: ``+3%``, ``-3%``, ``+0.5%`` (never rounded to ``+0%``)."""
    return f"{lv:+.0%}" if round(lv * 100, 6) == round(lv * 100) else f"{lv:+.1%}"


GATE = "p50:+5%"  # the separate runs' gate: a CI gate's usual 5% on p50
LIVE_GATE = "p50:+1%"  # the live A/B's gate
LIVE_MAX_S_1PCT = 300.0  # the budget for levels of 1% and less (the bar: a 1% change flagged within --max-s 300)

def rejudge(row: dict, sigma: float) -> str:
    """A separate-run trial's verdict had the between-run spread been ``sigma`` (the widening of
    :func:`bench.compare.widen`, with the reference movement the trial recorded)."""
    ratio, lo, hi, ref = (float(row[k]) if row[k] != "" else math.nan
                          for k in ("ratio", "within_low", "within_high", "reference_ratio"))
    moved = cmp.reference_movement([ref]) if math.isfinite(ref) else math.nan
    lo2, hi2 = cmp.widen(ratio, lo, hi, max(sigma, 0.0 if math.isnan(moved) else moved))
    return cmp.verdict(lo2, hi2, cmp.NOISE)


def _rates(rs: list[dict], verdicts: list[str]) -> str:
    n = len(rs)
    return " | ".join(f"{sum(v == x for v in verdicts)}" for x in ("slower", "faster", "no change", "inconclusive")) + f" | {n}"


def summarise(rows: list[dict], truth: dict, costs: dict, nodes: dict, sigma: float = math.nan,
              condition: str = "") -> str:
    """The markdown summary: per mode, configuration and planted change, the count of each verdict
    (a power curve), gate failures, median ratio, and the copy's true ratio; separate runs judged
    with the default noise model and again with the host profile the study measured (``sigma``)."""
    out = [f"Condition: {condition}. Verdict counts per planted change (negative: a planted speedup; true ratio "
           "1/(1+L)).", ""]
    sep = [r for r in rows if r["mode"] == "separate"]
    if sep:
        out += [f"### Separate runs (gate {GATE}), default noise model: between-run spread "
                f"{noiseprofile.DEFAULT_SIGMA:.0%} or the reference's movement", "",
                "| config | planted | nodes | true ratio [95% CI] | slower | faster | no change | inconclusive | trials "
                "| gate failed | median ratio | within-run only: slower | within-run only: faster |",
                "|" + "---|" * 13]
        for cfg, lv in sorted({(r["config"], r["level"]) for r in sep}):
            rs = [r for r in sep if (r["config"], r["level"]) == (cfg, lv)]
            within = [cmp.verdict(float(r["within_low"]), float(r["within_high"]), cmp.NOISE) if r["within_low"] != ""
                      else "n/a" for r in rs]
            out.append(f"| {cfg} | {level_text(lv)} | {rs[0]['nodes']} | {_truth(truth, cfg, lv)} | "
                       f"{_rates(rs, [r['verdict'] for r in rs])} | {sum(r['gate_failed'] for r in rs)} | "
                       f"{np.median([float(r['ratio']) for r in rs]):.3f} | {within.count('slower')} | "
                       f"{within.count('faster')} |")
        if math.isfinite(sigma):
            out += ["", f"The same trials judged with the host profile this study measured (A/A spread of ln ratio "
                    f"{sigma:.4f}):", "", "| config | planted | slower | faster | no change | inconclusive | trials |",
                    "|" + "---|" * 7]
            for cfg, lv in sorted({(r["config"], r["level"]) for r in sep}):
                rs = [r for r in sep if (r["config"], r["level"]) == (cfg, lv)]
                out.append(f"| {cfg} | {level_text(lv)} | {_rates(rs, [rejudge(r, sigma) for r in rs])} |")
    live = [r for r in rows if r["mode"] == "live"]
    if live:
        out += ["", f"### Live A/B (gate {LIVE_GATE}), defaults; budget --max-s {LIVE_MAX_S:g} "
                f"({LIVE_MAX_S_1PCT:g} for levels of 1% and less)", "",
                "| config | planted | true ratio [95% CI] | slower | faster | no change | inconclusive | trials | "
                "gate failed | median s to decide | median stages |", "|" + "---|" * 11]
        for cfg, lv in sorted({(r["config"], r["level"]) for r in live}):
            rs = [r for r in live if (r["config"], r["level"]) == (cfg, lv)]
            out.append(f"| {cfg} | {level_text(lv)} | {_truth(truth, cfg, lv)} | {_rates(rs, [r['verdict'] for r in rs])} | "
                       f"{sum(r['gate_failed'] for r in rs)} | {np.median([float(r['decide_s']) for r in rs]):.0f} | "
                       f"{np.median([r['stages'] for r in rs]):.0f} |")
    out.append("")
    out.append("Per-node cost (live, base p50 and ms per appended Mul node): " + "; ".join(
        f"{k}: {t0:.4f} ms, {c * 1e3:.2f} µs/node" for k, (t0, c) in costs.items()))
    return "\n".join(out) + "\n"


def _truth(truth: dict, cfg: str, lv: float) -> str:
    if lv == 0:
        return "1 (A/A)"
    tr = truth.get((cfg, abs(lv)))
    if not tr:
        return "-"
    r, lo, hi = tr if lv > 0 else (1 / tr[0], 1 / tr[2], 1 / tr[1])
    return f"{r:.3f} [{lo:.3f}, {hi:.3f}]"
