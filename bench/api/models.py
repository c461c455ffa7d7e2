"""Train and export: the API of ``mnistbench train``, ``train-all`` and ``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ...models.data import load_dataset
from ...models.errors import UsageError
from ...models.files import folders_removed_on_error
from ...models.registry import select
from ...models.train import AMP_MODES, ProgressFn, resolve_device
from ..launch.planning import Note, _stderr, default_profile
from ..measure.pipeline import (
    Artifacts,
    artifacts_root,
    export_fp16,
    export_int8,
    export_model,
    load_trained,
    prepare_training,
    train_model,
)

# A model's training callback: called with the model name, returns its (step, total, stage) callback.
TrainProgress = Callable[[str], ProgressFn]


def train(models: list[str] | None = None, *, profile: str = "paper", device: str = "auto", seed: int = 0,
          dataset: str = "mnist", data_dir: Path | None = None, artifacts_dir: Path | None = None,
          amp: str = "off", channels_last: bool = False, progress: TrainProgress | None = None) -> list[dict]:
    """Train registered models with a profile's recipe and save their checkpoints.

    Args:
        models: names or wildcard patterns (None: every registered model).
        profile: ``paper``, ``quick`` or ``smoke``. device: ``auto``, ``cpu`` or ``cuda``.
        amp: ``off`` or ``bf16`` (torch.autocast). channels_last: train in channels-last format.
        progress: called with each model's name before it trains; returns its step callback.

    Returns:
        one metadata dict per model (test metric, epochs, wall seconds, checkpoint path).

    Raises:
        UsageError: unknown model, profile, device or amp mode; StorageError: the artifacts
        folder is not writable or lacks room for every checkpoint (checked before any training).

    Example: ``api.train(["lenet5"], profile="smoke", device="cpu")``
    """
    specs = select(models)
    for s in specs:
        s.recipe_for(profile)  # validates the profile name before any work
    resolve_device(device)
    if amp not in AMP_MODES:
        raise UsageError(f"unknown --amp {amp!r}; choose one of: {', '.join(AMP_MODES)}")
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
    with folders_removed_on_error(arts.dir):  # a refusal of the data leaves no empty folder
        prepare_training(specs, arts)  # writable, with room for every checkpoint, before any training
        data = load_dataset(dataset, data_dir)
    return [train_model(s, data, arts, device, progress(s.name) if progress else None, amp, channels_last)
            for s in specs]


def export(models: list[str] | None = None, *, profile: str | None = None, seed: int = 0, dataset: str = "mnist",
           int8: bool = False, fp16: bool = False, fp16_io: bool = False, data_dir: Path | None = None,
           artifacts_dir: Path | None = None, progress: Callable[[str, int, int], None] | None = None,
           note: Note = _stderr) -> list[dict]:
    """Export trained checkpoints to ONNX (dynamic batch) with parity against PyTorch, and variants.

    Args:
        profile: None picks the profile whose checkpoints were written last (said through ``note``).
        int8, fp16, fp16_io: also write those variants (``int8``: static QDQ, calibrated on 1,000
            training images; ``fp16-io``: float16 inputs and outputs).
        progress: ``(description, models done, models)``.

    Returns:
        one report per model (path, parity figures; ``report["int8"]`` etc. for the variants).

    Raises:
        UsageError: unknown model; CheckpointError: a checkpoint missing or damaged (checked for
        every model before any work); ExportError: parity below 100% top-1 or above 1e-4.

    Example: ``api.export(["lenet5"], profile="smoke", int8=True)``
    """
    from ..measure.inputs import check_profile_given

    check_profile_given(profile)
    profile = profile or default_profile(artifacts_dir, dataset, seed, "*.safetensors", "checkpoints", note)
    specs = select(models)
    arts = Artifacts(artifacts_root(artifacts_dir), dataset, profile, seed)
    for s in specs:  # every checkpoint present, intact and fitting its model before any work
        load_trained(s, arts)
    data = load_dataset(dataset, data_dir)
    tell = progress or (lambda *a: None)
    reports = []
    for i, s in enumerate(specs):
        tell(f"export {s.name}", i, len(specs))
        reports.append(export_model(s, data, arts))
        for flag, name, fn in ((int8, "int8", lambda: export_int8(s, data, arts)),
                               (fp16, "fp16", lambda: export_fp16(s, data, arts)),
                               (fp16_io, "fp16-io", lambda: export_fp16(s, data, arts, io_float16=True))):
            if flag:
                tell(f"{name} {s.name}", i, len(specs))
                reports[-1][name] = fn()
    tell("export", len(specs), len(specs))
    return reports
