"""The one place that formats: rich tables for the terminal."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from rich.table import Table

from mnistbench.bench.records import BenchmarkRecord
from mnistbench.models.spec import ModelSpec


def fmt_metric(task: str, value: float) -> str:
    """``98.76%`` for accuracy, ``0.0123`` (MSE) for reconstruction, ``-`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2%}" if task == "classify" else f"{value:.4f} MSE"


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else (f"{v * 1e3:.0f} µs" if v < 1 else f"{v:.2f} ms")


def models_table(specs: Sequence[ModelSpec]) -> Table:
    """`mnistbench list`: name, paper, claim, params, FLOPs, confidence."""
    t = Table(title="Registered models", title_justify="left")
    for col, kw in (("model", {"style": "bold", "no_wrap": True}), ("source", {}), ("reported", {}),
                    ("params", {"justify": "right"}), ("MFLOP/img", {"justify": "right"}), ("confidence", {}),
                    ("task", {})):
        t.add_column(col, **kw)
    for s in specs:
        r = s.reported
        claim = (f"{r.value:.2%}" if r.metric == "accuracy" else f"MSE {r.value}") if r.value is not None else (
            f"{r.low:.0%}-{r.high:.0%}" if r.low is not None else "-")
        t.add_row(s.name, s.ref, claim, f"{s.num_params:,}", f"{s.flops / 1e6:.2f}", s.confidence, s.task)
    return t


def training_table(metas: Sequence[dict], title: str) -> Table:
    """One row per trained model: metric, epochs, wall time, recipe."""
    t = Table(title=title, title_justify="left")
    for col in ("model", "test metric", "epochs", "wall s", "device", "recipe"):
        t.add_column(col, justify="right" if col in ("test metric", "epochs", "wall s") else "left")
    for m in metas:
        extra = ""
        best = next((s.get("best_test_accuracy") for s in m["stages"].values() if "best_test_accuracy" in s), None)
        if best is not None:
            extra = f" (best-of {best:.2%})"
        t.add_row(m["model"], fmt_metric(m["task"], m["test_metric"]) + extra, f"{m['epochs_done']:g}",
                  f"{m['wall_time_s']:.1f}", m["device"], m["recipe_summary"])
    return t


def export_table(reports: Sequence[dict]) -> Table:
    """One row per exported model: opset, size, parity."""
    t = Table(title="ONNX export and parity (first 1,000 test images, ONNX Runtime CPU vs PyTorch)",
              title_justify="left")
    for col in ("model", "opset", "IR", "size KiB", "max |diff|", "top-1 agreement", "parity"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for r in reports:
        p = r["parity"]
        agree = "-" if p["top1_agreement"] is None else f"{p['top1_agreement']:.2%}"
        t.add_row(r["model"], str(r["opset"]), str(r["ir_version"]), f"{r['onnx_bytes'] / 1024:,.0f}",
                  f"{p['max_abs_diff']:.2e}", agree, "[green]pass[/]" if p["passed"] else "[red]FAIL[/]")
    return t


def results_table(rows: Sequence[BenchmarkRecord]) -> Table:
    """Summary by model and provider: metric, batch-1 p50, best throughput and its batch size."""
    groups: dict[tuple[str, str], list[BenchmarkRecord]] = defaultdict(list)
    for r in rows:
        groups[(r.model, r.provider)].append(r)
    t = Table(title="Benchmark summary (ONNX Runtime)", title_justify="left")
    for col in ("model", "provider", "test metric", "p50 @ smallest batch", "best throughput", "at batch",
                "batch sizes"):
        t.add_column(col, justify="left" if col in ("model", "provider") else "right")
    for (model, prov), rs in groups.items():
        small = min(rs, key=lambda r: r.batch_size)
        best = max(rs, key=lambda r: r.throughput_ips)
        metric = small.accuracy_top1 if small.task == "classify" else small.test_mse
        t.add_row(model, prov, fmt_metric(small.task, metric), f"{_ms(small.latency_p50_ms)} (b={small.batch_size})",
                  f"{best.throughput_ips:,.0f} img/s", str(best.batch_size),
                  ",".join(str(r.batch_size) for r in sorted(rs, key=lambda r: r.batch_size)))
    return t
