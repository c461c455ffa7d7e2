"""Result files under faults and concurrency: one writer, a killed writer's lock, a full disk, and the
fast subset of the fault-injection run. Real `mnistbench run` processes on a small ONNX classifier and
the real test images. The one-line refusals of stale and damaged result files (resume of another
dataset, profile, model file or schema, torn rows, damaged samples, hostile run inputs) are cases of
the bad-input matrix in tests/test_bad_input.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.records import read_csv

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # real `mnistbench run` processes: several seconds each


def cli(*args):
    return [sys.executable, "-m", "mnistbench.bench.cli", *map(str, args)]


@pytest.fixture()
def model(tmp_path, matmul_chain, mnist):
    return matmul_chain(tmp_path / "chain.onnx", 2)


def run(model, out, *extra, data_root=None, timeout=180):
    from conftest import real_data_root

    return subprocess.run(cli("run", "--onnx", model, "--no-score", "--no-null", "--batch-sizes", "1,4",
                              "--min-s", "0.2", "--threads", "1", "--artifacts-dir", out.parent / "arts",
                              "--data-dir", data_root or real_data_root(), "--out", out, *extra),
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(res, *words):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_a_second_writer_is_refused_and_the_first_completes(model, tmp_path, real_data_root):
    out = tmp_path / "r.csv"
    first = subprocess.Popen(cli("run", "--onnx", model, "--no-score", "--no-null", "--batch-sizes", "1,2,4,8",
                                 "--min-s", "1.5", "--threads", "1", "--artifacts-dir", tmp_path / "arts", "--out", out,
                                 "--data-dir", real_data_root),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (tmp_path / "r.csv.lock").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    second = run(model, out)  # started while the first holds the file: it has no rows yet
    one_line_error(second, "another mnistbench process is writing")
    _, err = first.communicate(timeout=180)
    assert first.returncode == 0, err  # it was running all along
    rows = read_csv(out)
    assert len([r for r in rows if r.task != "reference"]) == 4
    assert sorted(samples_io.load(out)) == sorted(r.cell_id for r in rows)  # every row kept its samples
    ok = subprocess.run(cli("verify", out), capture_output=True, text=True)
    assert ok.returncode == 0 and "ok" in ok.stdout, ok.stderr


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(model, tmp_path, real_data_root):
    out = tmp_path / "k.csv"
    p = subprocess.Popen(cli("run", "--onnx", model, "--no-score", "--no-null", "--batch-sizes", "1,2,4,8",
                             "--min-s", "2", "--threads", "1", "--max-live-sessions", "1", "--artifacts-dir",
                             tmp_path / "arts", "--out", out, "--data-dir", real_data_root), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (out.exists() and sum(1 for _ in open(out)) >= 2) and time.time() < deadline:
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()
    p.send_signal(signal.SIGKILL)
    p.wait()
    res = run(model, out, "--resume")
    assert res.returncode == 0, res.stderr
    assert not list(samples_io.folder_for(out).glob(".*"))  # no temporary samples file survived the kill


def test_fault_injection_subset_for_run(real_data_root, tmp_path):
    """Three interrupt points of scripts/fault_injection_run.py (the long version takes --points 50)."""
    res = subprocess.run([sys.executable, "scripts/fault_injection_run.py", "--points", "3", "--seed", "3",
                          "--data-dir", real_data_root, "--json", tmp_path / "f.json"],
                         capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 points" in res.stdout and "0 with problems" in res.stdout


def test_a_full_disk_during_run_gives_one_line_and_keeps_whole_rows(model, tmp_path, real_data_root):
    """RLIMIT_FSIZE stands in for a full disk: the first group's rows land, the second group's
    samples file is over the limit, and the run stops with one line; the CSV stays whole."""
    import resource

    out = tmp_path / "full.csv"
    assert run(model, tmp_path / "warm.csv").returncode == 0  # the reference model and thread cache exist

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))  # a 1 s samples file is larger

    res = subprocess.run(cli("run", "--onnx", model, "--no-score", "--no-null", "--batch-sizes", "1,4", "--min-s", "1",
                             "--threads", "1", "--max-live-sessions", "1", "--artifacts-dir", tmp_path / "arts",
                             "--data-dir", real_data_root, "--out", out),
                         capture_output=True, text=True, timeout=300, preexec_fn=limit)
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("mnistbench:")]
    assert res.returncode == 1 and "Traceback" not in res.stderr and len(errors) == 1, res.stderr
    assert "cannot write" in errors[0]
    if out.exists():
        assert subprocess.run(cli("verify", out), capture_output=True, text=True).returncode == 0
    assert not samples_io.leftovers(out)
