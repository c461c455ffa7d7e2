"""Where artifacts live, and the train and export steps for one model.

Layout under the artifacts root (``--artifacts-dir``, ``$MNISTBENCH_ARTIFACTS``,
else ``./artifacts``)::

    <root>/<dataset>/<profile>/seed<seed>/<model>.safetensors   weights
                                         /<model>.json          checkpoint metadata
                                         /<model>.train.csv     per-epoch log
                                         /<model>.onnx          exported model (fp32)
                                         /<model>.int8.onnx     int8 variant (export --int8)
                                         /<model>.export.json   parity report
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from ...exporters.onnx import default_opset, export_onnx, read_metadata
from ...exporters.verify import PARITY_IMAGES, check_parity
from ...models.checkpoint import load_checkpoint, state_bytes
from ...models.data import Dataset, check_dataset_name
from ...models.errors import ExportError, StorageError, UsageError, keep_interrupts
from ...models.files import (
    atomic_write_bytes,
    check_writable,
    sha256_file,
    storage_error,
    sweep_temp_files,
    temp_path_beside,
)
from ...models.preprocess import preprocess
from ...models.spec import ModelSpec
from ...models.train import ProgressFn, train
from .control_models import NULL_MODEL, REFERENCE_MODEL, null_model, reference_model  # noqa: F401  (re-exported)

MAX_SEED = 2**63 - 1  # torch.manual_seed unpacks a C long long (int64): larger seeds overflow


def artifacts_root(arg: Path | None = None) -> Path:
    """``arg``, else ``$MNISTBENCH_ARTIFACTS``, else ``./artifacts``.

    Raises:
        UsageError: the folder is a file, or sits under a file (nothing could ever be read or written there).
    """
    from .inputs import check_folder_path

    root = Path(arg or os.environ.get("MNISTBENCH_ARTIFACTS") or "artifacts")
    check_folder_path(root, f"artifacts folder {root}", " (--artifacts-dir or $MNISTBENCH_ARTIFACTS)")
    return root


@dataclass(frozen=True)
class Artifacts:
    """Paths of one (dataset, profile, seed) family of artifacts.

    Raises:
        UsageError: a negative seed (torch.manual_seed rejects it; the folder name would be odd), or a
            dataset that is not one of :data:`models.data.DATASETS` (before any file is looked for).
    """

    root: Path
    dataset: str = "mnist"
    profile: str = "paper"
    seed: int = 0

    def __post_init__(self) -> None:
        check_dataset_name(self.dataset)
        if isinstance(self.seed, int) and not 0 <= self.seed <= MAX_SEED:
            raise UsageError(f"--seed must be between 0 and {MAX_SEED:,} (the largest seed torch takes), "
                             f"got {self.seed:,}")

    @property
    def dir(self) -> Path:
        return self.root / self.dataset / self.profile / f"seed{self.seed}"

    def checkpoint(self, model: str) -> Path:
        return self.dir / model

    def onnx(self, model: str, variant: str = "fp32") -> Path:
        return self.dir / (f"{model}.onnx" if variant == "fp32" else f"{model}.{variant}.onnx")


def profiles_with(root: Path, dataset: str = "mnist", seed: int = 0, pattern: str = "*.onnx") -> list[str]:
    """The profiles with at least one ``pattern`` file for ``dataset`` and ``seed``, newest first."""
    found = []
    for prof in ("paper", "quick", "smoke"):
        d = Artifacts(root, dataset, prof, seed).dir
        files = list(d.glob(pattern)) if d.is_dir() else []
        if files:
            found.append((max(f.stat().st_mtime for f in files), prof))
    return [p for _, p in sorted(found, reverse=True)]


def newest_profile(root: Path, dataset: str = "mnist", seed: int = 0, pattern: str = "*.onnx") -> str:
    """The profile whose ``pattern`` artifacts (ONNX files by default) for ``dataset`` and ``seed`` were
    written last, or ``paper`` when there are none (the error for a missing artifact then says so)."""
    found = profiles_with(root, dataset, seed, pattern)
    return found[0] if found else "paper"


def checkpoint_bytes(spec: ModelSpec) -> int:
    """Room the checkpoint of ``spec`` needs while it is replaced: the new file beside the old until
    the rename (twice the tensors' bytes), plus 1 MiB for its header, JSON copy and training log."""
    return 2 * state_bytes(spec.build().state_dict()) + (1 << 20)


def prepare_training(specs: list[ModelSpec], arts: Artifacts) -> None:
    """Before any training: remove temporary files killed writers left in ``arts.dir``, and prove the
    folder writable with room for every checkpoint of ``specs``.

    Raises:
        UsageError: the folder cannot be created or written, or lacks the room (one line, with sizes).
    """
    sweep_temp_files(arts.dir)
    need = sum(checkpoint_bytes(s) for s in specs)
    check_writable(arts.dir, need, f"the checkpoint{'s' if len(specs) > 1 else ''} of {', '.join(s.name for s in specs)}")


def train_model(spec: ModelSpec, data: Dataset, arts: Artifacts, device: str, progress: ProgressFn | None = None,
                amp: str = "off", channels_last: bool = False) -> dict:
    """Train ``spec`` with ``arts.profile`` and write its checkpoint and log; returns the metadata.

    Raises:
        UsageError: the checkpoint folder is unwritable or too full (checked before training).
        StorageError: the disk filled while the checkpoint was written; the previous checkpoint is whole.
    """
    prepare_training([spec], arts)
    res = train(spec, data, profile=arts.profile, device=device, seed=arts.seed, progress=progress,
                checkpoint_stem=arts.checkpoint(spec.name), log_path=arts.dir / f"{spec.name}.train.csv",
                amp=amp, channels_last=channels_last)
    return res.meta


def require_checkpoint(spec: ModelSpec, arts: Artifacts) -> Path:
    """The checkpoint stem of ``spec``.

    Raises:
        UsageError: not trained yet (the message says how).
    """
    stem = arts.checkpoint(spec.name)
    if not stem.with_suffix(".safetensors").is_file():
        raise UsageError(
            f"no checkpoint for {spec.name} (dataset {arts.dataset}, profile {arts.profile}, seed {arts.seed}) "
            f"under {arts.dir}; run: mnistbench train {spec.name} --profile {arts.profile} --seed {arts.seed}"
        )
    return stem


def load_trained(spec: ModelSpec, arts: Artifacts, state: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """The trained module of ``spec`` (eval mode, CPU) and its checkpoint metadata.

    ``state`` skips re-reading weights already loaded.

    Raises:
        UsageError: no checkpoint, an unreadable or tampered one, or weights that do not fit the model.
    """
    stem = require_checkpoint(spec, arts)
    meta: dict = {}
    if state is None:
        state, meta = read_checkpoint(spec, arts)
    model = spec.build()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise UsageError(f"checkpoint {stem} does not fit {spec.name}: {str(exc).splitlines()[0]}; "
                         f"{_retrain(spec, arts)}") from None
    return model.eval(), meta


def _retrain(spec: ModelSpec, arts: Artifacts) -> str:
    return (f"retrain it: mnistbench train {spec.name} --profile {arts.profile} --seed {arts.seed}"
            + ("" if arts.dataset == "mnist" else f" --dataset {arts.dataset}"))


def read_checkpoint(spec: ModelSpec, arts: Artifacts) -> tuple[dict, dict]:
    """The verified checkpoint of ``spec``: (state_dict, metadata), see :func:`load_checkpoint`.

    Raises:
        UsageError: absent, damaged, or the checkpoint of another model (the message says how to retrain).
    """
    state, meta = load_checkpoint(require_checkpoint(spec, arts), repair=_retrain(spec, arts))
    if meta["model"] != spec.name:
        raise UsageError(f"checkpoint {arts.checkpoint(spec.name)}.safetensors holds model {meta['model']!r}, "
                         f"not {spec.name}; {_retrain(spec, arts)}")
    return state, meta


def export_model(spec: ModelSpec, data: Dataset, arts: Artifacts) -> dict:
    """Export the checkpoint of ``spec`` to ONNX and prove parity on real test images.

    The file is written under a temporary name and moved into place only when
    parity passes, so a failed export never replaces a good file.

    Returns:
        the export report (also written to ``<model>.export.json``).

    Raises:
        UsageError: no checkpoint (the message says how to train one).
        ExportError: export, checker or parity failed.
    """
    model, meta = load_trained(spec, arts)
    sweep_temp_files(arts.dir)
    final = arts.onnx(spec.name)
    tmp = temp_path_beside(final)  # parity is checked on this new file before it replaces the old one
    with keep_interrupts():
        try:
            proto = export_onnx(model, spec, tmp, {
                "checkpoint_sha256": meta["weights_sha256"], "dataset": arts.dataset, "profile": arts.profile,
                "seed": str(arts.seed), "test_metric": str(meta.get("test_metric")),
            })
            x = preprocess(data.test_images[:PARITY_IMAGES], spec.preprocess)
            parity = check_parity(tmp, model, x, spec.task)
            if not parity.passed:
                agree = "" if parity.top1_agreement is None else f", top-1 agreement {parity.top1_agreement:.2%}"
                raise ExportError(f"{spec.name}: ONNX parity failed on {parity.images} test images: max |diff| "
                                  f"{parity.max_abs_diff:.3g} (tolerance {parity.tolerance:g}){agree}")
            os.replace(tmp, final)
        except StorageError as exc:  # it names the temporary file; the user's file is the final one
            raise storage_error(final, exc) from None
        finally:
            tmp.unlink(missing_ok=True)
    report = {
        "model": spec.name, "onnx": final.name, "onnx_sha256": sha256_file(final),
        "opset": default_opset(proto),
        "ir_version": proto.ir_version, "onnx_bytes": final.stat().st_size,
        "checkpoint_sha256": meta["weights_sha256"], "parity": parity.as_dict(),
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
    }
    atomic_write_bytes(arts.dir / f"{spec.name}.export.json", (json.dumps(report, indent=2) + "\n").encode())
    return report


def onnx_for(spec: ModelSpec, arts: Artifacts, variant: str = "fp32",
             allow_stale: bool = False) -> tuple[Path, dict[str, str]]:
    """The exported file of ``spec`` (``fp32``, ``int8``, ``fp16`` or ``fp16-io``) and its metadata,
    checked to come from the current checkpoint (see :func:`stale_reason`) unless ``allow_stale``.

    Raises:
        UsageError: not exported yet, unreadable, or stale (the message says how to re-export).
    """
    path = arts.onnx(spec.name, variant)
    flag = "" if variant == "fp32" else f" --{variant}"
    export = f"mnistbench export {spec.name} --profile {arts.profile} --seed {arts.seed}" + (
        "" if arts.dataset == "mnist" else f" --dataset {arts.dataset}") + flag
    if not path.is_file():
        raise UsageError(
            f"no {variant} ONNX file for {spec.name} (dataset {arts.dataset}, profile {arts.profile}, seed {arts.seed}) "
            f"at {path}; run: {export}"
        )
    try:
        meta = read_metadata(path)
    except Exception as exc:  # onnx raises DecodeError, ValueError, ... on damaged bytes
        raise UsageError(f"{path} is not a readable ONNX model ({type(exc).__name__}); run: {export}") from None
    why = None if allow_stale else stale_reason(spec, arts, path, meta)
    if why:
        raise UsageError(f"{why}; run: {export} (or pass --allow-stale to benchmark it anyway)")
    return path, meta


def _utc(path: Path) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(path.stat().st_mtime))


def stale_reason(spec: ModelSpec, arts: Artifacts, path: Path, meta: dict[str, str]) -> str | None:
    """Why the exported ``path`` (metadata ``meta``) does not describe the current checkpoint of
    ``spec``, or None when it does (or no checkpoint is there to compare with).

    The file must name ``spec`` as its model and record the sha256 of the checkpoint it was
    exported from, equal to the sha256 of the checkpoint now in ``arts`` (a retrained checkpoint,
    another model's file copied under this name, or a network mnistbench did not export all fail).
    The message names both hashes and both files' modification times.
    """
    ck = arts.checkpoint(spec.name).with_suffix(".safetensors")
    if not ck.is_file():
        return None
    if meta.get("model") != spec.name:
        held = f"model {meta['model']!r}" if meta.get("model") else "a network mnistbench did not export"
        return f"{path.name} holds {held}, not {spec.name}"
    recorded, current = meta.get("checkpoint_sha256", ""), sha256_file(ck)
    if recorded == current:
        return None
    was = f"checkpoint {recorded[:12]}" if recorded else "no recorded checkpoint"
    return (f"{path.name} is stale: exported ({_utc(path)}) from {was}, but {ck.name} is now {current[:12]} "
            f"(written {_utc(ck)})")


def export_int8(spec: ModelSpec, data: Dataset, arts: Artifacts) -> dict:
    """Quantize the exported fp32 file of ``spec`` to int8 (see :mod:`exporters.variants`), calibrated
    on the first :data:`CALIBRATION_IMAGES` training images; returns a report with its top-1
    agreement with fp32 on the parity images (information, not a gate).

    Raises:
        UsageError: no fp32 export yet. ExportError: quantization failed.
    """
    from ...exporters.variants import CALIBRATION_IMAGES, quantize_int8

    fp32, _ = onnx_for(spec, arts)
    out = arts.onnx(spec.name, "int8")
    quantize_int8(fp32, out, preprocess(data.train_images[:CALIBRATION_IMAGES], spec.preprocess))
    return _variant_report(spec, data, arts, fp32, out, "int8", {"calibration_images": CALIBRATION_IMAGES})


def export_fp16(spec: ModelSpec, data: Dataset, arts: Artifacts, io_float16: bool = False) -> dict:
    """Convert the exported fp32 file of ``spec`` to fp16 (see
    :func:`exporters.variants.convert_fp16`): variant ``fp16`` keeps float32 inputs and outputs,
    ``fp16-io`` (``io_float16``) makes them float16 too. Reports its agreement with fp32 and with
    PyTorch on the :data:`PARITY_IMAGES` parity images, run on the CPU EP (information, not a gate:
    fp16 rounding moves logits by about 1e-3 of their range).

    Raises:
        UsageError: no fp32 export yet. ExportError: conversion failed.
    """
    from ...exporters.variants import convert_fp16

    variant = "fp16-io" if io_float16 else "fp16"
    fp32, _ = onnx_for(spec, arts)
    out = arts.onnx(spec.name, variant)
    convert_fp16(fp32, out, keep_io_types=not io_float16)
    return _variant_report(spec, data, arts, fp32, out, variant, {"images": PARITY_IMAGES}, against_torch=True)


def _variant_report(spec: ModelSpec, data: Dataset, arts: Artifacts, fp32: Path, out: Path, variant: str,
                    extra: dict, against_torch: bool = False) -> dict:
    """Run the fp32 file and its ``variant`` ``out`` on the CPU EP over the :data:`PARITY_IMAGES`
    parity images; write and return the report: file identity, ``extra``, the largest output
    difference and top-1 agreement (classifiers) against fp32 and, when asked, against PyTorch."""
    import onnxruntime as ort

    from ..runtimes.runtime import onnx_input_dtype

    x = preprocess(data.test_images[:PARITY_IMAGES], spec.preprocess)
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, out))
    # a float16-io variant is fed float16 and read back as float32 (onnx_input_dtype)
    ya, yb = (s.run(None, {s.get_inputs()[0].name: x.astype(onnx_input_dtype(s))})[0].astype(np.float32)
              for s in (a, b))
    refs = {"fp32": ya}
    if against_torch:
        with torch.no_grad():
            refs["torch"] = load_trained(spec, arts)[0](torch.from_numpy(x)).numpy()
    classify = spec.task == "classify"
    report = {"model": spec.name, "variant": variant, "onnx": out.name, "onnx_sha256": sha256_file(out),
              "onnx_bytes": out.stat().st_size, **extra}
    report.update({f"max_abs_diff_vs_{k}": float(np.max(np.abs(y - yb))) for k, y in refs.items()})
    report.update({f"top1_agreement_vs_{k}": float(np.mean(y.argmax(1) == yb.argmax(1))) if classify else None
                   for k, y in refs.items()})
    atomic_write_bytes(arts.dir / f"{spec.name}.{variant}.export.json", (json.dumps(report, indent=2) + "\n").encode())
    return report


def torch_builder(spec: ModelSpec, arts: Artifacts):
    """A function returning the trained PyTorch module of ``spec`` (eval mode, CPU)."""
    state, _ = read_checkpoint(spec, arts)  # read once; each build is a fresh module
    load_trained(spec, arts, state)  # the weights fit, checked before any run starts
    return lambda: load_trained(spec, arts, state)[0]


def eval_inputs(spec: ModelSpec, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The full test set preprocessed for ``spec``: float32 (10000, 1, 28, 28) and int64 labels."""
    return preprocess(data.test_images, spec.preprocess), data.test_labels.astype(np.int64)
