"""The run configuration as data: what to measure (:class:`Target`, :class:`Axes`), one planned
group of cells (:class:`Group`), and one whole run (:class:`RunRequest`), frozen and typed, with
``to_dict``/``from_dict`` so that every launcher (a fresh process per repeat, a Ray task, the
calibration's separate runs) receives the configuration itself, never a command line.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np
import torch

from ...models.errors import UsageError
from ..runtimes.runtime import GpuOptions
from .defaults import AUTO, PRECISIONS, RUNS_DIR  # noqa: F401  (AUTO, PRECISIONS re-exported)
from .timing import TimingConfig

DEFAULT_BATCH_SIZES = (1, 8, 32, 128, 512)
# Sessions held alive and interleaved at once. 64 covers `mnistbench all` (55 cells + 5 reference cells)
# in one group; a larger matrix is measured in groups of this size, each with the reference cells.
MAX_LIVE_SESSIONS = 64


@dataclass(frozen=True)
class Target:
    """One model to benchmark.

    Attributes:
        name: model name for the rows.
        path: the ``.onnx`` file.
        task: ``classify``, ``reconstruct`` or ``null`` (the overhead floor: no quality metric).
        inputs: preprocessed test images, float32 (N, 1, 28, 28).
        labels: int64 (N,) (ignored unless classify).
        build_torch: returns the trained PyTorch module (None: no torch rows, no agreement).
        flops: forward FLOPs of one image (None: unknown, e.g. a foreign model).
        dataset, profile, seed, checkpoint_sha256: provenance for the rows.
        fixed_batch: the only batch size the graph accepts (None: dynamic batch axis).
        variant: ``fp32`` for mnistbench's exports, ``foreign`` for ``--onnx`` models.
    """

    name: str
    path: Path
    task: str
    inputs: np.ndarray
    labels: np.ndarray
    build_torch: Callable[[], torch.nn.Module] | None = None
    flops: int | None = 0
    dataset: str = "mnist"
    profile: str = ""
    seed: str = ""
    checkpoint_sha256: str = ""
    fixed_batch: int | None = None
    variant: str = "fp32"

    def batch_sizes(self, requested: tuple[int, ...]) -> tuple[int, ...]:
        return requested if self.fixed_batch is None else (self.fixed_batch,)


@dataclass(frozen=True)
class Axes:
    """The swept axes besides models. ``threads``: AUTO (per-cell probe), 0 (the runtime's own choice)
    or a count; ``spinning`` None = the runtime's default; ``io_modes`` (see
    :data:`bench.runtime.IO_MODES`) apply to GPU providers, CPU cells are always end-to-end;
    ``gpu``: CUDA/TensorRT options for every GPU cell."""

    runtimes: tuple[str, ...] = ("onnxruntime",)
    providers: tuple[str, ...] = ("cpu",)
    threads: tuple[int, ...] = (AUTO,)
    spinning: tuple[bool | None, ...] = (None,)
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    io_modes: tuple[str, ...] = ("end-to-end",)
    gpu: GpuOptions = GpuOptions()


class Group(NamedTuple):
    """The cells of one target that share a session configuration (one cell per batch size)."""

    target: Target
    runtime: str
    provider: str
    threads: int
    spinning: bool | None
    io_mode: str

    def label(self) -> str:
        """``lenet5 [onnxruntime/cpu, threads auto]``: how progress names the group."""
        io = "" if self.io_mode == "end-to-end" else "/" + self.io_mode
        return (f"{self.target.name} [{self.runtime}/{self.provider}{io}, "
                f"threads {'auto' if self.threads == AUTO else self.threads}]")


@dataclass(frozen=True)
class RunRequest:
    """Everything one benchmark run needs, typed (the options of ``mnistbench run``).

    Attributes:
        names: registered model names or patterns (None: every model); empty with ``onnx``.
        axes: runtimes, providers, threads, spinning, batch sizes (images per call), io modes, GPU options.
        timing: warm-up and timed-loop bounds (calls and seconds per cell, interleaved rounds).
        variants: row variants: ONNX files (fp32, int8, fp16, fp16-io) and precisions (bf16).
        profile, seed, dataset: which artifacts (``foreign`` for ``onnx`` files).
        onnx, layout, preprocess: foreign MNIST classifiers and how to feed them.
        out_path: the exact results CSV (None: ``results_dir/<UTC stamp>-<dataset>-<profile>-<providers>.csv``).
        resume: complete ``out_path``, measuring only its missing cells.
        repeat: whole-matrix repeats, each in a fresh process (:mod:`bench.launch.repeats`); ``repeat_index``
            is set in those child processes only.
        null, reference, score: also measure the null model / the drift reference; score the test set.
        max_live: sessions alive and interleaved at once. pin_cpus: CPU affinity text (``0,2-3``).
        allow_stale: run ONNX files that do not come from the current checkpoint.
        call_timeout: seconds one ONNX Runtime call may take (None: the default).
        command: the command line recorded in the ``.system.json`` ("": this process's own argv).

    Raises:
        UsageError: ``repeat`` or ``max_live`` below 1.

    Example: ``RunRequest(("lenet5",), Axes(batch_sizes=(1, 32)), TimingConfig(min_s=0.5), profile="quick",
    out_path=Path("r.csv"))``
    """

    names: tuple[str, ...] | None = None
    axes: Axes = Axes()
    timing: TimingConfig = TimingConfig()
    variants: tuple[str, ...] = ("fp32",)
    profile: str = "quick"
    seed: int = 0
    dataset: str = "mnist"
    onnx: tuple[Path, ...] = ()
    layout: str = "auto"
    preprocess: str = "unit"
    results_dir: Path = RUNS_DIR
    out_path: Path | None = None
    resume: bool = False
    repeat: int = 1
    repeat_index: int | None = None
    shuffle_seed: int | None = None
    null: bool = True
    reference: bool = True
    score: bool = True
    max_live: int = MAX_LIVE_SESSIONS
    pin_cpus: str | None = None
    allow_stale: bool = False
    call_timeout: float | None = None
    data_dir: Path | None = None
    artifacts_dir: Path | None = None
    command: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.repeat <= 1000:  # as load's: each repeat is a fresh process of the whole matrix
            raise UsageError(f"--repeat must be 1 to 1000, got {self.repeat:,}")
        if self.max_live < 1:
            raise UsageError(f"--max-live-sessions must be at least 1, got {self.max_live}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, int, float, bool, None, lists, dicts): JSON-ready, and what a launcher sends."""
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRequest":
        """The request :meth:`to_dict` gave, validated as the constructor validates.

        Raises:
            UsageError: a key this class does not have, or a value of the wrong shape.
        """
        return from_dict(cls, data)


def to_dict(obj: Any) -> Any:
    """A frozen configuration dataclass as plain data: dataclasses as dicts, tuples as lists, paths as text."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def from_dict(cls: type, data: Any) -> Any:
    """Rebuild ``cls`` (a configuration dataclass) from :func:`to_dict`'s data, by its type hints.

    Raises:
        UsageError: not a mapping, or a key ``cls`` does not have; the class's own checks apply.
    """
    if not isinstance(data, dict):
        raise UsageError(f"a {cls.__name__} configuration must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UsageError(f"{cls.__name__} has no setting {', '.join(unknown)}")
    try:
        return cls(**{k: _decode(hints[k], v) for k, v in data.items()})
    except (TypeError, ValueError) as exc:
        raise UsageError(f"a {cls.__name__} configuration does not fit its types: {exc}") from None


def _decode(tp: Any, v: Any) -> Any:
    if v is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(arms[0], v) if len(arms) == 1 else v
    if origin is tuple:
        return tuple(_decode(typing.get_args(tp)[0], x) for x in v)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, v)
    if tp is Path:
        return Path(v)
    if tp is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v
