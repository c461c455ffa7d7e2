"""The one place that formats: rich tables for the terminal."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from rich.table import Table

from ...models.spec import ModelSpec
from ..measure.records import BenchmarkRecord, node_labels, series_node
from .compare import KEY


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
        claim = r.short or ((f"{r.value:.2%}" if r.metric == "accuracy" else f"MSE {r.value}") if r.value is not None
                            else (f"{r.low:.0%}-{r.high:.0%}" if r.low is not None else "-"))
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


def variant_export_table(reports: Sequence[dict]) -> Table | None:
    """One row per exported variant (int8, fp16, fp16-io) of each model: file size and its agreement
    with the fp32 file and, where measured, with PyTorch, on the parity images (CPU EP). None when
    no variant was exported."""
    rows = [(r["model"], v, r[v]) for r in reports for v in ("int8", "fp16", "fp16-io") if v in r]
    if not rows:
        return None
    t = Table(title="Variants against fp32 and PyTorch (first 1,000 test images, ONNX Runtime CPU)",
              title_justify="left")
    for col in ("model", "variant", "size KiB", "max |diff| vs fp32", "top-1 vs fp32", "max |diff| vs PyTorch",
                "top-1 vs PyTorch"):
        t.add_column(col, justify="left" if col in ("model", "variant") else "right")

    def pct(x):
        return "-" if x is None else f"{x:.2%}"

    for model, v, rep in rows:
        t.add_row(model, v, f"{rep['onnx_bytes'] / 1024:,.0f}", f"{rep['max_abs_diff_vs_fp32']:.2e}",
                  pct(rep["top1_agreement_vs_fp32"]),
                  f"{rep['max_abs_diff_vs_torch']:.2e}" if "max_abs_diff_vs_torch" in rep else "-",
                  pct(rep.get("top1_agreement_vs_torch")))
    return t


def _runtime_label(r: BenchmarkRecord) -> str:
    """Runtime, plus the variant and GPU io mode when they are not the defaults (fp32, end-to-end)."""
    label = r.runtime
    if r.variant != "fp32":
        label += f" {r.variant}"
    if r.io_mode != "end-to-end":
        label += f" [{r.io_mode}]"
    return label


def summary(rows: Sequence[BenchmarkRecord]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the by-model summary: test metric, latency at the smallest batch,
    throughput at each batch size, and the best throughput. Rows of several nodes
    (:func:`records.series_node`) are kept apart, under a first column ``node``."""
    rows = [r for r in rows if r.status == "ok"]
    labels = node_labels(rows)
    groups: dict[tuple, list[BenchmarkRecord]] = defaultdict(list)
    for r in rows:
        groups[(series_node(r), r.model, _runtime_label(r), r.provider, r.threads_requested, r.spinning)].append(r)
    sizes = sorted({r.batch_size for r in rows})
    header = ["model", "runtime", "provider", "threads", "spinning", "test metric", "p50 @ b=min", "p99 @ b=min",
              *[f"img/s @ b={b}" for b in sizes], "best img/s (batch)"]
    multi = len(labels) > 1
    if multi:
        header.insert(0, "node")
    cells = []
    for (node, model, runtime, prov, threads, spin), rs in groups.items():
        by_b = {r.batch_size: r for r in rs}
        small = by_b[min(by_b)]
        best = max(rs, key=lambda r: r.throughput_ips)
        metric = small.accuracy_top1 if small.task == "classify" else small.test_mse
        used = ",".join(sorted({str(r.intra_op_threads) for r in rs}))
        cells.append([model, runtime, prov, f"auto ({used})" if threads == "auto" else threads, spin,
                      fmt_metric(small.task, metric), f"{_ms(small.latency_p50_ms)} (b={small.batch_size})",
                      _ms(small.latency_p99_ms),
                      *[f"{by_b[b].throughput_ips:,.0f}" if b in by_b else "-" for b in sizes],
                      f"{best.throughput_ips:,.0f} ({best.batch_size})"])
        if multi:
            cells[-1].insert(0, labels[node])
    return header, cells


def results_table(rows: Sequence[BenchmarkRecord], title: str = "Benchmark summary") -> Table:
    """The summary as a rich table."""
    header, cells = summary(rows)
    left = header.index("spinning") + 1
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i < left else "right")
    for c in cells:
        t.add_row(*c)
    return t


def results_markdown(rows: Sequence[BenchmarkRecord]) -> str:
    """The summary as a GitHub-flavoured markdown table."""
    header, cells = summary(rows)
    left = header.index("spinning") + 1
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines)


