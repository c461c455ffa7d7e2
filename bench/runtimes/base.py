"""The runtime interface and its registry: what a runtime must do for a cell of ``run`` (and for a
live A/B or a load scenario that needs "a session that answers a batch").

A :class:`Runtime` is registered under its name (``run --runtime NAME``) with :func:`register`, as
models are with :func:`models.registry.register`; :func:`get_runtime` finds it. The measurement asks
it which cells exist (:meth:`Runtime.applies`), whether a provider is usable here
(:meth:`Runtime.check`), to open a session (:meth:`Runtime.open`), and how to label the row
(:meth:`Runtime.options_label`, :attr:`Runtime.graph_optimization`). A session (:class:`Session`)
runs one batch per call.

Example: a runtime of a few lines (the test suite registers one like it)::

    @register
    class Echo(Runtime):
        name, variants, graph_optimization = "echo", ("fp32",), "none"

        def open(self, target, provider, threads, spinning, io_mode, gpu):
            return MySession(target.path)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from ...models.errors import UsageError

if TYPE_CHECKING:  # type names only: the measurement's Target and the GPU options sit above or beside
    from .placement import Placement
    from .providers import GpuOptions


class Session(Protocol):
    """One open session of a runtime: a model compiled for a provider, answering one batch a call.

    Attributes:
        providers_used: where it really runs (e.g. ``["CUDAExecutionProvider", ...]``,
            ``["openvino-CPU"]``, ``["torch-cpu"]``); the first is the requested one.
        create_ms: wall time of opening it (cold start), milliseconds.
        input_dtype: the numpy dtype :meth:`run` takes (float32, or float16 for fp16-io files).
    """

    providers_used: list[str]
    create_ms: float
    input_dtype: type

    def prepare(self, x: np.ndarray) -> None:
        """Bind or copy ``x`` before any clock (device modes); a no-op otherwise."""

    def run(self, x: np.ndarray):
        """Outputs of one batch ``x`` (float32 ``(batch, 1, 28, 28)``, or the file's own input shape)."""


class Runtime:
    """A runtime mnistbench can measure. Subclass, set the class attributes, implement :meth:`open`,
    and :func:`register` it.

    Class attributes:
        name: the ``--runtime`` value and the rows' ``runtime`` column.
        variants: the row variants it runs (``fp32``, ``int8``, ``fp16``, ``fp16-io``, ``bf16``,
            ``foreign``).
        providers: the ``--provider`` values it runs on (``None``: every ONNX Runtime EP).
        graph_optimization: the rows' ``graph_optimization`` column (e.g. ``all``, ``eager``).
        needs_checkpoint: it runs the PyTorch module (``Target.build_torch``), not the ONNX file.
        has_spinning: it takes ONNX Runtime's intra-op spinning axis (else rows say ``n/a``).
        tunes_threads: ``--threads auto`` is a probe of thread counts (else the runtime's own default).
        device_io_modes: the io modes besides ``end-to-end`` it runs on a GPU provider.
    """

    name: ClassVar[str]
    variants: ClassVar[tuple[str, ...]] = ("fp32",)
    providers: ClassVar[tuple[str, ...] | None] = ("cpu",)
    graph_optimization: ClassVar[str] = ""
    needs_checkpoint: ClassVar[bool] = False
    has_spinning: ClassVar[bool] = False
    tunes_threads: ClassVar[bool] = False
    device_io_modes: ClassVar[tuple[str, ...]] = ()

    def serves(self, provider: str) -> bool:
        """Whether it runs on ``provider`` at all (before asking the host)."""
        return self.providers is None or provider in self.providers

    def applies(self, provider: str, io_mode: str) -> bool:
        """Whether a cell of (this runtime, ``provider``, ``io_mode``) exists."""
        if not self.serves(provider):
            return False
        return io_mode == "end-to-end" or (provider in ("cuda", "tensorrt") and io_mode in self.device_io_modes)

    def unserved(self, provider: str) -> str:
        """The one-line reason a run of this runtime alone cannot use ``provider``."""
        return f"the {self.name} runtime runs on {' or '.join(self.providers or ())}, not {provider!r}"

    def check(self, provider: str) -> None:
        """Prove ``provider`` usable by this runtime on this host, before any work.

        Raises:
            ProviderUnavailableError: it is not.
        """

    def open(self, target, provider: str, threads: int, spinning: bool | None, io_mode: str,
             gpu: GpuOptions) -> Session:
        """A fresh session for ``target`` (a :class:`measure.runner.Target`: ``path``, ``variant``,
        ``build_torch``) on ``provider`` with ``threads`` intra-op threads (0: the runtime's default).

        Raises:
            ProviderUnavailableError, RuntimeError: the session cannot be opened (an error row).
        """
        raise NotImplementedError

    def options_label(self, target, provider: str, io_mode: str, gpu: GpuOptions) -> str:
        """The rows' ``provider_options`` (``key=value;...``), '' when none apply."""
        return ""

    def placement(self, path: Path, provider: str, threads: int, spinning: bool | None, gpu: GpuOptions,
                  x: np.ndarray) -> Placement | None:
        """Where the graph's nodes run (None: not known for this runtime)."""
        return None


_RUNTIMES: dict[str, Runtime] = {}


def register(cls: type[Runtime]) -> type[Runtime]:
    """File a :class:`Runtime` subclass under its ``name`` (a class decorator).

    Raises:
        ValueError: the name is taken.
    """
    if cls.name in _RUNTIMES:
        raise ValueError(f"runtime {cls.name!r} is already registered")
    _RUNTIMES[cls.name] = cls()
    return cls


def unregister(name: str) -> None:
    """Remove a registered runtime (tests and plug-ins that register one for a while)."""
    _RUNTIMES.pop(name, None)


def get_runtime(name: str) -> Runtime:
    """The runtime registered as ``name``.

    Raises:
        UsageError: no such runtime (the message lists the registered ones).
    """
    try:
        return _RUNTIMES[name]
    except KeyError:
        raise UsageError(f"unknown runtime {name!r}; choose one of: {', '.join(runtime_names())}") from None


def runtime_names() -> tuple[str, ...]:
    """Every registered runtime's name, in registration order."""
    return tuple(_RUNTIMES)


def runtime_variants() -> dict[str, tuple[str, ...]]:
    """Runtime name -> the row variants it runs."""
    return {n: r.variants for n, r in _RUNTIMES.items()}
