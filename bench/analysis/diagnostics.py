"""The flows behind ``mnistbench doctor``: the defaults check over models, the calibration study of
``compare``, and the machine figures (GEMM peak, null-model floor, harness overhead). They measure
and return figures; :mod:`bench.console` prints them.
"""

from __future__ import annotations

import csv
import io
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ...exporters.onnx import export_onnx
from ...models.data import load_dataset
from ...models.errors import UsageError
from ...models.files import atomic_write_bytes
from ...models.preprocess import preprocess
from ...models.registry import get_spec, select
from ..measure.inputs import new_csv
from ..measure.pipeline import Artifacts, artifacts_root, newest_profile, onnx_for
from ..measure.system import describe_system, gemm_peak_gflops, write_system_json
from ..measure.timing import TimingConfig
from . import calibrate as cal
from . import doctor as doc
from .noise import check_condition

# (description) -> None, or (description, done, total) for counted work
Say = Callable[[str], None]


def check_defaults_request(models: list[str] | None, rounds: int, out_path: Path | None) -> list:
    """The model specs of ``doctor --check-defaults``, its options checked first.

    Raises:
        UsageError: rounds below 3, an ``--out`` that is not a new ``.csv`` in a folder that can be made,
            unknown models.
    """
    if rounds < 3:
        raise UsageError(f"--rounds must be at least 3, got {rounds}")
    if out_path is not None:
        new_csv(Path(out_path))  # a new .csv whose folder can be made, before 20 s of measuring
    return select(models)


def check_defaults(specs: list, rounds: int,
                   progress: Callable[[str, int, int], None] | None = None) -> list[doc.DefaultsCheck]:
    """Each model (random weights) at each batch of :data:`doctor.SWEEP_BATCHES`: the default session
    options against every threads x spinning configuration, ``rounds`` interleaved blocks each."""
    results = []
    total = len(specs) * len(doc.SWEEP_BATCHES)
    with tempfile.TemporaryDirectory(prefix="mnistbench-defaults-") as tmp:
        for s in specs:
            path = Path(tmp) / f"{s.name}.onnx"
            export_onnx(s.build().eval(), s, path, {"note": "random weights, for timing only"})
            for b in doc.SWEEP_BATCHES:
                if progress:
                    progress(f"defaults check {s.name} batch {b}", len(results), total)
                results.append(doc.check_defaults(path, s.name, b, rounds))
    return results


def write_defaults_csv(out_path: Path, results: list[doc.DefaultsCheck]) -> None:
    """The defaults-check figures as a CSV (median img/s per configuration), with a ``.system.json``."""
    buf = io.StringIO()
    w = csv.writer(buf)
    labels = list(results[0].median_ips)
    w.writerow(["model", "batch_size", "default_threads", *[f"ips_{k}" for k in labels], "best", "ratio", "rounds"])
    for r in results:
        w.writerow([r.model, r.batch_size, r.default_threads, *(f"{r.median_ips[k]:.1f}" for k in labels),
                    r.best, f"{r.ratio:.4f}", r.rounds])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_path, buf.getvalue().encode())
    write_system_json(out_path.with_suffix(".system.json"), {"command": "doctor --check-defaults"})


def calibration(trials: int, folder: Path, profile: str | None, data_dir: Path | None, artifacts_dir: Path | None,
                progress: Say, modes: tuple[str, ...] = cal.MODES, condition: str = "as-is", seed: int = 0,
                configs: str = "lenet5:32", command: str = "", levels: str | None = None,
                launch: cal.LaunchRun | None = None) -> str:
    """The calibration study of ``compare`` (:func:`calibrate.study`) under a neighbour ``condition``
    (:mod:`bench.noise`, seeded by ``seed``) over ``configs`` (``MODEL:BATCH,...``); returns its
    summary markdown. ``levels``: planted changes in percent, comma-separated, for the modes run
    (None: :data:`calibrate.LEVELS` and :data:`calibrate.LIVE_LEVELS`).

    Raises:
        UsageError: trials below 1; unknown modes or condition; a bad configs or levels list; missing
            artifacts.
    """
    if trials < 1:
        raise UsageError(f"--trials must be at least 1, got {trials}")
    cal.check_modes(modes)  # before the artifacts and the dataset load
    check_condition(condition)
    pairs = []
    for part in (p.strip() for p in configs.split(",")):
        name, _, batch = part.partition(":")
        if not name or not batch.isdigit() or not 1 <= int(batch) <= 4096:
            raise UsageError(f"--calibrate-configs takes MODEL:BATCH,... (batch 1-4096), got {part!r}")
        pairs.append((get_spec(name).name, int(batch)))
    kw = {}
    if levels is not None:
        try:
            vals = tuple(float(v) / 100 for v in levels.split(",") if v.strip())
        except ValueError:
            raise UsageError(f"--calibrate-levels takes percentages, comma-separated, got {levels!r}") from None
        if not vals or any(not math.isfinite(v) or abs(v) > 1 for v in vals):
            raise UsageError(f"--calibrate-levels takes percentages between -100 and 100, got {levels!r}")
        if "separate" in modes and any(v < 0 for v in vals):
            raise UsageError("--calibrate-levels: separate runs plant each level as a slowdown and a speedup; give 0 and "
                             "positive levels")
        kw = {"levels": vals, "live_levels": vals}
    root = artifacts_root(artifacts_dir)
    arts = Artifacts(root, "mnist", profile or newest_profile(root), 0)
    configs_ = [cal.Config(n, onnx_for(get_spec(n), arts)[0], b) for n, b in pairs]
    x = preprocess(load_dataset("mnist", data_dir).test_images[:512], "mnist-norm")
    cal.study(configs_, x, folder, trials, data_dir, progress=progress, modes=modes, condition=condition, seed=seed,
              command=command, launch=launch, **kw)
    return (folder / "summary.md").read_text()


@dataclass
class MachineFigures:
    """What ``doctor`` measures before its sweep: GEMM peaks (GFLOP/s), the null-model floor (µs)."""

    system: dict
    providers: dict[str, str]
    gemm_gflops: float
    gpu_gemm: tuple[str, float] | None
    null_floor_us: float


def doctor_timing(min_s: float) -> TimingConfig:
    """The short timing of doctor's probes: 5 warm-up calls (0.1 s), 20 timed calls, ``min_s`` seconds."""
    return TimingConfig(warmup_iters=5, warmup_s=0.1, min_iters=20, min_s=min_s)


def machine_figures(timing: TimingConfig, artifacts_dir: Path | None) -> MachineFigures:
    """Providers (proven by sessions), GEMM peaks on CPU (and CUDA if present), the null-model floor."""
    gpu = (torch.cuda.get_device_name(), gemm_peak_gflops(device="cuda")) if torch.cuda.is_available() else None
    return MachineFigures(describe_system(), doc.provider_status(), gemm_peak_gflops(), gpu,
                          doc.null_floor_us(timing, artifacts_root(artifacts_dir)))


def harness_overhead() -> doc.Overhead:
    """mnistbench's timed loop against a bare ``session.run`` loop (lenet5, random weights, batch 1)."""
    with tempfile.TemporaryDirectory(prefix="mnistbench-doctor-") as tmp:
        spec = get_spec("lenet5")
        export_onnx(spec.build().eval(), spec, Path(tmp) / "lenet5.onnx", {"note": "random weights, for timing only"})
        return doc.harness_overhead(Path(tmp) / "lenet5.onnx")
