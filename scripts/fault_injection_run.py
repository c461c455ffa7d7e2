"""Fault injection for `mnistbench run`: Ctrl-C (SIGINT) and kill -9 (SIGKILL) at random points of a
run, each followed by `run --resume`, then the checks a user relies on.

After every interrupt point: the exit status is 130 for Ctrl-C (0 when the run had finished) and -9 for
kill -9; the CSV reads back; `--resume` (the lock of a killed run never blocks it) completes the matrix.
After the resume: every configuration is in the CSV exactly once, every row has its samples file and the
file matches the row, `mnistbench verify` is clean, and no file is left over (anything beside the CSV, its
lock, its system JSON and one samples file per row, or hidden in the folder or the artifacts).

    python scripts/fault_injection_run.py --points 50 --data-dir ../shared/data [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from mnistbench.bench.analysis.verify import verify
from mnistbench.bench.measure import samples as samples_io
from mnistbench.bench.measure.records import read_csv
from onnx import TensorProto, helper, numpy_helper, save

BATCHES = "1,2,4,8,16,32"
CELLS = 6


def model(path: Path) -> Path:
    """A small MNIST-shaped classifier: reshape, two 784 x 784 MatMuls, the first 10 columns."""
    w = (np.random.default_rng(0).standard_normal((784, 784)) / 28).astype(np.float32)
    nodes = [helper.make_node("Reshape", ["input", "shape"], ["h0"]), helper.make_node("MatMul", ["h0", "w"], ["h1"]),
             helper.make_node("MatMul", ["h1", "w"], ["h2"]),
             helper.make_node("Slice", ["h2", "start", "end", "axis"], ["logits"])]
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array([-1, 784], np.int64), "shape"),
             numpy_helper.from_array(np.array([0], np.int64), "start"),
             numpy_helper.from_array(np.array([10], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "axis")]
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 10
    save(m, str(path))
    return path


def run_cmd(onnx_path: Path, out: Path, data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mnistbench.bench.cli", "run", "--onnx", str(onnx_path), "--no-score", "--no-null",
            "--batch-sizes", BATCHES, "--min-s", "0.3", "--threads", "1", "--max-live-sessions", "2", "--data-dir",
            str(data_dir), "--artifacts-dir", str(out.parent / "arts"), "--out", str(out), *extra]


def point(i: int, rng: random.Random, root: Path, onnx_path: Path, data_dir: Path) -> dict:
    """One interrupt point: start a run, signal it after a random delay, resume, check."""
    out = root / f"p{i}.csv"
    sig = rng.choice([signal.SIGINT, signal.SIGKILL])
    delay = rng.uniform(0.5, 12.0)
    p = subprocess.Popen(run_cmd(onnx_path, out, data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    finished = p.poll() is not None
    if not finished:
        p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    problems = []
    allowed = {0, 130} if sig == signal.SIGINT else {0, -signal.SIGKILL}
    if p.returncode not in allowed:
        problems.append(f"exit {p.returncode} after {sig.name}: {err.strip().splitlines()[-1:]}")
    if sig == signal.SIGINT and p.returncode == 130 and "Traceback" in err:
        problems.append("a traceback after Ctrl-C")
    resume = subprocess.run(run_cmd(onnx_path, out, data_dir, *(["--resume"] if out.exists() else [])),
                            capture_output=True, text=True, timeout=300)
    if resume.returncode != 0:
        problems.append(f"resume failed: {resume.stderr.strip().splitlines()[-1:]}")
    else:
        rows = [r for r in read_csv(out) if r.task != "reference"]
        ids = [r.config_id for r in rows]
        if len(ids) != CELLS or len(set(ids)) != CELLS:
            problems.append(f"{len(ids)} rows for {CELLS} cells ({len(set(ids))} distinct)")
        rep = verify(out)
        problems += rep.problems
    left = unexpected_files(root, out)
    if left:
        problems.append(f"{len(left)} files left over: {', '.join(left[:3])}")
    return {"point": i, "signal": sig.name, "delay_s": round(delay, 2), "finished_before_signal": finished,
            "rc": p.returncode, "problems": problems, "files_left": len(left)}


def unexpected_files(root: Path, out: Path) -> list[str]:
    """Every file of this point, or hidden at the top or in the artifacts, that a whole run does not leave:
    a run leaves the CSV, its ``.lock`` (filelock keeps it by design), the system JSON, one samples file per
    measured row, and in the artifacts the reference model and the thread cache."""
    expected = {out, Path(str(out) + ".lock"), out.with_suffix(".system.json")}
    if out.exists():
        try:
            expected |= {samples_io.folder_for(out) / f"{r.cell_id}.npz" for r in read_csv(out) if r.status == "ok"}
        except Exception:  # an unreadable CSV is reported by the resume check
            pass
    mine = [f for f in root.glob(out.stem + ".*") if f.is_file()] + list(samples_io.folder_for(out).glob("*"))
    hidden = [f for f in root.glob(".*")] + [f for f in (root / "arts").glob("*")
                                              if f.name not in ("mnistbench-reference.onnx", "threads-auto.json")]
    return sorted(str(f.relative_to(root)) for f in set(mine) - expected | set(hidden))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with tempfile.TemporaryDirectory(prefix="mnistbench-faults-") as tmp:
        root = Path(tmp)
        onnx_path = model(root / "chain.onnx")
        results = [point(i, rng, root, onnx_path, a.data_dir) for i in range(a.points)]
    bad = [r for r in results if r["problems"]]
    summary = {"points": len(results), "interrupted": sum(not r["finished_before_signal"] for r in results),
               "inconsistent": len(bad), "files_left": sum(r["files_left"] for r in results), "results": results}
    print(f"{summary['points']} points ({summary['interrupted']} interrupted mid-run), {len(bad)} with problems, "
          f"{summary['files_left']} files left over")
    for r in bad:
        print(f"  point {r['point']} ({r['signal']} at {r['delay_s']} s): {'; '.join(r['problems'])}")
    if a.json:
        a.json.write_text(json.dumps(summary, indent=2))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
