"""`mnistbench report`: figures and a self-contained HTML file from real results CSVs, several hosts merged."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from mnistbench.bench.analysis.htmlreport import _pareto, best_under_slo, cuda_crossover
from mnistbench.bench.cli import app
from mnistbench.bench.measure.records import COLUMNS, read_csv
from mnistbench.bench.measure.runner import Axes, Target, run_matrix
from mnistbench.bench.measure.timing import TimingConfig
from mnistbench.models.registry import get_spec
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A real run of two random-weight nets on the CPU EP at three batch sizes."""
    from mnistbench.exporters.onnx import export_onnx

    d = tmp_path_factory.mktemp("res")
    x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    y = np.zeros(64, np.int64)
    targets = []
    for name in ("lenet5", "zhu-mlp"):
        spec = get_spec(name)
        export_onnx(spec.build().eval(), spec, d / f"{name}.onnx", {})
        targets.append(Target(name, d / f"{name}.onnx", "classify", x, y, flops=spec.flops))
    out = d / "host-a.csv"
    run_matrix(targets, Axes(batch_sizes=(1, 4, 16)), out, timing=TimingConfig(1, 0, 5, 0))
    return out


@pytest.mark.slow
def test_report_writes_four_pngs_and_self_contained_html(results, tmp_path):
    # a second host: the same rows under another host name, in a second CSV
    rows = read_csv(results)
    other = tmp_path / "host-b.csv"
    with open(other, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow(dataclasses.replace(r, host="host-b", throughput_ips=r.throughput_ips * 2).as_row())
    res = runner.invoke(app, ["report", str(results), str(other), "--out-dir", str(tmp_path / "rep"), "--slo-ms", "50"])
    assert res.exit_code == 0, res.output
    for name in ("latency", "throughput", "pareto", "models"):
        png = (tmp_path / "rep" / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4 and "src='http" not in page  # self-contained
    import socket

    assert f"{socket.gethostname()}: onnxruntime/cpu" in page and "host-b: onnxruntime/cpu" in page  # keyed by host
    assert "Best batch size under a p99 budget of 50 ms" in page and "lenet5" in page


@pytest.mark.slow
def test_slo_crossover_and_pareto_logic(results):
    rows = read_csv(results)
    table = best_under_slo(rows, 1e9, False)
    assert {r[0] for r in table} == {"lenet5", "zhu-mlp"} and all(r[2] != "none" for r in table)
    assert all(r[2] == "none" for r in best_under_slo(rows, 1e-6, False))
    cuda = [dataclasses.replace(r, provider="cuda", throughput_ips=r.throughput_ips * (0.5 if r.batch_size < 16 else 3))
            for r in rows]
    assert [c[2] for c in cuda_crossover(rows + cuda, False)] == ["16", "16"]
    assert _pareto([(1, 0.9, "a"), (2, 0.95, "b"), (3, 0.93, "c"), (0.5, 0.8, "d")]) == [
        (0.5, 0.8, "d"), (1, 0.9, "a"), (2, 0.95, "b")]


def test_report_bad_input(tmp_path):
    res = runner.invoke(app, ["report", str(tmp_path / "none.csv")])
    assert res.exit_code == 2 and "does not exist" in res.stderr
    res = runner.invoke(app, ["report", str(tmp_path), "--slo-ms", "0"])
    assert res.exit_code == 2


def test_stability_warning_names_wide_intervals_and_rows_without_one():
    import dataclasses

    from mnistbench.bench.analysis.report import STABILITY_WARN, stability_warning
    from mnistbench.bench.measure.records import error_record

    base = error_record("x", model="lenet5", runtime="onnxruntime", provider="cuda", batch_size=1)
    rows = [dataclasses.replace(base, status="ok", p50_ci_halfwidth_rel=w, variant=v, io_mode=m)
            for w, v, m in ((0.12, "fp32", "end-to-end"), (float("nan"), "fp16", "device-graph"),
                            (0.049, "fp32", "device"), (STABILITY_WARN, "int8", "end-to-end"))]
    w = stability_warning(rows)
    assert w.startswith("warning: 2 of 4 rows have a p50 95% interval wider than +-5%")
    assert "lenet5/onnxruntime/cuda/b1 (+-12.0%)" in w and "lenet5/onnxruntime/fp16/[device-graph]/cuda/b1 (no interval)" in w
    assert stability_warning(rows[2:]) == "" and STABILITY_WARN == 0.05
    assert stability_warning([dataclasses.replace(rows[0], status="error")]) == ""  # error rows have no timing

def test_summary_has_one_row_per_series_never_mixing_int8_and_fp32(tmp_path):
    """The report's summary: fp32 and int8 rows of one model are two rows, each with its own figures
    (the committed report once showed int8's img/s at b=32 beside fp32's best)."""
    import dataclasses

    from mnistbench.bench.analysis.htmlreport import write_report
    from mnistbench.bench.analysis.report import summary
    from mnistbench.bench.measure.records import error_record

    base = dataclasses.replace(error_record("x", model="xiao-digit", runtime="onnxruntime", provider="cpu",
                                            threads_requested="1", spinning="default", task="classify"),
                               status="ok", error="", host="h", io_mode="end-to-end", latency_p99_ms=1.0,
                               accuracy_top1=0.99)
    ips = {("fp32", 1): 9_000.0, ("fp32", 32): 60_000.0, ("fp32", 128): 107_207.0,
           ("int8", 1): 7_000.0, ("int8", 32): 64_774.0, ("int8", 128): 80_000.0}
    rows = [dataclasses.replace(base, variant=v, batch_size=b, throughput_ips=t, latency_p50_ms=1000 * b / t,
                                cell_id=f"{v}-{b}") for (v, b), t in ips.items()]
    header, cells = summary(rows)
    assert len(cells) == 2
    by_runtime = {c[header.index("runtime")]: c for c in cells}
    assert set(by_runtime) == {"onnxruntime", "onnxruntime int8"}
    fp32, int8 = by_runtime["onnxruntime"], by_runtime["onnxruntime int8"]
    assert fp32[header.index("img/s @ b=32")] == "60,000" and fp32[-1] == "107,207 (128)"
    assert int8[header.index("img/s @ b=32")] == "64,774" and int8[-1] == "80,000 (128)"
    html = write_report(rows, tmp_path, 10.0, ["synthetic"]).read_text()
    assert "onnxruntime int8" in html and "64,774" in html and "107,207 (128)" in html
