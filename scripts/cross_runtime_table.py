"""The cross-runtime tables of the README, drawn from results CSVs (issue 13).

    python scripts/cross_runtime_table.py results/cross-runtime/*.csv > results/cross-runtime/tables.md

For each batch size in the files: one row per model, one column per configuration (runtime and
variant or precision) holding throughput in images/s; under it the p50 latency table; then the test
metric of every configuration at the largest batch size (accuracy, or MSE for the autoencoders) with
its change against fp32 *of the same runtime* (percentage points; MSE: relative). Only rows with
status ``ok`` of tasks ``classify`` and ``reconstruct``; repeats of one configuration (several
files) are pooled by their median.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from mnistbench.bench.measure.records import read_csv

ORDER = [("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "bf16"),
         ("openvino", "int8"), ("torch", "fp32"), ("torch", "bf16"), ("torch.compile", "fp32"),
         ("torch.compile", "bf16")]
SHORT = {"onnxruntime": "ORT", "openvino": "OV", "torch": "torch", "torch.compile": "compile"}


def frame(paths: list[Path]) -> pd.DataFrame:
    rows = [r.__dict__ for p in paths for r in read_csv(p)]
    df = pd.DataFrame(rows)
    df = df[(df.status == "ok") & df.task.isin(["classify", "reconstruct"])]
    return df.groupby(["model", "task", "runtime", "variant", "batch_size"], as_index=False)[
        ["throughput_ips", "latency_p50_ms", "accuracy_top1", "test_mse", "intra_op_threads"]].median()


def configs(df: pd.DataFrame) -> list[tuple[str, str]]:
    have = set(zip(df.runtime, df.variant))
    return [c for c in ORDER if c in have] + sorted(have - set(ORDER))


def pivot(df: pd.DataFrame, batch: int, field: str, fmt) -> str:
    cols = configs(df)
    out = ["| model | " + " | ".join(f"{SHORT.get(r, r)} {v}" for r, v in cols) + " |",
           "|---|" + "---:|" * len(cols)]
    d = df[df.batch_size == batch]
    for model in sorted(d.model.unique()):
        m = d[d.model == model].set_index(["runtime", "variant"])[field]
        out.append(f"| {model} | " + " | ".join(fmt(m[c]) if c in m.index else "-" for c in cols) + " |")
    return "\n".join(out)


def metric_table(df: pd.DataFrame, batch: int) -> str:
    cols = configs(df)
    out = ["| model | " + " | ".join(f"{SHORT.get(r, r)} {v}" for r, v in cols) + " |",
           "|---|" + "---:|" * len(cols)]
    d = df[df.batch_size == batch]
    for model in sorted(d.model.unique()):
        m = d[d.model == model].set_index(["runtime", "variant"])
        cells = []
        for r, v in cols:
            if (r, v) not in m.index:
                cells.append("-")
                continue
            row = m.loc[(r, v)]
            base = m.loc[(r, "fp32")] if (r, "fp32") in m.index else None
            if row.task == "classify":
                s = f"{row.accuracy_top1:.2%}"
                if base is not None and v != "fp32":
                    s += f" ({(row.accuracy_top1 - base.accuracy_top1) * 100:+.2f} pp)"
            else:
                s = f"{row.test_mse:.4g}"
                if base is not None and v != "fp32":
                    s += f" ({row.test_mse / base.test_mse - 1:+.1%})"
            cells.append(s)
        out.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(paths: list[Path]) -> None:
    df = frame(paths)
    threads = ",".join(str(int(t)) for t in sorted(df.intra_op_threads.unique()))
    print(f"From {', '.join(p.name for p in paths)} ({threads} intra-op thread(s)).\n")
    for b in sorted(df.batch_size.unique()):
        print(f"## Batch {b}: throughput, images/s\n\n{pivot(df, b, 'throughput_ips', lambda x: f'{x:,.0f}')}\n")
        print(f"## Batch {b}: p50 latency, ms\n\n{pivot(df, b, 'latency_p50_ms', lambda x: f'{x:.3g}')}\n")
    big = int(df.batch_size.max())
    print(f"## Test metric at batch {big} (change against fp32 of the same runtime)\n\n{metric_table(df, big)}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python scripts/cross_runtime_table.py RESULTS.csv [...]")
    main([Path(a) for a in sys.argv[1:]])
