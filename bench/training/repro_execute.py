"""Executing a paper reproduction's runs: the autoencoder study's models (:class:`_Reconstructor`,
:func:`ae_spec`), one planned run trained into its CSV row (:func:`execute`), and a list of runs
trained in order, each row appended as soon as it finishes (:func:`run_all`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ...models.data import Dataset
from ...models.registry import get_spec
from ...models.spec import ModelSpec
from ...models.train import ProgressFn, resolve_device, train
from ..measure.records import CsvAppender
from .repro_plan import AE_SCALES, PlannedRun


class _Reconstructor(nn.Module):
    """(N, 1, 28, 28) -> reconstruction (N, 1, 28, 28), last activation set by the scale."""

    def __init__(self, model: str, scale: str) -> None:
        super().__init__()
        base = get_spec(model).build()
        dec = base.decoder
        dec[len(dec) - 1] = nn.Sigmoid() if scale == "unit" else nn.Tanh()
        # the dense decoder ends flat (N, 784); the conv decoder already gives (N, 1, 28, 28)
        shape = [nn.Unflatten(1, (1, 28, 28))] if model == "zhu-autoencoder" else []
        self.body = nn.Sequential(base.encoder, dec, *shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def ae_spec(model: str, scale: str) -> ModelSpec:
    """The spec trained by the ``ae-scale`` study: ``model``'s autoencoder on ``scale``
    with the conv autoencoder's recipe (paper: Adam 5e-3, wd 1e-5, batch 128, 20 epochs)."""
    conv = get_spec("zhu-conv-autoencoder")
    return replace(conv, name=f"{model}@{scale}", build=lambda: _Reconstructor(model, scale), preprocess=scale,
                   task="reconstruct", trainer="reconstruct")


def _final_and_best(meta: dict) -> tuple[float, str, str, str]:
    stage = meta["stages"].get("classify", {})
    curve = stage.get("eval_curve")
    if not curve:
        return meta["test_metric"], "", "", ""
    marks = get_spec(meta["model"]).extra.get("table_i", {})
    at = {}
    for k in sorted(marks):
        upto = [acc for step, acc in curve if step <= k]
        exact = [acc for step, acc in curve if step == k]
        if upto and exact:  # a run of k steps is the first k steps of this one (constant lr, same seed)
            at[str(k)] = {"final": exact[0], "best": max(upto)}
    return meta["test_metric"], f"{stage['best_test_accuracy']:.6f}", str(stage["best_step"]), json.dumps(at)


def execute(run: PlannedRun, data: Dataset, device: str, artifacts_root: Path | None,
            progress: ProgressFn | None = None, commit: str = "") -> dict:
    """Train one planned run; returns its CSV row (see :data:`RUN_FIELDS`).

    ``paper`` runs write their checkpoint under ``artifacts_root`` (so a reproduced
    model can be exported and benchmarked); ``ae-scale`` runs keep none.
    """
    if run.experiment == "paper":
        spec = get_spec(run.model)
        stem = None
        if artifacts_root is not None:
            from ..measure.pipeline import Artifacts

            arts = Artifacts(artifacts_root, data.name, run.profile, run.seed)
            stem = arts.checkpoint(spec.name)
        res = train(spec, data, profile=run.profile, device=device, seed=run.seed, progress=progress,
                    checkpoint_stem=stem, log_path=None if stem is None else stem.with_suffix(".train.csv"))
    else:
        spec = ae_spec(run.model, run.scale)
        res = train(spec, data, profile=run.profile, device=device, seed=run.seed, progress=progress)
    meta = res.meta
    final, best, best_step, marks = _final_and_best(meta)
    return {
        "experiment": run.experiment, "dataset": data.name, "model": run.model,
        "scale": AE_SCALES.get(run.scale, "") if run.experiment == "ae-scale" else "",
        "seed": run.seed, "profile": run.profile, "recipe": meta["recipe_summary"], "reduced": run.reduced,
        "metric": meta["metric"], "final": f"{final:.6f}", "best": best, "best_step": best_step,
        "checkpoints": marks,
        "reconstruction_mse": f"{meta['reconstruction_mse']:.6f}" if "reconstruction_mse" in meta else "",
        "steps": sum(s["steps"] for s in meta["stages"].values()), "epochs": meta["epochs_done"],
        "device": meta["device"], "threads": meta["threads"], "wall_s": f"{meta['wall_time_s']:.1f}",
        "finished_utc": meta["finished_utc"], "commit": commit, "status": "ok", "error": "",
    }


def run_all(runs: list[PlannedRun], data: Dataset, device: str, sink: CsvAppender, artifacts_root: Path | None,
            on_start: Callable[[PlannedRun, int, int], ProgressFn | None] | None = None,
            on_done: Callable[[dict], None] | None = None, commit: str = "") -> list[dict]:
    """Execute ``runs`` in order, appending each row to ``sink`` as soon as it finishes."""
    resolve_device(device)
    done = []
    for i, run in enumerate(runs):
        progress = on_start(run, i, len(runs)) if on_start else None
        row = execute(run, data, device, artifacts_root, progress, commit)
        sink.append_row(row)
        done.append(row)
        if on_done:
            on_done(row)
    return done
