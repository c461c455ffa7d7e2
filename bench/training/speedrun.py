"""Time-to-accuracy: how long training a model takes to reach a target test accuracy.

``mnistbench speedrun`` trains one model with its recipe once per seed and reports, per seed,
the training wall time and the final test accuracy, then the mean and spread over seeds and
whether the mean reaches the target (the speed study's criterion: the mean over seeds, since a
one-cycle schedule has a fixed length and individual seeds may fall short).

What the clock covers, per run: building the model, the optimiser, every optimiser step and, on
CUDA, a final synchronisation. What it excludes, and the results say so: reading and verifying
the IDX files, preprocessing them into one float32 tensor on the device (done once per process,
shared by the seeds), one untimed warm-up of :data:`WARMUP_STEPS` steps on a throwaway model
per process (it primes oneDNN/cuDNN kernel selection, a per-process cost, not a per-run one),
and the test-set evaluation after training.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...models.data import Dataset, load_dataset
from ...models.errors import UsageError
from ...models.files import atomic_write_bytes
from ...models.preprocess import preprocess
from ...models.registry import get_spec
from ...models.spec import ModelSpec, TrainRecipe
from ...models.train import _optimizer, autocast_for, evaluate, optimizer_step, resolve_device
from ..measure.defaults import RUNS_DIR
from ..measure.inputs import check_csv_name, new_csv
from ..measure.system import write_system_json

WARMUP_STEPS = 10


@dataclass(frozen=True)
class SpeedrunResult:
    """One seed's run.

    Attributes:
        seed: torch seed (init and shuffling).
        train_s: wall seconds from model construction to the last optimiser step.
        steps: optimiser steps taken.
        accuracy: top-1 on the 10,000 test images, fraction.
        eval_s: wall seconds of that evaluation (not in ``train_s``).
    """

    seed: int
    train_s: float
    steps: int
    accuracy: float
    eval_s: float


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def train_timed(spec: ModelSpec, r: TrainRecipe, x: torch.Tensor, y: torch.Tensor, seed: int,
                dev: torch.device, max_steps: int | None = None, amp: str = "off",
                channels_last: bool = False) -> tuple[torch.nn.Module, float, int]:
    """Train ``spec.build()`` with recipe ``r`` on resident tensors; returns (model, seconds, steps).

    ``amp="bf16"`` runs forward and loss under ``torch.autocast`` to bfloat16 (weights and
    optimiser stay float32); ``channels_last`` stores the model in NHWC (``x`` must match)."""
    n = len(x)
    per_epoch = math.ceil(n / r.batch_size)
    total = r.steps if r.steps is not None else r.epochs * per_epoch
    if max_steps is not None:
        total = min(total, max_steps)
    torch.manual_seed(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    _sync(dev)
    t0 = time.perf_counter()
    model = spec.build().to(dev).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = _optimizer(model.parameters(), r)
    autocast = autocast_for(dev, amp)
    step = 0
    while step < total:
        perm = torch.randperm(n, generator=gen).to(dev)
        for i in range(0, n, r.batch_size):
            if step >= total:
                break
            idx = perm[i : i + r.batch_size]
            optimizer_step(opt, r, step, total, lambda: F.cross_entropy(model(x[idx]), y[idx]), autocast)
            step += 1
    _sync(dev)
    return model.eval(), time.perf_counter() - t0, step


MAX_EPOCHS = 1000  # above the longest paper recipe (30 epochs) by far: a larger count is a typo


def check_options(seeds: int, epochs: int | None, amp: str) -> None:
    """The counts and modes of a speedrun, before any data is read.

    Raises:
        UsageError: seeds outside 1..:data:`repro_plan.MAX_SEEDS`, epochs outside 1..:data:`MAX_EPOCHS`,
            an unknown ``amp``.
    """
    from ...models.train import AMP_MODES
    from .repro_plan import MAX_SEEDS

    if not 1 <= seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds must be between 1 and {MAX_SEEDS:,}, got {seeds:,}")
    if epochs is not None and not 1 <= epochs <= MAX_EPOCHS:
        raise UsageError(f"--epochs must be between 1 and {MAX_EPOCHS:,}, got {epochs:,}")
    if amp not in AMP_MODES:
        raise UsageError(f"unknown --amp {amp!r}; choose one of: {', '.join(AMP_MODES)}")


def speedrun(spec: ModelSpec, data: Dataset, seeds: int = 5, device: str = "auto",
             epochs: int | None = None, profile: str = "paper", on_result=None, amp: str = "off",
             channels_last: bool = False) -> list[SpeedrunResult]:
    """Train ``spec`` once per seed 0..seeds-1 and time each run (see the module docstring).

    Args:
        spec: a classifier spec.
        data: the dataset in memory.
        seeds: number of runs.
        device: ``auto``, ``cpu`` or ``cuda``.
        epochs: override the recipe's epoch count (epoch recipes only).
        profile: which recipe of the spec (``paper`` by default).
        on_result: called with each :class:`SpeedrunResult` as it finishes.
        amp: ``off`` or ``bf16`` (autocast for forward and loss).
        channels_last: train in NHWC memory format.

    Raises:
        UsageError: a reconstruction model, seeds < 1, epochs < 1, or epochs on a step recipe.
    """
    if spec.task != "classify":
        raise UsageError(f"{spec.name} is a {spec.task} model; speedrun measures time to a test accuracy")
    check_options(seeds, epochs, amp)
    r = spec.recipe_for(profile)
    if spec.trainer != "classify":
        raise UsageError(f"{spec.name} trains in stages ({spec.trainer}); speedrun times one-stage classifiers")
    if epochs is not None:
        if r.epochs is None:
            raise UsageError(f"{spec.name}'s recipe counts steps, not epochs; --epochs does not apply")
        r = replace(r, epochs=epochs)
    dev = resolve_device(device)
    n_train = min(r.train_images or len(data.train_images), len(data.train_images))
    x = torch.from_numpy(preprocess(data.train_images[:n_train], spec.preprocess)).to(dev)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(data.train_labels[:n_train].astype(np.int64)).to(dev)
    xt = torch.from_numpy(preprocess(data.test_images, spec.preprocess)).to(dev)
    yt = torch.from_numpy(data.test_labels.astype(np.int64)).to(dev)
    train_timed(spec, r, x, y, seed=10_000, dev=dev, max_steps=WARMUP_STEPS, amp=amp,
                channels_last=channels_last)  # untimed warm-up
    results = []
    for seed in range(seeds):
        model, secs, steps = train_timed(spec, r, x, y, seed, dev, amp=amp, channels_last=channels_last)
        t0 = time.perf_counter()
        acc = evaluate(model, xt, yt, "classify")
        res = SpeedrunResult(seed, secs, steps, acc, time.perf_counter() - t0)
        results.append(res)
        if on_result:
            on_result(res)
    return results


@dataclass(frozen=True)
class SpeedrunSummary:
    """Mean and spread over seeds; ``reached`` = mean accuracy >= target."""

    n: int
    train_s_mean: float
    train_s_sd: float
    train_s_min: float
    train_s_max: float
    acc_mean: float
    acc_sd: float
    acc_min: float
    acc_max: float
    seeds_reaching: int
    target: float
    reached: bool


def summarize(results: list[SpeedrunResult], target: float) -> SpeedrunSummary:
    """Seed statistics (sample standard deviation; 0 for one seed)."""
    ts = [r.train_s for r in results]
    accs = [r.accuracy for r in results]
    sd = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)
    mean_acc = statistics.fmean(accs)
    return SpeedrunSummary(len(results), statistics.fmean(ts), sd(ts), min(ts), max(ts), mean_acc, sd(accs),
                           min(accs), max(accs), sum(a >= target for a in accs), target, mean_acc >= target)


def prepare(model: str, target: float, device: str, dataset: str, out_path: Path | None,
            data_dir: Path | None, profile: str = "paper") -> tuple[ModelSpec, torch.device, Path, Dataset, float]:
    """``speedrun``'s inputs checked, then its data loaded, then its CSV's place made: (spec, device,
    new CSV path, data, load seconds). Nothing is created before every input is known good.

    Raises:
        UsageError: an unknown model, profile, dataset or device, a target outside (0, 1], unusable
            data, an unusable ``out_path``.
    """
    spec = get_spec(model)
    if not 0 < target <= 1:
        raise UsageError(f"--target is a fraction in (0, 1], got {target}")
    spec.recipe_for(profile)  # an unknown profile: UsageError
    dev = resolve_device(device)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    csv_path = out_path or RUNS_DIR / "speedrun" / f"{stamp}-{dataset}-{spec.name}-{dev.type}.csv"
    check_csv_name(csv_path)
    t_load = time.perf_counter()
    data = load_dataset(dataset, data_dir)
    load_s = time.perf_counter() - t_load
    new_csv(csv_path)
    return spec, dev, csv_path, data, load_s


def header(spec: ModelSpec, dev: torch.device, profile: str, load_s: float) -> str:
    """The line ``speedrun`` says before training: model, device, torch threads, recipe, data load seconds."""
    return (f"{spec.name} on {dev.type} ({torch.get_num_threads()} torch threads): "
            f"{spec.recipe_for(profile).describe()}; data loaded in {load_s:.1f} s (not timed)")


def write_csv(path: Path, spec: ModelSpec, dataset: str, dev: torch.device, profile: str, epochs: int | None,
              amp: str, channels_last: bool, target: float, results: list[SpeedrunResult], load_s: float) -> None:
    """One row per seed (train seconds, optimiser steps, test accuracy, eval seconds), written atomically,
    and a ``.system.json`` beside it (with the data load seconds, which the clock excludes)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "dataset", "device", "torch_threads", "recipe", "amp", "channels_last", "seed", "train_s",
                "steps", "accuracy", "eval_s", "target"])
    desc = spec.recipe_for(profile).describe()
    if epochs is not None:
        desc = f"{desc} (epochs overridden: {epochs})"
    for r in results:
        w.writerow([spec.name, dataset, dev.type, torch.get_num_threads(), desc, amp, channels_last, r.seed,
                    f"{r.train_s:.4f}", r.steps, f"{r.accuracy:.6f}", f"{r.eval_s:.3f}", target])
    atomic_write_bytes(path, buf.getvalue().encode())
    write_system_json(path.with_suffix(".system.json"), {"command": "speedrun", "device": str(dev),
                                                         "data_load_s": round(load_s, 2)})
