"""Does the stability warning tell a quiet machine from a loaded one? The same `mnistbench run`
twice: once as it is, once beside CPU burners (processes spinning in a Python loop, one per logical
CPU unless --burners says otherwise). For each run: rows, rows named by the warning (p50 95%
interval wider than +-5%, :data:`bench.report.STABILITY_WARN`), the median and the 90th percentile
of `p50_ci_halfwidth_rel`, the wall time and the load average. Writes `summary.md` and the two
runs' CSVs (with samples and system JSON) to --out.

    python scripts/stability_demo.py --out results/calibration/stability -- --profile quick

Everything after ``--`` is passed to `mnistbench run` (the README's main job measures the quick
profile's exports with default settings, so ``--profile quick`` reproduces its run step).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from mnistbench.bench.analysis.report import STABILITY_WARN
from mnistbench.bench.measure.records import read_csv


def _burn() -> None:
    while True:
        pass


def summarise(label: str, csv: Path, burners: int, wall: float, load: str, printed: bool) -> dict:
    rows = [r for r in read_csv(csv) if r.status == "ok" and r.task != "reference"]
    hw = np.array([r.p50_ci_halfwidth_rel for r in rows], dtype=float)
    return {"label": label, "burners": burners, "rows": len(rows), "warned": int(np.sum(~(hw <= STABILITY_WARN))),
            "median_hw": float(np.nanmedian(hw)), "p90_hw": float(np.nanpercentile(hw, 90)), "wall_s": wall,
            "load": load, "warning_printed": printed}


def measure(label: str, out: Path, run_args: list[str], burners: int) -> dict:
    procs = [mp.Process(target=_burn, daemon=True) for _ in range(burners)]
    for p in procs:
        p.start()
    try:
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        csv = out / f"{label}.csv"
        res = subprocess.run([sys.executable, "-m", "mnistbench.bench.cli", "run", *run_args, "--out", str(csv)],
                             capture_output=True, text=True)
        wall = time.perf_counter() - t
        load1 = os.getloadavg()[0]
    finally:
        for p in procs:
            p.terminate()
    if res.returncode != 0:
        sys.exit(f"{label}: mnistbench run failed: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    warning = [ln for ln in res.stderr.splitlines() + res.stdout.splitlines() if "interval wider" in ln]
    return summarise(label, csv, burners, wall, f"{load0:.2f} -> {load1:.2f}", bool(warning))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--burners", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quiet-csv", type=Path, help="use this run's CSV as the quiet run (e.g. the main job's) "
                    "instead of measuring one; its wall time and load are then not known")
    ap.add_argument("run_args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    run_args = [x for x in a.run_args if x != "--"]
    shutil.rmtree(a.out, ignore_errors=True)
    a.out.mkdir(parents=True)
    quiet = (summarise(f"quiet ({a.quiet_csv.name})", a.quiet_csv, 0, float("nan"), "-", None) if a.quiet_csv
             else measure("quiet", a.out, run_args, 0))
    results = [quiet, measure("burner", a.out, run_args, a.burners)]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [f"# Stability warning: quiet machine against CPU burners", "",
             f"Command: `python scripts/stability_demo.py {' '.join(sys.argv[1:])}` "
             f"(commit {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}). "
             f"Warning threshold: p50 95% interval half-width above {STABILITY_WARN:.0%} of the p50.", "",
             "| run | burners | rows | rows warned | median half-width | p90 half-width | warning printed | wall s | load 1 min |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['label']} | {r['burners']} | {r['rows']} | {r['warned']} | {r['median_hw']:.1%} | "
                     f"{r['p90_hw']:.1%} | {'-' if r['warning_printed'] is None else 'yes' if r['warning_printed'] else 'no'} | {r['wall_s']:.0f} | {r['load']} |")
    (a.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
