"""`mnistbench report`: PNG figures (matplotlib) and one self-contained HTML file from results CSVs.

Figures:
  latency.png     p50 latency against batch size, one panel per model, a line per runtime/provider/variant
  throughput.png  throughput against batch size, same layout
  pareto.png      accuracy against p50 latency at batch 1, Pareto front marked
  models.png      best throughput of each model (bars, log scale)

Tables: the best batch size under a p99 latency budget (``--slo-ms``) per model and
provider, the best configuration per model and batch size within the accuracy budget
(:mod:`bench.best`), and the batch size above which CUDA beats CPU when both are in the data.
Results from several hosts (one CSV each) are merged; every series is keyed by the node that
measured it (``node``: two nodes of one host name stay two series, labelled ``host@IP``).
"""

from __future__ import annotations

import base64
import html
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from ...models.errors import UsageError
from ...models.files import atomic_write_bytes
from ..measure.records import BenchmarkRecord, node_labels, read_csv, series_node
from . import best as bestcfg


def load_rows(paths: list[Path]) -> list[BenchmarkRecord]:
    """Rows with status ``ok`` of every CSV given (files or folders).

    Raises:
        UsageError: a path that does not exist or holds no CSV; no measured rows at all.
    """
    rows = [r for c in bestcfg.csv_files(paths) for r in read_csv(c) if r.status == "ok"]
    if not rows:
        raise UsageError("no measured rows in the results given")
    return rows


def node_names(rows: list[BenchmarkRecord]) -> dict[str, str]:
    """Node -> label (:func:`records.node_labels`) when ``rows`` come from more than one node, else
    empty (one node: series are not prefixed)."""
    labels = node_labels(rows)
    return labels if len(labels) > 1 else {}


def series_key(r: BenchmarkRecord, multi_host: dict[str, str] | bool) -> str:
    """The series a row draws in: runtime/provider[/variant][/threads][/spinning][/io mode], after its
    node's label (``multi_host``: :func:`node_names`) when the rows come from several nodes."""
    label = f"{r.runtime}/{r.provider}" + ("" if r.variant == "fp32" else f"/{r.variant}")
    if r.threads_requested != "auto":
        label += f"/t{r.threads_requested}"
    if r.spinning not in ("default", "n/a"):
        label += f"/spin-{r.spinning}"
    if r.io_mode != "end-to-end":
        label += f"/{r.io_mode}"
    if not multi_host:
        return label
    name = multi_host.get(series_node(r), r.host) if isinstance(multi_host, dict) else r.host
    return f"{name}: {label}"


