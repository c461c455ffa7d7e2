"""`--executor ray` on a local 2-CPU Ray cluster: a reproduction sweep with crashing workers
(retry, error row, the rest completes, --resume retrains the failure), an interrupted sweep
resumed without losing a finished run, and `run` once per node gathered under one run id.

One cluster is started for the module (by the executor's own RayCluster); the commands find
Ray initialised and use it. Skipped with a reason when Ray (the [ray] extra) is not installed.
"""

from __future__ import annotations

import csv
import json
import re
import socket
import subprocess
import sys

import numpy as np
import onnx
import pytest
from mnistbench.bench.cli import app
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.records import CsvAppender, read_csv
from mnistbench.bench.training import reproduce as rp
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

runner = CliRunner()
SMOKE = ("reproduce", "zhu-mlp", "--profile", "smoke", "--no-ae-study")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture()
def data_env(monkeypatch, tmp_path, real_data_root):
    if not (real_data_root / "mnist").is_dir():
        pytest.skip(f"real MNIST not found under {real_data_root}")
    monkeypatch.setenv("MNISTBENCH_DATA", str(real_data_root))
    monkeypatch.setenv("MNISTBENCH_ARTIFACTS", str(tmp_path / "arts"))
    return tmp_path


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray", reason='Ray is not installed (pip install -e ".[ray]")')
    from mnistbench.bench.launch.ray_executor import RayCluster

    with RayCluster() as c:
        yield c


# ------------------------------------------------------------------------ without a cluster


def test_missing_ray_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    res = invoke(*SMOKE, "--executor", "ray")
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [
        'mnistbench: error: --executor ray needs Ray, which is not installed: pip install -e ".[ray]"']


def test_the_default_executor_does_not_import_ray():
    code = "import sys; from mnistbench.bench import cli; from mnistbench.bench.training import reproduce; from mnistbench.bench.measure import runner; print('ray' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_onnx_bundle_carries_each_file_and_its_external_data(tmp_path):
    """``--onnx`` files travel to the nodes as bytes (read on the driver): the graph file, each external
    data file it names, and two files of one name kept apart by their place."""
    from mnistbench.bench.launch.ray_executor import onnx_bundle
    from mnistbench.models.errors import UsageError

    w = numpy_helper.from_array(np.ones((784, 10), np.float32), "w")
    g = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"])],
                          "ext", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    onnx.save(m, str(tmp_path / "b" / "m.onnx"))  # first: saving with external data changes m itself
    onnx.save(m, str(tmp_path / "a" / "m.onnx"), save_as_external_data=True, location="m.weights", size_threshold=0)
    got = onnx_bundle((tmp_path / "a" / "m.onnx", tmp_path / "b" / "m.onnx"))
    assert sorted(got) == ["0/m.onnx", "0/m.weights", "1/m.onnx"]
    assert got["0/m.weights"] == (tmp_path / "a" / "m.weights").read_bytes() and len(got["0/m.weights"]) == 784 * 10 * 4
    assert got["1/m.onnx"] == (tmp_path / "b" / "m.onnx").read_bytes()
    (tmp_path / "a" / "m.weights").unlink()
    with pytest.raises(UsageError, match="cannot read .*m.weights to send it to the nodes"):
        onnx_bundle((tmp_path / "a" / "m.onnx",))
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(UsageError, match="bad.onnx is not a readable ONNX model"):
        onnx_bundle((tmp_path / "bad.onnx",))


def test_old_runs_csv_gains_status_columns_before_appending(tmp_path):
    old = [f for f in rp.RUN_FIELDS if f not in rp.ADDED_RUN_FIELDS]
    path = tmp_path / "old.csv"
    CsvAppender(path, old).append_row({**dict.fromkeys(old, ""), "experiment": "paper", "dataset": "mnist",
                                       "model": "zhu-mlp", "seed": 0, "profile": "smoke", "metric": "accuracy",
                                       "final": "0.97", "device": "cpu", "wall_s": "2.0"})
    sink = rp.runs_csv(path)
    run = rp.PlannedRun("paper", "zhu-mlp", 1, "smoke")
    sink.append_row(rp.error_row(run, "mnist", "WorkerCrashedError: boom"))
    rows = _rows(path)
    assert list(rows[0]) == rp.RUN_FIELDS
    assert [(r["seed"], r["status"], r["final"]) for r in rows] == [("0", "ok", "0.97"), ("1", "error", "")]
    assert [rp.is_ok(r) for r in rows] == [True, False]
    md = rp.markdown(rows)
    assert "| zhu-mlp |" in md and "| 1 |" in md  # the table counts the finished run only
    assert "- paper zhu-mlp seed 1: WorkerCrashedError: boom" in md


