"""The load study's A/B trials (results/load/ab/): does a planted ~10% compute slowdown lower the
found peak Server rate with a ``slower`` verdict, and does an identical file never get one?

Builds three ONNX files from the quick lenet5 export: ``base.onnx`` (the export), ``same.onnx``
(its bytes again: A/A) and ``slow.onnx`` (``k`` elementwise ``Mul``-by-ones nodes on the input,
broadcast over the batch, so that a batch-1 call is about 10% slower; outputs unchanged; ``k`` from a
64-node probe, then checked on the file itself and corrected up to twice, the two files' calls
alternating in one loop). Each
trial is one ``mnistbench load`` of the three (peak search, ``--repeat 3``: every repeat in its
own shuffled order, fresh sessions), then ``mnistbench compare FILE#base FILE#same`` and
``FILE#base FILE#slow`` with ``--fail-on peak_qps:-5%``. Writes ``trials.csv`` and ``summary.md``.

Usage: python scripts/load_ab.py results/load/ab --trials 10 [--min-duration-s 1] [--source X.onnx]
       [--latency-bound-ms 5] [--repeat 3] [--interleave]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

TARGET = 0.10


def slowed(src: Path, dst: Path, k: int) -> Path:
    m = onnx.load(str(src))
    g = m.graph
    inp = g.input[0]
    g.initializer.append(onnx.numpy_helper.from_array(np.ones((1, 1, 28, 28), np.float32), "ab_ones"))
    prev, nodes = inp.name, []
    for i in range(k):
        out = f"ab_mul_{i}"
        nodes.append(onnx.helper.make_node("Mul", [prev, "ab_ones"], [out], name=out))
        prev = out
    for n in g.node:
        for j, x in enumerate(n.input):
            if x == inp.name:
                n.input[j] = prev
    for n in reversed(nodes):
        g.node.insert(0, n)
    onnx.checker.check_model(m)
    dst.write_bytes(m.SerializeToString())
    return dst


def _session(path: Path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s, s.get_inputs()[0].name


def paired_ms(a: Path, b: Path, calls: int = 3000) -> tuple[float, float]:
    """Median batch-1 ms of ``a`` and of ``b``, their calls alternating in one loop (one thread), so
    that the host's drift, which moves a closed loop by tens of percent within seconds here, falls
    on both alike (measured one after the other, a 64-node probe once read 60x its cost)."""
    sa, sb = _session(a), _session(b)
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    for _ in range(200):
        sa[0].run(None, {sa[1]: x})
        sb[0].run(None, {sb[1]: x})
    ta, tb = [], []
    for _ in range(calls):
        for (s, name), ts in ((sa, ta), (sb, tb)):
            t = time.perf_counter()
            s.run(None, {name: x})
            ts.append(time.perf_counter() - t)
    return float(np.median(ta)) * 1e3, float(np.median(tb)) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--min-duration-s", type=float, default=1.0)
    ap.add_argument("--source", type=Path, default=Path("artifacts/mnist/quick/seed0/lenet5.onnx"))
    ap.add_argument("--latency-bound-ms", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--interleave", action="store_true", help="the load's --interleave: the three searches of a "
                    "round take turns a test at a time")
    a = ap.parse_args()
    models = a.out / "models"
    models.mkdir(parents=True, exist_ok=True)
    base, same = models / "base.onnx", models / "same.onnx"
    shutil.copyfile(a.source, base)
    shutil.copyfile(a.source, same)
    probe = slowed(base, models / "probe.onnx", 64)
    t0, t64 = paired_ms(base, probe)
    want = max(1, round(TARGET * t0 / max((t64 - t0) / 64, 1e-6)))
    for _ in range(3):  # check the count on the file itself, and correct it up to twice
        k = want
        slow = slowed(base, models / "slow.onnx", k)
        t0b, tk = paired_ms(base, slow)
        if abs(tk / t0b - 1 - TARGET) <= 0.02 or tk <= t0b:
            break
        want = max(1, round(k * TARGET / (tk / t0b - 1)))
    (models / "probe.onnx").unlink()
    note = (f"batch-1 p50 (closed loop, 1 thread, the two files' calls alternating): base {t0b:.4f} ms, slow ({k} Mul nodes) {tk:.4f} ms: "
            f"{tk / t0b - 1:+.1%}")
    print(note, flush=True)
    rows = []
    for i in range(a.trials):
        csv_path = a.out / f"trial-{i:02d}.csv"
        cmd = ["mnistbench", "load", "--onnx", str(base), "--onnx", str(same), "--onnx", str(slow),
               "--scenario", "server", "--find-peak", "--latency-bound-ms", f"{a.latency_bound_ms:g}",
               "--repeat", str(a.repeat),
               "--min-duration-s", str(a.min_duration_s), "--no-null", "--loadgen-seed", str(100 + i),
               "--out", str(csv_path)] + (["--interleave"] if a.interleave else [])
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        for new in ("same", "slow"):
            c = subprocess.run(["mnistbench", "compare", f"{csv_path}#base", f"{csv_path}#{new}", "--fail-on",
                                "peak_qps:-5%", "--format", "markdown"], capture_output=True, text=True)
            line = next(x for x in c.stdout.splitlines() if "| peak_qps |" in x)
            cells = [x.strip() for x in line.strip("|").split("|")]
            rows.append({"trial": i, "new": new, "base_peak_qps": cells[2], "new_peak_qps": cells[3],
                         "ratio_ci": cells[5], "verdict": cells[6], "gate_exit": c.returncode})
            print(rows[-1], flush=True)
    with open(a.out / "trials.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    lines = [f"# Load A/B: peak Server rate (p99 <= {a.latency_bound_ms:g} ms), {a.source.stem} ({a.source.parent.parent.name}), "
             f"ONNX Runtime CPU, 1 worker, no batching, {a.repeat} repeats a file"
             + (", the searches of a round interleaved" if a.interleave else ""),
             "", note, "", f"Command: python {' '.join(sys.argv)}", "",
             "| new | slower | faster | no change | inconclusive | gate failed (peak_qps:-5%) | trials |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for new in ("same", "slow"):
        rs = [r for r in rows if r["new"] == new]
        cnt = {v: sum(r["verdict"] == v for r in rs) for v in ("slower", "faster", "no change", "inconclusive")}
        lines.append(f"| {new} | {cnt['slower']} | {cnt['faster']} | {cnt['no change']} | {cnt['inconclusive']} | "
                     f"{sum(r['gate_exit'] == 1 for r in rs)} | {len(rs)} |")
    (a.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
