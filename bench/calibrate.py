"""The calibration study of `compare`: planted slowdowns, compared as a user would, many times.

For each configuration (a model at one batch size) the study builds slower copies of the exported
model by appending ``k`` elementwise ``Mul`` nodes (by a tensor of ones: the outputs are bit-for-bit
the same, only time changes) on the input, with ``k`` chosen from a measured per-node cost so that
the copy is about 2%, 5%, 10% and 20% slower. Every copy has a static batch axis, so a run measures
it only at its configuration's batch size. Then, ``trials`` times:

- **separate runs** (the user's CI gate): one ``mnistbench run`` process measures the base models
  (one copy per level, so that both sides do the same work), a second process the slowed copies
  under the same names, with default settings, and ``compare --fail-on p50:+5%`` judges each level;
- **live**: ``compare --live`` measures base and slowed copy (A/A and the live level) in one process.

Both modes run with the thread count of ``--threads auto`` (1 on a 2-CPU host); the per-node cost is
measured at that count too, so a level's copy is slowed by that fraction in the runs that judge it.

The true slowdown of each copy is measured at the end with a long live run. The trials are written
to ``trials.csv``, the summary (counts of each verdict per level and the gate's false alarms) to
``summary.md``, and the machine to ``system.json``, in the output folder.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from mnistbench.bench import compare as cmp
from mnistbench.bench.live import LIVE_MIN_S, LIVE_ROUNDS, live_compare
from mnistbench.bench.runner import Axes, Target, auto_threads_fixed
from mnistbench.bench.system import describe_system, hygiene
from mnistbench.bench.timing import TimingConfig
from mnistbench.models.checkpoint import atomic_write_bytes
from mnistbench.models.errors import UsageError

LEVELS = (0.0, 0.02, 0.05, 0.10, 0.20)
LIVE_LEVELS = (0.0, 0.03)
GATE = "p50:+5%"
LIVE_GATE = "p50:+1%"
MODES = ("separate", "live")
PROBE_NODES = 32


@dataclass(frozen=True)
class Config:
    """A model file at one batch size."""

    name: str
    path: Path
    batch: int

    @property
    def label(self) -> str:
        return f"{self.name}-b{self.batch}"


def planted(src: Path, dst: Path, k: int, batch: int) -> Path:
    """``src`` with a static batch axis of ``batch`` and ``k`` ``Mul``-by-ones nodes on its input.

    Raises:
        UsageError: the model has not exactly one float input.
    """
    m = onnx.load(str(src))
    g = m.graph
    inits = {i.name for i in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1 or inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise UsageError(f"{src}: calibration needs one float32 input")
    inp = inputs[0]
    for vi in (inp, *g.output):
        vi.type.tensor_type.shape.dim[0].ClearField("dim_param")
        vi.type.tensor_type.shape.dim[0].dim_value = batch
    if k:
        shape = [batch] + [d.dim_value for d in inp.type.tensor_type.shape.dim[1:]]
        g.initializer.append(onnx.numpy_helper.from_array(np.ones(shape, np.float32), "calibration_ones"))
        prev = inp.name
        nodes = []
        for i in range(k):
            out = f"calibration_mul_{i}"
            nodes.append(onnx.helper.make_node("Mul", [prev, "calibration_ones"], [out], name=out))
            prev = out
        for node in g.node:
            for j, name in enumerate(node.input):
                if name == inp.name:
                    node.input[j] = prev
        for n in reversed(nodes):
            g.node.insert(0, n)
    onnx.checker.check_model(m)
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dst, m.SerializeToString())
    return dst


def _live_ratio(a: Path, b: Path, batch: int, inputs: np.ndarray, work: Path, rounds: int = LIVE_ROUNDS,
                min_s: float = LIVE_MIN_S) -> cmp.Change:
    ta = Target("a", a, "null", inputs, inputs[:0], None, None, fixed_batch=batch, variant="foreign")
    tb = Target("b", b, "null", inputs, inputs[:0], None, None, fixed_batch=batch, variant="foreign")
    out = work / f"live-{time.time_ns()}.csv"
    res = live_compare(ta, tb, Axes(threads=(auto_threads_fixed() or 0,), batch_sizes=(batch,)), out, TimingConfig(min_s=min_s, rounds=rounds))
    shutil.rmtree(out.with_name(out.stem + ".samples"), ignore_errors=True)
    for p in out.parent.glob(out.stem + ".*"):
        p.unlink()
    out.unlink(missing_ok=True)
    return res.changes[0]


def per_node_cost(cfg: Config, inputs: np.ndarray, work: Path) -> tuple[float, float]:
    """(base p50 ms, added ms per Mul node) at the configuration's batch size, from live runs of the
    base against copies with :data:`PROBE_NODES`, then 4x, 16x ... as many nodes, until the copy is
    at least 8% slower (a smaller difference drowns in a busy machine's noise) or has 2,048 nodes."""
    base = planted(cfg.path, work / "probe" / f"{cfg.label}-0.onnx", 0, cfg.batch)
    k = PROBE_NODES
    while True:
        more = planted(cfg.path, work / "probe" / f"{cfg.label}-{k}.onnx", k, cfg.batch)
        c = _live_ratio(base, more, cfg.batch, inputs, work)
        if c.ratio >= 1.08 or k >= 2048:
            return c.base_p50_ms, (c.new_p50_ms - c.base_p50_ms) / k
        k *= 4


def run_side(folder: Path, out_csv: Path, data_dir: Path | None, artifacts: Path) -> None:
    """One ``mnistbench run`` process over every ``.onnx`` in ``folder``, default settings."""
    cmd = [sys.executable, "-m", "mnistbench.bench.cli", "run", *sum((["--onnx", str(p)] for p in
                                                                       sorted(folder.glob("*.onnx"))), []),
           "--no-null", "--no-score", "--out", str(out_csv), "--artifacts-dir", str(artifacts)]
    if data_dir:
        cmd += ["--data-dir", str(data_dir)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise UsageError(f"calibration run failed: {res.stderr.strip().splitlines()[-1] if res.stderr else res.returncode}")


TRIAL_FIELDS = ["trial", "mode", "config", "level", "nodes", "ratio", "ratio_low", "ratio_high", "raw_ratio",
                "reference_ratio", "normalised", "verdict", "gate_failed", "wall_s", "loadavg_1m"]


def study(configs: list[Config], inputs: np.ndarray, out_dir: Path, trials: int = 20, data_dir: Path | None = None,
          levels: tuple[float, ...] = LEVELS, live_levels: tuple[float, ...] = LIVE_LEVELS,
          progress: Callable[[str], None] = lambda s: None, modes: tuple[str, ...] = MODES) -> dict:
    """Run the study; returns the summary (also written to ``out_dir``). ``modes``: which of
    ``separate`` and ``live`` to run (both by default).

    ``inputs``: float32 (N, 1, 28, 28) images for the live runs (the separate runs read the test set).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    check_modes(modes)
    levels = levels if "separate" in modes else ()
    live_levels = live_levels if "live" in modes else ()
    before = hygiene()
    nodes: dict[tuple[str, float], int] = {}
    costs = {}
    for cfg in configs:
        progress(f"per-node cost of {cfg.label}")
        t0, c = per_node_cost(cfg, inputs, work)
        if not c > 0:
            raise UsageError(f"{cfg.label}: appended Mul nodes cost no measurable time (per node {c:.2e} ms)")
        costs[cfg.label] = (t0, c)
        for lv in sorted(set(levels) | set(live_levels)):
            nodes[(cfg.label, lv)] = int(round(lv * t0 / c))
    side_a, side_b = work / "A", work / "B"
    for cfg in configs:
        planted(cfg.path, side_a / f"{cfg.label}-p00.onnx", 0, cfg.batch)  # the live base
        for lv in levels:
            name = f"{cfg.label}-p{round(lv * 100):02d}"
            planted(cfg.path, side_a / f"{name}.onnx", 0, cfg.batch)
            planted(cfg.path, side_b / f"{name}.onnx", nodes[(cfg.label, lv)], cfg.batch)
    rows = []
    trials_csv = out_dir / "trials.csv"
    with open(trials_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, TRIAL_FIELDS, lineterminator="\n")
        w.writeheader()
        for i in range(trials):
            if levels:
                rows += separate_trial(i, trials, side_a, side_b, work, data_dir, nodes, w, progress)
            progress(f"trial {i + 1}/{trials}: live")
            for cfg in configs:
                for lv in live_levels:
                    t = time.perf_counter()
                    a = side_a / f"{cfg.label}-p00.onnx"
                    b = planted(cfg.path, work / "live" / f"{cfg.label}-{lv}.onnx", nodes[(cfg.label, lv)], cfg.batch)
                    c = _live_ratio(a, b, cfg.batch, inputs, work)
                    gate_failed = bool(cmp.gate([c], cmp.parse_rules(LIVE_GATE)))
                    rows.append(_trial(i, "live", cfg.label, lv, nodes[(cfg.label, lv)], c, gate_failed,
                                       time.perf_counter() - t))
                    w.writerow(rows[-1])
            fh.flush()
    progress("true slowdown of each copy (long live runs)")
    truth = {}
    for cfg in configs:
        for lv in sorted(set(levels) | set(live_levels)):
            if lv == 0:
                continue
            b = planted(cfg.path, work / "truth" / f"{cfg.label}-{lv}.onnx", nodes[(cfg.label, lv)], cfg.batch)
            c = _live_ratio(side_a / f"{cfg.label}-p00.onnx", b, cfg.batch, inputs, work, rounds=20, min_s=3 * LIVE_MIN_S)
            truth[(cfg.label, lv)] = (c.ratio, c.ratio_low, c.ratio_high)
    summary = summarise(rows, truth, costs, nodes)
    (out_dir / "summary.md").write_text(summary)
    (out_dir / "system.json").write_text(json.dumps({**describe_system(), "machine_before": before,
                                                     "machine_after": hygiene()}, indent=2, default=str))
    shutil.rmtree(work, ignore_errors=True)
    return {"rows": rows, "truth": truth}


def check_modes(modes: tuple[str, ...]) -> None:
    """Raises UsageError unless ``modes`` is a non-empty subset of :data:`MODES`."""
    if not modes or set(modes) - set(MODES):
        raise UsageError(f"calibration modes (--calibrate-modes) are {', '.join(MODES)}; got {', '.join(modes) or 'none'}")


def separate_trial(i: int, trials: int, side_a: Path, side_b: Path, work: Path, data_dir: Path | None,
                   nodes: dict, w: csv.DictWriter, progress: Callable[[str], None]) -> list[dict]:
    """Trial ``i`` of the separate runs: one ``run`` process over side A, one over side B, then
    ``compare`` and the gate; its rows (also written to ``w``)."""
    progress(f"trial {i + 1}/{trials}: separate runs")
    t = time.perf_counter()
    a_csv, b_csv = work / f"a{i}.csv", work / f"b{i}.csv"
    run_side(side_a, a_csv, data_dir, work)
    run_side(side_b, b_csv, data_dir, work)
    changes, _, _ = cmp.compare(cmp.load(a_csv), cmp.load(b_csv))
    failed = {id(c) for c, _ in cmp.gate(changes, cmp.parse_rules(GATE))}
    wall = time.perf_counter() - t
    rows = []
    for c in changes:
        label, _, lv = c.key[0].rpartition("-p")
        rows.append(_trial(i, "separate", label, int(lv) / 100, nodes[(label, int(lv) / 100)], c, id(c) in failed, wall))
        w.writerow(rows[-1])
    for p in work.glob(f"[ab]{i}.*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return rows


def _trial(i: int, mode: str, label: str, lv: float, k: int, c: cmp.Change, failed: bool, wall: float) -> dict:
    return {"trial": i, "mode": mode, "config": label, "level": lv, "nodes": k, "ratio": round(c.ratio, 5),
            "ratio_low": round(c.ratio_low, 5), "ratio_high": round(c.ratio_high, 5),
            "raw_ratio": round(c.p50_ratio, 5), "reference_ratio": round(c.ref_ratio, 5) if not math.isnan(c.ref_ratio)
            else "", "normalised": int(c.normalised), "verdict": c.verdict, "gate_failed": int(failed),
            "wall_s": round(wall, 1), "loadavg_1m": round(os.getloadavg()[0], 2)}


def summarise(rows: list[dict], truth: dict, costs: dict, nodes: dict) -> str:
    """The markdown summary: per mode, configuration and level, the count of each verdict and of
    gate failures, the median judged ratio, and the copy's true slowdown."""
    out = ["| mode | config | planted | nodes | true ratio [95% CI] | trials | slower | faster | no change | "
           "inconclusive | gate failed | median ratio | normalised |", "|" + "---|" * 13]
    keys = sorted({(r["mode"], r["config"], r["level"]) for r in rows}, key=lambda k: (k[0] != "separate", k[1], k[2]))
    for mode, cfg, lv in keys:
        rs = [r for r in rows if (r["mode"], r["config"], r["level"]) == (mode, cfg, lv)]
        count = {v: sum(r["verdict"] == v for r in rs) for v in cmp.VERDICTS}
        tr = truth.get((cfg, lv))
        true = "1 (A/A)" if lv == 0 else (f"{tr[0]:.3f} [{tr[1]:.3f}, {tr[2]:.3f}]" if tr else "-")
        out.append(f"| {mode} | {cfg} | {lv:.0%} | {rs[0]['nodes']} | {true} | {len(rs)} | {count['slower']} | "
                   f"{count['faster']} | {count['no change']} | {count['inconclusive']} | "
                   f"{sum(r['gate_failed'] for r in rs)} | {np.median([r['ratio'] for r in rs]):.3f} | "
                   f"{sum(r['normalised'] for r in rs)} |")
    out.append("")
    out.append("Per-node cost (live, base p50 and ms per appended Mul node): " + "; ".join(
        f"{k}: {t0:.4f} ms, {c * 1e3:.2f} µs/node" for k, (t0, c) in costs.items()))
    return "\n".join(out) + "\n"
