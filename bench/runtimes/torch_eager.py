"""PyTorch eager inference as a runtime (``run --runtime torch``): :class:`TorchRuntime`, the session,
and :class:`TorchEager`, its registered :class:`base.Runtime`. ``torch.compile`` is
:mod:`.torch_compile`, the same session compiled."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from ...models.errors import ProviderUnavailableError, UsageError
from ...models.train import autocast_for
from .base import Runtime, register
from .providers import GpuOptions

# Compiled copies of one model class that may stay alive at once (batch sizes x precisions x
# repeats, plus the scoring copy): dynamo keeps one cache entry per copy on the class's forward.
COMPILE_CACHE_LIMIT = 256


class TorchRuntime:
    """PyTorch eager inference (the baseline users would otherwise run), optionally ``torch.compile``d.

    End-to-end mode: ``run`` converts the float32 array to a tensor, runs the model under
    ``torch.inference_mode`` on the device, synchronises CUDA, and returns a host array (the same
    contract as :class:`OrtRuntime`). Device mode (CUDA): the input is copied to the GPU by
    :meth:`prepare`, before the clock; ``run`` returns the output tensor on the GPU after
    ``torch.cuda.synchronize()``. On CUDA, TF32 is turned off for convolutions and matmuls so fp32
    rows are fp32, as in ONNX Runtime's rows (``GpuOptions.tf32``), and ``cudnn_benchmark`` (cuDNN
    timing every convolution algorithm at each new shape, torch's counterpart of ONNX Runtime's
    EXHAUSTIVE search) follows ``--cudnn-algo``, so both runtimes search alike.

    ``precision="bf16"`` runs the forward pass under ``torch.autocast`` to bfloat16 (on the CPU:
    PyTorch's bf16 autocast, weights kept in fp32) and returns float32 outputs.

    ``compile=True`` is a fair compiled baseline: ``torch.compile(dynamic=False)`` of a fresh module
    per runtime (one per cell, i.e. per batch size), so each compiles its own static-shape graph;
    on the CPU with inductor's ``freezing`` option (weights folded as constants and prepacked for
    oneDNN: PyTorch's advice for CPU inference; without it lenet5 at batch 32 ran 2.5x *slower*
    than eager here, 3.9 against 1.6 ms). The dynamo recompile limit is raised to
    :data:`COMPILE_CACHE_LIMIT` (each compiled copy of one model class is an entry of its forward's
    cache; past the default 8, dynamo silently runs eager). ``torch.compiler.reset()`` is *not*
    called: it drops the compiled code of every copy still alive, which then recompiles at its next
    call, inside a timed block of an interleaved run (measured: 103 ms). :meth:`prepare` makes the
    first call, which compiles, and adds its time to :attr:`create_ms` (cold start); timed calls
    never compile.

    Raises (from the constructor):
        ProviderUnavailableError: ``cuda`` asked for and torch sees no GPU.
        UsageError: a provider other than cpu or cuda; device mode on the CPU; unknown precision.
    """

    def __init__(self, build: Callable[[], object], provider: str, threads: int = 0, io_mode: str = "end-to-end",
                 compile: bool = False, tf32: bool = False, cudnn_benchmark: bool = False,
                 precision: str = "fp32") -> None:
        if provider not in ("cpu", "cuda"):
            raise UsageError(f"the torch runtime runs on cpu or cuda, not {provider!r}")
        if io_mode not in ("end-to-end", "device"):
            raise UsageError(f"the torch runtime has io modes end-to-end and device, not {io_mode!r}")
        if io_mode == "device" and provider != "cuda":
            raise UsageError("io mode 'device' needs a GPU provider; on cpu only end-to-end applies")
        if provider == "cuda" and not torch.cuda.is_available():
            raise ProviderUnavailableError("torch runtime on cuda: torch sees no CUDA device on this host")
        if precision not in ("fp32", "bf16"):
            raise UsageError(f"the torch runtime runs fp32 or bf16 (autocast), not {precision!r}")
        self._torch = torch
        self.precision = precision
        self._autocast = autocast_for(torch.device(provider), "bf16" if precision == "bf16" else "off")
        self.name = "torch.compile" if compile else "torch"
        self.io_mode = io_mode
        if threads > 0:
            torch.set_num_threads(threads)
        if provider == "cuda":
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.benchmark = cudnn_benchmark
        self.device = torch.device(provider)
        t0 = time.perf_counter()
        self.model = build().to(self.device).eval()
        if compile:
            import torch._dynamo.config as dynamo_config

            dynamo_config.cache_size_limit = max(dynamo_config.cache_size_limit, COMPILE_CACHE_LIMIT)
            self._freeze = provider == "cpu"
            self._set_freezing()
            self.model = torch.compile(self.model, dynamic=False)
        self.compiled = compile
        self._compiled_shape = None
        self.create_ms = (time.perf_counter() - t0) * 1e3
        self.providers_used = [f"torch-{provider}"]
        self.input_dtype = np.float32
        self.sync = torch.cuda.synchronize if provider == "cuda" else (lambda: None)
        self._bound = None

    def prepare(self, x: np.ndarray) -> None:
        """Device mode: put ``x`` on the GPU now (before timing). Compiled: one call at ``x``'s shape,
        which compiles it, its time added to :attr:`create_ms`. Eager end-to-end: nothing."""
        if self.io_mode == "device":
            self._x = self._torch.from_numpy(x).to(self.device)
            self.sync()
            self._bound = x
        if self.compiled and self._compiled_shape != tuple(x.shape):
            t0 = time.perf_counter()
            self._set_freezing()  # inductor reads it when this call compiles; another runtime may have changed it
            self.run(x)
            self.create_ms += (time.perf_counter() - t0) * 1e3
            self._compiled_shape = tuple(x.shape)

    def _set_freezing(self) -> None:
        import torch._inductor.config as inductor_config  # a process-wide setting, read at compile time

        inductor_config.freezing = self._freeze

    def run(self, x: np.ndarray):
        """One synchronous inference: float32 (N, 1, 28, 28) in; a float32 host array out (end-to-end)
        or the GPU tensor (device mode; bfloat16 under bf16 precision)."""
        with self._torch.inference_mode(), self._autocast():
            if self.io_mode == "device":
                if x is not self._bound:
                    self.prepare(x)
                y = self.model(self._x)
                self.sync()
                return y
            y = self.model(self._torch.from_numpy(x).to(self.device))
            self.sync()
            return y.float().cpu().numpy()


@register
class TorchEager(Runtime):
    """PyTorch eager on the trained checkpoint (``run --runtime torch``): fp32, or bf16 under autocast,
    on cpu or cuda; device io mode on cuda."""

    name = "torch"
    variants = ("fp32", "bf16")
    providers = ("cpu", "cuda")
    graph_optimization = "eager"
    needs_checkpoint = True
    device_io_modes = ("device",)
    compile = False

    def unserved(self, provider: str) -> str:
        return f"the torch runtime runs on cpu or cuda, not {provider!r}"

    def check(self, provider: str) -> None:
        if provider == "cuda" and not torch.cuda.is_available():
            raise ProviderUnavailableError("torch runtime on cuda: torch sees no CUDA device on this host")

    def open(self, target, provider, threads, spinning, io_mode, gpu: GpuOptions) -> TorchRuntime:
        return TorchRuntime(target.build_torch, provider, threads, io_mode, compile=self.compile, tf32=gpu.tf32,
                            cudnn_benchmark=gpu.cudnn_conv_algo_search == "exhaustive",
                            precision="bf16" if target.variant == "bf16" else "fp32")

    def options_label(self, target, provider, io_mode, gpu: GpuOptions) -> str:
        """On CUDA: cuDNN benchmark mode (on for ``exhaustive`` search, as ONNX Runtime's EXHAUSTIVE)
        and TF32, as ``key=value;...``; '' on the CPU."""
        if provider != "cuda":
            return ""
        return f"cudnn_benchmark={int(gpu.cudnn_conv_algo_search == 'exhaustive')};tf32={int(gpu.tf32)}"