STABILITY_WARN = 0.05  # p50 CI half-width / p50 above which a row is called unstable (calibration study)


def stability_warning(rows: Sequence[BenchmarkRecord]) -> str:
    """A one-line warning naming the rows whose p50 confidence interval is wider than
    +-:data:`STABILITY_WARN` of their p50 (or that have too few blocks for an interval), or ''.

    The interval comes from the cell's interleaved blocks, so it widens when the machine's speed
    changes during the run (a burst of load, a frequency change), not merely because single calls
    vary, which is what the old CV warning measured (it fired on 45 of 55 rows of a quiet run)."""
    ok = [r for r in rows if r.status == "ok"]
    bad = [r for r in ok if not r.p50_ci_halfwidth_rel <= STABILITY_WARN]
    if not bad:
        return ""
    names = ", ".join(f"{r.model}/{_runtime_label(r).replace(' ', '/')}/{r.provider}/b{r.batch_size} "
                      + ("(no interval)" if math.isnan(r.p50_ci_halfwidth_rel) else f"(+-{r.p50_ci_halfwidth_rel:.1%})")
                      for r in bad[:6])
    more = f" and {len(bad) - 6} more" if len(bad) > 6 else ""
    return (f"warning: {len(bad)} of {len(ok)} rows have a p50 95% interval wider than +-{STABILITY_WARN:.0%} "
            f"(the machine's speed changed during the run; a busy machine?): {names}{more}")


def nonfinite_warning(rows: Sequence[BenchmarkRecord]) -> str:
    """A one-line warning naming the rows whose scored outputs hold NaN or +-inf values
    (``nonfinite_fraction`` above 0; the fraction is of all output values over the test set), or ''.

    Such a row's latency is of a model that computes garbage (an overflow, a log of 0, a division
    by 0), and its accuracy is not the model's."""
    bad = [r for r in rows if r.status == "ok" and r.nonfinite_fraction > 0]
    if not bad:
        return ""
    names = ", ".join(f"{r.model}/{_runtime_label(r).replace(' ', '/')}/{r.provider}/b{r.batch_size} "
                      f"({r.nonfinite_fraction:.2%})" for r in bad[:6])
    more = f" and {len(bad) - 6} more" if len(bad) > 6 else ""
    return (f"warning: {len(bad)} of {len([r for r in rows if r.status == 'ok'])} rows have non-finite outputs "
            f"(NaN or inf; fraction of the test-set output values): {names}{more}")


def repeat_spread_table(rows: Sequence[BenchmarkRecord]) -> Table:
    """Spread of p50 latency and throughput between repeats of the same cell configuration."""
    groups: dict[tuple, list[BenchmarkRecord]] = defaultdict(list)
    for r in rows:
        if r.status == "ok":
            groups[(r.model, _runtime_label(r), r.provider, r.threads_requested, r.spinning, r.batch_size)].append(r)
    t = Table(title="Spread between repeats (median, and (max - min) / median)", title_justify="left")
    for col in ("model", "runtime", "provider", "threads", "spinning", "batch", "repeats", "p50 median",
                "p50 spread", "img/s median", "img/s spread"):
        t.add_column(col, justify="left" if col in ("model", "runtime", "provider", "spinning") else "right")
    for (model, rt, prov, th, sp, b), rs in groups.items():
        p50 = sorted(r.latency_p50_ms for r in rs)
        ips = sorted(r.throughput_ips for r in rs)
        med_p, med_i = float(np.median(p50)), float(np.median(ips))
        t.add_row(model, rt, prov, str(th), sp, str(b), str(len(rs)), _ms(med_p),
                  f"{(p50[-1] - p50[0]) / med_p:.1%}", f"{med_i:,.0f}", f"{(ips[-1] - ips[0]) / med_i:.1%}")
    return t


