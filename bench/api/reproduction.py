"""Reproduce the papers: the API of ``mnistbench reproduce``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from ...models.data import check_dataset_name, load_dataset
from ...models.errors import MnistBenchError, UsageError
from ...models.registry import select
from ...models.train import ProgressFn, resolve_device
from ..measure import inputs
from ..measure.defaults import RUNS_DIR
from ..measure.pipeline import artifacts_root
from ..measure.system import git_commit, write_system_json
from ..training import reproduce as rp


@dataclass
class Reproduction:
    """A reproduction's runs CSV, its markdown table, and its rows (dicts of :data:`reproduce.RUN_FIELDS`)."""

    csv_path: Path
    md_path: Path
    rows: list[dict]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def reproduce(models: list[str] | None = None, *, seeds: int = 3, profile: str = "paper", device: str = "auto",
              dataset: str = "mnist", ae_study: bool = True, reduce_on_cpu: bool = True, out_path: Path | None = None,
              resume: bool = False, results_dir: Path = RUNS_DIR / "reproduce",
              data_dir: Path | None = None, artifacts_dir: Path | None = None, cluster=None, max_retries: int = 2,
              cpus_per_run: float = 2.0, on_plan: Callable[[int, Path], None] | None = None,
              on_start: Callable[[rp.PlannedRun, int, int], ProgressFn | None] | None = None,
              on_done: Callable[[dict], None] | None = None) -> Reproduction:
    """Train each model with its paper's recipe over seeds 0..seeds-1 and tabulate against the claim.

    Args:
        cluster: a :class:`ray_executor.RayCluster` (entered) to run each training as a Ray task.
        out_path: the runs CSV (default ``results_dir/<UTC stamp>-<dataset>-<profile>.csv``);
            with ``resume``, the CSV to complete (error rows are trained again).
        on_plan: ``(runs to train, csv path)``; on_start/on_done: per run (see :func:`reproduce.run_all`).

    Returns:
        a :class:`Reproduction`; its markdown table is written beside the CSV.

    Raises:
        UsageError: unknown models or profile, seeds < 1, retries < 0, cpus_per_run <= 0, a CSV of
        another dataset/profile to resume, nothing trained. Failed runs are error rows
        (see :func:`reproduce_failures`).

    Example: ``api.reproduce(["zhu-mlp"], seeds=2, profile="smoke", device="cpu")``
    """
    specs = check_reproduce(models, max_retries, cpus_per_run)
    check_dataset_name(dataset)  # before any folder is made
    if cluster is not None:
        cluster.check_cpus_per_run(cpus_per_run)
    dev = cluster.device(device) if cluster is not None else resolve_device(device)
    runs = rp.plan(specs, seeds, profile, dev, reduce_on_cpu, ae_study)
    arts = artifacts_root(artifacts_dir)
    data = load_dataset(dataset, data_dir)  # read and verified before any file or folder is made
    if resume:
        runs = _runs_missing(runs, out_path, dataset, profile)
        csv_path = out_path
    else:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        csv_path = inputs.new_csv(out_path or results_dir / f"{stamp}-{dataset}-{profile}.csv",
                                  ", or add --resume to complete it")
    sink = rp.runs_csv(csv_path)
    system_path = csv_path.with_suffix(".system.json")
    if not system_path.exists():
        write_system_json(system_path, {"command": "reproduce", "dataset": dataset, "profile": profile,
                                        "device": str(dev), "executor": "ray" if cluster else "local"})
    if on_plan:
        on_plan(len(runs), csv_path)
    if cluster is None:
        rp.run_all(runs, data, dev.type, sink, arts, on_start, on_done, git_commit())
    else:
        cluster.reproduce(runs, data, dev, sink, arts, max_retries=max_retries,
                          cpus_per_run=cpus_per_run, on_done=on_done, commit=git_commit())
    rows = rp.read_runs(csv_path) if csv_path.exists() else []
    if not rows:
        raise UsageError("nothing was trained")
    md = csv_path.with_suffix(".md")
    rp.write_markdown(md, rows, [csv_path.name])
    return Reproduction(csv_path, md, rows)


def check_reproduce(models: list[str] | None, max_retries: int, cpus_per_run: float, out_path: Path | None = None,
                    resume: bool = False) -> list:
    """The specs of ``models``, the Ray options, ``--out`` and ``--resume`` checked before the data
    is read. Raises UsageError."""
    if resume and out_path is None:
        raise UsageError("--resume needs --out: the runs CSV to complete")
    if out_path is not None and Path(out_path).suffix != ".csv":
        raise UsageError(f"--out must name a .csv file, got {out_path}")
    inputs.at_least(max_retries, 0, "--max-retries")
    if cpus_per_run <= 0:
        raise UsageError(f"--cpus-per-run must be positive, got {cpus_per_run}")
    return select(models)


def _runs_missing(runs: list[rp.PlannedRun], out_path: Path | None, dataset: str, profile: str) -> list:
    if out_path is None:
        raise UsageError("--resume needs --out: the runs CSV to complete")
    old = rp.read_runs(out_path)
    other = {(r["dataset"], r["profile"]) for r in old if r["experiment"] == "paper" and not r["reduced"]}
    if other and (dataset, profile) not in other:
        raise UsageError(f"{out_path} holds {sorted(other)[0][0]}/{sorted(other)[0][1]} runs; "
                         f"it cannot be completed with --dataset {dataset} --profile {profile}")
    have = {rp.run_key(r) for r in old if rp.is_ok(r)}  # error rows are trained again
    return [r for r in runs if r.key not in have]


def reproduce_failures(rows: list[dict]) -> None:
    """Raise MnistBenchError (exit 1) when runs failed and no later run of the same key succeeded."""
    finished = {rp.run_key(r) for r in rows if rp.is_ok(r)}
    failed = {rp.run_key(r): r for r in rows if not rp.is_ok(r) and rp.run_key(r) not in finished}
    if failed:
        first = next(iter(failed.values()))
        raise MnistBenchError(f"{len(failed)} run(s) failed and were recorded as error rows (--resume trains them "
                              f"again); first: {first['model']} seed {first['seed']}: {first['error']}")
