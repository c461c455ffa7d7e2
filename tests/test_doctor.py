"""`mnistbench doctor`: provider proof, the sweep's recommendation, the harness-overhead
measurement and the interleaved defaults check."""

from __future__ import annotations

import csv
import json

import pytest
from mnistbench.bench.analysis import doctor as doc
from mnistbench.bench.cli import app
from mnistbench.exporters.onnx import export_onnx
from mnistbench.models.registry import get_spec
from typer.testing import CliRunner

runner = CliRunner()


@pytest.fixture(scope="module")
def mlp_onnx(tmp_path_factory):
    spec = get_spec("zhu-mlp")
    path = tmp_path_factory.mktemp("doctor") / "zhu-mlp.onnx"
    export_onnx(spec.build().eval(), spec, path, {})
    return path


def test_provider_status_proves_cpu_and_explains_the_rest():
    status = doc.provider_status()
    assert status["cpu"] == "usable"
    assert set(status) == {"cpu", "cuda", "tensorrt"}
    for name in ("cuda", "tensorrt"):
        assert status[name] == "usable" or name in status[name]  # a reason naming the provider


def test_recommend_maximises_the_worst_ratio():
    P = doc.SweepPoint
    pts = [P("a", 1, 1, True, 1, 100), P("a", 1, 2, True, 1, 90), P("a", 128, 1, True, 1, 50),
           P("a", 128, 2, True, 1, 100)]
    # 1 thread: worst 0.5 (batch 128); 2 threads: worst 0.9 (batch 1) -> 2 threads
    assert doc.recommend(pts) == ((2, True), pytest.approx(0.9))


def test_harness_overhead_compares_alternating_blocks(mlp_onnx):
    oh = doc.harness_overhead(mlp_onnx, blocks=3, block_s=0.05)
    assert oh.blocks == 3 and oh.harness_p50_us > 0 and oh.bare_p50_us > 0
    assert oh.ratio == pytest.approx(oh.harness_p50_us / oh.bare_p50_us)


def test_check_defaults_measures_every_configuration(mlp_onnx):
    r = doc.check_defaults(mlp_onnx, "zhu-mlp", 4, rounds=3, block_s=0.03)
    expected = {"default"} | {f"t{t}/spin-{s}" for t in doc.thread_choices() for s in ("on", "off")}
    assert set(r.median_ips) == expected and all(v > 0 for v in r.median_ips.values())
    assert r.best != "default" and r.median_ips[r.best] == max(v for k, v in r.median_ips.items() if k != "default")
    assert r.ratio == pytest.approx(r.median_ips["default"] / r.median_ips[r.best])
    assert r.default_threads in doc.thread_choices() and r.rounds == 3
    assert r.chosen == f"t{r.default_threads}/spin-on"
    assert r.choice_ratio == pytest.approx(r.median_ips[r.chosen] / r.median_ips[r.best]) and r.choice_ratio <= 1
    assert r.aa_ratio == pytest.approx(r.median_ips["default"] / r.median_ips[r.chosen])


@pytest.mark.slow
def test_doctor_command_reports_providers_peak_floor_and_overhead():
    res = runner.invoke(app, ["doctor", "--no-sweep"])
    assert res.exit_code == 0, res.output
    for text in ("usable", "GEMM probe", "null-model floor", "harness overhead"):
        assert text in res.stdout


@pytest.mark.slow
def test_doctor_check_defaults_writes_its_figures(tmp_path):
    out = tmp_path / "defaults.csv"
    res = runner.invoke(app, ["doctor", "--check-defaults", "--model", "zhu-mlp", "--rounds", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(open(out)))
    assert [(r["model"], r["batch_size"]) for r in rows] == [("zhu-mlp", "1"), ("zhu-mlp", "128")]
    assert all(0 < float(r["ratio"]) and float(r["ips_default"]) > 0 for r in rows)
    assert "cells have the default's session at >= 95%" in res.stdout and "identical sessions measured" in res.stdout
    # `table` renders the same figures from the CSV
    again = runner.invoke(app, ["table", str(out)])
    assert again.exit_code == 0 and "choice / best" in again.stdout and "zhu-mlp" in again.stdout
    assert json.loads(out.with_suffix(".system.json").read_text())["command"] == "doctor --check-defaults"


def test_doctor_check_defaults_bad_input():
    res = runner.invoke(app, ["doctor", "--check-defaults", "--rounds", "1"])
    assert res.exit_code == 2 and "--rounds must be at least 3" in res.stderr
