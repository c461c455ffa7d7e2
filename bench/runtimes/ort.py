"""ONNX Runtime as a registered runtime (``run --runtime onnxruntime``, the default): every ONNX
file on any execution provider, with the spinning axis, ``--threads auto`` tuned by a probe, device
io modes on GPU providers and CUDA graphs on the CUDA EP. The sessions are :class:`ort_session.OrtRuntime`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Runtime, register
from .ort_session import OrtRuntime, check_provider
from .placement import Placement, audit_placement
from .providers import GpuOptions, SessionConfig, options_label


@register
class OnnxRuntime(Runtime):
    """ONNX Runtime: the ONNX file as written (fp32, int8, fp16, fp16-io, foreign files)."""

    name = "onnxruntime"
    variants = ("fp32", "int8", "fp16", "fp16-io", "foreign")
    providers = None  # every execution provider (providers.PROVIDERS)
    graph_optimization = "all"
    has_spinning = True
    tunes_threads = True
    device_io_modes = ("device", "device-graph")

    def applies(self, provider: str, io_mode: str) -> bool:
        """Every provider end-to-end; device io on cuda and tensorrt; CUDA graphs on cuda only."""
        if io_mode == "device-graph":
            return provider == "cuda"
        return super().applies(provider, io_mode)

    def check(self, provider: str) -> None:
        check_provider(provider)

    def open(self, target, provider, threads, spinning, io_mode, gpu: GpuOptions) -> OrtRuntime:
        return OrtRuntime(target.path, SessionConfig(provider, threads, spinning, io_mode=io_mode, gpu=gpu))

    def options_label(self, target, provider, io_mode, gpu: GpuOptions) -> str:
        return options_label(SessionConfig(provider, io_mode=io_mode, gpu=gpu))

    def placement(self, path: Path, provider, threads, spinning, gpu: GpuOptions, x: np.ndarray) -> Placement:
        return audit_placement(path, SessionConfig(provider, max(threads, 0), spinning, gpu=gpu), x)