# ------------------------------------------------------------------------ reproduce on Ray


@pytest.mark.slow
@pytest.mark.integration
def test_crashing_workers_are_retried_then_recorded_and_resume_retrains_them(cluster, data_env, monkeypatch):
    out = data_env / "ray.csv"
    counts = data_env / "attempts"
    # seed 1 crashes once (the retry succeeds), seed 2 on every attempt (an error row after 1 retry)
    monkeypatch.setenv("MNISTBENCH_RAY_FAULT", "paper/zhu-mlp/1:1,paper/zhu-mlp/2:99")
    monkeypatch.setenv("MNISTBENCH_RAY_FAULT_DIR", str(counts))
    res = invoke(*SMOKE, "--seeds", "3", "--executor", "ray", "--max-retries", "1", "--out", out)
    assert res.exit_code == 1, res.output
    assert "1 run(s) failed" in res.stderr and "seed 2" in res.stderr
    rows = {r["seed"]: r for r in _rows(out)}
    assert sorted(rows) == ["0", "1", "2"]
    assert rows["0"]["status"] == rows["1"]["status"] == "ok"
    assert rows["2"]["status"] == "error" and "after 1 retries" in rows["2"]["error"] and rows["2"]["final"] == ""
    assert len(list(counts.glob("paper-zhu-mlp-1.attempt*"))) == 2  # crashed, then retried and finished
    assert len(list(counts.glob("paper-zhu-mlp-2.attempt*"))) == 2  # the first try and one retry
    md = out.with_suffix(".md").read_text()
    assert "| zhu-mlp | Zhu, seed 004 | 97.65% |" in md and "this one of 2" in md
    assert "- paper zhu-mlp seed 2:" in md
    # checkpoints come back to the driver's artifacts folder
    arts = data_env / "arts" / "mnist" / "smoke"
    assert (arts / "seed0" / "zhu-mlp.safetensors").is_file() and (arts / "seed1" / "zhu-mlp.json").is_file()
    assert not (arts / "seed2").exists()

    # --resume (no fault now) trains only the failed run; the finished rows stay verbatim
    monkeypatch.delenv("MNISTBENCH_RAY_FAULT")
    before = out.read_text()
    res = invoke(*SMOKE, "--seeds", "3", "--executor", "ray", "--out", out, "--resume")
    assert res.exit_code == 0, res.output
    assert out.read_text().startswith(before)
    after = _rows(out)
    assert len(after) == 4 and after[-1]["seed"] == "2" and after[-1]["status"] == "ok"
    assert "| 3 |" in out.with_suffix(".md").read_text() and "Failed runs" not in out.with_suffix(".md").read_text()

    # the same runs in-process: same accuracies when the thread count is the same
    local = data_env / "local.csv"
    assert invoke(*SMOKE, "--seeds", "3", "--out", local).exit_code == 0
    ray_rows = {r["seed"]: r for r in after if r["status"] == "ok"}
    for r in _rows(local):
        theirs = ray_rows[r["seed"]]
        if r["threads"] == theirs["threads"]:
            assert r["final"] == theirs["final"]
        else:  # torch's reductions depend on the thread count
            assert abs(float(r["final"]) - float(theirs["final"])) < 0.01


@pytest.mark.slow
@pytest.mark.integration
def test_interrupted_sweep_resumes_without_losing_a_finished_run(cluster, data_env, monkeypatch):
    out = data_env / "cut.csv"
    real = rp.runs_csv
    class StopAfterFirst(CsvAppender):
        def append_row(self, row):
            super().append_row(row)
            raise KeyboardInterrupt  # Ctrl-C just after the first row reached the disk

    monkeypatch.setattr(rp, "runs_csv", lambda path: StopAfterFirst(path, rp.RUN_FIELDS))
    res = invoke(*SMOKE, "--seeds", "3", "--executor", "ray", "--cpus-per-run", "1", "--out", out)
    assert res.exit_code == 130 and "finished results were kept" in res.stderr
    first = _rows(out)
    assert len(first) == 1 and first[0]["status"] == "ok"
    monkeypatch.setattr(rp, "runs_csv", real)

    res = invoke(*SMOKE, "--seeds", "3", "--executor", "ray", "--cpus-per-run", "1", "--out", out, "--resume")
    assert res.exit_code == 0, res.output
    assert "2 runs to train" in res.stderr
    rows = _rows(out)
    assert rows[0] == first[0]
    assert sorted(r["seed"] for r in rows) == ["0", "1", "2"] and all(r["status"] == "ok" for r in rows)
    assert all(r["threads"] == "1" for r in rows)  # Ray gives each task its CPUs as torch threads


