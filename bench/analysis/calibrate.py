"""The calibration study of `compare`: planted slowdowns and speedups, compared as a user would, many times.

For each configuration (a model at one batch size) the study builds slower copies of the exported
model by appending ``k`` elementwise ``Mul`` nodes (by a tensor of ones: the outputs are bit-for-bit
the same, only time changes) on the input (on the output, finer steps, for levels of 1% or less:
:mod:`.planting`), with ``k`` chosen from a measured per-node cost of that site so that
the copy is about 2%, 5%, 10% and 20% slower (:data:`LEVELS`). Every copy has a static batch axis, so
a run measures it only at its configuration's batch size. A planted *speedup* of level L compares
the slowed copy (base) with the plain model (new): true ratio 1 / (1 + L). Then, ``trials`` times:

- **separate runs** (the user's CI gate): one ``mnistbench run`` process measures every base model
  (the plain one for A/A and slowdowns, the slowed copy for speedups), another process every new
  model under the same names, default settings, the order of the two processes drawn at random per
  trial; ``compare --fail-on p50:+5%`` judges each level. Each trial's within-run interval, the
  reference network's movement and the verdict under the default noise model (no profile) are
  written; :func:`summarise` also judges every trial with the host profile the study measured;
- **live**: ``compare --live`` (defaults: sequential stages until decided or ``--max-s``) of the
  plain model against a copy planted at each of :data:`LIVE_LEVELS` (negative: the copy is the base,
  a speedup), the order of the two sides drawn at random per trial.

Everything runs under a neighbour **condition** (:mod:`bench.noise`): ``as-is`` (the host as it is,
unpinned), ``quiet`` (the study pinned to the last CPU; nothing else should run there), ``busy`` or
``bursty`` (seeded neighbour load on the benchmark's own CPUs).

The true slowdown of each copy is measured at the end with long live runs (a fixed number of
stages). The trials go to ``trials.csv``, the power table (verdict rates against planted change) to
``summary.md``, and the machine, the condition and the exact command line to ``system.json``, in
the output folder. Under ``as-is`` and ``quiet`` the A/A spread of the separate runs is stored as
this host's noise profile (:mod:`bench.noiseprofile`).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ...models.errors import UsageError
from ...models.files import atomic_write_bytes
from ..measure import noiseprofile
from ..measure.config import RunRequest
from ..measure.runner import Axes, Target, auto_threads_fixed
from ..measure.system import describe_system, hygiene
from . import compare as cmp
from .calibration_summary import GATE, LIVE_GATE, LIVE_MAX_S_1PCT, rejudge, summarise  # noqa: F401  (re-exported)
from .live import LIVE_MAX_S, live_compare
from .noise import Neighbour, check_condition
from .planting import SITES, SMALL_LEVEL, planted, site_of  # noqa: F401  (SITES, SMALL_LEVEL re-exported)

LEVELS = (0.0, 0.02, 0.05, 0.10, 0.20)
# live: A/A, a planted 1% and 3% slowdown, a planted 3% speedup (negative: the slowed copy is the base)
LIVE_LEVELS = (0.0, 0.01, 0.03, -0.03)
MODES = ("separate", "live")
PROBE_NODES = 32
PROBE_STAGES = 8  # stages of the per-node cost's live runs
PROBE_MAX_NODES = 8192
REFINE_STAGES = 20  # stages of each measured point of refine()
TRUTH_STAGES_SMALL = 30  # a small level's true ratio needs a narrower interval than 10 stages give
TRUTH_STAGES = 10  # stages of the long live runs that measure each copy's true ratio (~30 s each)


@dataclass(frozen=True)
class Config:
    """A model file at one batch size."""

    name: str
    path: Path
    batch: int

    @property
    def label(self) -> str:
        return f"{self.name}-b{self.batch}"


def _live_ratio(a: Path, b: Path, batch: int, inputs: np.ndarray, work: Path, stages: int | None = None,
                max_s: float = LIVE_MAX_S) -> tuple[cmp.Change, int, float]:
    """``compare --live`` of files ``a`` (base) and ``b`` at ``batch``, with the live defaults: until
    decided or ``max_s`` (or exactly ``stages`` stages). Returns (change, stages, seconds)."""
    ta = Target("a", a, "null", inputs, inputs[:0], None, None, fixed_batch=batch, variant="foreign")
    tb = Target("b", b, "null", inputs, inputs[:0], None, None, fixed_batch=batch, variant="foreign")
    out = work / f"live-{time.time_ns()}.csv"
    res = live_compare(ta, tb, Axes(threads=(auto_threads_fixed() or 0,), batch_sizes=(batch,)), out,
                       max_s=max_s, stages=stages)
    shutil.rmtree(out.with_name(out.stem + ".samples"), ignore_errors=True)
    for p in out.parent.glob(out.stem + ".*"):
        p.unlink()
    out.unlink(missing_ok=True)
    n, sec = res.stages[batch]
    return res.changes[0], n, sec


def per_node_cost(cfg: Config, inputs: np.ndarray, work: Path, site: str = "input") -> tuple[float, float]:
    """(base p50 ms, added ms per Mul node at ``site``) at the configuration's batch size, from live
    runs of the base against copies with :data:`PROBE_NODES`, then 4x, 16x ... as many nodes, until
    the copy is at least 8% slower (a smaller difference drowns in a busy machine's noise) or has
    :data:`PROBE_MAX_NODES` nodes."""
    base = planted(cfg.path, work / "probe" / f"{cfg.label}-0.onnx", 0, cfg.batch)
    k = PROBE_NODES
    while True:
        more = planted(cfg.path, work / "probe" / f"{cfg.label}-{site}-{k}.onnx", k, cfg.batch, site)
        c = _live_ratio(base, more, cfg.batch, inputs, work, stages=PROBE_STAGES)[0]
        if c.ratio >= 1.08 or k >= PROBE_MAX_NODES:
            return c.base_p50_ms, (c.new_p50_ms - c.base_p50_ms) / k
        k *= 4


def refine(cfg: Config, lv: float, k: int, slope: float, inputs: np.ndarray, work: Path,
           progress: Callable[[str], None] = lambda s: None) -> int:
    """The node count whose *measured* ratio is nearest ``1 + lv``, for a small level.

    The per-node cost comes from copies at least 8% slower, but the first nodes cost more (a fixed
    part: on lenet5 at batch 32 13 output nodes, asked for 1%, measured 1.017 in the as-is study of
    031af3f): so measure the copy at ``k`` (:data:`REFINE_STAGES` live stages), take the fixed part
    as what the slope (``slope``: added fraction per node) does not explain, and measure the count
    that line gives; then the secant through the two measured points, once. Returns the measured
    count nearest the level (the study's truth runs measure it again at the end)."""
    base = planted(cfg.path, work / "refine" / f"{cfg.label}-0.onnx", 0, cfg.batch)
    seen: dict[int, float] = {}

    def measure(n: int) -> float:
        if n not in seen:
            copy = planted(cfg.path, work / "refine" / f"{cfg.label}-{n}.onnx", n, cfg.batch, site_of(lv))
            seen[n] = _live_ratio(base, copy, cfg.batch, inputs, work, stages=REFINE_STAGES)[0].ratio - 1
            progress(f"  {cfg.label} {lv:+.1%}: {n} output nodes measured {seen[n]:+.2%}")
        return seen[n]

    r1 = measure(k)
    fixed = r1 - slope * k
    k2 = max(1, int(round((lv - fixed) / slope))) if slope > 0 else k
    r2 = measure(k2)
    if k2 != k and r2 != r1:
        k3 = max(1, int(round(k + (lv - r1) * (k2 - k) / (r2 - r1))))
        if 0 < k3 <= 4 * max(k, k2):
            measure(k3)
    return min(seen, key=lambda n: (abs(seen[n] - lv), n))


# How a separate run is started: the run configuration and the environment of a fresh process ->
# (exit code, error line). The launcher layer provides it (``launch.process.run_in_fresh_process``);
# this module only builds the configuration, so analysis never imports the launchers.
LaunchRun = Callable[[RunRequest, dict], tuple[int, str]]


def run_side(folder: Path, out_csv: Path, data_dir: Path | None, artifacts: Path, cache: Path | None,
             launch: LaunchRun) -> None:
    """One fresh-process ``run`` over every ``.onnx`` in ``folder``, default settings (``cache``: the
    user cache it sees, so that the study's runs use no stored noise profile), started by ``launch``.

    Raises:
        UsageError: the run failed (its error's line).
    """
    req = RunRequest(onnx=tuple(sorted(folder.glob("*.onnx"))), profile="foreign", null=False, score=False,
                     out_path=out_csv, artifacts_dir=artifacts, data_dir=data_dir,
                     command=f"(calibration) mnistbench run --onnx {folder}/*.onnx --no-null --no-score --out {out_csv}")
    code, error = launch(req, {"MNISTBENCH_CACHE": str(cache)} if cache else {})
    if code != 0:
        raise UsageError(f"calibration run failed: {error or code}")


TRIAL_FIELDS = ["trial", "condition", "mode", "config", "level", "nodes", "first", "ratio", "ratio_low", "ratio_high",
                "within_low", "within_high", "raw_ratio", "reference_ratio", "between_sigma", "verdict",
                "gate_failed", "stages", "decide_s", "wall_s", "loadavg_1m"]


def check_modes(modes: tuple[str, ...]) -> None:
    """Raises UsageError unless ``modes`` is a non-empty subset of :data:`MODES`."""
    if not modes or set(modes) - set(MODES):
        raise UsageError(f"calibration modes (--calibrate-modes) are {', '.join(MODES)}; got {', '.join(modes) or 'none'}")


def _name(cfg: Config, lv: float) -> str:
    """A separate-run model name: ``<config>-p05`` slowdowns, ``<config>-m05`` speedups, ``-p00`` A/A."""
    return f"{cfg.label}-{'m' if lv < 0 else 'p'}{round(abs(lv) * 100):02d}"


def study(configs: list[Config], inputs: np.ndarray, out_dir: Path, trials: int = 20, data_dir: Path | None = None,
          levels: tuple[float, ...] = LEVELS, live_levels: tuple[float, ...] = LIVE_LEVELS,
          progress: Callable[[str], None] = lambda s: None, modes: tuple[str, ...] = MODES,
          condition: str = "as-is", seed: int = 0, command: str = "", launch: LaunchRun | None = None) -> dict:
    """Run the study under ``condition`` (neighbour seed ``seed``); returns the rows and true ratios
    (also written to ``out_dir``). ``modes``: which of ``separate`` and ``live`` to run (both by
    default). ``levels``: planted changes of the separate runs, each as a slowdown and (above 0) a
    speedup. ``command``: the command line, recorded in ``system.json``. ``launch``: starts each
    separate run in a fresh process (needed when ``separate`` is among the modes).

    ``inputs``: float32 (N, 1, 28, 28) images for the live runs (the separate runs read the test set).

    Raises:
        UsageError: unknown modes or condition, or a copy whose added nodes cost no time.
    """
    check_modes(modes)
    check_condition(condition)
    if "separate" in modes and levels and launch is None:
        raise UsageError("the separate-run calibration needs a launcher of fresh-process runs (launch=)")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    levels = levels if "separate" in modes else ()
    live_levels = live_levels if "live" in modes else ()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if condition == "quiet" and affinity:
        os.sched_setaffinity(0, {max(affinity)})  # the study and its run processes on the last CPU
    rng = random.Random(seed)
    before = hygiene()
    neighbour = Neighbour(condition, seed=seed)
    try:
        with neighbour:
            rows, truth, costs, nodes = _trials(configs, inputs, work, trials, (data_dir, launch), levels, live_levels,
                                                progress, condition, rng, out_dir)
    finally:
        if condition == "quiet" and affinity:
            os.sched_setaffinity(0, affinity)
    profile = None
    aa = [math.log(r["ratio"]) for r in rows if r["mode"] == "separate" and r["level"] == 0
          and isinstance(r["ratio"], float) and r["ratio"] > 0]
    sigma = float(np.std(aa, ddof=1)) if len(aa) >= noiseprofile.MIN_TRIALS else math.nan
    if condition in ("as-is", "quiet") and math.isfinite(sigma):
        profile = noiseprofile.save(sigma, len(aa), condition, command)
    summary = summarise(rows, truth, costs, nodes, sigma, condition)
    atomic_write_bytes(out_dir / "summary.md", summary.encode())
    system = {**describe_system(), "command": command, "condition": neighbour.describe(),
              "pinned_cpus": [max(affinity)] if condition == "quiet" and affinity else None,
              "noise_profile_measured": profile, "ab_order_seed": seed,
              "machine_before": before, "machine_after": hygiene()}
    atomic_write_bytes(out_dir / "system.json", json.dumps(system, indent=2, default=str).encode())
    shutil.rmtree(work, ignore_errors=True)
    return {"rows": rows, "truth": truth, "sigma": sigma}


def _trials(configs, inputs, work, trials, runs, levels, live_levels, progress, condition, rng, out_dir):
    nodes: dict[tuple[str, float], int] = {}
    costs = {}
    wanted = sorted({abs(v) for v in (*levels, *live_levels)})
    for cfg in configs:
        for site in sorted({site_of(lv) for lv in wanted if lv > 0}):
            progress(f"per-node cost of {cfg.label} ({site} nodes)")
            t0, c = per_node_cost(cfg, inputs, work, site)
            if not c > 0:
                raise UsageError(f"{cfg.label}: appended Mul nodes cost no measurable time (per node {c:.2e} ms)")
            costs[cfg.label if site == "input" else f"{cfg.label} ({site} nodes)"] = (t0, c)
            for lv in wanted:
                if lv > 0 and site_of(lv) == site:
                    nodes[(cfg.label, lv)] = max(1, int(round(lv * t0 / c)))
                    if site == "output":
                        nodes[(cfg.label, lv)] = refine(cfg, lv, nodes[(cfg.label, lv)], c / t0, inputs, work,
                                                        progress)
        nodes.setdefault((cfg.label, 0.0), 0)
    side_base, side_new = work / "base", work / "new"
    plain = {}
    for cfg in configs:
        plain[cfg.label] = planted(cfg.path, work / "plain" / f"{cfg.label}.onnx", 0, cfg.batch)
        for lv in levels:
            for sign in ((1, -1) if lv > 0 else (1,)):
                name, k = _name(cfg, sign * lv), nodes[(cfg.label, lv)]
                planted(cfg.path, side_base / f"{name}.onnx", 0 if sign > 0 else k, cfg.batch, site_of(lv))
                planted(cfg.path, side_new / f"{name}.onnx", k if sign > 0 else 0, cfg.batch, site_of(lv))
    cache = work / "empty-cache"  # the runs see no stored noise profile: a new user's defaults
    rows = []
    trials_csv = out_dir / "trials.csv"
    with open(trials_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, TRIAL_FIELDS, lineterminator="\n")
        w.writeheader()
        for i in range(trials):
            if levels:
                rows += separate_trial(i, trials, side_base, side_new, work, runs, nodes, w, progress, condition,
                                       rng.random() < 0.5, cache)
            if live_levels:
                progress(f"trial {i + 1}/{trials}: live")
            for cfg in configs:
                for lv in live_levels:
                    t = time.perf_counter()
                    k = nodes[(cfg.label, abs(lv))]
                    copy = planted(cfg.path, work / "live" / f"{cfg.label}-{abs(lv)}.onnx", k, cfg.batch, site_of(lv))
                    a, b = (plain[cfg.label], copy) if lv >= 0 else (copy, plain[cfg.label])
                    new_first = rng.random() < 0.5  # which side's sessions the stages name (and so build) first
                    c, n, sec = _live_ratio(b, a, cfg.batch, inputs, work, max_s=_budget(lv)) if new_first else \
                        _live_ratio(a, b, cfg.batch, inputs, work, max_s=_budget(lv))
                    if new_first:
                        c = _inverted(c)
                    gate_failed = bool(cmp.gate([c], cmp.parse_rules(LIVE_GATE)))
                    rows.append(_trial(i, condition, "live", cfg.label, lv, k, c, gate_failed, time.perf_counter() - t,
                                       "new" if new_first else "base", n, sec))
                    w.writerow(rows[-1])
            fh.flush()
    progress("true ratio of each copy (long live runs)")
    truth = {}
    for cfg in configs:
        for lv in sorted({abs(v) for v in (*levels, *live_levels)}):
            if lv == 0:
                continue
            b = planted(cfg.path, work / "truth" / f"{cfg.label}-{lv}.onnx", nodes[(cfg.label, lv)], cfg.batch,
                        site_of(lv))
            stages = TRUTH_STAGES_SMALL if site_of(lv) == "output" else TRUTH_STAGES
            c = _live_ratio(plain[cfg.label], b, cfg.batch, inputs, work, stages=stages)[0]
            truth[(cfg.label, lv)] = (c.ratio, c.ratio_low, c.ratio_high)
    return rows, truth, costs, nodes


def _budget(lv: float) -> float:
    """The live budget of a planted level: :data:`LIVE_MAX_S_1PCT` for a change of 1% or less (a
    one-node copy may plant less than asked), :data:`LIVE_MAX_S` for A/A and larger changes."""
    return LIVE_MAX_S_1PCT if 0 < abs(lv) <= 0.01 else LIVE_MAX_S


def _inverted(c: cmp.Change) -> cmp.Change:
    """A live change measured as (new, base) turned back into base -> new: ratio and bounds inverted,
    faster and slower swapped."""
    swap = {"slower": "faster", "faster": "slower"}
    return replace(c, ratio=1 / c.ratio, ratio_low=1 / c.ratio_high, ratio_high=1 / c.ratio_low,
                   raw_low=1 / c.raw_high, raw_high=1 / c.raw_low, base_p50_ms=c.new_p50_ms, new_p50_ms=c.base_p50_ms,
                   base_p99_ms=c.new_p99_ms, new_p99_ms=c.base_p99_ms, base_ips=c.new_ips, new_ips=c.base_ips,
                   verdict=swap.get(c.verdict, c.verdict))


def separate_trial(i: int, trials: int, side_base: Path, side_new: Path, work: Path,
                   runs: tuple[Path | None, LaunchRun],
                   nodes: dict, w: csv.DictWriter, progress: Callable[[str], None], condition: str = "as-is",
                   new_first: bool = False, cache: Path | None = None) -> list[dict]:
    """Trial ``i`` of the separate runs: one ``run`` process over the base side and one over the new
    side (``new_first``: in that order), then ``compare`` (default noise model, no stored profile) and
    the gate; its rows (also written to ``w``). ``runs``: the data folder and the launcher of the runs."""
    progress(f"trial {i + 1}/{trials}: separate runs ({'new' if new_first else 'base'} first)")
    t = time.perf_counter()
    b_csv, n_csv = work / f"b{i}.csv", work / f"n{i}.csv"
    for folder, out in ((side_new, n_csv), (side_base, b_csv)) if new_first else ((side_base, b_csv), (side_new, n_csv)):
        run_side(folder, out, runs[0], work, cache, runs[1])
    base, new = cmp.load(b_csv), cmp.load(n_csv)
    changes, _, _ = cmp.compare(base, new, sigma=noiseprofile.DEFAULT_SIGMA)
    failed = {id(c) for c, _ in cmp.gate(changes, cmp.parse_rules(GATE))}
    wall = time.perf_counter() - t
    rows = []
    for c in changes:
        label, _, tag = c.key[0].rpartition("-")
        lv = (-1 if tag[0] == "m" else 1) * int(tag[1:]) / 100
        rows.append(_trial(i, condition, "separate", label, lv, nodes[(label, abs(lv))], c, id(c) in failed, wall,
                           "new" if new_first else "base"))
        w.writerow(rows[-1])
    for p in work.glob(f"[bn]{i}.*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return rows


def _r(v: float) -> float | str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else round(v, 5)


def _trial(i: int, condition: str, mode: str, label: str, lv: float, k: int, c: cmp.Change, failed: bool, wall: float,
           first: str, stages: int = 0, decide_s: float = math.nan) -> dict:
    return {"trial": i, "condition": condition, "mode": mode, "config": label, "level": lv, "nodes": k, "first": first,
            "ratio": _r(c.ratio), "ratio_low": _r(c.ratio_low), "ratio_high": _r(c.ratio_high),
            "within_low": _r(c.raw_low), "within_high": _r(c.raw_high), "raw_ratio": _r(c.p50_ratio),
            "reference_ratio": _r(c.ref_ratio), "between_sigma": _r(c.between_sigma), "verdict": c.verdict,
            "gate_failed": int(failed), "stages": stages, "decide_s": _r(decide_s), "wall_s": round(wall, 1),
            "loadavg_1m": round(os.getloadavg()[0], 2)}
