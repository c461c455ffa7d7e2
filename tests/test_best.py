"""`mnistbench best`: the fastest configuration within the accuracy budget, ties, and the CLI."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from mnistbench.bench.analysis import best
from mnistbench.bench.cli import app
from mnistbench.bench.measure.records import COLUMNS, error_record
from typer.testing import CliRunner

runner = CliRunner()


def _row(cell_id, model="lenet5", runtime="onnxruntime", variant="fp32", batch=128, p50=1.0, acc=0.985, mse=float("nan"),
         task="classify", threads="auto", spinning="default", provider="cpu"):
    base = error_record("", run_id="r", cell_id=cell_id, repeat=0, host="h", model=model, variant=variant,
                        dataset="mnist", task=task, runtime=runtime, provider=provider, batch_size=batch,
                        threads_requested=threads, spinning=spinning if runtime == "onnxruntime" else "n/a",
                        io_mode="end-to-end")
    return dataclasses.replace(base, status="ok", error="", latency_p50_ms=p50, throughput_ips=batch / p50 * 1e3,
                               accuracy_top1=acc if task == "classify" else float("nan"), test_mse=mse,
                               intra_op_threads=2, timed_iters=400, timed_wall_s=400 * p50 / 1e3)


def _samples(p50_ms, spread, n=400, seed=0):
    """Per-call latencies (ns) with median ``p50_ms`` and a uniform spread of +-``spread`` ms."""
    x = np.random.default_rng(seed).uniform(p50_ms - spread, p50_ms + spread, n)
    return (x - np.median(x) + p50_ms) * 1e6


def _scenario():
    """lenet5 at batch 128: int8 is fastest but loses 0.30 pp; OpenVINO bf16 is next (-0.10 pp) and
    PyTorch fp32 sits within its noise; ONNX Runtime fp32 is the baseline."""
    rows = [_row("ort", p50=1.0, acc=0.985),
            _row("ort-t1", p50=1.8, acc=0.985, threads="1"),
            _row("int8", variant="int8", p50=0.50, acc=0.982),
            _row("ovbf16", runtime="openvino", variant="bf16", p50=0.60, acc=0.984),
            _row("torch", runtime="torch", p50=0.61, acc=0.985),
            _row("ovfp32", runtime="openvino", p50=0.90, acc=0.985)]
    samples = {"ort": _samples(1.0, 0.01), "ort-t1": _samples(1.8, 0.01), "int8": _samples(0.5, 0.01),
               "ovbf16": _samples(0.60, 0.3), "torch": _samples(0.61, 0.3, seed=1), "ovfp32": _samples(0.9, 0.01)}
    return rows, samples


def test_fastest_within_budget_wins_with_ties_and_rejections():
    rows, samples = _scenario()
    [v] = best.best_configs(rows, 0.2, samples=samples)
    assert (v.model, v.batch_size, v.ci_source) == ("lenet5", 128, "samples")
    assert v.best.key[:3] == ("openvino", "cpu", "bf16")  # not int8 (over budget), not a slower config
    assert v.metric_change == pytest.approx(-0.1)
    assert v.speedup == pytest.approx(1.0 / 0.60)  # against the default-settings ORT fp32 row, not threads 1
    assert [c.key[0] for c in v.tied] == ["torch"]  # overlapping intervals; ovfp32 (0.9 ms) is not tied
    assert [(c.key[2], round(d, 2)) for c, d in v.rejected] == [("int8", -0.30)]
    text = best.markdown([v])
    assert "openvino bf16 cpu threads auto (2) (tie)" in text and "1.67x" in text and "-0.30 pp" in text


def test_budget_boundary_and_a_wider_budget():
    rows, samples = _scenario()
    # a drop of exactly the budget is allowed; a larger budget lets int8 win
    [v] = best.best_configs(rows, 0.1, samples=samples)
    assert v.best.key[2] == "bf16"
    [v] = best.best_configs(rows, 0.09, samples=samples)
    assert v.best.key[:3] == ("torch", "cpu", "fp32") and [c.key[2] for c, _ in v.rejected] == ["int8", "bf16"]
    [v] = best.best_configs(rows, 0.5, samples=samples)
    assert v.best.key[2] == "int8" and v.rejected == []
    with pytest.raises(best.UsageError):
        best.best_configs(rows, -0.1)


def test_without_intervals_p50_alone_decides_and_the_note_says_so():
    rows, _ = _scenario()
    [v] = best.best_configs(rows)
    assert v.best.key[2] == "bf16" and v.tied == [] and v.ci_source == "none"
    assert "ranked by p50 alone" in best.footnote([v], 0.2, 0.01)


def test_interval_columns_take_precedence_over_samples():
    rows, samples = _scenario()
    ci = {"ort": (0.95, 1.05), "ort-t1": (1.7, 1.9), "int8": (0.45, 0.55), "ovbf16": (0.59, 0.61),
          "torch": (0.605, 0.62), "ovfp32": (0.62, 0.95)}  # ovfp32 overlaps torch, not bf16
    with_ci = [dataclasses.replace(r, latency_p50_ci_low_ms=ci[r.cell_id][0], latency_p50_ci_high_ms=ci[r.cell_id][1])
               for r in rows]
    [v] = best.best_configs(with_ci, samples=samples)
    assert v.ci_source == "columns" and v.best.key[2] == "bf16" and [c.key[0] for c in v.tied] == ["torch"]


def test_reconstruction_budget_and_missing_baseline():
    rows = [_row("a", model="zhu-conv-autoencoder", task="reconstruct", mse=0.100, p50=1.0),
            _row("b", model="zhu-conv-autoencoder", task="reconstruct", mse=0.102, p50=0.5, runtime="openvino",
                 variant="bf16"),
            _row("c", model="zhu-conv-autoencoder", task="reconstruct", mse=0.1005, p50=0.8, runtime="torch",
                 variant="bf16"),
            _row("d", model="lenet5", runtime="torch", p50=0.3)]
    out = {v.model: v for v in best.best_configs(rows, max_mse_increase=0.01)}
    ae = out["zhu-conv-autoencoder"]
    assert ae.best.key[:3] == ("torch", "cpu", "bf16") and ae.metric_change == pytest.approx(0.005)
    assert [c.key[0] for c, _ in ae.rejected] == ["openvino"]
    assert out["lenet5"].best is None and "no scored ONNX Runtime fp32" in out["lenet5"].note
    # unscored rows (run --no-score) are never eligible
    unscored = [dataclasses.replace(r, accuracy_top1=float("nan")) if r.runtime != "onnxruntime" else r
                for r in _scenario()[0]]
    [v] = best.best_configs(unscored)
    assert v.best.key[:3] == ("onnxruntime", "cpu", "fp32") and v.speedup == pytest.approx(1.0)


def test_median_ci_covers_the_median():
    ns = _samples(2.0, 0.5, n=1000)
    lo, hi = best.median_ci(ns)
    assert lo < 2.0 < hi and hi - lo < 0.2
    assert np.isnan(best.median_ci(ns[:5])[0])


def test_best_command_reads_csv_and_samples(tmp_path):
    rows, samples = _scenario()
    path = tmp_path / "r.csv"
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow(r.as_row())
    np.savez(tmp_path / "r.samples.npz", **samples)
    res = runner.invoke(app, ["best", str(tmp_path), "--format", "markdown"])
    assert res.exit_code == 0, res.output
    assert "| lenet5 | 128 | openvino bf16 cpu threads auto (2) (tie) |" in res.stdout
    assert "raw samples" in res.stdout
    res = runner.invoke(app, ["best", str(path), "--max-accuracy-drop", "0.5pp", "--format", "markdown"])
    assert res.exit_code == 0 and "onnxruntime int8 cpu" in res.stdout.splitlines()[2]
    res = runner.invoke(app, ["best", str(path), "--max-accuracy-drop", "lots"])
    assert res.exit_code == 2 and "percentage points" in res.stderr