# ------------------------------------------------------------------------ run on each node


@pytest.fixture()
def tiny_onnx(tmp_path):
    """A random linear classifier, (N, 1, 28, 28) -> (N, 10): enough to time, not to score."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.05, (784, 10)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(10, np.float32), "b")
    g = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("Gemm", ["f", "w", "b"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], [w, b])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(tmp_path / "tiny.onnx"))
    return tmp_path / "tiny.onnx"


@pytest.mark.slow
@pytest.mark.integration
def test_run_on_each_node_matches_a_local_run(cluster, data_env, tiny_onnx):
    common = ["run", "--onnx", tiny_onnx, "--no-score", "--no-null", "--batch-sizes", "1,8", "--threads", "1",
              "--min-s", "0", "--min-iters", "5", "--warmup-s", "0"]
    res = invoke(*common, "--out", data_env / "local.csv")
    assert res.exit_code == 0, res.output
    res = invoke(*common, "--executor", "ray", "--nodes", "all", "--results-dir", data_env / "fleet")
    assert res.exit_code == 0, res.output
    (folder,) = (data_env / "fleet").iterdir()
    host = socket.gethostname()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["fleet.json", f"{host}.csv", f"{host}.system.json", f"{host}.samples"])
    remote_rows = read_csv(folder / f"{host}.csv")  # every gathered row has its samples file, validated
    assert sorted(samples_io.load(folder / f"{host}.csv")) == sorted(r.cell_id for r in remote_rows)
    local, remote = _rows(data_env / "local.csv"), _rows(folder / f"{host}.csv")
    assert list(remote[0]) == list(local[0])  # the same columns, in the same order
    cell = lambda r: (r["model"], r["runtime"], r["provider"], r["batch_size"], r["status"])  # noqa: E731
    assert sorted(map(cell, remote)) == sorted(map(cell, local))
    assert {r["host"] for r in remote} == {host} and all(float(r["latency_p50_ms"]) > 0 for r in remote)
    # which node measured: the Ray node (id and IP) on the node, the machine id locally
    fleet = json.loads((folder / "fleet.json").read_text())
    (node,) = fleet["nodes"]
    assert re.fullmatch(r"[0-9a-f]{56}", node["node_id"]) and node["ip"]
    assert {r["node"] for r in remote} == {f"ray:{node['node_id'][:12]}@{node['ip']}"}
    assert all(r["node"].startswith("machine:") or r["node"] == "" for r in local)
    system = json.loads((folder / f"{host}.system.json").read_text())
    assert system["results_csv"] == f"{host}.csv" and system["node"] == remote[0]["node"]
    assert "\x1b[" not in res.stdout and "raylet" not in res.stdout and "(pid=" not in res.stdout  # no Ray log lines
    assert fleet["run_id"] == folder.name and [n["returncode"] for n in fleet["nodes"]] == [0]
    assert fleet["config"]["onnx"] == [str(tiny_onnx.resolve())] and fleet["config"]["out_path"] is None
    assert fleet["config"]["axes"]["batch_sizes"] == [1, 8] and fleet["config"]["timing"]["min_iters"] == 5
    # `report` reads the gathered folder as it is
    res = invoke("report", folder, "--out-dir", data_env / "report")
    assert res.exit_code == 0, res.output
    assert (data_env / "report" / "report.html").is_file()


@pytest.mark.slow
def test_more_cpus_per_run_than_any_node_is_refused(cluster, data_env):
    res = invoke(*SMOKE, "--seeds", "1", "--executor", "ray", "--cpus-per-run", "3", "--out", data_env / "x.csv")
    assert res.exit_code == 2 and "--cpus-per-run 3: no node of the Ray cluster has that many CPUs" in res.stderr
    assert not (data_env / "x.csv").exists() and not (data_env / "x.system.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--nodes", "5"], "--nodes 5: the cluster has 1 live node(s)"),
    (["--nodes", "label=zone=nowhere"], "no live node has label zone=nowhere"),
    (["--nodes", "some"], "--nodes must be all, a count or label=KEY=VALUE"),
    (["--out", "x.csv"], "--out and --resume are for one host"),
])
def test_bad_fleet_options_are_one_line(cluster, tiny_onnx, tmp_path, args, message):
    res = invoke("run", "--onnx", tiny_onnx, "--executor", "ray", "--results-dir", tmp_path / "r", *args)
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
