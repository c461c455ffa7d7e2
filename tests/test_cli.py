"""The command line, end to end on real MNIST: train -> export -> run, and its error boundary."""

from __future__ import annotations

import csv
import json

import pytest
from mnistbench.bench.cli import app
from mnistbench.bench.measure.records import COLUMNS
from mnistbench.models.registry import list_models
from typer.testing import CliRunner

runner = CliRunner()


def invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_line_error(res) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.output + res.stderr
    return lines[0]


def test_list_shows_every_model():
    res = invoke("list")
    assert res.exit_code == 0
    for name in list_models():
        assert name in res.stdout
    assert "1,007,590" in res.stdout and "99.28%" in res.stdout


@pytest.mark.parametrize("cmd", ["list", "train", "train-all", "export", "run", "all"])
def test_every_command_help_has_an_example(cmd):
    res = invoke(cmd, "--help")
    assert res.exit_code == 0 and "Example: mnistbench" in res.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_all_smoke_end_to_end(mnist, real_data_root, tmp_path):
    arts, results = tmp_path / "arts", tmp_path / "results"
    res = invoke("all", "lenet5", "zhu-conv-autoencoder", "--profile", "smoke", "--batch-sizes", "1,16",
                 "--artifacts-dir", arts, "--results-dir", results, "--data-dir", real_data_root, "--fast")
    assert res.exit_code == 0, res.output
    csvs = list(results.glob("*.csv"))
    assert len(csvs) == 1
    rows = list(csv.DictReader(open(csvs[0])))
    assert list(rows[0]) == COLUMNS
    # one interleaved group: the reference network at each batch size, then the cells in plan order
    assert [(r["model"], r["batch_size"]) for r in rows] == [
        ("mnistbench-reference", "1"), ("mnistbench-reference", "16"),
        ("null-identity", "1"), ("null-identity", "16"), ("lenet5", "1"), ("lenet5", "16"),
        ("zhu-conv-autoencoder", "1"), ("zhu-conv-autoencoder", "16")]
    ref, null, rows = rows[:2], rows[2:4], rows[4:]
    assert all(r["task"] == "reference" and r["rounds"] == "8" and r["group_cells"] == "8" for r in ref)
    assert all(r["task"] == "null" and r["accuracy_top1"] == "" and float(r["latency_p50_ms"]) > 0 for r in null)
    for r in rows:
        assert r["provider"] == "cpu" and r["providers_used"] == "CPUExecutionProvider" and r["status"] == "ok"
        assert float(r["latency_p50_ms"]) > 0 and float(r["throughput_ips"]) > 0 and r["eval_images"] == "10000"
        assert len(r["onnx_sha256"]) == 64 and r["checkpoint_profile"] == "smoke" and r["opset"] == "18"
        assert len(r["checkpoint_sha256"]) == 64 and float(r["agreement_top1_vs_torch"] or 1) >= 0.999
        assert int(r["nodes_total"]) == int(r["nodes_on_provider"]) > 0 and float(r["peak_fraction"]) > 0
    # ONNX Runtime's accuracy on the full test set equals PyTorch's from training.
    trained = json.loads((arts / "mnist/smoke/seed0/lenet5.json").read_text())
    assert abs(float(rows[0]["accuracy_top1"]) - trained["test_metric"]) <= 2e-4
    assert rows[2]["accuracy_top1"] == "" and float(rows[2]["test_mse"]) > 0
    system = json.loads(csvs[0].with_suffix(".system.json").read_text())
    assert system["onnxruntime"] and system["cpu_model"] and system["cpu_logical_cores"] >= 1
    assert "wall time: train" in res.stdout
    # the natural next step, with no --profile: run follows the artifacts (smoke here, not paper)
    nxt = invoke("run", "lenet5", "--batch-sizes", "1", "--no-score", "--no-null", "--min-s", "0",
                 "--artifacts-dir", arts, "--out", tmp_path / "next.csv", "--data-dir", real_data_root)
    assert nxt.exit_code == 0, nxt.output
    assert {r["checkpoint_profile"] for r in csv.DictReader(open(tmp_path / "next.csv")) if r["model"] == "lenet5"} == {"smoke"}


def test_cuda_on_cpu_host_fails_cleanly_and_writes_nothing(tmp_path):
    from mnistbench.bench.runtimes.runtime import check_provider
    from mnistbench.models.errors import ProviderUnavailableError

    try:
        check_provider("cuda")
        pytest.skip("CUDA EP is really usable on this host")
    except ProviderUnavailableError:
        pass
    res = invoke("run", "--provider", "cuda", "--results-dir", tmp_path / "results", "--artifacts-dir", tmp_path)
    assert res.exit_code == 1
    assert "provider 'cuda' is not usable here" in one_line_error(res)
    assert not (tmp_path / "results").exists()


@pytest.mark.integration
def test_a_default_run_writes_under_runs_which_git_ignores(tmp_path, monkeypatch, matmul_chain, mnist, real_data_root):
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    model = matmul_chain(tmp_path / "m.onnx", 1)
    monkeypatch.chdir(tmp_path)
    res = invoke("run", "--onnx", model, "--batch-sizes", "4", "--min-s", "0.05", "--no-null", "--no-score",
                 "--no-reference", "--artifacts-dir", tmp_path / "arts", "--data-dir", real_data_root)
    assert res.exit_code == 0, res.output
    written = sorted(p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*.csv"))
    assert written == ["runs"], written  # nothing beside it, nothing under results/
    check = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", "runs/x.csv"], capture_output=True)
    if check.returncode == 128:
        pytest.skip("not a git checkout")
    assert check.returncode == 0, "runs/ is not ignored by git"


def test_all_fast_halves_rounds_seconds_and_calls(monkeypatch):
    """`all --fast` (README: halves the run step's rounds, seconds and calls per cell) hands the run
    exactly half of each default, and `all` without it the defaults themselves."""
    from mnistbench.bench.cli import console
    from mnistbench.bench.measure import defaults

    seen = []
    monkeypatch.setattr(console, "train", lambda *a, **k: None)
    monkeypatch.setattr(console, "export", lambda *a, **k: None)
    monkeypatch.setattr(console, "benchmark", seen.append)
    for extra in (["--fast"], []):
        res = invoke("all", "lenet5", *extra)
        assert res.exit_code == 0, res.output
    fast, plain = seen[0].timing, seen[1].timing
    assert (fast.rounds, fast.min_s, fast.min_iters) == (defaults.ROUNDS // 2, defaults.MIN_S / 2, defaults.MIN_ITERS // 2)
    assert (plain.rounds, plain.min_s, plain.min_iters) == (defaults.ROUNDS, defaults.MIN_S, defaults.MIN_ITERS)
    assert fast.warmup_iters == plain.warmup_iters == defaults.WARMUP_ITERS

