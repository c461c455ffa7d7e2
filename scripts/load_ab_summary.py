"""What a load A/B (``scripts/load_ab.py``) measured, trial by trial, from its committed files: the
verdicts and intervals ``compare`` gave (``trials.csv``), and from each trial's load CSV the peaks'
geometric means, the sd of the rounds' ln ratios (what the paired interval is made of), and the
compute time a call took at each file's peak under load (median of the rows' ``compute_p50_ms``)
beside the planted slowdown measured in a closed loop. Writes ``<out>/analysis.md``.

Usage: python scripts/load_ab_summary.py results/load/ab-rich-cnn-interleaved
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
from mnistbench.bench.load.rows import read_load_csv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    a = ap.parse_args()
    with open(a.out / "trials.csv", newline="") as fh:
        verdicts = {(int(r["trial"]), r["new"]): r for r in csv.DictReader(fh)}
    lines = [f"# {a.out.name}: trial by trial", "", f"Command: python scripts/load_ab_summary.py {a.out}", "",
             "Peaks: geometric means over the trial's rounds (QPS). sd: of ln(new_r / base_r) over the rounds. "
             "Compute: median over the rounds of the call's p50 (ms) in the VALID test at each file's peak.", "",
             "| trial | base peak | same / base [95%] | verdict | sd | slow / base [95%] | verdict | sd "
             "| compute base / same / slow ms | slow / base compute |",
             "|---:|---:|---|---|---:|---|---|---:|---|---:|"]
    sds: dict[str, list[float]] = {"same": [], "slow": []}
    compute_ratio = []
    for path in sorted(a.out.glob("trial-*.csv")):
        i = int(path.stem.split("-")[1])
        rows = [r for r in read_load_csv(path) if r.kind == "peak" and r.valid == "VALID"]
        by = {m: {r.repeat: r for r in rows if r.model == m} for m in ("base", "same", "slow")}
        cells = [str(i), f"{math.exp(np.mean(np.log([r.peak_qps for r in by['base'].values()]))):,.0f}"]
        for new in ("same", "slow"):
            common = sorted(set(by["base"]) & set(by[new]))
            d = np.log([by[new][k].peak_qps for k in common]) - np.log([by["base"][k].peak_qps for k in common])
            sd = float(np.std(d, ddof=1)) if len(d) > 1 else math.nan
            sds[new].append(sd)
            v = verdicts.get((i, new), {})
            cells += [v.get("ratio_ci", ""), v.get("verdict", ""), f"{sd:.3f}"]
        comp = {m: float(np.median([r.compute_p50_ms for r in by[m].values()])) for m in by}
        compute_ratio.append(comp["slow"] / comp["base"])
        cells += [f"{comp['base']:.3f} / {comp['same']:.3f} / {comp['slow']:.3f}", f"{comp['slow'] / comp['base'] - 1:+.1%}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Median sd of the rounds' ln ratio: same {np.median(sds['same']):.3f}, slow {np.median(sds['slow']):.3f}. "
              f"Median compute slowdown at the peak under load: {np.median(compute_ratio) - 1:+.1%}."]
    (a.out / "analysis.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