def _grouped(rows, multi_host):
    """model -> series -> sorted [(batch, row)], repeats reduced to their median-p50 row."""
    g: dict[str, dict[str, dict[int, list]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        g[r.model][series_key(r, multi_host)][r.batch_size].append(r)
    out = {}
    for model, ss in g.items():
        out[model] = {s: sorted((b, sorted(rs, key=lambda r: r.latency_p50_ms)[len(rs) // 2]) for b, rs in bs.items())
                      for s, bs in ss.items()}
    return out


def best_under_slo(rows, slo_ms: float, multi_host: bool) -> list[list[str]]:
    """Per model and series: the batch size with the highest throughput whose p99 meets ``slo_ms``.

    p99 is empty below 1,000 samples; such rows are judged on their maximum latency instead
    (a stricter bound), and the table says so.
    """
    table = []
    for model, ss in _grouped(rows, multi_host).items():
        for s, pts in ss.items():
            ok = []
            for b, r in pts:
                bound, basis = (r.latency_p99_ms, "p99") if not math.isnan(r.latency_p99_ms) else (r.latency_max_ms, "max")
                if bound <= slo_ms:
                    ok.append((r.throughput_ips, b, bound, basis))
            if ok:
                ips, b, bound, basis = max(ok)
                table.append([model, s, str(b), f"{ips:,.0f}", f"{bound:.3f} ms ({basis})"])
            else:
                table.append([model, s, "none", "-", f"every batch size exceeds {slo_ms:g} ms"])
    return table


def cuda_crossover(rows, multi_host: bool) -> list[list[str]]:
    """Per model (and runtime/variant): the smallest batch size from which CUDA's throughput beats CPU's."""
    out = []
    g = _grouped(rows, multi_host)
    for model, ss in g.items():
        for s_cpu, pts_cpu in ss.items():
            if "/cpu" not in s_cpu:
                continue
            s_cuda = s_cpu.replace("/cpu", "/cuda")
            if s_cuda not in ss:
                continue
            cpu, cuda = dict(pts_cpu), dict(ss[s_cuda])
            common = sorted(set(cpu) & set(cuda))
            wins = [b for b in common if cuda[b].throughput_ips > cpu[b].throughput_ips]
            first = next((b for b in common if all(x in wins for x in common if x >= b)), None)
            out.append([model, s_cpu.replace("/cpu", ""), "never (in the sizes measured)" if first is None else str(first)])
    return out


def _pareto(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points (latency, accuracy, label) not beaten on both: lower latency and higher accuracy."""
    front, best = [], -1.0
    for p in sorted(points):
        if p[1] > best:
            front.append(p)
            best = p[1]
    return front


def figures(rows: list[BenchmarkRecord], folder: Path) -> dict[str, Path]:
    """Write the four PNGs into ``folder``; returns name -> path."""
    import matplotlib  # optional at import: only `report` draws

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    multi = node_names(rows)
    g = _grouped(rows, multi)
    paths = {}
    for name, field, ylabel in (("latency", "latency_p50_ms", "p50 latency (ms)"),
                                ("throughput", "throughput_ips", "throughput (images/s)")):
        paths[name] = _save(plt, _panels(plt, g, field, ylabel), folder / f"{name}.png", tight_rect=(0, 0, 1, 0.93))
    paths["pareto"] = _save(plt, _pareto_figure(plt, rows, multi), folder / "pareto.png")
    paths["models"] = _save(plt, _models_figure(plt, rows, list(g), multi), folder / "models.png")
    return paths


def _save(plt, fig, path: Path, tight_rect=None) -> Path:
    fig.tight_layout(**({"rect": tight_rect} if tight_rect else {}))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _panels(plt, g: dict, field: str, ylabel: str):
    """One log-log panel per model of ``field`` against batch size, a line per series; one legend."""
    models = list(g)
    cols = min(4, len(models))
    nrows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 3.2 * nrows), squeeze=False)
    for ax, model in zip(axes.flat, models):
        for s, pts in g[model].items():
            ax.plot([b for b, _ in pts], [getattr(r, field) for _, r in pts], marker="o", label=s)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(model, fontsize=10)
        ax.set_xlabel("batch size")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    legend = {}
    for ax in axes.flat:  # every series of every panel, once
        for h, lab in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(lab, h)
    fig.legend(list(legend.values()), list(legend), loc="upper center", ncol=min(4, len(legend)), fontsize=8)
    return fig


def _pareto_figure(plt, rows: list[BenchmarkRecord], multi: bool):
    """Accuracy against batch-1 p50, one point per model and series (medians over runs), the Pareto front."""
    groups = defaultdict(list)
    for r in rows:
        if r.task == "classify" and not math.isnan(r.accuracy_top1) and r.batch_size == 1:
            groups[(r.model, series_key(r, multi))].append(r)
    pts = [(float(np.median([r.latency_p50_ms for r in rs])), float(np.median([r.accuracy_top1 for r in rs])),
            f"{m} ({s})") for (m, s), rs in groups.items()]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    if pts:
        markers = {}
        for lat, acc, label in pts:
            series = label.split(" (", 1)[1].rstrip(")")
            if series not in markers:
                markers[series] = "os^vDP"[len(markers) % 6]
                ax.scatter([], [], marker=markers[series], color="tab:blue", label=series)
            ax.scatter(lat, acc * 100, marker=markers[series], color="tab:blue")
        front = _pareto(pts)
        ax.plot([p[0] for p in front], [p[1] * 100 for p in front], color="tab:red", label="Pareto front")
        labelled = set()
        for lat, acc, label in sorted(pts):
            model = label.split(" (")[0]
            if model not in labelled:
                labelled.add(model)
                ax.annotate(model, (lat, acc * 100), fontsize=8, xytext=(4, -10 if len(labelled) % 2 else 6),
                            textcoords="offset points")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency at batch 1 (ms)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("Accuracy against latency (batch 1)")
    ax.grid(True, which="both", alpha=0.3)
    return fig


def _models_figure(plt, rows: list[BenchmarkRecord], models: list[str], multi: bool):
    """The best throughput of each model (any batch size), a bar per series."""
    best = defaultdict(float)
    for r in rows:
        best[(r.model, series_key(r, multi))] = max(best[(r.model, series_key(r, multi))], r.throughput_ips)
    series = sorted({s for _, s in best})
    fig, ax = plt.subplots(figsize=(max(8, len(models) * 0.9), 4.5))
    width = 0.8 / max(1, len(series))
    for i, s in enumerate(series):
        ax.bar(np.arange(len(models)) + i * width, [best.get((m, s), 0) for m in models], width, label=s)
    ax.set_xticks(np.arange(len(models)) + width * (len(series) - 1) / 2, models, rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("best throughput (images/s)")
    ax.set_title("Best throughput of each model (any batch size)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    return fig


def _html_table(header: list[str], cells: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_report(rows: list[BenchmarkRecord], folder: Path, slo_ms: float, sources: list[str],
                 samples: dict[str, np.ndarray] | None = None, extra: list[str] | None = None) -> Path:
    """Figures plus ``report.html`` (figures embedded, self-contained) in ``folder``; returns the HTML path.
    ``samples`` (raw latencies by ``cell_id``) give the best-configuration table its intervals when the
    rows carry none; ``extra``: further HTML sections (the load rows'), at the end."""
    from .report import summary

    folder.mkdir(parents=True, exist_ok=True)
    multi = node_names(rows)
    pngs = figures(rows, folder)
    header, cells = summary(rows)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>mnistbench report</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f3f3f3}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}</style></head><body>",
        "<h1>mnistbench report</h1>",
        f"<p>{len(rows)} measured rows from {html.escape(', '.join(sources))}; hosts: "
        f"{html.escape(', '.join(sorted(set(node_labels(rows).values()))))}; CPU: {html.escape(', '.join(sorted({r.cpu_model for r in rows})))}; "
        f"ONNX Runtime {html.escape(', '.join(sorted({r.onnxruntime_version for r in rows})))}.</p>",
        "<h2>Summary</h2>", _html_table(header, cells),
        f"<h2>Best batch size under a p99 budget of {slo_ms:g} ms</h2>",
        _html_table(["model", "series", "batch", "img/s", "latency bound"], best_under_slo(rows, slo_ms, multi)),
    ]
    verdicts = bestcfg.best_configs(rows, samples=samples)
    parts += ["<h2>Best configuration per model and batch size</h2>",
              (_html_table(bestcfg.HEADER, bestcfg.cells(verdicts)) + "<p>" + html.escape(bestcfg.footnote(
                  verdicts, bestcfg.DEFAULT_MAX_ACCURACY_DROP_PP, bestcfg.DEFAULT_MAX_MSE_INCREASE)) + "</p>")
              if verdicts else "<p>Not applicable: these results hold no scored model.</p>"]
    cross = cuda_crossover(rows, multi)
    parts += ["<h2>Where CUDA beats CPU</h2>",
              _html_table(["model", "series", "from batch size"], cross) if cross else
              "<p>Not applicable: these results hold no pair of CPU and CUDA rows of one model.</p>"]
    captions = {"latency": "p50 latency against batch size", "throughput": "Throughput against batch size",
                "pareto": "Accuracy against p50 latency at batch 1 (Pareto front in red)",
                "models": "Best throughput of each model"}
    for name, path in pngs.items():
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h2>{captions[name]}</h2><img alt='{name}' src='data:image/png;base64,{data}'>")
    parts += [*(extra or []), "</body></html>"]
    out = folder / "report.html"
    atomic_write_bytes(out, "\n".join(parts).encode())
    return out
