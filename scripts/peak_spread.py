"""How much does one file's found peak Server rate spread from search to search, within one process?

For each minimum test duration given, one ``mnistbench load --find-peak --repeat N`` of one ONNX
file (fresh sessions each repeat, nothing else in the process), then per duration: the peaks, the
sd of ln peak, tests and wall seconds a search, and the searches a side that a 10% change flagged in
9 of 10 trials would need at that spread (two-sided 95%, power 0.9: a standard error of the ln
ratio of 0.1 / (1.96 + 1.28), both sides alike). Writes ``<out>/d<duration>.csv`` (the load CSVs,
with their logs and system JSON) and ``<out>/summary.md``.

Usage: python scripts/peak_spread.py OUT --source X.onnx [--durations 1 5] [--repeat 6]
       [--latency-bound-ms 20] [--mnistbench "mnistbench"]
"""

from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from mnistbench.bench.load.rows import read_load_csv

SE_NEEDED = 0.1 / (1.96 + 1.28)  # ln-ratio standard error at which a 10% change is flagged 9 times in 10


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--source", type=Path, required=True)
    ap.add_argument("--durations", type=float, nargs="+", default=[1.0, 5.0])
    ap.add_argument("--repeat", type=int, default=6)
    ap.add_argument("--latency-bound-ms", type=float, default=20.0)
    ap.add_argument("--mnistbench", default="mnistbench", help="the command that runs mnistbench")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Peak spread within one process: {a.source.name}, p99 <= {a.latency_bound_ms:g} ms, "
             f"{a.repeat} searches a duration", "", f"Command: python {' '.join(sys.argv)}", "",
             "| min test s | peaks (QPS, in order) | geometric mean | sd ln peak | tests a search | s a search "
             "| searches a side for 10% at 9/10 | minutes a side |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for d in a.durations:
        csv_path = a.out / f"d{d:g}.csv"
        cmd = shlex.split(a.mnistbench) + [
            "load", "--onnx", str(a.source), "--scenario", "server", "--find-peak", "--latency-bound-ms",
            f"{a.latency_bound_ms:g}", "--repeat", str(a.repeat), "--min-duration-s", f"{d:g}", "--no-null",
            "--out", str(csv_path)]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows = [r for r in read_load_csv(csv_path) if r.kind == "peak"]
        peaks = np.array([r.peak_qps for r in rows])
        ok = peaks[np.isfinite(peaks)]
        sd = float(np.std(np.log(ok), ddof=1)) if len(ok) > 1 else math.nan
        need = math.ceil(2 * (sd / SE_NEEDED) ** 2) if math.isfinite(sd) else math.nan
        wall = float(np.mean([r.wall_s for r in rows]))
        lines.append(f"| {d:g} | {', '.join(f'{p:,.0f}' for p in peaks)} | {np.exp(np.mean(np.log(ok))):,.0f} | "
                     f"{sd:.3f} | {np.mean([r.peak_tests for r in rows]):.1f} | {wall:.0f} | {need} | "
                     f"{need * wall / 60:.0f} |")
        print(lines[-1], flush=True)
    (a.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