def variants(rows: Sequence[BenchmarkRecord], base: str = "fp32") -> tuple[list[str], list[list[str]]]:
    """Header and cells comparing each non-``base`` variant with ``base`` *of the same runtime*, per
    model, runtime, provider, threads and batch size: throughput speedup and accuracy (or MSE) change.
    Rows are ordered by model, runtime, variant and batch size (OpenVINO bf16 against OpenVINO fp32,
    PyTorch bf16 against PyTorch fp32, ONNX Runtime int8 against ONNX Runtime fp32)."""
    ok = [r for r in rows if r.status == "ok"]
    index = {(r.model, r.runtime, r.provider, r.threads_requested, r.spinning, r.io_mode, r.batch_size, r.variant): r
             for r in ok}
    header = ["model", "runtime", "variant", "provider", "batch", f"{base} img/s", "img/s", "speedup", f"{base} metric",
              "metric", "change"]
    cells = []
    for r in sorted(ok, key=lambda r: (r.model, r.runtime, r.variant, r.provider, r.batch_size)):
        if r.variant == base:
            continue
        b = index.get((r.model, r.runtime, r.provider, r.threads_requested, r.spinning, r.io_mode, r.batch_size, base))
        if b is None:
            continue
        if r.task == "classify":
            m0, m1 = fmt_metric(r.task, b.accuracy_top1), fmt_metric(r.task, r.accuracy_top1)
            change = f"{(r.accuracy_top1 - b.accuracy_top1) * 100:+.2f} pp"
        else:
            m0, m1, change = fmt_metric(r.task, b.test_mse), fmt_metric(r.task, r.test_mse), f"{r.test_mse - b.test_mse:+.4f}"
        cells.append([r.model, r.runtime, r.variant, r.provider, str(r.batch_size), f"{b.throughput_ips:,.0f}",
                      f"{r.throughput_ips:,.0f}", f"{r.throughput_ips / b.throughput_ips:.2f}x", m0, m1, change])
    return header, cells


def variant_table(rows: Sequence[BenchmarkRecord], base: str = "fp32") -> Table:
    """:func:`variants` as a rich table."""
    header, cells = variants(rows, base)
    t = Table(title=f"Variants against {base} of the same runtime (speedup = throughput ratio; accuracy change in "
              "percentage points)",
              title_justify="left")
    for h in header:
        t.add_column(h, justify="left" if h in ("model", "runtime", "variant", "provider") else "right")
    for c in cells:
        t.add_row(*c)
    return t


def variant_markdown(rows: Sequence[BenchmarkRecord], base: str = "fp32") -> str:
    """:func:`variants` as a markdown table."""
    header, cells = variants(rows, base)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i < 4 else "---:" for i in range(len(header))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])


def _cmp_cells(c) -> list[str]:
    model, variant, runtime, prov, b, th, sp, io = c.key[:8]
    if len(c.key) > len(KEY):  # two fleet runs: each node against itself (compare.node_pairing)
        model = f"{model} @ {c.key[-1]}"
    if io != "end-to-end":
        prov = f"{prov} [{io}]"
    verdict = {"slower": "[red]slower[/]", "faster": "[green]faster[/]",
               "inconclusive": "[yellow]inconclusive[/]"}.get(c.verdict, c.verdict)
    if c.weak:
        verdict += " (weak)"
    acc = "-" if math.isnan(c.acc_delta_pp) else f"{c.new_acc:.2%} ({c.acc_delta_pp:+.2f} pp)"
    ratio = "-" if math.isnan(c.ratio) else f"{c.ratio:.3f}"
    if not math.isnan(c.ratio_low):
        ratio += f" [{c.ratio_low:.3f}, {c.ratio_high:.3f}]"
    ref = "-" if math.isnan(c.ref_ratio) else f"{c.ref_ratio:.3f}" + (" (used)" if c.normalised else "")
    used = c.threads_used[0] if c.threads_used[0] == c.threads_used[1] else "->".join(c.threads_used)
    th = f"{th} ({used})" if th == "auto" and used else th
    return [model, variant, f"{runtime}/{prov}", str(b), str(th), _ms(c.base_p50_ms), _ms(c.new_p50_ms), ratio, ref,
            f"{c.ips_ratio:.3f}", acc, verdict]


_CMP_HEADER = ["model", "variant", "runtime", "batch", "threads", "base p50", "new p50", "ratio [95% CI]",
               "drift (reference)", "img/s ratio", "accuracy (change)", "verdict"]


def compare_table(changes, title: str) -> Table:
    """Rich table of :class:`bench.compare.Change` rows. "ratio" is the ratio of the typical block p50 (the verdict rests on it),
    divided by the reference network's ratio when that moved ("drift ... (used)")."""
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(_CMP_HEADER):
        t.add_column(h, justify="left" if i < 3 or h == "verdict" else "right")
    for c in changes:
        t.add_row(*_cmp_cells(c))
    return t


def compare_markdown(changes, title: str) -> str:
    """The same as a markdown table, for a pull request."""
    import re

    lines = [f"**{title}**", "", "| " + " | ".join(_CMP_HEADER) + " |", "|" + "---|" * len(_CMP_HEADER)]
    for c in changes:
        lines.append("| " + " | ".join(re.sub(r"\[/?\w*\]", "", x) for x in _cmp_cells(c)) + " |")
    return "\n".join(lines)
