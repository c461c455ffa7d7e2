"""Re-judge a calibration study's separate-run trials without the reference-network correction.

The study of results/calibration/ ran with `compare`'s old default (divide by the reference's ratio
when that moved). Each trial row records the judged ratio and interval, the reference's ratio and
whether it was used, so the raw verdict can be recovered: raw ratio = ratio x reference ratio when
normalised; the raw interval is approximated by the normalised interval times the reference's point
ratio (it keeps the reference's spread, so it is wider than the true raw interval: `slower` is called
less often than the code now would, never more). The gate (`p50:+5%`) fails on a `slower` verdict
whose point ratio is at least 1.05, so A/A gate failures need a raw point ratio >= 1.05, which this
recovers exactly.

    python scripts/calibration_rejudge.py results/calibration/trials.csv > results/calibration/rejudged.md
"""

from __future__ import annotations

import csv
import sys
from collections import Counter, defaultdict

from mnistbench.bench.compare import NOISE, verdict


def main(path: str) -> None:
    agg: dict[tuple, Counter] = defaultdict(Counter)
    span: dict[tuple, list[float]] = defaultdict(list)
    for r in csv.DictReader(open(path)):
        if r["mode"] != "separate":
            continue
        k = (r["config"], float(r["level"]))
        scale = float(r["reference_ratio"]) if r["normalised"] == "1" else 1.0
        ratio, lo, hi = (float(r[x]) * scale for x in ("ratio", "ratio_low", "ratio_high"))
        v = verdict(lo, hi, NOISE)
        agg[k]["trials"] += 1
        agg[k][v] += 1
        agg[k]["gate"] += v == "slower" and ratio >= 1.05
        span[k].append(ratio)
    print("| config | planted | trials | slower | faster | no change | inconclusive | gate failed (p50:+5%) | raw ratio min-max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (cfg, lv), c in sorted(agg.items()):
        print(f"| {cfg} | {lv:.0%} | {c['trials']} | {c['slower']} | {c['faster']} | {c['no change']} | "
              f"{c['inconclusive']} | {c['gate']} | {min(span[(cfg, lv)]):.3f}-{max(span[(cfg, lv)]):.3f} |")


if __name__ == "__main__":
    main(sys.argv[1])
