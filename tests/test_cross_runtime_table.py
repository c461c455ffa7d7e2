"""scripts/cross_runtime_table.py, which draws the README's cross-runtime tables: on a committed real
results file, each cell is that configuration's row, in the column of its runtime and variant."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from mnistbench.bench.measure.records import read_csv

ROOT = Path(__file__).resolve().parents[1]
INT8_RUN = ROOT / "results" / "20261121T173401Z-mnist-quick-cpu.csv"  # ONNX Runtime fp32 and int8, real run


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("cross_runtime_table", ROOT / "scripts" / "cross_runtime_table.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cross_runtime_table"] = mod
    spec.loader.exec_module(mod)
    return mod


def _cells(table: str, model: str) -> dict[str, str]:
    lines = table.splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if cells[0] == model:
            return dict(zip(head, cells))
    raise AssertionError(f"{model} not in the table")


def test_throughput_and_latency_cells_are_the_rows_values(script):
    rows = {(r.model, r.variant, r.batch_size): r for r in read_csv(INT8_RUN) if r.status == "ok"}
    df = script.frame([INT8_RUN])
    ips = _cells(script.pivot(df, 128, "throughput_ips", lambda x: f"{x:,.0f}"), "rich-cnn")
    assert ips["ORT fp32"] == f"{rows[('rich-cnn', 'fp32', 128)].throughput_ips:,.0f}"
    assert ips["ORT int8"] == f"{rows[('rich-cnn', 'int8', 128)].throughput_ips:,.0f}"
    p50 = _cells(script.pivot(df, 1, "latency_p50_ms", lambda x: f"{x:.3g}"), "lenet5")
    assert p50["ORT int8"] == f"{rows[('lenet5', 'int8', 1)].latency_p50_ms:.3g}"
    assert "null-identity" not in script.pivot(df, 1, "latency_p50_ms", str)  # the overhead floor is not a model


def test_metric_change_is_against_fp32_of_the_same_runtime(script):
    rows = {(r.model, r.variant): r for r in read_csv(INT8_RUN) if r.status == "ok" and r.batch_size == 128}
    table = script.metric_table(script.frame([INT8_RUN]), 128)
    lenet = _cells(table, "lenet5")
    fp, q = rows[("lenet5", "fp32")].accuracy_top1, rows[("lenet5", "int8")].accuracy_top1
    assert lenet["ORT fp32"] == f"{fp:.2%}"
    assert lenet["ORT int8"] == f"{q:.2%} ({(q - fp) * 100:+.2f} pp)"
    ae = _cells(table, "zhu-conv-autoencoder")
    m0, m1 = rows[("zhu-conv-autoencoder", "fp32")].test_mse, rows[("zhu-conv-autoencoder", "int8")].test_mse
    assert ae["ORT int8"] == f"{m1:.4g} ({m1 / m0 - 1:+.1%})"
