"""The plan of a paper reproduction: which runs it trains (:class:`PlannedRun`, :func:`plan`: the
``paper`` experiment per model and seed, with the CPU-budget reduction of infeasible recipes, then
the ``ae-scale`` autoencoder study over :data:`AE_MODELS` and :data:`AE_SCALES`), and the order its
rows are read in (:func:`plan_order`), so that runs finished out of order give the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import torch

from ...models.errors import UsageError
from ...models.registry import list_models
from ...models.spec import ModelSpec

# The autoencoder study's input scales: preprocess name -> label.
AE_SCALES = {"unit": "[0,1]", "signed": "[-1,1]"}
AE_MODELS = ("zhu-autoencoder", "zhu-conv-autoencoder")


@dataclass(frozen=True)
class PlannedRun:
    """One training run of the reproduction."""

    experiment: str  # "paper" or "ae-scale"
    model: str
    seed: int
    profile: str  # the profile actually trained
    scale: str = ""  # ae-scale: "unit" or "signed"
    reduced: str = ""  # why and how the recipe was cut ("" when it is the requested one)

    @property
    def key(self) -> tuple:
        return (self.experiment, self.model, self.scale, str(self.seed))


MAX_SEEDS = 1000  # seeds 0..999 of one model: weeks of training on a CPU; a larger count is a typo, not a plan


def plan(specs: Iterable[ModelSpec], seeds: int, profile: str, device: torch.device,
         reduce_on_cpu: bool = True, ae_study: bool = True) -> list[PlannedRun]:
    """The runs of a reproduction, in registry order, seeds 0..seeds-1 of each model.

    Raises:
        UsageError: ``seeds`` below 1 or above :data:`MAX_SEEDS`.
    """
    if not 1 <= seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds must be between 1 and {MAX_SEEDS:,}, got {seeds:,}")
    specs = list(specs)
    runs: list[PlannedRun] = []
    for s in specs:
        s.recipe_for(profile)  # unknown profile -> UsageError before any work
        prof, reduced = profile, ""
        if profile == "paper" and device.type == "cpu" and reduce_on_cpu and s.extra.get("cpu_infeasible"):
            prof = "quick"
            reduced = f"CPU budget: {s.quick.note} ({s.extra['cpu_infeasible']})"
        runs += [PlannedRun("paper", s.name, seed, prof, reduced=reduced) for seed in range(seeds)]
    if ae_study and any(s.name in AE_MODELS for s in specs):
        runs += [PlannedRun("ae-scale", m, seed, profile, scale=sc)
                 for m in AE_MODELS for sc in AE_SCALES for seed in range(seeds)]
    return runs


def plan_order(rows: list[dict]) -> list[dict]:
    """``rows`` stably sorted as :func:`plan` orders runs: ``paper`` before ``ae-scale``, models
    in registry order, then scale and seed (numerically)."""
    index = {name: i for i, name in enumerate(list_models())}
    exp = {"paper": 0, "ae-scale": 1}

    def key(r: dict) -> tuple:
        seed = str(r["seed"])
        return (exp.get(r["experiment"], 2), index.get(r["model"], len(index)), r["scale"],
                int(seed) if seed.isdigit() else 0)

    return sorted(rows, key=key)
